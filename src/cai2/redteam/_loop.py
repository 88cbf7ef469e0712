"""Stage 3: red-team rounds that train on their failures.

Each round attacks the current model with *fresh* training seeds (round ``r`` takes the ``r``-th
slice of the training split), collects the failures with the principle each one violated, turns
every failure into a safe reply — a revision from the critique engine when the judge accepts it,
otherwise a refusal grounded in the violated principle's own statement — and trains on them:

- SFT (LoRA) on attack → safe reply, mixed with benign prompts → the model's own answer (as in the
  original method, so the model does not learn to refuse everything);
- DPO (LoRA) on (safe reply ≻ harmful reply) for every failure and (answer ≻ refusal) for the
  benign prompts.

The trained model attacks in the next round. With ``heldout_eval`` set, the model before round 1
and after every round is also attacked on held-out seeds (never trained on) and answers held-out
benign prompts, which is what the benchmark reports.

Folder layout (inside the stage folder): ``judge.json``; ``round-<r>/`` with ``attempts.jsonl``,
``safe_replies.jsonl``, ``sft.jsonl``, ``pairs.jsonl``, the trainers' ``sft/`` and ``dpo/``
folders and ``done.json`` (the trained model); ``eval/round-<r>/`` with ``attempts.jsonl`` and
``benign.jsonl``; ``report.json`` and ``report.html``. Every file is written as work finishes, so
an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from cai2.config import StrictModel
from cai2.critique import safe_reply
from cai2.errors import ConfigError
from cai2.models import ChatModel, GenerationParams
from cai2.pipeline._lora import train_once
from cai2.pipeline._rl import DPOSettings, train_dpo
from cai2.pipeline._sl import SFTSettings, hf_model_directory, train_sft
from cai2.redteam._attack import AttemptRecord, run_attacks
from cai2.redteam._refine import RefineSettings
from cai2.redteam._seeds import SEED_SOURCES, Seed, load_seeds, tag_seeds
from cai2.redteam._strategies import DEFAULT_SUITE, check_strategies

Progress = Callable[[str, int, int], None]
TrainStep = Literal["sft", "dpo"]
DEFAULT_TRAIN_STEPS: tuple[TrainStep, ...] = ("sft", "dpo")
"""``progress(what, done, total)``."""


class RedTeamConfig(StrictModel):
    """Settings of the red-team loop (`cai2 pipeline redteam`, recipe stage `redteam`)."""

    model: str | None = Field(
        None,
        description="Model to start from (an `hf:` spec or `@<stage id>`); default: the recipe's.",
    )
    seeds: list[str] = Field(
        default_factory=lambda: ["project", "harmbench"],
        description=f"Training seed sources, from: {', '.join(SEED_SOURCES)}.",
    )
    eval_seeds: list[str] = Field(
        default_factory=lambda: ["advbench"],
        description="Held-out seed sources for `heldout_eval` (their held-out split only).",
    )
    heldout_fraction: float = Field(
        0.3, gt=0.0, lt=1.0, description="Share of every source kept out of training."
    )
    rounds: int = Field(2, ge=1, le=20, description="Attack → train rounds.")
    seeds_per_round: int = Field(48, ge=1, description="Fresh training seeds attacked per round.")
    strategies: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SUITE), description="Attack strategies by name."
    )
    budget: int = Field(1, ge=1, le=16, description="Attempts per seed and static strategy.")
    judge: str = Field("ensemble", description="Registered judge that decides attack success.")
    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="P(violation) counted a success.")
    calibrate_judge: bool = Field(
        True, description="Measure the judge on PyRIT's held-out human labels for the report."
    )
    constitution: str = Field("cai-2.0", description="Constitution the seeds are tagged against.")
    assess_context: bool = Field(
        True, description="Tag seeds with the MiniLM context assessment (else: risk `high`)."
    )
    attack_params: GenerationParams = Field(
        default_factory=lambda: GenerationParams(max_tokens=64, temperature=0.0),
        description="Generation settings of the target under attack.",
    )
    attacker: str | None = Field(None, description="Attacker model for `refine` (default: target).")
    refine: RefineSettings = Field(default_factory=RefineSettings)
    revise: bool = Field(
        True, description="Ask the critique engine to revise failures before falling back."
    )
    revise_max: int | None = Field(
        32,
        ge=1,
        description="Failures per round sent to the critique engine (null: all); the rest get "
        "the principle-grounded reply directly.",
    )
    critique_rounds: int = Field(1, ge=1, le=8, description="Critique → revision rounds.")
    critic: str | None = Field(None, description="Critic/reviser model (default: the target).")
    benign_prompts: str = Field(
        "helpful", description="Prompt set mixed into training so helpfulness is kept."
    )
    benign_per_round: int = Field(48, ge=0, description="Benign training prompts per round.")
    benign_params: GenerationParams = Field(
        default_factory=lambda: GenerationParams(max_tokens=96, temperature=0.0),
        description="Generation settings of the model's own benign answers.",
    )
    train: list[TrainStep] = Field(
        default_factory=lambda: list(DEFAULT_TRAIN_STEPS),
        description="Training steps of every round.",
    )
    max_failures_per_round: int | None = Field(
        48,
        ge=1,
        description=(
            "Failures trained on per round, spread evenly over strategies (null: all of them); "
            "the rest are kept in `attempts.jsonl` but not trained on."
        ),
    )
    sft: SFTSettings = Field(
        default_factory=lambda: SFTSettings(max_length=512, epochs=1.0),
        description="SFT + LoRA settings (attacks are longer than plain prompts: 512 tokens).",
    )
    dpo: DPOSettings = Field(
        default_factory=lambda: DPOSettings(max_length=512, epochs=1.0),
        description="DPO + LoRA settings.",
    )
    heldout_eval: int = Field(
        0, ge=0, description="Held-out seeds attacked before round 1 and after the last round."
    )
    evaluate_every_round: bool = Field(
        False, description="Also evaluate after every intermediate round (costs one more pass)."
    )
    benign_eval: int = Field(
        0, ge=0, description="Held-out benign prompts (cai2's eval set) answered alongside."
    )


class RedTeamLoop:
    """Runs the rounds of one configuration in one folder (see the module docstring).

    Args:
        config: The loop settings.
        directory: Stage folder; everything is read from and written to it.
        start_model: Spec of the model round 1 attacks (an `hf:` model, trainable).
        load_model: Returns a model for a spec (cached by the caller if it wants).
        progress: Called as ``progress(what, done, total)``.
    """

    def __init__(
        self,
        config: RedTeamConfig,
        directory: Path,
        start_model: str,
        load_model: Callable[[str], ChatModel],
        progress: Progress | None = None,
    ) -> None:
        check_strategies(config.strategies)
        self.config = config
        self.dir = directory
        self.start_model = start_model
        self._load = load_model
        self._progress = progress
        self._judge: Any = None
        self._calibration: dict[str, Any] | None = None
        self._assessor: Any = None
        self.dir.mkdir(parents=True, exist_ok=True)

    # --- shared parts -----------------------------------------------------------------------

    def judge(self) -> Any:
        """The success judge, with its calibration measured once and kept in ``judge.json``."""
        if self._judge is None:
            from cai2.judges import build_judge
            from cai2.store import atomic_write_json, read_json

            path = self.dir / "judge.json"
            if self.config.calibrate_judge:
                from cai2.evals._evaluate import calibrate_harm_judge

                if path.exists():
                    self._judge = build_judge(self.config.judge)
                    self._calibration = read_json(path)
                else:
                    self._judge, self._calibration = calibrate_harm_judge(
                        self.config.judge, self.config.threshold
                    )
                    atomic_write_json(path, self._calibration)
            else:
                self._judge = build_judge(self.config.judge)
                self._calibration = {"judge": self.config.judge, "calibrated": False}
        return self._judge

    def _tag(self, seeds: list[Seed]) -> list[Seed]:
        if not self.config.assess_context:
            from dataclasses import replace

            from cai2.redteam._seeds import targeted_principles

            principles = targeted_principles("", "high", (), self.config.constitution)
            return [replace(s, principles=principles) for s in seeds]
        if self._assessor is None:
            from cai2.context import load_default_assessor

            self._assessor = load_default_assessor()
        return tag_seeds(seeds, self._assessor, self.config.constitution)

    def training_seeds(self, round_number: int) -> list[Seed]:
        """The fresh training seeds of round ``round_number`` (1-based)."""
        pool = load_seeds(
            self.config.seeds, split="train", heldout_fraction=self.config.heldout_fraction
        )
        n = self.config.seeds_per_round
        chosen = pool[(round_number - 1) * n : round_number * n]
        if not chosen:
            raise ConfigError(
                f"round {round_number} has no fresh training seeds: {len(pool)} in the training "
                f"split of {self.config.seeds}, {n} per round; lower `seeds_per_round`, "
                "lower `rounds` or add sources",
                key="seeds_per_round",
            )
        return self._tag(chosen)

    def heldout_seeds(self) -> list[Seed]:
        """The held-out evaluation seeds (never in any training round)."""
        seeds = load_seeds(
            self.config.eval_seeds,
            split="heldout",
            heldout_fraction=self.config.heldout_fraction,
            limit=self.config.heldout_eval,
        )
        return self._tag(seeds)

    def _note(self, what: str, done: int, total: int) -> None:
        if self._progress is not None:
            self._progress(what, done, total)

    def _attack(
        self, model: ChatModel, seeds: list[Seed], round_index: int, out: Path
    ) -> list[AttemptRecord]:
        return run_attacks(
            model,
            seeds,
            self.config.strategies,
            self.judge(),
            budget=self.config.budget,
            params=self.config.attack_params,
            threshold=self.config.threshold,
            round_index=round_index,
            output=out,
            attacker=self._load(self.config.attacker) if self.config.attacker else None,
            refine=self.config.refine,
            progress=lambda d, t: self._note(f"attack round {round_index}", d, t),
        )

    # --- evaluation -------------------------------------------------------------------------

    def evaluate(self, model_spec: str, round_index: int) -> dict[str, Any]:
        """Held-out ASR and benign answer rate of the model after ``round_index`` rounds."""
        from cai2.evals._stats import proportion

        folder = self.dir / "eval" / f"round-{round_index}"
        folder.mkdir(parents=True, exist_ok=True)
        model = self._load(model_spec)
        metrics: dict[str, Any] = {"model": model_spec}
        if self.config.heldout_eval:
            from cai2.redteam._report import asr

            records = self._attack(
                model, self.heldout_seeds(), round_index, folder / "attempts.jsonl"
            )
            metrics["asr"] = asr(records).model_dump(mode="json")
            metrics["n_seeds"] = len({r.seed_id for r in records})
        if self.config.benign_eval:
            from cai2.evals._datasets import load_benign_items, sample_items
            from cai2.evals._evaluate import generate_cached
            from cai2.judges import RefusalJudge

            items = sample_items(load_benign_items(), self.config.benign_eval, 0)
            replies = generate_cached(
                model,
                [[{"role": "user", "content": item.prompt}] for item in items],
                self.config.attack_params,
                folder / "benign.jsonl",
                progress=lambda d, t: self._note(f"benign eval round {round_index}", d, t),
            )
            refused = RefusalJudge().p_refused(replies)
            metrics["benign_answer_rate"] = proportion([p < 0.5 for p in refused]).model_dump(
                mode="json"
            )
        return metrics

    # --- one round --------------------------------------------------------------------------

    def _safe_replies(
        self, model: ChatModel, failures: list[AttemptRecord], out: Path
    ) -> list[dict[str, Any]]:
        """A safe reply per failure: an accepted revision, else a principle-grounded refusal."""
        from cai2.constitution import load_constitution
        from cai2.store import JsonlWriter, read_jsonl

        statements = {
            p.id: p.statement
            for _, p, _ in load_constitution(self.config.constitution).flatten().principles()
        }
        revised: dict[str, str] = {}
        if self.config.revise and failures:
            from cai2.critique import CritiqueEngine, CritiqueItem, CritiqueSettings, cai2_policy

            critic = self._load(self.config.critic) if self.config.critic else model
            engine = CritiqueEngine(
                model,
                cai2_policy(
                    rounds=self.config.critique_rounds, constitution=self.config.constitution
                ),
                CritiqueSettings(judge=None),
                critic=critic,
                judge=self.judge(),
                assessor=self._assessor,
            )
            sent = failures[: self.config.revise_max]
            items = [CritiqueItem(f.id, _last_user(f), "harmful", f.response) for f in sent]
            records, _ = engine.run(items, out.with_name("revisions.jsonl"))
            from cai2.redteam._attack import judge_replies

            candidates = [
                (f, r.final_response) for f, r in zip(sent, records, strict=True) if r.revised
            ]
            scores = judge_replies(
                self.judge(), [f.request for f, _ in candidates], [text for _, text in candidates]
            )
            for (failure, text), p in zip(candidates, scores, strict=True):
                if p is not None and p < self.config.threshold and text.strip():
                    revised[failure.id] = text
        writer = JsonlWriter(out, id_key="id")
        try:
            for failure in failures:
                if failure.id in writer.done_ids:
                    continue
                if failure.id in revised:
                    text, source = revised[failure.id], "revision"
                else:
                    statement = statements.get(
                        failure.principle,
                        statements.get("harmless.no_serious_harm", "avoid serious harm"),
                    )
                    text, source = safe_reply(statement, failure.request), "principle"
                writer.append(
                    {
                        "id": failure.id,
                        "principle": failure.principle,
                        "source": source,
                        "text": text,
                    }
                )
        finally:
            writer.close()
        wanted = {failure.id for failure in failures}
        return [row for row in read_jsonl(out) if row["id"] in wanted]

    def _benign(self, model: ChatModel, round_number: int, out: Path) -> list[dict[str, Any]]:
        """The model's own answers to this round's benign training prompts (refusals dropped)."""
        from cai2.critique import training_items
        from cai2.evals._evaluate import generate_cached
        from cai2.judges import RefusalJudge

        n = self.config.benign_per_round
        if n == 0:
            return []
        pool = training_items([self.config.benign_prompts])  # refuses evaluation prompts
        start = ((round_number - 1) * n) % max(1, len(pool))
        items = (pool[start:] + pool[:start])[:n]
        replies = generate_cached(
            model,
            [[{"role": "user", "content": item.prompt}] for item in items],
            self.config.benign_params,
            out,
        )
        refused = RefusalJudge().p_refused(replies)
        return [
            {"id": item.id, "prompt": item.prompt, "reply": reply.strip()}
            for item, reply, p in zip(items, replies, refused, strict=True)
            if p < 0.5 and reply.strip()
        ]

    def run_round(self, round_number: int, model_spec: str) -> dict[str, Any]:
        """Attack, collect failures, build training data, train; returns the round's summary."""
        from cai2.store import atomic_write_json, atomic_write_text, read_json, relocated

        folder = self.dir / f"round-{round_number}"
        done_path = folder / "done.json"
        if done_path.exists():
            return dict(read_json(done_path))
        folder.mkdir(parents=True, exist_ok=True)
        model = self._load(model_spec)
        seeds = self.training_seeds(round_number)
        attempts = self._attack(model, seeds, round_number, folder / "attempts.jsonl")
        failures = spread(
            [a for a in attempts if a.success], self.config.max_failures_per_round, round_number
        )
        safe = {
            row["id"]: row
            for row in self._safe_replies(model, failures, folder / "safe_replies.jsonl")
        }
        benign = self._benign(model, round_number, folder / "benign_answers.jsonl")
        sft_rows: list[dict[str, Any]] = []
        pair_rows: list[dict[str, Any]] = []
        for failure in failures:
            prompt = [*failure.conversation]
            text = safe[failure.id]["text"]
            sft_rows.append(
                {
                    "id": failure.id,
                    "prompt": prompt,
                    "completion": [{"role": "assistant", "content": text}],
                }
            )
            pair_rows.append(
                {
                    "id": failure.id,
                    "kind": "attack",
                    "principle": failure.principle,
                    "prompt": prompt,
                    "chosen": [{"role": "assistant", "content": text}],
                    "rejected": [{"role": "assistant", "content": failure.response}],
                }
            )
        for row in benign:
            prompt = [{"role": "user", "content": row["prompt"]}]
            answer = [{"role": "assistant", "content": row["reply"]}]
            sft_rows.append({"id": row["id"], "prompt": prompt, "completion": answer})
            pair_rows.append(
                {
                    "id": row["id"],
                    "kind": "benign",
                    "principle": "helpful.no_needless_refusal",
                    "prompt": prompt,
                    "chosen": answer,
                    "rejected": [
                        {
                            "role": "assistant",
                            "content": safe_reply(
                                "avoid helping with anything that could cause harm", row["prompt"]
                            ),
                        }
                    ],
                }
            )
        import json

        for name, rows in (("sft.jsonl", sft_rows), ("pairs.jsonl", pair_rows)):
            atomic_write_text(
                folder / name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
            )
        summary: dict[str, Any] = {
            "round": round_number,
            "model_in": model_spec,
            "seeds": len(seeds),
            "attempts": len(attempts),
            "failures": sum(a.success for a in attempts),
            "failures_trained": len(failures),
            "train_asr": sum(a.success for a in attempts) / len(attempts) if attempts else None,
            "safe_from_revision": sum(r["source"] == "revision" for r in safe.values()),
            "safe_from_principle": sum(r["source"] == "principle" for r in safe.values()),
            "benign_examples": len(benign),
        }
        current_dir = hf_model_directory(model_spec)
        if not failures:
            summary["model_out"] = model_spec
            summary["trained"] = []
        else:
            if "sft" in self.config.train:
                # SFT's result is kept on its own, so a run stopped during DPO keeps its SFT.
                def train() -> dict[str, Any]:
                    result = train_sft(
                        current_dir,
                        sft_rows,
                        folder / "sft",
                        self.config.sft,
                        progress=lambda d, t: self._note(f"sft round {round_number}", d, t),
                    )
                    return {
                        "output": str(result.output),
                        "steps": result.steps,
                        "final_loss": result.final_loss,
                    }

                sft = train_once(folder / "sft_done.json", train)
                summary["sft_steps"], summary["sft_final_loss"] = sft["steps"], sft["final_loss"]
                current_dir = relocated(sft["output"], self.dir)
            if "dpo" in self.config.train:
                dpo = train_dpo(
                    current_dir,
                    pair_rows,
                    folder / "dpo",
                    self.config.dpo,
                    progress=lambda d, t: self._note(f"dpo round {round_number}", d, t),
                )
                summary["dpo_steps"], summary["dpo_final_loss"] = dpo.steps, dpo.final_loss
                summary["dpo_reward_accuracy"] = dpo.reward_accuracy
                current_dir = dpo.output
            summary["model_out"] = f"hf:{current_dir}"
            summary["trained"] = list(self.config.train)
        atomic_write_json(done_path, summary)
        return summary

    # --- all rounds -------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Every round (finished ones are read back), the evaluations, and the report."""
        from cai2.redteam._report import write_redteam_report
        from cai2.store import read_jsonl, relocated

        evaluate = bool(self.config.heldout_eval or self.config.benign_eval)
        evaluations: dict[str, Any] = {}
        spec = self.start_model
        if evaluate:
            evaluations["0"] = self.evaluate(spec, 0)
        rounds = []
        for number in range(1, self.config.rounds + 1):
            summary = self.run_round(number, spec)
            rounds.append(summary)
            spec = summary["model_out"]
            if spec.startswith("hf:"):  # a finished round read back from a moved folder
                spec = f"hf:{relocated(spec[3:], self.dir)}"
            if evaluate and (self.config.evaluate_every_round or number == self.config.rounds):
                evaluations[str(number)] = self.evaluate(spec, number)
        records = [
            AttemptRecord.model_validate(row)
            for number in range(1, self.config.rounds + 1)
            for row in read_jsonl(self.dir / f"round-{number}" / "attempts.jsonl", missing_ok=True)
        ]
        heldout = [
            AttemptRecord.model_validate(row)
            for key in evaluations
            for row in read_jsonl(
                self.dir / "eval" / f"round-{key}" / "attempts.jsonl", missing_ok=True
            )
        ]
        self.judge()
        write_redteam_report(
            records,
            self.dir / "report-training",
            constitution=self.config.constitution,
            judge=self._calibration,
            extra={"rounds": rounds},
            title="cai2 red team: training rounds",
        )
        if heldout:
            write_redteam_report(
                heldout,
                self.dir / "report",
                constitution=self.config.constitution,
                judge=self._calibration,
                extra={"rounds": rounds, "evaluations": evaluations},
                title="cai2 red team: held-out seeds before and after each round",
            )
        return {"rounds": rounds, "evaluations": evaluations, "final_model": spec}


def spread(failures: list[AttemptRecord], limit: int | None, salt: int = 0) -> list[AttemptRecord]:
    """At most ``limit`` failures, taken round-robin over strategies in a seeded order."""
    if limit is None or len(failures) <= limit:
        return failures
    from cai2.evals._datasets import balanced_sample

    chosen = balanced_sample(failures, limit, lambda f: f.strategy, f"spread:{salt}")
    return sorted(chosen, key=lambda f: f.id)


def _last_user(record: AttemptRecord) -> str:
    for message in reversed(record.conversation):
        if message["role"] == "user":
            return message["content"]
    return record.request
