"""``python -m cai2.scale.train_sft``: `cai2 scale train-sft`, for ``accelerate launch -m``."""

from __future__ import annotations

import typer

from cai2.scale._cli import train_sft_command


def main() -> None:
    """Run the command with the process's arguments."""
    typer.run(train_sft_command)


if __name__ == "__main__":
    main()
