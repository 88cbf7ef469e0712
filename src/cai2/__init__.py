"""cai2: Constitutional AI 2.0 on a laptop CPU.

Public names live in the per-concern packages (``cai2.models``, ``cai2.constitution``, ...).
"""

from cai2.errors import Cai2Error, ConfigError, DataError, ModelError, StoreError

__all__ = ["Cai2Error", "ConfigError", "DataError", "ModelError", "StoreError"]
__version__ = "0.1.0"
