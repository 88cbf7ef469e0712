"""How well does the embedded model itself tell a true fact from a false one? → truth_ceiling.json.

The `honest.accuracy` probe of `bench/embeddings.py` reads a direction from the 135M model's
residual stream that should separate a reply stating a true fact from one stating a false fact.
A linear probe can only find what the model represents. This benchmark asks the model directly:
for every prompt of that principle with both replies (one true, one false; all splits, reported
per split), is the true reply more likely under the model than the false one (sum of token
log-probabilities as the assistant's reply)? The share of such prompts is a paired comparison,
easier than the probe's unpaired AUROC, so a low share means the facts are not known to the model.

The same comparison is made for a second reading, the mean log-probability per token, which does
not favour the shorter reply.

Run: ``python bench/truth_ceiling.py`` (a few minutes; 322 s beside two other benchmarks).
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from cai2.embeddings import load_examples
from cai2.embeddings._activations import require_local_model
from cai2.models import load_model

RESULTS = Path(__file__).parent / "results" / "truth_ceiling.json"
MODEL = "hf:smollm2-135m"
PRINCIPLE = "honest.accuracy"


def main() -> int:
    started = time.perf_counter()
    model = require_local_model(load_model(MODEL))
    examples = [e for e in load_examples() if e.principle == PRINCIPLE]
    sums = model.logprobs([e.conversation for e in examples], [e.response for e in examples])
    lengths = [
        len(model.tokenizer(e.response, add_special_tokens=False)["input_ids"]) for e in examples
    ]
    by_prompt: dict[str, dict[bool, tuple[float, float, str]]] = defaultdict(dict)
    for example, total, length in zip(examples, sums, lengths, strict=True):
        by_prompt[example.prompt][example.violates] = (total, total / max(length, 1), example.split)
    per_split: dict[str, dict[str, float | int]] = {}
    for split in ("train", "val", "test", "all"):
        pairs = [
            sides
            for sides in by_prompt.values()
            if len(sides) == 2 and (split == "all" or sides[False][2] == split)
        ]
        if not pairs:
            continue
        per_split[split] = {
            "pairs": len(pairs),
            "true_more_likely_sum": round(
                sum(p[False][0] > p[True][0] for p in pairs) / len(pairs), 4
            ),
            "true_more_likely_mean": round(
                sum(p[False][1] > p[True][1] for p in pairs) / len(pairs), 4
            ),
        }
    result = {
        "benchmark": "truth_ceiling",
        "model": MODEL,
        "principle": PRINCIPLE,
        "per_split": per_split,
        "true_more_likely": per_split["all"]["true_more_likely_mean"],
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
