"""`cai2 critique PROMPT` (one prompt, every round shown) and `cai2 pipeline sl` (dataset + SFT)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel

from cai2.critique._engine import CritiqueEngine, CritiqueItem, CritiqueSettings
from cai2.critique._policy import policy_by_name
from cai2.models import DEFAULT_GENERATION_SPEC, GenerationParams
from cai2.pipeline._single import (
    LimitOption,
    PromptsOption,
    RestartOption,
    RunIdOption,
    RunsDirOption,
)


def critique_command(
    prompt: Annotated[str, typer.Argument(help="The user request to answer, critique and revise.")],
    model: Annotated[
        str, typer.Option("--model", help="Student model spec.")
    ] = DEFAULT_GENERATION_SPEC,
    critic: Annotated[
        str | None, typer.Option("--critic", help="Critic / reviser spec; default: the student.")
    ] = None,
    policy: Annotated[
        str, typer.Option("--policy", help="`cai-2.0` (layered) or `cai-1.0` (random, fixed).")
    ] = "cai-2.0",
    constitution: Annotated[
        str | None,
        typer.Option(
            "--constitution", help="Constitution name or YAML path; default: the policy's."
        ),
    ] = None,
    rounds: Annotated[
        int | None, typer.Option("--rounds", min=1, max=16, help="Most rounds.")
    ] = None,
    judge: Annotated[
        str,
        typer.Option("--judge", help="Registered judge name, or `none` for critique text only."),
    ] = "embedding-head",
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=1, help="Most tokens per reply, critique, revision.")
    ] = 96,
) -> None:
    """Answer PROMPT, then critique and revise the answer round by round, showing every step."""
    from cai2.models import load_model

    console = Console()
    chosen = policy_by_name(policy, rounds, constitution)
    params = GenerationParams(max_tokens=max_tokens)
    settings = CritiqueSettings(
        response=params,
        critique=params,
        revision=params,
        judge=None if judge.lower() == "none" else judge,
        chunk_size=1,
    )
    with console.status("loading models and judge"):
        student = load_model(model)
        engine = CritiqueEngine(
            student,
            chosen,
            settings,
            critic=load_model(critic) if critic else None,
        )
    with console.status("critiquing and revising"):
        record = engine.run([CritiqueItem("cli", prompt)])[0][0]
    console.print(
        f"[bold]{record.constitution}[/bold] policy={record.policy} risk={record.risk} "
        f"domains={', '.join(record.domains) or '-'} judge={record.judge or '-'}"
    )
    if record.judge_note:
        console.print(f"[yellow]{record.judge_note}[/yellow]")
    console.print(Panel(record.initial_response or "(empty)", title="initial reply"))
    for step in record.steps:
        title = (
            f"round {step.round}: {step.principle_id} (layer {step.layer_id}, depth {step.depth})"
        )
        lines = [f"[bold]critique[/bold]: {step.critique or '(empty)'}"]
        p = "" if step.p_violation is None else f", P(violation)={step.p_violation:.2f}"
        lines.append(f"[bold]violation[/bold]: {step.violation} (by {step.violation_source}{p})")
        if step.violation:
            lines.append(f"[bold]revision[/bold]: {step.revision_raw or '(empty)'}")
            if step.drop_reason:
                lines.append(f"[red]dropped[/red]: {step.drop_reason}")
            elif step.accepted:
                fixes = f" (cleaned: {', '.join(step.fixes)})" if step.fixes else ""
                lines.append(f"[green]accepted[/green]{fixes}")
            else:
                pref = (
                    "" if step.preference is None else f", P(revision better)={step.preference:.2f}"
                )
                lines.append(f"[yellow]rejected[/yellow]: {step.reject_reason}{pref}")
        console.print(Panel("\n".join(lines), title=title))
    console.print(Panel(record.final_response or "(empty)", title=f"final ({record.stop_reason})"))


def sl_command(
    model: Annotated[
        str, typer.Option("--model", help="Student model (an `hf:` spec).")
    ] = DEFAULT_GENERATION_SPEC,
    prompts: PromptsOption = None,
    limit_per_set: LimitOption = None,
    policy: Annotated[str, typer.Option("--policy", help="`cai-2.0` or `cai-1.0`.")] = "cai-2.0",
    rounds: Annotated[int | None, typer.Option("--rounds", min=1, max=16)] = None,
    judge: Annotated[str, typer.Option("--judge", help="Judge name or `none`.")] = "embedding-head",
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1)] = 96,
    max_steps: Annotated[
        int, typer.Option("--max-steps", min=-1, help="SFT steps; -1 uses the epochs.")
    ] = -1,
    fallback: Annotated[
        str,
        typer.Option(
            "--fallback",
            help="Harmful prompts with no accepted revision: `none` (left out) or `principle` "
            "(trained on a refusal naming the broken principle).",
        ),
    ] = "none",
    unrevised_repeats: Annotated[
        int,
        typer.Option(
            "--unrevised-repeats",
            min=1,
            max=10,
            help="Times each kept helpful reply appears in the SFT data (heavier helpfulness mix).",
        ),
    ] = 1,
    run_id: RunIdOption = "sl",
    runs_dir: RunsDirOption = None,
    restart: RestartOption = False,
) -> None:
    """Build the SL dataset (critique → revision) and fine-tune the student on it with LoRA."""
    from cai2.pipeline._single import run_single_stage

    params = {"max_tokens": max_tokens}
    config = {
        "prompts": prompts or ["redteam", "helpful"],
        "limit_per_set": limit_per_set,
        "policy": policy,
        "rounds": rounds,
        "critique": {
            "response": params,
            "critique": params,
            "revision": params,
            "judge": None if judge.lower() == "none" else judge,
        },
        "sft": {"max_steps": max_steps},
        "fallback": fallback,
        "unrevised_repeats": unrevised_repeats,
    }
    run_single_stage("sl", config, model=model, run_id=run_id, runs_dir=runs_dir, restart=restart)


def register(app: typer.Typer) -> None:
    """Add `cai2 critique` and the `cai2 pipeline sl|rl|redteam` commands."""
    app.command("critique")(critique_command)
    pipeline = typer.Typer(
        help="Run single pipeline stages outside a recipe.", no_args_is_help=True
    )
    pipeline.command("sl")(sl_command)
    from cai2.pipeline._rl_cli import rl_command  # here: cai2.pipeline imports cai2.critique

    pipeline.command("rl")(rl_command)
    from cai2.pipeline._pretrain_cli import pretrain_command

    pipeline.command("pretrain")(pretrain_command)
    from cai2.redteam._cli import pipeline_redteam_command

    pipeline.command("redteam")(pipeline_redteam_command)
    app.add_typer(pipeline, name="pipeline")
