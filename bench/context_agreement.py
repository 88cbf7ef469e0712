"""How far the context labels can be learnt → bench/results/context_agreement.json.

Two questions behind the missed macro-F1 target of ``bench/context.py`` (issue 3):

1. **Are the test labels themselves uncertain?** Two labellers who never saw the labels, nor each
   other's work, gave every prompt of the test split (the fourth labelling round) a tier, working
   from the tier guide of the labelling brief and 60 labelled training prompts. Their labels are
   ``bench/data/context_second_labels.jsonl`` (``labeller`` ``a`` and ``b``; both were AI helpers
   of the project, 2026-11-29, told to read every request and decide by judgement, with no script).
   If they agree with the labels no better than the assessor does, the target asks for more than
   the labels hold.
2. **Would more prompts of the same kind close the gap?** A learning curve: the assessor is
   trained on nested, group-aware samples of the train split (⅛ to all of it) and scored on the
   test split. The frozen encoder (``FROZEN_ENCODER``) is trained on three samples per fraction;
   the shipped fine-tuned encoder (``DEFAULT_ENCODER``) on one sample at ¼ and ½, and its full-data
   point is the shipped assessor itself. Each point is scored twice: as shipped (recall-tuned
   thresholds and rules) and by the risk head's most likely tier alone (``argmax_*``), because
   the thresholds trade macro-F1 for recall.

This is a diagnosis, not a selection: no setting of the assessor is chosen from it. The test split
has been scored before (``bench/context.py``); nothing here changes what the assessor ships with.
The script also draws ``docs/img/context-learning-curve.png``; ``--plot-only`` redraws it and
``--labels-only`` computes the agreement part alone (seconds), keeping the last full run's curve
and figure (``curve_test_split`` says which split that curve was scored on).

Run: ``python bench/context_agreement.py [--labels-only | --plot-only]`` (about 15 minutes on 2
cores, most of it the two fine-tuned points).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sklearn.metrics import cohen_kappa_score

from _figures import save_figure
from cai2.context import (
    DEFAULT_ENCODER,
    FROZEN_ENCODER,
    ContextAssessor,
    LabelledPrompt,
    fit_finetuned_assessor,
    load_context_dataset,
    load_context_encoder,
    load_default_assessor,
    load_sentence_encoder,
    user_text,
)
from cai2.context._encoder import embed_texts
from context import TIERS, _tier_metrics  # bench/ is on sys.path as a script

HERE = Path(__file__).parent
LABELS = HERE / "data" / "context_second_labels.jsonl"
RESULTS = HERE / "results" / "context_agreement.json"
FIGURE = HERE.parent / "docs" / "img" / "context-learning-curve.png"
FRACTIONS = (0.125, 0.25, 0.5, 0.75, 1.0)
FROZEN_SEEDS = (0, 1, 2)
FINETUNED_FRACTIONS = (0.25, 0.5)


def second_labels(path: Path, test_ids: set[str]) -> dict[str, dict[str, str]]:
    """``{labeller: {prompt id: tier}}`` from ``path``, checked against the test split."""
    by_labeller: dict[str, dict[str, str]] = {}
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        row = json.loads(line)
        where = f"{path}:{line_number}"
        if row["id"] not in test_ids:
            raise SystemExit(f"{where}: `{row['id']}` is not a test-split prompt")
        if row["risk"] not in TIERS:
            raise SystemExit(f"{where}: unknown tier {row['risk']!r}")
        labels = by_labeller.setdefault(row["labeller"], {})
        if row["id"] in labels:
            raise SystemExit(f"{where}: labeller {row['labeller']} labels `{row['id']}` twice")
        labels[row["id"]] = row["risk"]
    for labeller, labels in by_labeller.items():
        if missing := sorted(test_ids - labels.keys()):
            raise SystemExit(f"{path}: labeller {labeller} has no label for {missing[:5]} …")
    return by_labeller


def agreement(reference: Sequence[str], other: Sequence[str]) -> dict[str, Any]:
    """Tier metrics of ``other`` against ``reference``, with Cohen's κ (plain and quadratic)."""
    return {
        **_tier_metrics(list(reference), list(other)),
        "accuracy": round(
            sum(a == b for a, b in zip(reference, other, strict=True)) / len(other), 4
        ),
        "kappa": round(float(cohen_kappa_score(reference, other, labels=TIERS)), 4),
        "kappa_quadratic": round(
            float(cohen_kappa_score(reference, other, labels=TIERS, weights="quadratic")), 4
        ),
    }


