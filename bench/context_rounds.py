"""Cross-round validation of the context encoders → bench/results/context_rounds.json.

Out-of-fold scores on the training split overstate how the assessor does on prompts written later
by other hands: folds mix prompts written side by side, in one voice. On the third labelling
round the shipped assessor scored macro-F1 0.71 while its out-of-fold estimate was 0.82. This
script therefore validates each candidate encoder of ``bench/context.py`` across rounds: heads (and
fine-tuned encoders) are trained on the prompts written before the third round and scored on the
third round's 212 prompts, which were the test split until the fourth round was written. The
fourth round (the current test split) is not read at all.

``CROSS_ROUND_RULE`` picks the encoder the assessor ships with (``DEFAULT_ENCODER``); it was fixed
before this script first ran. The script also draws ``docs/img/context-rounds.png`` (out-of-fold
against cross-round macro-F1 per encoder); ``--plot-only`` redraws it from the results file.
Each candidate is also scored by its risk head's most likely tier (``round3_argmax_*``) instead
of the thresholds tuned for 0.97 out-of-fold recall (both raised to the rules' floors).
``JOINT_RULE`` then picks an (encoder, decision) pair; it was added on 2026-11-29 before those
columns were first computed, and what it picks ships only after a fifth round tests it.

Run: ``python bench/context_rounds.py [--plot-only]`` (about 30 minutes on 2 cores, most of it the
six fine-tuned candidates).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from _figures import save_figure
from cai2.context import load_context_dataset, load_sentence_encoder, user_text
from cai2.context._dataset import FORMER_TEST_NOTE, THIRD_ROUND_NOTE
from cai2.context._encoder import embed_texts
from cai2.context._rules import rule_floor
from context import TIERS, _encoder_candidates, _tier_metrics  # bench/ is on sys.path as a script

RESULTS = Path(__file__).parent / "results" / "context_rounds.json"
FIGURE = Path(__file__).parent.parent / "docs" / "img" / "context-rounds.png"
MIN_RECALL = 0.95
MAX_ENCODER_P50_MS = 3.5
CROSS_ROUND_RULE = (
    f"the candidate with the highest cross-round macro-F1 among those with cross-round "
    f"high+critical recall >= {MIN_RECALL} and encoder p50 <= {MAX_ENCODER_P50_MS} ms on training "
    f"prompts; when none reaches the recall, the fastest-qualifying candidate with the highest "
    f"recall (ties: higher macro-F1). Fixed before the script first ran"
)


JOINT_RULE = (
    "each candidate encoder enters twice, with the recall-tuned thresholds and with its risk "
    "head's most likely tier (both raised to the rules' floors); among the pairs with cross-round "
    f"high+critical recall >= {MIN_RECALL} and encoder p50 <= {MAX_ENCODER_P50_MS} ms, the one "
    "with the highest cross-round macro-F1. Fixed on 2026-11-29 before the most-likely-tier "
    "columns were first computed on the third round, but after a diagnosis on the fourth round "
    "(bench/context_agreement.py) suggested it, so a fifth round must test it before it ships"
)


def _joint_pick(rows: list[dict[str, Any]]) -> dict[str, str]:
    pairs = [
        (row["encoder"], decision, row[f"round3_{prefix}macro_f1"])
        for row in rows
        if row["encoder_p50_ms"] <= MAX_ENCODER_P50_MS
        for decision, prefix in (("thresholds", ""), ("most likely tier", "argmax_"))
        if row[f"round3_{prefix}high_critical_recall"] >= MIN_RECALL
    ]
    if not pairs:
        return {"encoder": "none", "decision": "none: no pair reaches the recall"}
    encoder, decision, _ = max(pairs, key=lambda pair: pair[2])
    return {"encoder": encoder, "decision": decision}


def _pick(rows: list[dict[str, Any]]) -> str:
    fast = [row for row in rows if row["encoder_p50_ms"] <= MAX_ENCODER_P50_MS]
    qualified = [row for row in fast if row["round3_high_critical_recall"] >= MIN_RECALL]
    if qualified:
        return str(max(qualified, key=lambda row: row["round3_macro_f1"])["encoder"])
    best = max(fast, key=lambda row: (row["round3_high_critical_recall"], row["round3_macro_f1"]))
    return str(best["encoder"])


def plot(result: dict[str, Any], path: Path) -> None:
    """Out-of-fold against cross-round macro-F1, one point per encoder, the pick marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.8))
    for row in result["rows"]:
        if row["encoder"].startswith("torch"):
            continue  # the same embeddings as onnx-l6-fp32, so the same point
        finetuned = row["encoder"].endswith("-ft")
        picked = row["encoder"] == result["pick"]
        axes.scatter(
            row["oof_risk_macro_f1"],
            row["round3_macro_f1"],
            marker="*" if picked else ("o" if finetuned else "s"),
            s=180 if picked else 40,
            color="tab:red" if picked else ("tab:blue" if finetuned else "tab:gray"),
            zorder=3,
        )
        axes.annotate(
            row["encoder"].removeprefix("onnx-"),
            (row["oof_risk_macro_f1"], row["round3_macro_f1"]),
            fontsize=7,
            xytext=(4, -3),
            textcoords="offset points",
        )
    low, high = 0.6, 0.9
    axes.plot([low, high], [low, high], color="black", linewidth=0.8, linestyle=":")
    axes.axhline(0.85, color="tab:green", linewidth=0.8, linestyle="--")
    axes.text(0.755, 0.853, "target 0.85", fontsize=8, color="tab:green")
    axes.set_xlim(0.75, high)
    axes.set_ylim(low, high)
    axes.set_xlabel("out-of-fold macro-F1 (folds within the first two rounds)")
    axes.set_ylabel("macro-F1 on the third round (trained on rounds 1-2)")
    save_figure(
        figure,
        axes,
        "Context encoders: out-of-fold overstates a new round\n"
        "(squares frozen, circles fine-tuned, star the pick; dotted line y = x)",
        path,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--plot-only", action="store_true", help=f"Redraw {FIGURE.name} from {RESULTS.name}."
    )
    if parser.parse_args().plot_only:
        plot(json.loads(RESULTS.read_text(encoding="utf-8")), FIGURE)
        return 0
    torch.set_num_threads(2)
    records = load_context_dataset()

    def is_third_round_test(notes: str | None) -> bool:
        return THIRD_ROUND_NOTE in (notes or "") and FORMER_TEST_NOTE in (notes or "")

    validation = [r for r in records if r.split == "train" and is_third_round_test(r.notes)]
    # Earlier rounds only; the current test split is dropped, not relabelled.
    earlier = [r for r in records if r.split == "train" and not is_third_round_test(r.notes)]
    if not validation:
        raise SystemExit("no third-round prompts in the training split: nothing to validate on")
    rows, assessors = _encoder_candidates(load_sentence_encoder(), earlier)
    truth = [r.risk.value for r in validation]
    conversations: list[Any] = [r.conversation for r in validation]
    texts = [user_text(r.conversation) for r in validation]
    floors = [rule_floor(r.conversation) for r in validation]
    for row in rows:
        assessor = assessors[row["encoder"]]
        metrics = _tier_metrics(truth, [c.risk.value for c in assessor.assess_batch(conversations)])
        row["round3_macro_f1"] = metrics["macro_f1"]
        row["round3_high_critical_recall"] = metrics["high_critical_recall"]
        row["round3_per_tier_f1"] = metrics["per_tier_f1"]
        row["round3_confusion"] = metrics["confusion"]
        # The risk head's most likely tier instead of the recall-tuned thresholds, still raised to
        # the rules' floors (added 2026-11-29, session 13; see JOINT_RULE).
        probabilities = assessor.risk_probabilities(texts, embed_texts(assessor.encoder, texts))
        ranks = [
            max(int(i), floor)
            for i, floor in zip(probabilities.argmax(axis=1), floors, strict=True)
        ]
        argmax = _tier_metrics(truth, [TIERS[rank] for rank in ranks])
        row["round3_argmax_macro_f1"] = argmax["macro_f1"]
        row["round3_argmax_high_critical_recall"] = argmax["high_critical_recall"]
        row["round3_argmax_confusion"] = argmax["confusion"]
        print(json.dumps({k: row[k] for k in ("encoder", "round3_macro_f1")}), flush=True)
    result = {
        "pick": _pick(rows),
        "rule": CROSS_ROUND_RULE,
        "joint_pick": _joint_pick(rows),
        "joint_rule": JOINT_RULE,
        "n_train": len(earlier),
        "n_validation": len(validation),
        "validation_by_tier": {t: truth.count(t) for t in dict.fromkeys(truth)},
        "rows": rows,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot(result, FIGURE)
    print(json.dumps({k: result[k] for k in ("pick", "joint_pick", "n_train", "n_validation")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
