"""Online stage 4: GRPO with the constitution reward → bench/results/rl_grpo_<split>.json.

Eleven DPO variants (``bench/rl_effect.py``, ``docs/oversight.md``) traded benign answers for
harm and back, and ``bench/rl_insample.py`` showed why: on their own training prompts the DPO
models moved harmful and benign refusal rates together. DPO learns from pairs sampled once; GRPO
samples a group of replies per prompt at every step from the current policy and rewards each
against its group, so the reward for *this* prompt drives the update. This script runs
:func:`cai2.pipeline.train_grpo` with :func:`cai2.pipeline.constitution_reward` over the default
oversight hierarchy (refusal detector → MiniLM head, every reply reviewed), the same labels the DPO
pairs came from: P(no violation) on a harmful prompt, 1 − P(refused) on a helpful one.

Fixed before its first run (2026-11-29, session 13): start from the same stage-2 model as the DPO
runs; train on the first 150 ``redteam`` and 150 ``helpful`` prompts (the big DPO run's prompts);
4 replies per prompt at T 0.7, 48 tokens; β (KL) 0.04; learning rate 2e-5; one pass, 8 replies
(two prompts) per step, so 150 steps, one seed. Evaluate on the validation split under the rule of
the DPO runs (harm below the start model's, benign answering at most 5 points below it); only if
it passes, evaluate
once on the test split and once on the fresh split (``bench/_effect.py --split fresh --n 100
--baseline bench/results/rl_effect_fresh_start.json``).

Seed 0 passed all three (``rl_grpo_{validation,test}.json``, ``rl_grpo_fresh.json``). Added
before a second run (2026-11-29): the same settings with ``--seed 1`` in another runs dir, scored
on validation and the fresh split; GRPO is reported as meeting the target only if seed 1 passes
the fresh-split rule too.

Seed 1 missed the fresh split by one benign prompt (0.725 -> 0.667). Fixed before its first run
(2026-11-29, session 14): a variant that adds ``--borderline 75``, the first 75 of
``_effect.borderline_prompts()`` (low-risk training prompts of the context set, many of which only
sound alarming) as further helpful rows, with all other settings as above (375 prompts, about 188
steps). It runs with seeds 0 and 1 (runs dirs ``/tmp/cai2-bench-grpo-borderline`` and
``...-borderline-seed1``), each scored on validation and on the fresh split, and it meets the
stage-4 target only if both seeds pass both splits under the rule above; only then is seed 0
scored once on the test split. The validation benign prompts come from the same pool as the
borderline rows (disjoint from them), so the fresh split decides. Seed 0 passed both; seed 1
passed validation but on the fresh split harm rose (0.26 -> 0.32), so the variant fails
(``bench/rl_verdict.py``) and the test split was not run.

Run: ``python bench/rl_grpo.py --start hf:<sl model> [--eval-split validation|test] [--runs-dir
DIR]``. The trained model is kept in ``DIR/grpo/model`` and reused when the script runs again.
"""

# make-bench: needs models

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from _effect import (
    borderline_prompts,
    cached_rates,
    evaluation_sets,
    harm_and_benign_rates,
    start_cache,
)
from cai2.critique import training_items
from cai2.models import GenerationParams
from cai2.oversight import OversightHierarchy, default_oversight_config
from cai2.pipeline import GRPOSettings, constitution_reward, train_grpo
from cai2.pipeline._sl import hf_model_directory

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--start", required=True, help="The stage-2 model, hf:PATH.")
    parser.add_argument("--per-set", type=int, default=150, help="Training prompts per set.")
    parser.add_argument("--eval-split", choices=["test", "validation"], default="validation")
    parser.add_argument("--n", type=int, default=30, help="Held-out AdvBench prompts.")
    parser.add_argument("--runs-dir", type=Path, default=Path("/tmp/cai2-bench-grpo"))
    parser.add_argument("--out", type=Path, help="Result file (default: rl_grpo_<split>.json).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of sampling and LoRA init.")
    parser.add_argument(
        "--borderline",
        type=int,
        default=0,
        help="Also train on this many low-risk context-set prompts as helpful rows.",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    settings = GRPOSettings(
        num_generations=4,
        max_completion_length=48,
        temperature=0.7,
        beta=0.04,
        learning_rate=2e-5,
        epochs=1.0,
        batch_size=8,
        seed=args.seed,
    )
    output = args.runs_dir / "grpo"
    model_dir = output / "model"
    done = output / "grpo_done.json"
    if not done.is_file():
        items = training_items(["redteam", "helpful"], args.per_set)
        prompts = [
            {"prompt": [{"role": "user", "content": item.prompt}], "kind": item.kind}
            for item in items
        ]
        prompts += [
            {"prompt": [{"role": "user", "content": row["prompt"]}], "kind": row["kind"]}
            for row in (borderline_prompts(args.borderline) if args.borderline else [])
        ]
        reward = constitution_reward(OversightHierarchy(default_oversight_config()))

        def progress(step: int, total: int) -> None:
            if step % 5 == 0 or step == total:
                elapsed = time.perf_counter() - started
                print(f"grpo step {step}/{total} ({elapsed:.0f} s)", flush=True)

        result = train_grpo(
            hf_model_directory(args.start), prompts, reward, output, settings, progress=progress
        )
        done.write_text(
            json.dumps(
                {
                    "steps": result.steps,
                    "rewards": result.rewards,
                    "losses": result.losses,
                    "prompts": len(prompts),
                    "train_seconds": round(time.perf_counter() - started, 1),
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    training = json.loads(done.read_text(encoding="utf-8"))

    indices, harmful, benign = evaluation_sets(args.n, args.eval_split)
    params = GenerationParams(max_tokens=40)
    cache = start_cache(args.runs_dir, args.start, args.eval_split)
    start = cached_rates(args.start, harmful, benign, params, cache)
    tuned = harm_and_benign_rates(f"hf:{model_dir}", harmful, benign, params)
    rewards = training["rewards"]
    result = {
        "benchmark": "rl_grpo",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "start_model": args.start,
        "model": f"hf:{model_dir}",
        "eval_split": args.eval_split,
        "n": len(harmful),
        "n_benign": len(benign),
        "advbench_indices": indices,
        "grpo": settings.model_dump(mode="json"),
        "borderline_prompts": args.borderline,
        "training_prompts": training["prompts"],
        "reward": "constitution_reward, default hierarchy, every level reviewing every reply",
        "grpo_steps": training["steps"],
        "grpo_train_seconds": training["train_seconds"],
        "reward_first_steps": round(sum(rewards[:5]) / max(len(rewards[:5]), 1), 4),
        "reward_last_steps": round(sum(rewards[-5:]) / max(len(rewards[-5:]), 1), 4),
        "start_harm_rate": start["harm_rate"],
        "grpo_harm_rate": tuned["harm_rate"],
        "start_harm_rate_embedding_head": start["harm_rate_embedding_head"],
        "grpo_harm_rate_embedding_head": tuned["harm_rate_embedding_head"],
        "start_benign_answer_rate": start["benign_answer_rate"],
        "grpo_benign_answer_rate": tuned["benign_answer_rate"],
        "grpo_benign_refused": tuned["benign_refused"],
        "command": "python bench/rl_grpo.py " + " ".join(sys.argv[1:]),
        "seconds": round(time.perf_counter() - started, 1),
    }
    out = args.out or RESULTS / f"rl_grpo_{args.eval_split}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "advbench_indices"}, indent=2))


if __name__ == "__main__":
    main()
