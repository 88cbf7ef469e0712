"""The exceptions cai2 raises.

Every error a user can cause derives from :class:`Cai2Error`. The CLI prints the message as one line
and maps the class to an exit code (2 for bad input, 1 for a runtime failure).
"""

from __future__ import annotations

from pathlib import Path


class Cai2Error(Exception):
    """Root of every error cai2 raises on purpose."""

    exit_code = 1


class ConfigError(Cai2Error):
    """A configuration, recipe or constitution is invalid.

    Args:
        message: What is wrong and how to fix it.
        file: The file the bad value came from, when there is one.
        line: 1-based line of the bad value in ``file``.
        key: Dotted key path of the bad value, e.g. ``stages.1.config.batch_size``.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
        if self.key:
            where = f"{where} at `{self.key}`" if where else f"at `{self.key}`"
        return f"{where}: {self.message}" if where else self.message


class DataError(Cai2Error):
    """Input data (prompts, labels, a package's data files) is missing or malformed."""

    exit_code = 2


class ModelError(Cai2Error):
    """A model could not be loaded, converted or queried."""

    exit_code = 1


class StoreError(Cai2Error):
    """The run store could not be read or written."""

    exit_code = 1
