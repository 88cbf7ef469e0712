"""How often the explicit context rules fire, per labelling round and tier → context_rules.json.

The rules in ``cai2.context._rules`` match phrasings ("how do I make sarin"). They were written
together with the first labelling round; the second round (2026-11-28), the third, the fourth and
the fifth (2026-11-29; the fifth's held-out prompts are the test split) were written afterwards.
How often they fire on each part of the set shows whether they generalise to prompts written
without them in view. No model is involved; the numbers are exact.

Run: ``python bench/context_rules.py`` (seconds).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from cai2.context import LabelledPrompt, RiskTier, load_context_dataset
from cai2.context._dataset import (
    FIFTH_ROUND_NOTE,
    FORMER_TEST_NOTE,
    FOURTH_ROUND_NOTE,
    SECOND_ROUND_NOTE,
    SIXTH_ROUND_NOTE,
    THIRD_ROUND_NOTE,
)
from cai2.context._rules import apply_rules

RESULTS = Path(__file__).parent / "results" / "context_rules.json"


def _part(record: LabelledPrompt) -> str:
    """The part of the set a prompt is in: its labelling round, and for round 1 its old split."""
    notes = record.notes or ""
    if SIXTH_ROUND_NOTE in notes:
        if record.split == "test":
            return "round_6_test"
        return "round_6_near_duplicates" if "near-duplicate" in notes else "round_6_training_batch"
    if FIFTH_ROUND_NOTE in notes:
        if FORMER_TEST_NOTE in notes:
            return "round_5_former_test"
        return "round_5_near_duplicates" if "near-duplicate" in notes else "round_5_training_batch"
    if FOURTH_ROUND_NOTE in notes:
        if FORMER_TEST_NOTE in notes:
            return "round_4_former_test"
        return "round_4_test" if record.split == "test" else "round_4_near_duplicates"
    if THIRD_ROUND_NOTE in notes:
        return "round_3_former_test" if FORMER_TEST_NOTE in notes else "round_3_near_duplicates"
    if SECOND_ROUND_NOTE in notes:
        return "round_2"
    return "round_1_former_test" if FORMER_TEST_NOTE in notes else "round_1_train"


def main() -> int:
    parts: dict[str, dict[str, dict[str, int]]] = {}
    for record in load_context_dataset():
        tiers = parts.setdefault(_part(record), {})
        counts = tiers.setdefault(record.risk.value, {"prompts": 0, "rule_fired": 0})
        counts["prompts"] += 1
        counts["rule_fired"] += bool(apply_rules(record.conversation))
    order = [tier.value for tier in RiskTier]
    result = {
        "benchmark": "context_rules",
        "parts": {
            part: {tier: tiers[tier] for tier in order if tier in tiers}
            for part, tiers in sorted(parts.items())
        },
        "critical_fired_share": {
            part: round(tiers["critical"]["rule_fired"] / tiers["critical"]["prompts"], 4)
            for part, tiers in sorted(parts.items())
            if "critical" in tiers
        },
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["critical_fired_share"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
