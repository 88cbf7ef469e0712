"""Training at scale: accelerate configs for data-parallel TRL training, and the training entry.

``cai2 scale accelerate-config --num-processes 4 -o accelerate.yaml`` writes a config for 4 GPUs on
one machine (DDP). ``accelerate launch --config_file accelerate.yaml -m cai2.scale.train_sft ...``
then runs TRL's SFT with LoRA in every process; each process trains on its share of every batch and
the gradients are averaged. Where there is no GPU, the trainer runs on the CPU and the processes
talk over gloo, which is how the tests run the same path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import yaml

from cai2.errors import ConfigError, DataError
from cai2.store import atomic_write_json, atomic_write_text
from cai2.store._files import jsonl_objects

MixedPrecision = Literal["no", "fp16", "bf16"]


def accelerate_config(
    num_processes: int,
    *,
    num_machines: int = 1,
    machine_rank: int = 0,
    main_process_ip: str | None = None,
    main_process_port: int = 29500,
    mixed_precision: MixedPrecision = "no",
) -> dict[str, Any]:
    """An accelerate config for DDP over ``num_processes`` processes (GPUs) in total.

    Args:
        num_processes: Processes across all machines, usually one per GPU.
        num_machines: Machines taking part; each runs ``num_processes // num_machines``.
        machine_rank: This machine's index (0 is the main one).
        main_process_ip: Address of machine 0; needed when ``num_machines > 1``.
        main_process_port: Port machine 0 listens on for the process group.
        mixed_precision: ``no``, ``fp16`` or ``bf16`` (GPUs with bf16 support).

    Raises:
        ConfigError: for inconsistent numbers.
    """
    if num_processes < 1 or num_machines < 1:
        raise ConfigError("`num_processes` and `num_machines` must be at least 1")
    if num_processes % num_machines:
        raise ConfigError(
            f"`num_processes` ({num_processes}) must be a multiple of `num_machines` "
            f"({num_machines}): every machine runs the same number of processes"
        )
    if not 0 <= machine_rank < num_machines:
        raise ConfigError(f"`machine_rank` must be in 0..{num_machines - 1}, not {machine_rank}")
    if num_machines > 1 and not main_process_ip:
        raise ConfigError("a multi-machine config needs `main_process_ip` (machine 0's address)")
    config: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE",
        "distributed_type": "MULTI_GPU" if num_processes > 1 else "NO",
        "num_processes": num_processes,
        "num_machines": num_machines,
        "machine_rank": machine_rank,
        "main_process_port": main_process_port,
        "mixed_precision": mixed_precision,
        "use_cpu": False,
        "gpu_ids": "all",
        "rdzv_backend": "static",
        "same_network": True,
        "main_training_function": "main",
        "downcast_bf16": "no",
        "debug": False,
    }
    if main_process_ip:
        config["main_process_ip"] = main_process_ip
    return config


def write_accelerate_config(path: str | Path, num_processes: int, **options: Any) -> Path:
    """Write :func:`accelerate_config` as YAML to ``path`` (atomically); returns the path."""
    target = Path(path)
    text = yaml.safe_dump(accelerate_config(num_processes, **options), sort_keys=False)
    return atomic_write_text(target, "# written by `cai2 scale accelerate-config`\n" + text)


def read_examples(path: str | Path) -> list[dict[str, Any]]:
    """Prompt–completion rows from a JSONL file such as the `sl` stage's ``sft.jsonl``.

    Raises:
        DataError: if the file is missing, malformed or empty.
    """
    source = Path(path)
    if not source.is_file():
        raise DataError(f"SFT examples file {source} not found")
    rows: list[dict[str, Any]] = []
    for number, row in jsonl_objects(source.read_text(encoding="utf-8"), str(source)):
        if "prompt" not in row or "completion" not in row:
            raise DataError(f"{source}:{number}: each row needs `prompt` and `completion`")
        rows.append({"prompt": row["prompt"], "completion": row["completion"]})
    if not rows:
        raise DataError(f"{source}: no SFT examples")
    return rows


def train_sft_distributed(
    model: str,
    examples: str | Path,
    output: str | Path,
    *,
    max_steps: int = -1,
    batch_size: int = 8,
    lora_r: int = 16,
    merge: bool = True,
) -> dict[str, Any]:
    """LoRA SFT in every process of an ``accelerate launch``; process 0 saves the result.

    Writes ``<output>/result.json`` (``world_size``, ``steps``, ``losses``, ``changed_tensors``,
    ``epochs``, ``output``) from process 0 and returns the same dict in every process.
    """
    import torch.distributed as dist

    from cai2.pipeline._sl import SFTSettings, hf_model_directory, train_sft

    rank = int(os.environ.get("RANK", "0"))
    rows = read_examples(examples)
    settings = SFTSettings(max_steps=max_steps, batch_size=batch_size, lora_r=lora_r, merge=merge)
    target = Path(output)
    # Every process runs the same training code; only process 0's copy of the model is kept.
    scratch = None if rank == 0 else Path(tempfile.mkdtemp(prefix=f"cai2-rank{rank}-"))
    try:
        result = train_sft(hf_model_directory(model), rows, scratch or target, settings)
        world_size = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    summary = {
        "world_size": world_size,
        "rank": rank,
        "steps": result.steps,
        "losses": result.losses,
        "changed_tensors": result.changed_tensors,
        "epochs": result.epochs,
        "output": str(target / result.output.name),
    }
    if rank == 0:
        atomic_write_json(target / "result.json", summary)
    return summary
