"""Clean-up of small-model artefacts in critiques and revisions, with a reason for every drop.

A 135M model asked to revise its reply often wraps the revision in meta-text ("Sure, here is a
revised response:"), loops on a sentence, echoes the request, or writes nothing useful. Training on
that teaches the student the meta-text, so it is stripped, and a revision with nothing left is
dropped with a counted reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

DropReason = Literal["empty", "unchanged", "meta_only", "echo", "too_short"]

# Preambles a reviser writes before the actual revision; matched at the start, case-insensitively.
_PREAMBLES = [
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"^(?:sure|certainly|of course|okay|ok|absolutely|great)[,.!]?\s*",
        r"^(?:i['’]?m|i am) (?:sorry|happy|glad) (?:for any confusion|to help)[^.:!\n]*[.:!]\s*",
        r"^(?:but|and|so),?\s*",
        r"^(?:i['’]?ll|i will|let me) (?:provide|give|write|offer|rewrite|revise)[^.:\n]*[.:]\s*",
        r"^here(?:['’]s| is| are)(?: is)? (?:a |an |the |my )?"
        r"(?:revised|rewritten|updated|improved|new|modified|corrected)?\s*"
        r"(?:version|response|reply|answer|revision|text)[^:\n]*[:.]\s*",
        r"^(?:the )?(?:revised|rewritten|updated|improved|new) (?:version|response|reply|answer)"
        r"(?: is| would be)?\s*[:.\-]\s*",
        r"^(?:revision|rewrite|response|answer|assistant)\s*:\s*",
    )
]
_WRAPPING_QUOTES = ('"', "'", "“", "”", "`")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-z0-9']+")
MIN_REVISION_CHARS = 12
"""Shorter revisions are dropped as ``too_short``: nothing a student could learn from."""


@dataclass(frozen=True)
class CleanedText:
    """The result of cleaning one revision."""

    text: str | None
    """The cleaned revision, or ``None`` when it was dropped."""
    drop_reason: DropReason | None
    """Why it was dropped."""
    fixes: tuple[str, ...]
    """What was repaired in a kept text: ``preamble``, ``quotes``, ``repetition``."""


def strip_preamble(text: str) -> tuple[str, bool]:
    """``text`` without leading meta-text; the flag says whether anything was removed."""
    original = text
    changed = True
    while changed:
        changed = False
        for pattern in _PREAMBLES:
            stripped = pattern.sub("", text, count=1).lstrip()
            if stripped != text:
                text, changed = stripped, True
    return text, text != original


def remove_repetition(text: str) -> tuple[str, bool]:
    """``text`` with every repeated sentence (after its first occurrence) removed."""
    pieces = [p.strip() for p in _SENTENCE_SPLIT.split(text) if p and p.strip()]
    seen: set[str] = set()
    kept: list[str] = []
    for piece in pieces:
        key = " ".join(_WORD.findall(piece.lower()))
        if key and key in seen:
            continue
        seen.add(key)
        kept.append(piece)
    if len(kept) == len(pieces):
        return text, False
    return " ".join(kept), True


def _strip_quotes(text: str) -> tuple[str, bool]:
    if len(text) >= 2 and text[0] in _WRAPPING_QUOTES and text[-1] in _WRAPPING_QUOTES:
        return text[1:-1].strip(), True
    return text, False


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def clean_revision(
    revision: str, previous: str, request: str = "", critique: str = ""
) -> CleanedText:
    """Clean a revision and decide whether to keep it.

    Args:
        revision: What the reviser wrote.
        previous: The reply it revises; an identical result is dropped as ``unchanged``.
        request: The revision request it answered; a revision that mostly repeats it is ``echo``.
        critique: The critique it follows; a revision that mostly repeats that is ``echo`` too
            (small models often copy the critique instead of rewriting the reply).
    """
    fixes: list[str] = []
    text = revision.strip()
    if not text:
        return CleanedText(None, "empty", ())
    text, stripped = strip_preamble(text)
    if stripped:
        fixes.append("preamble")
    text, unquoted = _strip_quotes(text)
    if unquoted:
        fixes.append("quotes")
    text, deduplicated = remove_repetition(text)
    if deduplicated:
        fixes.append("repetition")
    text = text.strip()
    if not text:
        return CleanedText(None, "meta_only", tuple(fixes))
    if len(text) < MIN_REVISION_CHARS:
        return CleanedText(None, "too_short", tuple(fixes))
    if _words(text) == _words(previous):
        return CleanedText(None, "unchanged", tuple(fixes))
    words = _words(text)
    for source in (request, critique):
        source_words = set(_words(source))
        if source_words and words and sum(w in source_words for w in words) / len(words) > 0.8:
            return CleanedText(None, "echo", tuple(fixes))
    return CleanedText(text, None, tuple(fixes))


_NO_VIOLATION = re.compile(
    r"\b(?:no (?:violation|issues?|problems?|concerns?)|nothing (?:harmful|wrong|problematic)"
    r"|does(?: not|n['’]t) (?:violate|contain anything|break)|is (?:already )?(?:fine|appropriate|"
    r"harmless|safe|compliant)|complies with|follows the (?:rule|principle))\b",
    re.IGNORECASE,
)


def critique_finds_violation(critique: str) -> bool:
    """Whether a critique reports a violation: ``False`` only when it says there is none."""
    head = critique.strip()[:300]
    return not (head and _NO_VIOLATION.search(head))
