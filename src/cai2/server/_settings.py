"""Settings of the oversight service: one object for the Python API, the CLI and a YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from cai2.config import StrictModel, read_yaml
from cai2.context import RiskTier
from cai2.oversight import OversightConfig


class ServeSettings(StrictModel):
    """How `cai2 serve` guards a backend and where it keeps its records.

    ``None`` for ``database_url`` means ``sqlite:///<state_dir>/serve.sqlite`` (WAL mode).
    """

    model: str = Field(
        "hf:smollm2-135m", description="Backend spec, e.g. `hf:tiny` or `openai:URL#m`."
    )
    model_name: str = Field(
        "cai2-guarded", description="Model id clients send and `/v1/models` lists."
    )
    constitution: str = Field(
        "cai-2.0", description="Built-in name or YAML path of the first constitution version."
    )
    assessor: Literal["minilm", "rules"] = Field(
        "minilm",
        description=(
            "`minilm`: the default context assessor (MiniLM heads + rules); `rules`: the explicit "
            "rules only (no embedding model; low risk unless a rule fires)."
        ),
    )
    oversight: OversightConfig | None = Field(
        None,
        description="The judge hierarchy; null: the default (refusal → MiniLM head → people).",
    )
    judge_min_risk: RiskTier = Field(
        RiskTier.medium,
        description=(
            "Requests below this tier skip the AI judges (the low-risk fast path); they still get "
            "random human spot-checks at the human level's `random_share`."
        ),
    )
    revise: bool = Field(True, description="Try a critique → revision before refusing.")
    revision_rounds: int = Field(1, ge=1, le=4, description="Critique rounds when revising.")
    max_tokens: int = Field(256, ge=1, le=4096, description="Default and cap of `max_tokens`.")
    refusal_message: str = Field(
        "I can't help with that request.", description="What a refused request receives."
    )
    hold_message: str = Field(
        "This answer is held for human review; please try again later.",
        description="What a request receives while auto-approval is paused at a checkpoint.",
    )
    run_id: str = Field("serve", description="Run id of the service in the review queue tables.")
    state_dir: Path = Field(Path("serve-state"), description="Folder for the SQLite file.")
    database_url: str | None = Field(None, description="SQLAlchemy URL (PostgreSQL supported).")
    require_api_key: bool = Field(True, description="Refuse `/v1/*` calls without a valid key.")
    max_request_bytes: int = Field(
        64_000, ge=1_000, description="Largest request body accepted (413 above)."
    )
    max_messages: int = Field(64, ge=1, description="Most messages in one chat request.")
    rate_limit_per_minute: int = Field(
        120, ge=1, description="Requests per minute per API key (or client address)."
    )
    session_hours: float = Field(8.0, gt=0, description="Reviewer session lifetime.")
    secure_cookies: bool = Field(False, description="Mark cookies `Secure` (turn on behind HTTPS).")
    bare_endpoint: bool = Field(
        False,
        description=(
            "Also serve `/bare/v1/chat/completions`: the backend without guard or record, for "
            "measuring the guard's overhead. Never enable in production."
        ),
    )

    def url(self) -> str:
        """The database URL in use."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.state_dir / 'serve.sqlite').resolve()}"

    @classmethod
    def from_yaml(cls, path: str | Path) -> ServeSettings:
        """Read settings from a YAML file (errors name file, line and key)."""
        return read_yaml(path).validate(cls)
