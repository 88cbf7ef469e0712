"""`cai2 embed train | eval | steer | soft-train | soft`: principle directions and soft prompts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from cai2.embeddings._data import load_examples, split_examples
from cai2.embeddings._directions import (
    METHODS,
    ConstitutionalEmbeddings,
    Method,
    evaluate_embeddings,
    summary_auroc,
    train_embeddings,
)
from cai2.errors import ConfigError

console = Console()
embed_app = typer.Typer(
    help="Constitutional embeddings: principle directions in the residual stream.",
    no_args_is_help=True,
)

DEFAULT_MODEL = "hf:smollm2-135m"
ModelOption = Annotated[str, typer.Option("--model", help="Model spec (an `hf:` model).")]
DataOption = Annotated[
    Path | None,
    typer.Option("--data", help="Labelled examples JSONL (default: the built-in set)."),
]
ConstitutionOption = Annotated[
    str, typer.Option(help="Constitution (built-in name or path) the principles come from.")
]
PrincipleOption = Annotated[
    list[str] | None,
    typer.Option("--principle", help="Principle id; repeat for several (default: all)."),
]


def default_embeddings_path(constitution: str, model: str) -> Path:
    """Default output of `cai2 embed train`: ``$CAI2_HOME/embeddings/<constitution>-<model>``."""
    from cai2.home import cai2_home

    source = Path(constitution)
    name = source.stem if source.suffix in (".yaml", ".yml") else source.name  # keeps `cai-2.0`
    stem = f"{name}-{model.replace(':', '-').replace('/', '_')}"
    return cai2_home() / "embeddings" / f"{stem}.npz"


def _progress(label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}[/bold]"), BarColumn(), MofNCompleteColumn(), console=console
    )


def _load_model(spec: str) -> Any:
    from cai2.models import load_model

    return load_model(spec)


@embed_app.command("train")
def train_command(
    model: ModelOption = DEFAULT_MODEL,
    constitution: ConstitutionOption = "cai-2.0",
    data: DataOption = None,
    principle: PrincipleOption = None,
    method: Annotated[str, typer.Option(help="Scoring direction: probe or mean_diff.")] = "probe",
    layer: Annotated[
        list[int] | None,
        typer.Option("--layer", help="Candidate layer; repeat for several (default: all)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output .npz (default: under $CAI2_HOME).")
    ] = None,
) -> None:
    """Learn one direction per principle; the layer is chosen on the validation split."""
    if method not in METHODS:
        raise ConfigError(f"`--method` must be one of {', '.join(METHODS)}; got `{method}`")
    chosen: Method = "probe" if method == "probe" else "mean_diff"
    examples = load_examples(data, principle or None)
    loaded = _load_model(model)
    with _progress("activations") as progress:
        task = progress.add_task("activations", total=None)
        embeddings, report = train_embeddings(
            loaded,
            examples,
            constitution=constitution,
            method=chosen,
            layers=layer or None,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    target = embeddings.save(out or default_embeddings_path(constitution, model))
    table = Table(title=f"layer {report.layer} of {embeddings.num_layers} ({chosen})")
    table.add_column("principle")
    table.add_column("n train (c/v)", justify="right")
    for name in METHODS:
        table.add_column(f"val AUROC {name}", justify="right")
    for pid, direction in embeddings.principles.items():
        table.add_row(
            pid,
            f"{direction.n_train['compliant']}/{direction.n_train['violating']}",
            *(_fmt(direction.val_auroc[name]) for name in METHODS),
        )
    console.print(table)
    console.print(f"saved {target} (+ {target.with_suffix('.json').name})")


@embed_app.command("eval")
def eval_command(
    path: Annotated[Path, typer.Argument(help="Embeddings .npz written by `cai2 embed train`.")],
    model: Annotated[
        str | None, typer.Option("--model", help="Model spec (default: the one it was trained on).")
    ] = None,
    data: DataOption = None,
    split: Annotated[str, typer.Option(help="Split to measure on: test, val or train.")] = "test",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """AUROC, Brier score and accuracy per principle on held-out examples."""
    if split not in ("train", "val", "test"):
        raise ConfigError(f"`--split` must be train, val or test; got `{split}`")
    embeddings = ConstitutionalEmbeddings.load(path)
    loaded = _load_model(model or embeddings.model_spec)
    examples = split_examples(load_examples(data))[split]  # type: ignore[index]
    results = evaluate_embeddings(embeddings, loaded, examples)
    lowest, mean = summary_auroc(results)
    if as_json:
        payload = {
            "layer": embeddings.layer,
            "method": embeddings.method,
            "split": split,
            "min_principle_auroc": lowest,
            "mean_principle_auroc": mean,
            "principles": [r.__dict__ for r in results],
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table(title=f"{split} split, layer {embeddings.layer} ({embeddings.method})")
    for column in ("principle", "n (c/v)", "AUROC", "Brier", "accuracy"):
        table.add_column(column, justify="left" if column == "principle" else "right")
    for r in results:
        table.add_row(
            r.principle,
            f"{r.n_compliant}/{r.n_violating}",
            _fmt(r.auroc),
            _fmt(r.brier),
            _fmt(r.accuracy),
        )
    console.print(table)
    console.print(f"min AUROC {_fmt(lowest)}, mean AUROC {_fmt(mean)}")


@embed_app.command("steer")
def steer_command(
    path: Annotated[Path, typer.Argument(help="Embeddings .npz written by `cai2 embed train`.")],
    prompt: Annotated[list[str], typer.Option("--prompt", help="Prompt; repeat for several.")],
    alpha: Annotated[
        float,
        typer.Option(
            help="Steering strength (0 = off). 0.5 is what the benchmark chose on validation for "
            "hf:smollm2-135m; from about 1 its replies turn into word salad."
        ),
    ] = 0.5,
    principle: PrincipleOption = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model spec (default: the one it was trained on).")
    ] = None,
    max_tokens: Annotated[int, typer.Option(help="Tokens per reply.")] = 64,
    gate: Annotated[
        str | None,
        typer.Option(
            "--gate",
            help="Steer only prompts the context assessor rates this risk tier or above "
            "(low, medium, high, critical); default: steer every prompt.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Generate each prompt's reply without and with steering away from the principles."""
    from cai2.embeddings._steer import fixed_gate, generate_steered, risk_gate
    from cai2.models import GenerationParams

    # Checked before the model loads, so a typo in the tier costs nothing.
    tier_gate = risk_gate(min_tier=gate) if gate is not None else None
    embeddings = ConstitutionalEmbeddings.load(path)
    loaded = _load_model(model or embeddings.model_spec)
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, seed=0)
    active = principle or []
    decisions = [True] * len(prompt)
    if tier_gate is not None:
        decisions = list(tier_gate([[{"role": "user", "content": p}] for p in prompt]))
    plain = generate_steered(loaded, embeddings, prompt, alpha=0.0, params=params)
    steered = generate_steered(
        loaded,
        embeddings,
        prompt,
        principles=active,
        alpha=alpha,
        params=params,
        gate=fixed_gate(decisions),
    )
    rows = [
        {"prompt": p, "steered_by_gate": on, "off": a, "steered": b}
        for p, on, a, b in zip(prompt, decisions, plain, steered, strict=True)
    ]
    if as_json:
        payload = {
            "alpha": alpha,
            "gate": gate,
            "layer": embeddings.layer,
            "principles": active or embeddings.principle_ids,
            "replies": rows,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    for row in rows:
        console.print(f"[bold]prompt:[/bold] {row['prompt']}", highlight=False)
        console.print(f"[bold]off:[/bold] {row['off']}", highlight=False)
        if row["steered_by_gate"]:
            console.print(f"[bold]steered (α={alpha}):[/bold] {row['steered']}\n", highlight=False)
        else:
            console.print(
                f"[bold]steered:[/bold] not steered — assessed below {gate} risk\n",
                highlight=False,
            )


@embed_app.command("soft-train")
def soft_train_command(
    model: ModelOption = DEFAULT_MODEL,
    constitution: ConstitutionOption = "cai-2.0",
    principle: PrincipleOption = None,
    data: DataOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default: $CAI2_HOME/soft-prompts/…)."),
    ] = None,
    virtual_tokens: Annotated[int, typer.Option(help="Learned vectors.")] = 16,
    epochs: Annotated[float, typer.Option(help="Passes over the examples.")] = 3.0,
    learning_rate: Annotated[float, typer.Option(help="Peak learning rate.")] = 3e-2,
    helpful: Annotated[
        int,
        typer.Option(
            help="Also train on the model's own answers to this many built-in `helpful` prompts."
        ),
    ] = 0,
) -> None:
    """Learn soft-prompt principle embeddings (prompt tuning) from the compliant examples."""
    from cai2.critique import load_prompt_set
    from cai2.embeddings._directions import constitution_principles
    from cai2.embeddings._soft import SoftPromptSettings, own_answer_rows, train_soft_prompt
    from cai2.pipeline._sl import hf_model_directory

    train_split = split_examples(load_examples(data))["train"]
    ids = principle or sorted({e.principle for e in train_split})
    name, _version, statements = constitution_principles(constitution, ids)
    settings = SoftPromptSettings(
        virtual_tokens=virtual_tokens, epochs=epochs, learning_rate=learning_rate
    )
    directions = default_embeddings_path(constitution, model)  # …/embeddings/<stem>.npz
    target = out or directions.parent.parent / "soft-prompts" / directions.stem
    extra: list[dict[str, Any]] = []
    if helpful:
        with console.status(f"answering {helpful} helpful prompts with {model}"):
            prompts = [item.prompt for item in load_prompt_set("helpful")[:helpful]]
            extra = own_answer_rows(_load_model(model), prompts)
    with _progress("prompt tuning") as bar:
        task = bar.add_task("steps", total=None)
        result = train_soft_prompt(
            hf_model_directory(model),
            train_split,
            target,
            statements=statements,
            constitution=name,
            settings=settings,
            extra_rows=extra,
            progress=lambda step, total: bar.update(task, completed=step, total=total),
        )
    console.print(
        f"{result.examples - len(extra)} compliant examples + {len(extra)} own answers, "
        f"{result.steps} steps, final loss "
        f"{result.final_loss:.3f}; adapter in {result.output}",
        highlight=False,
    )


