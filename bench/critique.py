"""Benchmark critique → revision throughput vs raw batched generation → results/critique.json.

The engine runs the CAI 2.0 policy (context assessment, judge, few-shot critiques and revisions,
clean-up) over ``--n`` training prompts on the embedded model, while a thin wrapper records every
``generate`` call it makes. Then the same backend replays exactly those calls (same conversations,
same batches, same greedy settings, so the same tokens) as raw batched generation. Both rates count
completion tokens: ``pipeline_tok_s`` over the engine's whole wall time (everything it does besides
generating included), ``raw_tok_s`` over the replay's time; ``efficiency`` = pipeline / raw.

Target (issue 4): efficiency ≥ 0.9. Usage: ``python bench/critique.py [--n 32] [--max-tokens 32]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cai2.critique import CritiqueEngine, CritiqueSettings, cai2_policy, training_items
from cai2.models import ChatModel, Conversation, Generation, GenerationParams, load_model

RESULTS = Path(__file__).parent / "results" / "critique.json"


class RecordingModel:
    """Forwards to a real model and keeps every call's conversations, settings and token count."""

    def __init__(self, model: ChatModel) -> None:
        self.model = model
        self.spec = model.spec
        self.calls: list[tuple[list[Conversation], GenerationParams]] = []
        self.tokens = 0
        self.seconds = 0.0

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams | None = None
    ) -> list[Generation]:
        params = params or GenerationParams()
        self.calls.append((list(conversations), params))
        began = time.perf_counter()
        out = self.model.generate(conversations, params)
        self.seconds += time.perf_counter() - began
        self.tokens += sum(g.completion_tokens for g in out)
        return out

    def logprobs(
        self, conversations: Sequence[Conversation], continuations: Sequence[str]
    ) -> list[float]:
        return self.model.logprobs(conversations, continuations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="Prompts (half red-team, half helpful).")
    parser.add_argument("--max-tokens", type=int, default=32, help="Tokens per generated text.")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default="hf:smollm2-135m")
    parser.add_argument("--judge", default="embedding-head")
    args = parser.parse_args()

    items = training_items(limit_per_set=args.n // 2)
    model = load_model(args.model)
    recorder = RecordingModel(model)
    per_call = GenerationParams(max_tokens=args.max_tokens)
    settings = CritiqueSettings(
        response=per_call, critique=per_call, revision=per_call, judge=args.judge, chunk_size=args.n
    )
    engine = CritiqueEngine(recorder, cai2_policy(rounds=args.rounds), settings)
    # Warm-up outside the timed region: the context assessor and judge load and cache on first use.
    engine.run(items[:2])
    recorder.calls.clear()
    recorder.tokens, recorder.seconds = 0, 0.0

    began = time.perf_counter()
    records, stats = engine.run(items)
    pipeline_seconds = time.perf_counter() - began
    pipeline_tokens = recorder.tokens

    raw_tokens, raw_seconds = 0, 0.0
    for conversations, params in recorder.calls:
        began = time.perf_counter()
        out = model.generate(conversations, params)
        raw_seconds += time.perf_counter() - began
        raw_tokens += sum(g.completion_tokens for g in out)

    pipeline_tok_s = pipeline_tokens / pipeline_seconds
    raw_tok_s = raw_tokens / raw_seconds
    result = {
        "benchmark": "critique",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "model": args.model,
        "policy": "cai-2.0",
        "judge": engine.judge_name,
        "judge_note": engine.judge_note,
        "prompts": len(items),
        "rounds": args.rounds,
        "max_tokens": args.max_tokens,
        "generate_calls": len(recorder.calls),
        "call_sizes": [len(c) for c, _ in recorder.calls],
        "pipeline_tokens": pipeline_tokens,
        "raw_tokens": raw_tokens,
        "pipeline_seconds": round(pipeline_seconds, 2),
        "pipeline_generate_seconds": round(recorder.seconds, 2),
        "raw_seconds": round(raw_seconds, 2),
        "pipeline_tok_s": round(pipeline_tok_s, 2),
        "raw_tok_s": round(raw_tok_s, 2),
        "efficiency": round(pipeline_tok_s / raw_tok_s, 3),
        "target_efficiency": 0.9,
        "critique_stats": stats.as_metrics(),
        "revised": sum(r.revised for r in records),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
