"""The oversight service: a guarded OpenAI-compatible endpoint and a human review web UI.

>>> app = create_app(ServeSettings(model="hf:tiny", assessor="rules"))   # a FastAPI app
>>> # uvicorn.run(app, port=8000); then any OpenAI client at http://127.0.0.1:8000/v1

Every ``/v1/chat/completions`` request is assessed (:mod:`cai2.context`), the stored constitution
version resolved for it (:mod:`cai2.constitution`), answered by the backend (:mod:`cai2.models`),
judged by the oversight hierarchy (:mod:`cai2.oversight`), revised (:mod:`cai2.critique`) or refused
when it violates, and recorded (decision, queue entry, request record) before the answer leaves.
The response's ``cai2`` field lists the active layers and verdicts. People review escalations and
random spot-checks at ``/ui/``; auto-approval pauses at mandatory checkpoints. See
``docs/service.md``.
"""

from cai2.server._app import create_app
from cai2.server._db import ServiceDB, hash_password, upgrade_schema, verify_password
from cai2.server._guard import Guard, GuardResult, RulesAssessor
from cai2.server._settings import ServeSettings

__all__ = [
    "Guard",
    "GuardResult",
    "RulesAssessor",
    "ServeSettings",
    "ServiceDB",
    "create_app",
    "hash_password",
    "upgrade_schema",
    "verify_password",
]
