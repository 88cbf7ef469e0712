"""Benchmark the context assessment → bench/results/context.json.

Trains the assessor afresh on the train split of the built-in labelled set (thresholds chosen on
out-of-fold training predictions only), then measures on the held-out test split, on AdvBench
(read from the installed ``pyrit`` package; never trained on) and for latency at batch 1.

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
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import confusion_matrix, f1_score

from cai2.benchmarks import load_advbench
from cai2.context import (
    ContextAssessor,
    RiskTier,
    load_context_dataset,
    load_sentence_encoder,
)

RESULTS = Path(__file__).parent / "results" / "context.json"
TIERS = [t.value for t in RiskTier]
LATENCY_PROMPTS = 300


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


def main() -> int:
    torch.set_num_threads(2)
    records = load_context_dataset()
    train = [r for r in records if r.split == "train"]
    test = [r for r in records if r.split == "test"]
    encoder = load_sentence_encoder()

    start = time.perf_counter()
    assessor = ContextAssessor.fit(encoder, records)  # uses the train split only
    fit_seconds = time.perf_counter() - start

    contexts = assessor.assess_batch([r.conversation for r in test])
    truth = [r.risk.value for r in test]
    predicted = [c.risk.value for c in contexts]
    full = _tier_metrics(truth, predicted)

    # Ablations on the same test split: heads without rules, and the majority-class baseline.
    heads_only = ContextAssessor(encoder, assessor.heads, rules=())
    no_rules = _tier_metrics(
        truth, [c.risk.value for c in heads_only.assess_batch([r.conversation for r in test])]
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

    # Latency: batch 1, warm, distinct prompts, including embedding, rules and complexity. One
    # torch thread: at batch 1 a second thread buys little, and on a shared, busy machine two
    # spinning threads made a call ~10x slower. CPU time is recorded too, because wall time on a
    # loaded machine mostly measures the other processes.
    torch.set_num_threads(1)
    latency_prompts = [r.conversation for r in test] + advbench
    latency_prompts = latency_prompts[:LATENCY_PROMPTS]
    for prompt in latency_prompts[:10]:
        assessor.assess(prompt)
    timings, cpu_timings = [], []
    load_before = os.getloadavg()[0]
    for prompt in latency_prompts:
        t0, c0 = time.perf_counter(), time.process_time()
        assessor.assess(prompt)
        timings.append((time.perf_counter() - t0) * 1000)
        cpu_timings.append((time.process_time() - c0) * 1000)
    load_after = os.getloadavg()[0]
    timings.sort()

    result = {
        "risk_macro_f1": full["macro_f1"],
        "high_critical_recall": full["high_critical_recall"],
        "advbench_medium_plus": round(advbench_medium_plus, 4),
        "p50_ms": round(statistics.median(timings), 3),
        "targets": {
            "risk_macro_f1": 0.85,
            "high_critical_recall": 0.95,
            "advbench_medium_plus": 0.95,
            "p50_ms": 5.0,
        },
        "p90_ms": round(timings[int(0.9 * len(timings))], 3),
        "p50_cpu_ms": round(statistics.median(cpu_timings), 3),
        "latency_torch_threads": 1,
        "load_average_during_latency": [round(load_before, 2), round(load_after, 2)],
        "cpu_count": os.cpu_count(),
        "latency_prompts": len(timings),
        "per_tier_f1": full["per_tier_f1"],
        "confusion_matrix": {"labels": TIERS, "rows_true_cols_predicted": full["confusion"]},
        "advbench_high_plus": round(advbench_high_plus, 4),
        "advbench_tiers": {t: adv_tiers.get(t, 0) for t in TIERS},
        "advbench_n": len(advbench),
        "ablation_heads_without_rules": {
            k: no_rules[k] for k in ("macro_f1", "high_critical_recall", "confusion")
        },
        "baseline_majority_class": {"tier": majority, "macro_f1": baseline["macro_f1"]},
        "domain_micro_f1": round(domain_micro_f1, 4),
        "domain_macro_f1": round(domain_macro_f1, 4),
        "complexity_mae": round(complexity_mae, 4),
        "complexity_spearman": round(complexity_spearman, 4),
        "n": {
            "total": len(records),
            "train": len(train),
            "test": len(test),
            "test_by_tier": dict(Counter(truth)),
            "test_multi_turn": sum(r.messages is not None for r in test),
        },
        "training": {"seconds": round(fit_seconds, 2), **assessor.heads.meta},
        "decision_thresholds": assessor.heads.decision.__dict__,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
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
