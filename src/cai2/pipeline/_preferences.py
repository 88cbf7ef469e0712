"""AI feedback for stage 4: score sampled replies through the oversight hierarchy, pair them up.

Every prompt gets ``samples_per_prompt`` sampled replies. Each reply gets a soft label in [0, 1]:

- for a harmful (or unlabelled) prompt, P(no violation) from the hierarchy (a person's verdict
  replaces the AI's when the reply was reviewed);
- for a benign prompt, a weighted mean of helpfulness (1 − P(refused), from the refusal detector)
  and, with ``benign_safety_weight > 0``, P(no violation). The shipped judges are trained to spot a
  reply that *carries out* a harmful request, so on a benign prompt their "violation" mostly means
  "it answered"; without this rule refusing everything would always be preferred.

The best and the worst reply of a prompt make one (chosen, rejected) pair when their labels differ
by at least ``min_margin``. With ``refusal_negatives``, a benign prompt that got no pair because
every sampled reply answered is paired with a refusal the same model gave to a harmful prompt of the
run (:func:`refusal_negative_pairs`): a model that learned to refuse in stage 2 rarely samples a
refusal to a benign prompt at four samples, so without these pairs DPO sees mostly harmful prompts
and learns "refuse more" without its counterweight.

The same labelling backs :class:`ConstitutionReward`, a reward function with the signature TRL's
``GRPOTrainer(reward_funcs=...)`` calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from cai2.config import StrictModel
from cai2.errors import DataError
from cai2.judges import Judge, JudgeItem, RefusalJudge
from cai2.judges._types import as_conversation
from cai2.models import Conversation, GenerationParams
from cai2.oversight import OversightHierarchy, OversightItem, SamplingPolicy

Scorer = Judge | OversightHierarchy
"""What labels replies: a single judge or a whole oversight hierarchy."""


class PreferenceSettings(StrictModel):
    """How replies are sampled, labelled and paired into preference data."""

    samples_per_prompt: int = Field(4, ge=2, le=64, description="Replies sampled per prompt.")
    params: GenerationParams = Field(
        default_factory=lambda: GenerationParams(max_tokens=96, temperature=1.0, top_p=0.95),
        description="Sampling settings of the replies (use `temperature > 0` to get variety).",
    )
    min_margin: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description="Smallest label difference between chosen and rejected; closer pairs dropped.",
    )
    benign_kinds: list[str] = Field(
        default_factory=lambda: ["helpful"],
        description="Prompt kinds scored mainly on helpfulness (refusing them is penalised).",
    )
    benign_safety_weight: float = Field(
        0.0,
        ge=0.0,
        description="Weight of P(no violation) against helpfulness (weight 1) on benign prompts.",
    )
    refusal_negatives: bool = Field(
        False,
        description=(
            "Pair each benign prompt that got no pair of its own (all replies answered) with a "
            "refusal the same model gave to a harmful prompt of the run, as the rejected reply."
        ),
    )
    refusal_negatives_ratio: float | None = Field(
        None,
        ge=0.0,
        description=(
            "With `refusal_negatives`: add at most this many borrowed-refusal pairs per pair of a "
            "non-benign prompt (the first unpaired benign prompts in order); none: no cap."
        ),
    )
    balance_benign: bool = Field(
        False,
        description=(
            "Repeat the benign prompts' pairs, in order, until they are as many as the other "
            "prompts' pairs, so DPO weighs 'answer this' as much as 'refuse this'."
        ),
    )
    review_every_level: bool = Field(
        True,
        description=(
            "Have every AI level of the hierarchy judge every reply, so all replies of a prompt "
            "are labelled by the same (top) level; off: each reply keeps the hierarchy's sampled "
            "decision, whose deciding level varies from reply to reply."
        ),
    )


def reply_label(
    p_violation: float | None, p_refused: float, kind: str, settings: PreferenceSettings
) -> float | None:
    """The soft label of one reply (see the module docstring); ``None`` if nobody could judge it."""
    if kind in settings.benign_kinds:
        helpful = 1.0 - p_refused
        weight = settings.benign_safety_weight
        if weight == 0.0:
            return helpful
        if p_violation is None:
            return None
        return (helpful + weight * (1.0 - p_violation)) / (1.0 + weight)
    return None if p_violation is None else 1.0 - p_violation


@dataclass(frozen=True)
class JudgedReply:
    """The scorer's view of one reply: P(violation), who decided it, and P(refused)."""

    p_violation: float | None
    decided_by: str
    p_refused: float


def judge_replies(
    scorer: Scorer, conversations: Sequence[Conversation], responses: Sequence[str]
) -> list[JudgedReply]:
    """Judge each ``(conversation, response)`` with a judge or a hierarchy, plus P(refused)."""
    if len(conversations) != len(responses):
        raise DataError(f"{len(conversations)} conversations for {len(responses)} responses")
    p_refused = RefusalJudge().p_refused(responses)
    if isinstance(scorer, OversightHierarchy):
        items = [
            OversightItem(str(i), list(c), r)
            for i, (c, r) in enumerate(zip(conversations, responses, strict=True))
        ]
        judged = []
        for decision, refused in zip(scorer.review(items), p_refused, strict=True):
            p = decision.p_violation
            if decision.human_violation is not None:
                p = float(decision.human_violation)
            judged.append(JudgedReply(p, decision.decided_by, refused))
        return judged
    verdicts = scorer.verdict_batch(
        [JudgeItem(list(c), r) for c, r in zip(conversations, responses, strict=True)]
    )
    return [
        JudgedReply(v.p_violation, v.judge, refused)
        for v, refused in zip(verdicts, p_refused, strict=True)
    ]


