"""Stop strings: cut a response at the first one, the way OpenAI-compatible servers do."""

from __future__ import annotations

from collections.abc import Callable, Sequence

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each finished batch or request."""


def trim_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to (not including) the earliest stop string, and whether one was found."""
    cut = min((index for s in stop if s and (index := text.find(s)) >= 0), default=-1)
    if cut < 0:
        return text, False
    return text[:cut], True
