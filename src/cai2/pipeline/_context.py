"""What a pipeline stage receives: run and stage handles, the recipe's model, a progress hook."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cai2.models import ChatModel
from cai2.store import Run, Stage

StageMetrics = Mapping[str, float | int | str | bool | None]
ModelLoader = Callable[[str], ChatModel]


@dataclass(frozen=True)
class StageProgress:
    """A progress report of one stage: ``completed`` of ``total`` items are finished."""

    stage: str
    completed: int
    total: int


ProgressCallback = Callable[[StageProgress], None]


@dataclass
class StageContext:
    """Everything a stage's run function may use besides its own config.

    Attributes:
        run: The run being executed (config, log, metrics).
        stage: This stage's handle; its artifact folder is ``stage.dir``.
        model_spec: The recipe's model spec string.
        base_dir: Folder relative paths in the stage config are resolved against (the recipe's).
        load_model: Returns the model for a spec; models are cached across the run's stages.
        on_progress: Receives progress reports; may raise (e.g. KeyboardInterrupt) to stop the run.
    """

    run: Run
    stage: Stage
    model_spec: str
    base_dir: Path
    load_model: ModelLoader
    on_progress: ProgressCallback | None = None

    def progress(self, completed: int, total: int) -> None:
        """Report that ``completed`` of ``total`` items of this stage are finished."""
        if self.on_progress is not None:
            self.on_progress(StageProgress(self.stage.name, completed, total))

    def model_for(self, spec: str | None) -> str:
        """The model spec a stage should use: its own ``spec``, or the recipe's when ``None``.

        ``@<stage id>`` names the model an earlier stage of this run produced (the ``model_out``
        metric of ``sl``, ``rl`` and ``redteam``), so stages can be chained in one recipe. A run
        folder moved or copied since that stage ran still finds the model inside it.

        Raises:
            ConfigError: when the referenced stage has not run yet or produced no model.
        """
        if spec is None:
            return self.model_spec
        if not spec.startswith("@"):
            return spec
        from cai2.errors import ConfigError

        name = spec[1:]
        stages = self.run.metrics().get("stages", {})
        produced = stages.get(name, {}).get("model_out")
        if not produced:
            known = ", ".join(f"@{k}" for k, v in stages.items() if v.get("model_out")) or "none"
            raise ConfigError(
                f"`{spec}` names no model: stage `{name}` has not finished earlier in this run or "
                f"produced no model (models so far: {known})",
                key="model",
            )
        spec = str(produced)
        if spec.startswith("hf:"):  # the run folder may have moved since that stage ran
            from cai2.store import relocated

            spec = f"hf:{relocated(spec[3:], self.run.dir / 'artifacts')}"
        return spec

    def resolve_path(self, path: str | Path) -> Path:
        """``path`` as an absolute path; relative paths are taken from :attr:`base_dir`."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate).resolve()


@dataclass(frozen=True)
class StageDefinition:
    """A pipeline stage: the pydantic model of its config and the function that runs it.

    ``run(context, config)`` does the work, writes artifacts into ``context.stage.dir`` so that a
    re-run can skip finished items, and returns the stage's metrics.
    """

    config_model: type[BaseModel]
    run: Callable[[StageContext, Any], StageMetrics]
    description: str