@embed_app.command("soft")
def soft_command(
    adapter: Annotated[Path, typer.Argument(help="Adapter folder from `cai2 embed soft-train`.")],
    prompt: Annotated[list[str], typer.Option("--prompt", help="Prompt; repeat for several.")],
    model: Annotated[
        str | None, typer.Option("--model", help="Model spec (default: the one it was tuned on).")
    ] = None,
    max_tokens: Annotated[int, typer.Option(help="Tokens per reply.")] = 64,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Generate each prompt's reply without and with the soft prompt in front."""
    from cai2.embeddings._soft import read_soft_prompt_meta, soft_prompted
    from cai2.models import GenerationParams, Message

    meta = read_soft_prompt_meta(adapter)
    loaded = _load_model(model or f"hf:{meta['base_model']}")
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, seed=0)
    conversations = [[Message(role="user", content=p)] for p in prompt]
    plain = [g.text for g in loaded.generate(conversations, params)]
    with soft_prompted(loaded, adapter):
        tuned = [g.text for g in loaded.generate(conversations, params)]
    rows = [
        {"prompt": p, "off": a, "soft": b} for p, a, b in zip(prompt, plain, tuned, strict=True)
    ]
    if as_json:
        typer.echo(json.dumps({"adapter": str(adapter), **meta, "replies": rows}, indent=2))
        return
    for row in rows:
        console.print(f"[bold]prompt:[/bold] {row['prompt']}", highlight=False)
        console.print(f"[bold]off:[/bold] {row['off']}", highlight=False)
        console.print(f"[bold]soft prompt:[/bold] {row['soft']}\n", highlight=False)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def register(app: typer.Typer) -> None:
    """Add the `embed` command group to the cai2 app."""
    app.add_typer(embed_app, name="embed")