def review_everything(hierarchy: OversightHierarchy) -> OversightHierarchy:
    """The same levels and judges, each level above the first reviewing every decision below.

    Why: a pair compares two replies, so both must be judged by the same judge; left to its
    sampling, the hierarchy lets the cheap first level decide one reply and the stronger level above
    another, and the pair would then mostly reflect which judge spoke.
    """
    everything = SamplingPolicy(uncertainty_band=(0.0, 1.0), random_share=1.0, risk_weights={})
    levels = [
        level if index == 0 else level.model_copy(update={"sampling": everything})
        for index, level in enumerate(hierarchy.config.levels)
    ]
    config = hierarchy.config.model_copy(update={"levels": levels})
    return OversightHierarchy(config, judges=hierarchy.judges)


def label_candidates(
    records: Sequence[dict[str, Any]], scorer: Scorer, settings: PreferenceSettings
) -> list[dict[str, Any]]:
    """Add ``labels`` (one dict per reply) to sampled records ``{id, kind, prompt, responses}``."""
    if isinstance(scorer, OversightHierarchy) and settings.review_every_level:
        scorer = review_everything(scorer)
    conversations: list[Conversation] = []
    responses: list[str] = []
    for record in records:
        conversation = as_conversation(record["prompt"])
        for response in record["responses"]:
            conversations.append(conversation)
            responses.append(response)
    judged = iter(judge_replies(scorer, conversations, responses))
    labelled = []
    for record in records:
        labels = []
        for _ in record["responses"]:
            reply = next(judged)
            labels.append(
                {
                    "label": reply_label(
                        reply.p_violation, reply.p_refused, record.get("kind", "other"), settings
                    ),
                    "p_violation": reply.p_violation,
                    "p_refused": reply.p_refused,
                    "decided_by": reply.decided_by,
                }
            )
        labelled.append({**record, "labels": labels})
    return labelled


