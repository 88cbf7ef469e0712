"""Complexity of a request from a handful of readable features, calibrated to [0, 1].

Complexity is what a human labeller means by "a quick factual question" versus "a long multi-step
task": length, the number of asks and steps, the number of turns, and how technical the wording is.
A ridge regression fitted on the labelled set maps the features to the labels, so the score is both
explainable (each feature is shown as evidence) and calibrated to the labellers' scale.
"""

from __future__ import annotations

import math
import re

import numpy as np

from cai2.models._types import Conversation

FEATURE_NAMES: tuple[str, ...] = (
    "length",
    "sentences",
    "questions",
    "steps",
    "task_verbs",
    "turns",
    "technical",
)
"""Feature order of :func:`complexity_features`."""

_TASK_VERBS = re.compile(
    r"\b(?:plan|compare|list|include|including|draft|design|summari[sz]e|explain|walk me through|"
    r"step[- ]by[- ]step|itinerary|timetable|schedule|outline|analy[sz]e|evaluate|calculate|"
    r"write|build|develop|implement|with (?:a|the) \w+ and)\b",
    re.IGNORECASE,
)
_STEP_MARKERS = re.compile(
    r"(?:^\s*(?:\d+[.)]|[-*•])\s)|\b(?:first|then|after that|finally|next|also)\b|[;:]",
    re.IGNORECASE | re.MULTILINE,
)
_TECHNICAL = re.compile(
    r"\b(?:api|script|python|bash|code|function|database|sql|server|network|protocol|algorithm|"
    r"formula|dose|dosing|mg|mmol|synthesis|reagents?|precursors?|encrypt\w*|exploit\w*|"
    r"tls|router|linux|docker|compile\w*|regression|statistic\w*|tax|pension|contract|clause|"
    r"calibre|insulin|enzyme\w*|molar|equation\w*)\b",
    re.IGNORECASE,
)
_CODE_LIKE = re.compile(r"[A-Za-z]+\d|\w+_\w+|[a-z]+[A-Z]\w*|[{}\[\]=<>/\\`]")


def complexity_features(conversation: Conversation) -> np.ndarray:
    """The features of a conversation's user turns, each scaled to roughly [0, 1].

    Returns:
        A float vector in :data:`FEATURE_NAMES` order.
    """
    user_turns = [turn["content"] for turn in conversation if turn["role"] == "user"]
    text = "\n".join(user_turns)
    words = re.findall(r"\w+", text)
    n_words = len(words)
    sentences = len(re.findall(r"[.!?]+(?:\s|$)", text)) or 1
    questions = text.count("?")
    steps = len(_STEP_MARKERS.findall(text)) + text.count(",") / 2
    task_verbs = len(_TASK_VERBS.findall(text))
    technical = len(_TECHNICAL.findall(text)) + len(_CODE_LIKE.findall(text))
    return np.array(
        [
            math.log1p(n_words) / math.log1p(300),
            min(sentences, 10) / 10,
            min(questions, 5) / 5,
            min(steps, 10) / 10,
            min(task_verbs, 5) / 5,
            min(len(user_turns) - 1, 5) / 5,
            min(technical / max(n_words, 1) * 5, 1.0),
        ],
        dtype=np.float64,
    )


def describe_features(features: np.ndarray) -> str:
    """One line naming the features that most push complexity up."""
    parts = [f"{name} {value:.2f}" for name, value in zip(FEATURE_NAMES, features, strict=True)]
    return ", ".join(parts)
