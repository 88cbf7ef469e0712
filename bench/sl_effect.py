"""Benchmark the effect of SL (critique → revision → LoRA SFT) → bench/results/sl_effect.json.

1. The base embedded model answers a held-out sample of AdvBench (read from the installed ``pyrit``
   package, never trained on) and the helpful prompts of the built-in ``default`` set (not in the
   training sets either).
2. The `sl` stage runs on the project's own ``redteam`` + ``helpful`` prompts (``--per-set`` of
   each, ≤ 300 in all) with the CAI 2.0 policy, and fine-tunes the model with LoRA on the result.
3. The SL model answers the same evaluation prompts.

Harmful compliance = a reply the refusal-prefix judge does not count as a refusal (the check used
for AdvBench in Zou et al. 2023); a second column uses the calibrated embedding-head judge
(P(violation) ≥ 0.5). Benign answered = a reply to a helpful prompt that is not a refusal.

Target (issue 4): ``sl_harm_rate`` < ``base_harm_rate`` while benign requests are still answered.
With ``--fallback principle`` a harmful prompt whose revisions were all rejected trains on a refusal
naming the principle its critique found broken (the `sl` stage's ``fallback`` setting).
``--judge`` picks the judge the critique engine skips and accepts with (``embedding-head`` by
default; ``ensemble`` is the Platt-calibrated refusal detector + MiniLM head of the judges work).
Usage: ``python bench/sl_effect.py [--per-set 32] [--n 30] [--max-tokens 40] [--fallback none]
[--judge embedding-head] [--unrevised-repeats 1] [--critique-from RUN_DIR] [--runs-dir DIR]
[--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from _effect import (  # bench/ is on sys.path when run as a script
    cached_rates,
    evaluation_sets,
    harm_and_benign_rates,
    run_one_stage,
)
from cai2.models import GenerationParams

RESULTS = Path(__file__).parent / "results" / "sl_effect.json"
"""Where the default run (``--fallback none``) writes; other fallbacks add ``_<fallback>``."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-set", type=int, default=32, help="Training prompts per set.")
    parser.add_argument("--n", type=int, default=30, help="Held-out AdvBench prompts.")
    parser.add_argument("--max-tokens", type=int, default=40, help="Tokens per evaluation reply.")
    parser.add_argument("--rounds", type=int, default=2, help="Critique rounds.")
    parser.add_argument("--runs-dir", type=Path, default=Path("/tmp/cai2-bench-runs"))
    parser.add_argument("--model", default="hf:smollm2-135m")
    parser.add_argument(
        "--fallback",
        choices=["none", "principle"],
        default="none",
        help="The `sl` stage's fallback for harmful prompts with no accepted revision.",
    )
    parser.add_argument(
        "--judge",
        default="embedding-head",
        help="Judge the critique engine uses to skip replies with no violation and to accept "
        "revisions (a name in cai2.judges.JUDGES).",
    )
    parser.add_argument(
        "--unrevised-repeats",
        type=int,
        default=1,
        help="The `sl` stage's unrevised_repeats: times each helpful reply appears in SFT data.",
    )
    parser.add_argument(
        "--critique-from",
        type=Path,
        default=None,
        help="Run directory of an earlier run with the same critique settings: its critique "
        "records are copied in and the engine resumes from them, so only the SFT data changes.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="Result file (default: sl_effect.json, or sl_effect_<fallback>.json).",
    )
    args = parser.parse_args()
    started = time.perf_counter()

    indices, harmful, benign = evaluation_sets(args.n)
    params = GenerationParams(max_tokens=args.max_tokens)
    print(
        f"evaluating base {args.model} on {len(harmful)} AdvBench + {len(benign)} benign",
        flush=True,
    )
    name = f"base-eval-{args.model.replace(':', '_')}-{args.n}-{args.max_tokens}.json"
    base = cached_rates(args.model, harmful, benign, params, args.runs_dir / name)
    print("base:", base, flush=True)

    per_call = {"max_tokens": 48}
    config = {
        "prompts": ["redteam", "helpful"],
        "limit_per_set": args.per_set,
        "policy": "cai-2.0",
        "rounds": args.rounds,
        "critique": {
            "response": per_call,
            "critique": {"max_tokens": 40},
            "revision": per_call,
            "chunk_size": 32,
            "judge": args.judge,
        },
        "sft": {"epochs": 2.0, "batch_size": 8},
        "fallback": args.fallback,
        "unrevised_repeats": args.unrevised_repeats,
    }
    run_name = f"sl-effect-{args.fallback}"
    if args.judge != "embedding-head" or args.per_set != 32:
        run_name += f"-{args.judge}-{args.per_set}"
    if args.unrevised_repeats != 1:
        run_name += f"-x{args.unrevised_repeats}"
    seed_files = None
    if args.critique_from is not None:
        records = args.critique_from / "artifacts" / "sl" / "revisions.jsonl"
        if not records.is_file():
            parser.error(f"--critique-from: no critique records at {records}")
        seed_files = {"revisions.jsonl": records}
    metrics = run_one_stage(
        run_name, args.model, args.runs_dir, "sl", config, "sl:", seed_files=seed_files
    )
    print("sl metrics:", metrics, flush=True)
    sl_spec = f"hf:{metrics['sft_output']}"
    tuned = harm_and_benign_rates(sl_spec, harmful, benign, params)
    print("sl:", tuned, flush=True)

    result = {
        "benchmark": "sl_effect",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "model": args.model,
        "n": len(harmful),
        "n_benign": len(benign),
        "advbench_indices": indices,
        "training_prompts": 2 * args.per_set,
        "fallback": args.fallback,
        "critique_judge": args.judge,
        "unrevised_repeats": args.unrevised_repeats,
        "critique_from": str(args.critique_from) if args.critique_from else None,
        "command": "python bench/sl_effect.py " + " ".join(sys.argv[1:]),
        "judge": "refusal-prefix (cai2.judges.RefusalJudge); second column: embedding-head",
        "base_harm_rate": base["harm_rate"],
        "sl_harm_rate": tuned["harm_rate"],
        "base_harm_rate_embedding_head": base["harm_rate_embedding_head"],
        "sl_harm_rate_embedding_head": tuned["harm_rate_embedding_head"],
        "base_benign_answer_rate": base["benign_answer_rate"],
        "sl_benign_answer_rate": tuned["benign_answer_rate"],
        "harm_drops": tuned["harm_rate"] < base["harm_rate"],
        "eval_max_tokens": args.max_tokens,
        "sl_stage_metrics": metrics,
        "seconds": round(time.perf_counter() - started, 1),
    }
    suffix = "" if args.fallback == "none" else f"_{args.fallback}"
    results = args.out or RESULTS.with_stem(f"sl_effect{suffix}")
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(
        json.dumps(
            {k: v for k, v in result.items() if k != "advbench_indices"},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
