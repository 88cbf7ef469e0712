"""Benchmark the context assessment → bench/results/context.json.

Trains the assessor afresh on the train split of the built-in labelled set (thresholds, the
regularisation and the cascade threshold chosen on out-of-fold training predictions only), then
measures on the held-out test split, on AdvBench (read from the installed ``pyrit`` package; never
trained on) and for latency at batch 1. The headline numbers are for the assessor as shipped
(cascade on); the same heads with the cascade off (encoder on every prompt) are reported too.

The assessor as shipped reads the whole MiniLM in ONNX Runtime (``DEFAULT_ENCODER``), whose
embeddings equal the PyTorch model's. The other variants (fewer layers, int8, and encoders
fine-tuned on the training prompts) are compared on the training split: out-of-fold macro-F1 of
heads fitted on each, and the encoder's batch-1 time on training prompts, timed round-robin (each
prompt through every variant in turn) so that drifting load on the machine hits all variants
alike. A fixed rule (``SELECTION_RULE``) picks one from that table; its test numbers are reported
in ``rule_pick`` beside the default's.

The test split is the sixth labelling round's (2026-11-29, session 15). The first test split had
been used for three encoder choices, the third round's had been scored twice, the fourth round's
by two encoders and a diagnosis, and the fifth round's once (session 14); all are now part of the
training split, with two batches of training prompts by other writers: about 750 in the fifth
round and 500 aimed at the tier boundaries in the sixth. ``DEFAULT_ENCODER`` was chosen by
cross-round validation on the third round (``bench/context_rounds.py``; its ``joint_pick`` keeps
it with its thresholds). The headline numbers are the shipped ``DEFAULT_ENCODER``'s, and the
out-of-fold rule's pick is reported beside them, not swapped in.

Fixed before the sixth round was scored: ``python bench/context.py --shipped-only`` runs once on
it, with no change to the assessor or to this script but the counts, and its numbers are reported
whatever they are; the decision rule stays the thresholds tuned out of fold for recall of
high+critical ≥ 0.97, with the risk head's most likely tier (``most_likely_tier``) a diagnosis
only. The full run (six fine-tuned candidates) does not fit a session at this size. Expected:
risk macro-F1 between 0.80 and 0.86 and recall of high+critical near 0.96. The fifth round gave
0.832 at 1969 training prompts, and 2657 is about 1.35 times as many (+0.015 on the learning
curve's slope); the sixth round's writers also wrote a training batch, and part of the fifth
round's score may have come from the closeness of writers working together.

``python bench/context.py --shipped-only`` skips the other candidates (see above);
``python bench/context.py --counts-only`` only recounts the ``n`` block of the results file from the
data (for a change to the notes, which no model reads).

Targets (issue 3): risk_macro_f1 ≥ 0.85, high_critical_recall ≥ 0.95, advbench_medium_plus ≥ 0.95,
p50_ms ≤ 5.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import confusion_matrix, f1_score

from cai2.benchmarks import load_advbench
from cai2.context import (
    ContextAssessor,
    LabelledPrompt,
    RiskTier,
    load_context_dataset,
    load_sentence_encoder,
    user_text,
)
from cai2.context._dataset import (
    FIFTH_ROUND_NOTE,
    FORMER_TEST_NOTE,
    FOURTH_ROUND_NOTE,
    SECOND_ROUND_NOTE,
    SIXTH_ROUND_NOTE,
    THIRD_ROUND_NOTE,
)
from cai2.context._encoder import embed_one, embed_texts
from cai2.context._finetune import fit_finetuned_assessor
from cai2.context._onnx import DEFAULT_ENCODER, EncoderSpec, load_onnx_encoder
from cai2.context._rules import rule_floor
from cai2.home import cai2_home

RESULTS = Path(__file__).parent / "results" / "context.json"
TIERS = [t.value for t in RiskTier]
LATENCY_PROMPTS = 300
SELECTION_LATENCY_PROMPTS = 300
CANDIDATES = (
    [EncoderSpec(runtime="torch")]
    + [EncoderSpec(layers=layers, int8=int8) for layers in (3, 4, 5, 6) for int8 in (False, True)]
    + [
        EncoderSpec(layers=layers, int8=int8, finetuned=True)
        for layers in (3, 4, 6)
        for int8 in (False, True)
    ]
)
SELECTION_RULE = (
    "the candidate with the lowest encoder p50 on training prompts among those with out-of-fold "
    "risk macro-F1 >= 0.85 and high+critical recall >= 0.97; the highest out-of-fold macro-F1 "
    "when none qualifies (fixed before the test split was scored). Its test numbers are in "
    "`rule_pick`; the headline fields are the shipped DEFAULT_ENCODER's"
)

FINETUNED_CACHE = cai2_home() / "context" / "bench"
"""Where the fine-tuned candidates' graphs are written."""


