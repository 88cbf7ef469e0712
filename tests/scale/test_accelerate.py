"""Accelerate configs from cai2, and a real 2-process `accelerate launch` of TRL SFT on the CPU."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cai2.cli import main
from cai2.errors import ConfigError, DataError
from cai2.scale._accelerate import accelerate_config, read_examples


def test_config_for_one_and_many_machines() -> None:
    single = accelerate_config(4)
    assert single["distributed_type"] == "MULTI_GPU" and single["num_processes"] == 4
    assert single["num_machines"] == 1 and "main_process_ip" not in single
    assert accelerate_config(1)["distributed_type"] == "NO"
    multi = accelerate_config(8, num_machines=2, machine_rank=1, main_process_ip="10.0.0.1")
    assert (multi["machine_rank"], multi["main_process_ip"]) == (1, "10.0.0.1")
    with pytest.raises(ConfigError, match="multiple of `num_machines`"):
        accelerate_config(3, num_machines=2, main_process_ip="h")
    with pytest.raises(ConfigError, match="main_process_ip"):
        accelerate_config(4, num_machines=2)
    with pytest.raises(ConfigError, match="machine_rank"):
        accelerate_config(4, num_machines=2, machine_rank=2, main_process_ip="h")


def test_bad_examples_are_data_errors(tmp_path: Path) -> None:
    path = tmp_path / "sft.jsonl"
    path.write_text('{"prompt": []}\n')
    with pytest.raises(DataError, match=r"sft\.jsonl:1: each row needs"):
        read_examples(path)
    with pytest.raises(DataError, match="not found"):
        read_examples(tmp_path / "missing.jsonl")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_accelerate_launch_trains_in_two_processes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "accelerate.yaml"
    port = str(free_port())
    assert (
        main(
            [
                "scale",
                "accelerate-config",
                "-n",
                "2",
                "--main-process-port",
                port,
                "-o",
                str(config),
            ]
        )
        == 0
    )
    assert "accelerate launch --config_file" in capsys.readouterr().out
    written = yaml.safe_load(config.read_text())
    assert written["num_processes"] == 2 and written["distributed_type"] == "MULTI_GPU"

    examples = tmp_path / "sft.jsonl"
    with examples.open("w") as out:
        for i in range(8):
            row = {
                "prompt": [{"role": "user", "content": f"Question {i}?"}],
                "completion": [{"role": "assistant", "content": f"Answer number {i}."}],
            }
            out.write(json.dumps(row) + "\n")
    output = tmp_path / "trained"
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [
        str(accelerate), "launch", "--config_file", str(config),
        "-m", "cai2.scale.train_sft",
        "--model", "hf:tiny", "--examples", str(examples), "--output", str(output),
        "--max-steps", "2", "--batch-size", "2", "--lora-r", "4",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(
        command, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = json.loads((output / "result.json").read_text())
    assert result["world_size"] == 2 and result["steps"] == 2
    assert len(result["losses"]) == 2 and all(loss == loss for loss in result["losses"])
    assert result["changed_tensors"] > 0  # the merged weights moved
    assert (output / "model" / "model.safetensors").is_file()
    # 8 examples, 2 per process per step, 2 processes: two steps are one full epoch.
    assert result["epochs"] == pytest.approx(1.0)
    assert "trained 2 steps on 2 process(es)" in finished.stdout