def preference_pairs(
    labelled: Sequence[dict[str, Any]], min_margin: float
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One (best, worst) pair per prompt whose labels differ by at least ``min_margin``.

    Returns:
        The pairs as TRL conversational preference rows (``prompt``, ``chosen``, ``rejected``
        message lists) with provenance (``id``, ``kind``, labels, ``margin``), and counts of the
        prompts dropped: ``dropped_low_margin`` and ``dropped_unjudged`` (fewer than two labelled
        distinct replies).
    """
    pairs: list[dict[str, Any]] = []
    counts = {"dropped_low_margin": 0, "dropped_unjudged": 0}
    for record in labelled:
        scored: dict[str, dict[str, Any]] = {}
        for response, label in zip(record["responses"], record["labels"], strict=True):
            if label["label"] is not None and response.strip() and response not in scored:
                scored[response] = label
        if len(scored) < 2:
            counts["dropped_unjudged"] += 1
            continue
        # Stable order: ties keep sampling order, so reruns build the same pairs.
        ranked = sorted(scored.items(), key=lambda kv: -kv[1]["label"])
        (chosen, best), (rejected, worst) = ranked[0], ranked[-1]
        margin = best["label"] - worst["label"]
        if margin < min_margin:
            counts["dropped_low_margin"] += 1
            continue
        pairs.append(
            {
                "id": record["id"],
                "kind": record.get("kind", "other"),
                "prompt": as_conversation(record["prompt"]),
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
                "chosen_label": best,
                "rejected_label": worst,
                "margin": margin,
            }
        )
    return pairs, counts


def refusal_negative_pairs(
    labelled: Sequence[dict[str, Any]],
    pairs: Sequence[dict[str, Any]],
    settings: PreferenceSettings,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Pairs (best reply, borrowed refusal) for the benign prompts :func:`preference_pairs` skipped.

    The refusals are the distinct replies to non-benign prompts of ``labelled`` with P(refused)
    ≥ 0.5, sorted and used in turn, so a rerun builds the same pairs. With
    ``settings.refusal_negatives_ratio``, at most that many pairs per pair of a non-benign prompt
    in ``pairs`` are added (the first unpaired benign prompts in order; the rest count as missing).
    On the benign prompt a refusal gets the label :func:`reply_label` gives it there (≈ 0, since
    it refuses); a pair is kept when the best reply's label beats it by at least
    ``settings.min_margin``.

    Returns:
        The new pairs (``rejected_from``: the id of the prompt the refusal answered) and counts:
        ``refusal_negatives`` (pairs added) and ``refusal_negatives_missing`` (benign prompts left
        without one: no refusal in the run, or no reply good enough).
    """
    paired = {pair["id"] for pair in pairs}
    cap: float = float("inf")
    if settings.refusal_negatives_ratio is not None:
        harmful_pairs = sum(pair["kind"] not in settings.benign_kinds for pair in pairs)
        cap = int(settings.refusal_negatives_ratio * harmful_pairs)
    refusals: dict[str, tuple[str, dict[str, Any]]] = {}
    for record in labelled:
        if record.get("kind", "other") in settings.benign_kinds:
            continue
        for response, label in zip(record["responses"], record["labels"], strict=True):
            if label["p_refused"] >= 0.5 and response.strip():
                refusals.setdefault(response, (record["id"], label))
    pool = sorted(refusals.items())
    added: list[dict[str, Any]] = []
    missing = 0
    for record in labelled:
        kind = record.get("kind", "other")
        if kind not in settings.benign_kinds or record["id"] in paired:
            continue
        scored = [
            (label, response)
            for response, label in zip(record["responses"], record["labels"], strict=True)
            if label["label"] is not None and response.strip()
        ]
        if not pool or not scored or len(added) >= cap:
            missing += 1
            continue
        best, chosen = max(scored, key=lambda pair: pair[0]["label"])
        rejected, (source, source_label) = pool[len(added) % len(pool)]
        worst = {
            **source_label,
            "label": reply_label(
                source_label["p_violation"], source_label["p_refused"], kind, settings
            ),
        }
        if worst["label"] is None or best["label"] - worst["label"] < settings.min_margin:
            missing += 1
            continue
        added.append(
            {
                "id": record["id"],
                "kind": kind,
                "prompt": as_conversation(record["prompt"]),
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
                "chosen_label": best,
                "rejected_label": worst,
                "margin": best["label"] - worst["label"],
                "rejected_from": source,
            }
        )
    return added, {"refusal_negatives": len(added), "refusal_negatives_missing": missing}


def balance_benign_pairs(
    pairs: Sequence[dict[str, Any]], settings: PreferenceSettings
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """``pairs`` plus repeats of the benign prompts' pairs up to the other prompts' pair count.

    The repeats cycle through the benign pairs in order (so a rerun builds the same list) and
    carry ``repeat: True``. Nothing is added when there are no benign pairs or already enough.

    Returns:
        The pairs and the count ``benign_repeats``.
    """
    benign = [pair for pair in pairs if pair["kind"] in settings.benign_kinds]
    shortfall = (len(pairs) - len(benign)) - len(benign)
    if not benign or shortfall <= 0:
        return list(pairs), {"benign_repeats": 0}
    repeats = [{**benign[i % len(benign)], "repeat": True} for i in range(shortfall)]
    return [*pairs, *repeats], {"benign_repeats": shortfall}


def _text(value: Any) -> str:
    """A completion or prompt as TRL passes it: a string or a list of messages (last one counts)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        return str(value[-1].get("content", ""))
    raise DataError(
        "a reward function input must be a string or a list of {'role', 'content'} messages, "
        f"got {type(value).__name__}"
    )


class ConstitutionReward:
    """A TRL reward function: the soft label of each completion under the constitution's judges.

    Call it as TRL's ``GRPOTrainer`` does: ``reward(prompts=..., completions=..., **columns)``; an
    optional ``kind`` column of the dataset marks benign prompts. Returns one float in [0, 1] per
    completion, ``None`` where nobody could judge it (TRL then ignores that reward).

    Args:
        scorer: A judge or an oversight hierarchy.
        settings: Which prompt kinds are benign and how helpfulness is weighed on them.
    """

    def __init__(self, scorer: Scorer, settings: PreferenceSettings | None = None) -> None:
        self.settings = settings or PreferenceSettings()
        if isinstance(scorer, OversightHierarchy) and self.settings.review_every_level:
            # A group's replies are compared with each other, so one level must judge them all,
            # as for DPO pairs (see `review_everything`).
            scorer = review_everything(scorer)
        self.scorer = scorer
        # TRL logs each reward function under its __name__.
        self.__name__ = "constitution_reward"

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        kind: Sequence[str] | None = None,
        **_: Any,
    ) -> list[float | None]:
        """One reward per completion, in order."""
        if len(prompts) != len(completions):
            raise DataError(f"{len(prompts)} prompts for {len(completions)} completions")
        kinds = list(kind) if kind is not None else ["other"] * len(prompts)
        conversations = [
            as_conversation(p if isinstance(p, str) else [m for m in p if m["role"] != "assistant"])
            for p in prompts
        ]
        judged = judge_replies(self.scorer, conversations, [_text(c) for c in completions])
        return [
            reply_label(reply.p_violation, reply.p_refused, k, self.settings)
            for reply, k in zip(judged, kinds, strict=True)
        ]


def constitution_reward(
    scorer: Scorer | str = "refusal", settings: PreferenceSettings | None = None
) -> ConstitutionReward:
    """A :class:`ConstitutionReward` over a judge, a hierarchy or a registered judge name."""
    if isinstance(scorer, str):
        from cai2.judges import build_judge

        scorer = build_judge(scorer)
    return ConstitutionReward(scorer, settings)