def nested_sample(train: list[LabelledPrompt], fraction: float, seed: int) -> list[LabelledPrompt]:
    """About ``fraction`` of ``train``, whole near-duplicate groups at a time, in a seeded order."""
    groups: dict[str, list[LabelledPrompt]] = {}
    for record in train:
        groups.setdefault(record.group or record.id, []).append(record)
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    chosen: list[LabelledPrompt] = []
    for key in order:
        if len(chosen) >= fraction * len(train):
            break
        chosen += groups[key]
    return chosen


def learning_curve(
    records: list[LabelledPrompt], test: list[LabelledPrompt]
) -> list[dict[str, Any]]:
    """Test-split tier metrics of assessors trained on growing samples of the train split."""
    train = [r for r in records if r.split == "train"]
    truth = [r.risk.value for r in test]
    conversations: list[Any] = [r.conversation for r in test]
    texts = [user_text(r.conversation) for r in test]
    rows: list[dict[str, Any]] = []

    def score(
        encoder: str,
        fraction: float,
        seed: int,
        n_train: int,
        assessor: ContextAssessor,
        began: float,
    ) -> None:
        predicted = [c.risk.value for c in assessor.assess_batch(conversations)]
        metrics = _tier_metrics(truth, predicted)
        # The heads' most likely tier, without the recall-tuned thresholds and the rules.
        probabilities = assessor.risk_probabilities(texts, embed_texts(assessor.encoder, texts))
        argmax = _tier_metrics(truth, [TIERS[int(i)] for i in probabilities.argmax(axis=1)])
        rows.append(
            {
                "encoder": encoder,
                "fraction": fraction,
                "seed": seed,
                "n_train": n_train,
                "macro_f1": metrics["macro_f1"],
                "high_critical_recall": metrics["high_critical_recall"],
                "argmax_macro_f1": argmax["macro_f1"],
                "argmax_high_critical_recall": argmax["high_critical_recall"],
                "oof_macro_f1": assessor.heads.meta.get("oof_risk_macro_f1"),
                "seconds": round(time.perf_counter() - began, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)

    frozen = load_context_encoder(FROZEN_ENCODER)
    for fraction in FRACTIONS:
        for seed in FROZEN_SEEDS if fraction < 1.0 else (0,):
            began = time.perf_counter()
            sample = nested_sample(train, fraction, seed)
            assessor = ContextAssessor.fit(frozen, sample)
            score(FROZEN_ENCODER.label, fraction, seed, len(sample), assessor, began)
    minilm = load_sentence_encoder()
    for fraction in FINETUNED_FRACTIONS:
        began = time.perf_counter()
        sample = nested_sample(train, fraction, 0)
        with tempfile.TemporaryDirectory(prefix="cai2-curve-") as cache:
            assessor = fit_finetuned_assessor(
                minilm, DEFAULT_ENCODER, sample, cache_dir=Path(cache)
            )
            score(DEFAULT_ENCODER.label, fraction, 0, len(sample), assessor, began)
    began = time.perf_counter()  # the shipped assessor: cached, or trained here on first use
    shipped = load_default_assessor(spec=DEFAULT_ENCODER)
    score(DEFAULT_ENCODER.label, 1.0, 0, len(train), shipped, began)
    return rows


def plot(result: dict[str, Any], path: Path) -> None:
    """Test macro-F1 against training prompts, per encoder, with the labellers' agreement."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.8, 4.6))
    encoders = ((FROZEN_ENCODER.label, "tab:gray"), (DEFAULT_ENCODER.label, "tab:blue"))
    for encoder, colour in encoders:
        rows = [r for r in result["curve"] if r["encoder"] == encoder]
        for key, style, label in (
            ("macro_f1", "-", "as shipped (recall-tuned thresholds, rules)"),
            ("argmax_macro_f1", "--", "most likely tier"),
        ):
            xs, ys = [], []
            for fraction in sorted({r["fraction"] for r in rows}):
                points = [r for r in rows if r["fraction"] == fraction]
                xs.append(sum(r["n_train"] for r in points) / len(points))
                ys.append(sum(r[key] for r in points) / len(points))
                axes.scatter(
                    [r["n_train"] for r in points],
                    [r[key] for r in points],
                    s=10,
                    color=colour,
                    alpha=0.4,
                )
            axes.plot(
                xs, ys, marker="o", linestyle=style, color=colour, label=f"{encoder}, {label}"
            )
    agreement = ", ".join(
        f"{row['macro_f1']:.3f}" for row in result["labellers_vs_labels"].values()
    )
    for row in result["labellers_vs_labels"].values():
        axes.axhline(row["macro_f1"], color="tab:orange", linewidth=0.8, linestyle="-.")
    axes.text(130, 0.96, f"two blind second labellers: {agreement}", fontsize=8, color="tab:orange")
    axes.axhline(0.85, color="tab:green", linewidth=0.8, linestyle="--")
    axes.text(130, 0.856, "target 0.85", fontsize=8, color="tab:green")
    axes.set_xscale("log")
    axes.set_xticks([125, 250, 500, 1000], labels=["125", "250", "500", "1000"])
    axes.set_xticks([], minor=True)
    axes.set_ylim(0.4, 1.02)
    axes.set_xlabel("training prompts (log scale)")
    axes.set_ylabel("macro-F1 on the test split (fourth round)")
    axes.legend(loc="lower right", fontsize=7, handlelength=4)
    save_figure(figure, axes, "Context assessor: learning curve and labeller agreement", path)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--labels-only", action="store_true", help="Skip the learning curve.")
    mode.add_argument("--plot-only", action="store_true", help=f"Redraw {FIGURE.name}.")
    args = parser.parse_args()
    if args.plot_only:
        plot(json.loads(RESULTS.read_text(encoding="utf-8")), FIGURE)
        return 0
    records = load_context_dataset()
    test = [r for r in records if r.split == "test"]
    truth = {r.id: r.risk.value for r in test}
    ids = sorted(truth)
    labels = second_labels(LABELS, set(ids))
    names = sorted(labels)
    result: dict[str, Any] = {
        "n_test": len(test),
        "labels_file": str(LABELS.relative_to(HERE.parent)),
        "labellers_vs_labels": {
            name: agreement([truth[i] for i in ids], [labels[name][i] for i in ids])
            for name in names
        },
        "labellers_vs_each_other": {
            f"{a}-{b}": agreement([labels[a][i] for i in ids], [labels[b][i] for i in ids])
            for index, a in enumerate(names)
            for b in names[index + 1 :]
        },
    }
    for name, row in result["labellers_vs_labels"].items():
        print(f"labeller {name}: macro-F1 {row['macro_f1']}, kappa {row['kappa']}", flush=True)
    if not args.labels_only:
        result["curve"] = learning_curve(records, test)
        result["curve_test_split"] = f"{len(test)} prompts, {test[0].notes}"
    result["timestamp"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["command"] = "python bench/context_agreement.py " + " ".join(sys.argv[1:])
    if args.labels_only and RESULTS.is_file():
        # Keep the learning curve of the last full run, and its figure: the curve was scored on
        # the test split of that run, which may be an earlier round than these labels'.
        last = json.loads(RESULTS.read_text(encoding="utf-8"))
        result["curve"] = last.get("curve", [])
        result["curve_test_split"] = last.get("curve_test_split")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if result.get("curve") and not args.labels_only:
        plot(result, FIGURE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