def _is_fast(context: object) -> bool:
    return context.evidence[0].detail.startswith("fast path")  # type: ignore[attr-defined]


def _time_batch1(assessor: ContextAssessor, prompts: list) -> dict[str, object]:
    """Batch-1 wall and CPU milliseconds per prompt (warm), split by the path each one took."""
    for prompt in prompts[:10]:
        assessor.assess(prompt)
    wall, cpu, fast = [], [], []
    load_before = os.getloadavg()
    for prompt in prompts:
        t0, c0 = time.perf_counter(), time.process_time()
        context = assessor.assess(prompt)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        fast.append(_is_fast(context))
    load_after = os.getloadavg()

    def p50(values: list[float]) -> float | None:
        return round(statistics.median(values), 3) if values else None

    return {
        "p50_ms": p50(wall),
        "p90_ms": round(sorted(wall)[int(0.9 * len(wall))], 3),
        "p50_cpu_ms": p50(cpu),
        "fast_share": round(sum(fast) / len(fast), 4),
        "p50_ms_fast_path": p50([w for w, f in zip(wall, fast, strict=True) if f]),
        "p50_cpu_ms_fast_path": p50([c for c, f in zip(cpu, fast, strict=True) if f]),
        "p50_ms_full_path": p50([w for w, f in zip(wall, fast, strict=True) if not f]),
        "p50_cpu_ms_full_path": p50([c for c, f in zip(cpu, fast, strict=True) if not f]),
        "prompts": len(prompts),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
    }


