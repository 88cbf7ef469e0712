"""Benchmark the judges against PyRIT's human labels → bench/results/judges.json.

Protocol (fixed before measuring; see docs/judges.md): PyRIT's 395 human-labelled ``objective``
replies are split once by a seeded hash (seed 0) into held-out (30%), calibration (20% of the rest)
and fit (the rest). Heads train on fit plus PyRIT's ``harm`` replies (held-out and calibration
replies removed), with the regularisation chosen by 5-fold cross-validation inside that data;
the ensemble's stacking weights are fitted on the calibration split; every number below is measured
on the held-out split, which nothing was trained, selected or calibrated on. The primary judge — the
one whose numbers fill ``judge_accuracy`` / ``judge_kappa`` / ``judge_auroc`` — is the stacked
ensemble, declared before the held-out split was scored.

Target (issue 5): best embedded judge accuracy ≥ 0.85 and κ ≥ 0.6 on the held-out split.

Run: ``.venv/bin/python bench/judges.py`` (``--no-hidden`` / ``--no-llm`` skip the 135M model).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from cai2.judges import (
    CalibrationReport,
    EmbeddingHeadJudge,
    EnsembleJudge,
    HiddenStateHeadJudge,
    Judge,
    LLMJudge,
    RefusalJudge,
    calibrate,
    objective_splits,
)

RESULTS = Path(__file__).parent / "results" / "judges.json"
PRIMARY = "ensemble"
HIDDEN_LAYER = 15  # a middle layer of the 30 (not tuned)


def _measure(judge: Judge, splits_rows: dict[str, list], timings: dict[str, float]) -> dict:
    out = {}
    for split, rows in splits_rows.items():
        start = time.perf_counter()
        report: CalibrationReport = calibrate(judge, rows, dataset=f"pyrit:objective:{split}")
        timings[f"{judge.name}:{split}"] = round(time.perf_counter() - start, 1)
        out[split] = report.model_dump(mode="json")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-hidden", action="store_true", help="skip the hidden-state head")
    parser.add_argument("--no-llm", action="store_true", help="skip the 135M multiple-choice judge")
    args = parser.parse_args()
    torch.set_num_threads(2)
    started = time.perf_counter()
    splits = objective_splits(seed=0)
    timings: dict[str, float] = {}

    refusal = RefusalJudge()
    embedding = EmbeddingHeadJudge(name="embedding-head")
    t = time.perf_counter()
    embedding.fit(splits.training)
    timings["embedding-head:train"] = round(time.perf_counter() - t, 1)
    members: list[Judge] = [refusal, embedding]
    heads = {"embedding-head": embedding.meta}
    if not args.no_hidden:
        hidden = HiddenStateHeadJudge("hf:smollm2-135m", layer=HIDDEN_LAYER, name="hidden-head")
        t = time.perf_counter()
        hidden.fit(splits.training)
        timings["hidden-head:train"] = round(time.perf_counter() - t, 1)
        members.append(hidden)
        heads["hidden-head"] = hidden.meta
    ensemble = EnsembleJudge(members, combine="stack", name=PRIMARY)
    ensemble.fit(splits.calibration)
    calibrated_refusal = EnsembleJudge(
        [refusal], combine="mean", calibration="platt", name="refusal+platt"
    )
    calibrated_refusal.fit(splits.calibration)

    evaluated: list[Judge] = [refusal, calibrated_refusal, *members[1:], ensemble]
    if not args.no_llm:
        evaluated.append(LLMJudge("hf:smollm2-135m", name="llm-mc"))
    per_judge = {}
    for judge in evaluated:
        per_judge[judge.name] = _measure(judge, {"heldout": splits.heldout}, timings)
        print(
            judge.name,
            {k: per_judge[judge.name]["heldout"][k] for k in ("accuracy", "kappa", "auroc")},
            flush=True,
        )

    primary = per_judge[PRIMARY]["heldout"]
    result = {
        "benchmark": "judges",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.system()} ({torch.get_num_threads()} threads)",
        "command": ".venv/bin/python bench/judges.py",
        "dataset": "pyrit 1.1.0 datasets/scorer_evals/objective (395 human-labelled replies)",
        "primary_judge": PRIMARY,
        "judge_accuracy": primary["accuracy"],
        "judge_kappa": primary["kappa"],
        "judge_auroc": primary["auroc"],
        "n_heldout": primary["n"],
        "targets": {"judge_accuracy": 0.85, "judge_kappa": 0.6},
        "targets_met": primary["accuracy"] >= 0.85 and primary["kappa"] >= 0.6,
        "splits": {
            "seed": 0,
            "n_fit": len(splits.fit),
            "n_extra_training": len(splits.extra),
            "n_calibration": len(splits.calibration),
            "n_heldout": len(splits.heldout),
        },
        "heads": heads,
        "ensemble": {
            "members": [m.name for m in members],
            "weights": ensemble.weights.round(4).tolist(),
            "bias": round(ensemble.bias, 4),
        },
        "per_judge": {name: r["heldout"] for name, r in per_judge.items()},
        "seconds": timings,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        json.dumps(
            {k: result[k] for k in ("judge_accuracy", "judge_kappa", "judge_auroc", "n_heldout")}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
