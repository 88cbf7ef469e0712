"""`cai2 scale`: accelerate configs for multi-GPU training, distributed SFT, endpoint checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

scale_app = typer.Typer(
    help="Scale out: accelerate configs for multi-GPU training, endpoint pool health.",
    no_args_is_help=True,
)
console = Console()


@scale_app.command("accelerate-config")
def accelerate_config_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the YAML.")] = Path(
        "accelerate.yaml"
    ),
    num_processes: Annotated[
        int, typer.Option("--num-processes", "-n", min=1, help="Processes (GPUs) in total.")
    ] = 2,
    num_machines: Annotated[int, typer.Option("--num-machines", min=1)] = 1,
    machine_rank: Annotated[int, typer.Option("--machine-rank", min=0)] = 0,
    main_process_ip: Annotated[
        str | None, typer.Option("--main-process-ip", help="Machine 0's address (multi-node).")
    ] = None,
    main_process_port: Annotated[int, typer.Option("--main-process-port")] = 29500,
    mixed_precision: Annotated[
        str, typer.Option("--mixed-precision", help="`no`, `fp16` or `bf16`.")
    ] = "no",
) -> None:
    """Write an accelerate config for data-parallel (DDP) TRL training."""
    from cai2.errors import ConfigError
    from cai2.scale._accelerate import write_accelerate_config

    if mixed_precision not in ("no", "fp16", "bf16"):
        raise ConfigError(f"`--mixed-precision` must be no, fp16 or bf16, not `{mixed_precision}`")
    path = write_accelerate_config(
        output,
        num_processes,
        num_machines=num_machines,
        machine_rank=machine_rank,
        main_process_ip=main_process_ip,
        main_process_port=main_process_port,
        mixed_precision=mixed_precision,
    )
    console.print(f"wrote {path}")
    console.print(
        f"train with: accelerate launch --config_file {path} -m cai2.scale.train_sft "
        "--model hf:smollm2-135m --examples sft.jsonl --output trained"
    )


@scale_app.command("train-sft")
def train_sft_command(
    examples: Annotated[
        Path, typer.Option("--examples", help="JSONL of prompt/completion rows (sft.jsonl).")
    ],
    output: Annotated[Path, typer.Option("--output", help="Folder for model/ and result.json.")],
    model: Annotated[str, typer.Option("--model", help="An `hf:` spec.")] = "hf:smollm2-135m",
    max_steps: Annotated[int, typer.Option("--max-steps", min=-1)] = -1,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Per process.")] = 8,
    lora_r: Annotated[int, typer.Option("--lora-r", min=1)] = 16,
) -> None:
    """LoRA SFT; run it under `accelerate launch` to train in several processes at once."""
    from cai2.scale._accelerate import train_sft_distributed

    summary = train_sft_distributed(
        model, examples, output, max_steps=max_steps, batch_size=batch_size, lora_r=lora_r
    )
    if summary["rank"] == 0:
        console.print(
            f"trained {summary['steps']} steps on {summary['world_size']} process(es); "
            f"model in {summary['output']}"
        )


@scale_app.command("check-endpoints")
def check_endpoints_command(
    urls: Annotated[list[str], typer.Argument(help="Base URLs, e.g. http://127.0.0.1:8000/v1.")],
) -> None:
    """Probe each endpoint's `GET /models` and show what it serves (exit 1 if none answers)."""
    from cai2.errors import ModelError
    from cai2.scale._pool import EndpointPool

    pool = EndpointPool(urls, model_name="unused")
    answers = pool.check_health()
    for url, names in answers.items():
        state = f"up, serves {', '.join(names)}" if names is not None else "DOWN"
        console.print(f"{url}: {state}")
    pool.close()
    if not any(names is not None for names in answers.values()):
        raise ModelError("no endpoint answered")


def register(app: typer.Typer) -> None:
    """Add `cai2 scale` to the cai2 app."""
    app.add_typer(scale_app, name="scale")