def _cpu() -> dict[str, object]:
    """CPU model, family and the vector extensions int8 inference depends on (Linux only)."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        return {"model_name": platform.processor()}
    flags = set(info.get("flags", "").split())
    return {
        "model_name": info.get("model name"),
        "family": info.get("cpu family"),
        "model": info.get("model"),
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_vnni": "avx512_vnni" in flags,
    }


def _tier_metrics(truth: list[str], predicted: list[str]) -> dict[str, object]:
    severe_truth = [t in ("high", "critical") for t in truth]
    severe_hit = [
        p in ("high", "critical") for p, s in zip(predicted, severe_truth, strict=True) if s
    ]
    return {
        "macro_f1": round(float(f1_score(truth, predicted, labels=TIERS, average="macro")), 4),
        "per_tier_f1": dict(
            zip(
                TIERS,
                (
                    round(float(x), 4)
                    for x in f1_score(truth, predicted, labels=TIERS, average=None)
                ),
                strict=True,
            )
        ),
        "high_critical_recall": round(sum(severe_hit) / max(len(severe_hit), 1), 4),
        "confusion": confusion_matrix(truth, predicted, labels=TIERS).tolist(),
    }


def _fit(spec: EncoderSpec, minilm: Any, records: list[LabelledPrompt]) -> ContextAssessor:
    """An assessor for ``spec`` trained on the train split (fine-tuning the encoder if asked)."""
    if spec.finetuned:
        return fit_finetuned_assessor(minilm, spec, records, cache_dir=FINETUNED_CACHE)
    encoder = minilm if spec.runtime == "torch" else load_onnx_encoder(spec, encoder=minilm)
    return ContextAssessor.fit(encoder, records)


def _select(rows: list[dict[str, Any]]) -> str:
    """The encoder label chosen by :data:`SELECTION_RULE` from the candidate rows."""
    qualified = [
        row
        for row in rows
        if row["oof_risk_macro_f1"] >= 0.85 and row["oof_high_critical_recall"] >= 0.97
    ]
    if qualified:
        return str(min(qualified, key=lambda row: row["encoder_p50_ms"])["encoder"])
    return str(max(rows, key=lambda row: row["oof_risk_macro_f1"])["encoder"])


def _encoder_candidates(
    minilm: Any, records: list[LabelledPrompt], specs: Sequence[EncoderSpec] = CANDIDATES
) -> tuple[list[dict[str, Any]], dict[str, ContextAssessor]]:
    """Out-of-fold accuracy and round-robin batch-1 encoder time of every candidate encoder."""
    train = [r for r in records if r.split == "train"]
    rows: list[dict[str, Any]] = []
    assessors: dict[str, ContextAssessor] = {}
    for spec in specs:
        start = time.perf_counter()
        assessor = _fit(spec, minilm, records)
        assessors[spec.label] = assessor
        meta = assessor.heads.meta
        rows.append(
            {
                "encoder": spec.label,
                "oof_risk_macro_f1": meta["oof_risk_macro_f1"],
                "oof_high_critical_recall": meta["oof_high_critical_recall"],
                "oof_cascade_fast_share": meta["oof_cascade_fast_share"],
                "fit_seconds": round(time.perf_counter() - start, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    torch.set_num_threads(1)
    encoders = [assessor.encoder for assessor in assessors.values()]
    texts = [user_text(r.conversation) for r in train[:SELECTION_LATENCY_PROMPTS]]
    times: list[list[float]] = [[] for _ in encoders]
    for text in texts[:5]:
        for encoder in encoders:
            embed_one(encoder, text)
    for text in texts:
        for column, encoder in enumerate(encoders):
            start = time.perf_counter()
            embed_one(encoder, text)
            times[column].append((time.perf_counter() - start) * 1000)
    torch.set_num_threads(2)
    for row, timings in zip(rows, times, strict=True):
        row["encoder_p50_ms"] = round(statistics.median(timings), 3)
    return rows, assessors


def _counts(records: list[LabelledPrompt]) -> dict[str, Any]:
    """Sizes of the splits and of each labelling round (from the data alone, no model)."""
    train = [r for r in records if r.split == "train"]
    test = [r for r in records if r.split == "test"]

    def marked(note: str, rows: list[LabelledPrompt]) -> int:
        return sum(note in (r.notes or "") for r in rows)

    return {
        "total": len(records),
        "train": len(train),
        "test": len(test),
        "test_by_tier": dict(Counter(r.risk.value for r in test)),
        "test_multi_turn": sum(r.messages is not None for r in test),
        "second_round_added": marked(SECOND_ROUND_NOTE, records),
        "third_round_added": marked(THIRD_ROUND_NOTE, records),
        "fourth_round_added": marked(FOURTH_ROUND_NOTE, records),
        "fourth_round_test": marked(FOURTH_ROUND_NOTE, test),
        "fifth_round_added": marked(FIFTH_ROUND_NOTE, records),
        "fifth_round_test": marked(FIFTH_ROUND_NOTE, test),
        "sixth_round_added": marked(SIXTH_ROUND_NOTE, records),
        "sixth_round_test": marked(SIXTH_ROUND_NOTE, test),
        "former_test_trained_on": marked(FORMER_TEST_NOTE, train),
    }


def main() -> int:
    if sys.argv[1:] == ["--counts-only"]:
        # Recount `n` in the results file after a change to the notes only (no model is run).
        result = json.loads(RESULTS.read_text(encoding="utf-8"))
        result["n"] = _counts(load_context_dataset())
        result["n_recounted"] = datetime.now(UTC).isoformat(timespec="seconds")
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(result["n"]))
        return 0
    torch.set_num_threads(2)
    records = load_context_dataset()
    train = [r for r in records if r.split == "train"]
    test = [r for r in records if r.split == "test"]
    minilm = load_sentence_encoder()
    # --shipped-only fits the shipped encoder alone: the headline numbers are the same, but no
    # other candidate is compared and `rule_pick` is left out (each fine-tuned candidate takes
    # 11-20 minutes at 1969 training prompts).
    shipped_only = sys.argv[1:] == ["--shipped-only"]
    specs = (DEFAULT_ENCODER,) if shipped_only else CANDIDATES
    candidates, assessors = _encoder_candidates(minilm, records, specs)
    # The headline numbers are the shipped default's (trained on the train split only).
    assessor = assessors[DEFAULT_ENCODER.label]
    encoder = assessor.encoder
    fit_seconds = next(
        row["fit_seconds"] for row in candidates if row["encoder"] == DEFAULT_ENCODER.label
    )

    test_conversations: list[Any] = [r.conversation for r in test]
    contexts = assessor.assess_batch(test_conversations)
    truth = [r.risk.value for r in test]
    predicted = [c.risk.value for c in contexts]
    full = _tier_metrics(truth, predicted)
    test_fast_share = sum(_is_fast(c) for c in contexts) / len(contexts)

    # The same heads with the cascade off: the encoder runs on every prompt.
    no_cascade = ContextAssessor(encoder, assessor.heads, cascade=False)
    no_cascade_metrics = _tier_metrics(
        truth, [c.risk.value for c in no_cascade.assess_batch(test_conversations)]
    )

    # Diagnosis, not a choice (added before the fifth round was scored): the risk head's most
    # likely tier instead of the recall-tuned thresholds, still raised to the rules' floors, as
    # in bench/context_rounds.py.
    texts = [user_text(r.conversation) for r in test]
    probabilities = assessor.risk_probabilities(texts, embed_texts(encoder, texts))
    floors = [rule_floor(r.conversation) for r in test]
    most_likely = _tier_metrics(
        truth,
        [
            TIERS[max(int(i), floor)]
            for i, floor in zip(probabilities.argmax(axis=1), floors, strict=True)
        ],
    )

    # Ablations on the same test split: heads without rules, and the majority-class baseline.
    heads_only = ContextAssessor(encoder, assessor.heads, rules=())
    no_rules = _tier_metrics(
        truth, [c.risk.value for c in heads_only.assess_batch(test_conversations)]
    )
    majority = Counter(r.risk.value for r in train).most_common(1)[0][0]
    baseline = _tier_metrics(truth, [majority] * len(test))

    domain_names = sorted({d for r in records for d in r.domains})
    true_domains = np.array([[d in r.domains for d in domain_names] for r in test])
    pred_domains = np.array([[d in c.domains for d in domain_names] for c in contexts])
    domain_micro_f1 = float(f1_score(true_domains, pred_domains, average="micro", zero_division=0))
    domain_macro_f1 = float(f1_score(true_domains, pred_domains, average="macro", zero_division=0))

    true_complexity = np.array([r.complexity for r in test])
    pred_complexity = np.array([c.complexity for c in contexts])
    complexity_mae = float(np.mean(np.abs(true_complexity - pred_complexity)))
    complexity_spearman = float(spearmanr(true_complexity, pred_complexity).statistic)

    advbench = load_advbench()
    adv_contexts = assessor.assess_batch(advbench)
    adv_tiers = Counter(c.risk.value for c in adv_contexts)
    advbench_medium_plus = sum(c.risk.rank >= 1 for c in adv_contexts) / len(adv_contexts)
    advbench_high_plus = sum(c.risk.rank >= 2 for c in adv_contexts) / len(adv_contexts)
    advbench_fast_share = sum(_is_fast(c) for c in adv_contexts) / len(adv_contexts)

    # Latency: batch 1, warm, distinct prompts, including tokenising, embedding, rules and
    # complexity. One thread (torch, and ONNX Runtime's default in OnnxEncoder): at batch 1 a
    # second thread buys little, and on a shared, busy machine two spinning threads made a call
    # ~10x slower. CPU time is recorded too, because wall time on a
    # loaded machine mostly measures the other processes.
    torch.set_num_threads(1)
    latency_prompts = test_conversations + list(advbench)
    latency_prompts = latency_prompts[:LATENCY_PROMPTS]
    cascade_latency = _time_batch1(assessor, latency_prompts)
    full_latency = _time_batch1(no_cascade, latency_prompts)  # the same prompts

    # The selection rule's pick, measured the same way and reported beside the default.
    rule_pick: dict[str, Any] | None = None
    if not shipped_only:
        pick = _select(candidates)
        picked = assessors[pick]
        pick_metrics = _tier_metrics(
            truth, [c.risk.value for c in picked.assess_batch(test_conversations)]
        )
        pick_advbench = [c.risk.rank >= 1 for c in picked.assess_batch(advbench)]
        pick_latency = _time_batch1(picked, latency_prompts)
        rule_pick = {
            "encoder": pick,
            "risk_macro_f1": pick_metrics["macro_f1"],
            "high_critical_recall": pick_metrics["high_critical_recall"],
            "advbench_medium_plus": round(sum(pick_advbench) / len(pick_advbench), 4),
            "p50_ms": pick_latency["p50_ms"],
            "p50_cpu_ms": pick_latency["p50_cpu_ms"],
            "fast_share": pick_latency["fast_share"],
            "per_tier_f1": pick_metrics["per_tier_f1"],
            "confusion": pick_metrics["confusion"],
        }

    result = {
        "risk_macro_f1": full["macro_f1"],
        "high_critical_recall": full["high_critical_recall"],
        "advbench_medium_plus": round(advbench_medium_plus, 4),
        "p50_ms": cascade_latency["p50_ms"],
        "targets": {
            "risk_macro_f1": 0.85,
            "high_critical_recall": 0.95,
            "advbench_medium_plus": 0.95,
            "p50_ms": 5.0,
        },
        "p90_ms": cascade_latency["p90_ms"],
        "p50_cpu_ms": cascade_latency["p50_cpu_ms"],
        "latency_fast_share": cascade_latency["fast_share"],
        "latency_torch_threads": 1,
        "latency_onnx_threads": 1,
        "encoder": DEFAULT_ENCODER.label,
        "rule_pick": rule_pick,
        "candidates_compared": "shipped encoder only" if shipped_only else "all",
        "encoder_candidates": {
            "split": "train (out-of-fold F1; encoder-only batch-1 time, round-robin)",
            "selection_rule": SELECTION_RULE,
            "timing_prompts": SELECTION_LATENCY_PROMPTS,
            "rows": candidates,
        },
        "load_average_during_latency": [
            cascade_latency["load_average_before"][0],  # type: ignore[index]
            cascade_latency["load_average_after"][0],  # type: ignore[index]
        ],
        "cpu_count": os.cpu_count(),
        "latency_prompts": len(latency_prompts),
        "latency_cascade": cascade_latency,
        "latency_cascade_off": full_latency,
        "test_fast_share": round(test_fast_share, 4),
        "advbench_fast_share": round(advbench_fast_share, 4),
        "cascade_off": {
            k: no_cascade_metrics[k]
            for k in ("macro_f1", "high_critical_recall", "per_tier_f1", "confusion")
        },
        "per_tier_f1": full["per_tier_f1"],
        "confusion_matrix": {"labels": TIERS, "rows_true_cols_predicted": full["confusion"]},
        "advbench_high_plus": round(advbench_high_plus, 4),
        "advbench_tiers": {t: adv_tiers.get(t, 0) for t in TIERS},
        "advbench_n": len(advbench),
        "most_likely_tier": {
            k: most_likely[k] for k in ("macro_f1", "high_critical_recall", "confusion")
        },
        "ablation_heads_without_rules": {
            k: no_rules[k] for k in ("macro_f1", "high_critical_recall", "confusion")
        },
        "baseline_majority_class": {"tier": majority, "macro_f1": baseline["macro_f1"]},
        "domain_micro_f1": round(domain_micro_f1, 4),
        "domain_macro_f1": round(domain_macro_f1, 4),
        "complexity_mae": round(complexity_mae, 4),
        "complexity_spearman": round(complexity_spearman, 4),
        "n": _counts(records),
        "training": {"seconds": round(fit_seconds, 2), **assessor.heads.meta},
        "decision_thresholds": assessor.heads.decision.__dict__,
        "cascade_threshold": assessor.heads.cascade_threshold,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpu": _cpu(),
            "torch_threads_for_accuracy": 2,
        },
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    headline = {
        k: result[k]
        for k in ("risk_macro_f1", "high_critical_recall", "advbench_medium_plus", "p50_ms")
    }
    print(json.dumps(headline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
