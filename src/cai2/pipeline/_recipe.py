"""Recipes: a YAML list of stages, each with its own validated config.

```yaml
name: default                 # also the run id unless `run_id` is given
model: hf:smollm2-135m        # spec string of the model the stages use
stages:
  - stage: generate           # a name from cai2.pipeline.STAGES
    config:                   # validated by that stage's config model
      prompts: default
      params: {max_tokens: 48}
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from cai2.config import (
    KeyPath,
    StrictModel,
    YamlDocument,
    format_key,
    read_yaml,
    validate_with_location,
)
from cai2.errors import ConfigError
from cai2.models import DEFAULT_GENERATION_SPEC
from cai2.pipeline._context import StageDefinition
from cai2.pipeline._stages import STAGES
from cai2.store import config_hash

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class StageEntry(StrictModel):
    """One step of a recipe."""

    stage: str = Field(description="Which stage to run: a key of `cai2.pipeline.STAGES`.")
    id: str | None = Field(
        None,
        pattern=_ID_PATTERN,
        description=(
            "Name of this step within the run (its artifact folder); default: the stage name. "
            "Needed when a recipe runs the same stage twice."
        ),
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="Settings of the stage, checked by the stage's own model."
    )


class Recipe(StrictModel):
    """A named list of stages run in order against one model."""

    name: str = Field(
        pattern=_ID_PATTERN,
        description="Name of the recipe (letters, digits, `.`, `_`, `-`); the default run id.",
    )
    description: str = Field("", description="Free text shown nowhere but in the saved config.")
    model: str = Field(
        DEFAULT_GENERATION_SPEC,
        description="Model spec the stages use, e.g. `hf:smollm2-135m` or `openai:URL#model`.",
    )
    run_id: str | None = Field(
        None,
        pattern=_ID_PATTERN,
        description=(
            "Run directory name; default: `name`. Re-running with the same id resumes that run."
        ),
    )
    runs_dir: Path | None = Field(
        None,
        description=(
            "Folder of run directories (relative to the current directory); "
            "default: $CAI2_RUNS_DIR or ./runs. `--runs-dir` overrides it."
        ),
    )
    stages: list[StageEntry] = Field(min_length=1, description="The steps, run in order.")


@dataclass(frozen=True)
class PlannedStage:
    """A recipe step with its config validated and hashed."""

    id: str
    kind: str
    position: int
    definition: StageDefinition
    config: BaseModel
    config_hash: str

    def resolved(self) -> dict[str, Any]:
        """The step as saved in the run's config: defaults filled in."""
        return {
            "id": self.id,
            "stage": self.kind,
            "config": self.config.model_dump(mode="json"),
            "config_hash": self.config_hash,
        }


@dataclass(frozen=True)
class LoadedRecipe:
    """A validated recipe plus where it came from (for error locations and relative paths)."""

    recipe: Recipe
    stages: tuple[PlannedStage, ...]
    file: Path | None
    document: YamlDocument | None

    @property
    def base_dir(self) -> Path:
        """Folder relative paths in stage configs start from: the recipe's, else the cwd."""
        return self.file.parent.resolve() if self.file is not None else Path.cwd()

    def resolved_config(self) -> dict[str, Any]:
        """The config saved with the run: the recipe with every stage's defaults filled in."""
        return {
            "name": self.recipe.name,
            "description": self.recipe.description,
            "model": self.recipe.model,
            "recipe_file": str(self.file) if self.file is not None else None,
            "stages": [stage.resolved() for stage in self.stages],
        }

    def locate(self, path: KeyPath) -> dict[str, Any]:
        """``file``/``line``/``key`` keyword arguments for a ConfigError about ``path``."""
        return {
            "file": self.file,
            "line": self.document.line_of(path) if self.document is not None else None,
            "key": format_key(path),
        }


def load_recipe(source: str | Path | Recipe) -> LoadedRecipe:
    """Read (if needed) and validate a recipe and every stage config in it.

    Args:
        source: Path of a recipe YAML file, or a :class:`Recipe` built in code.

    Raises:
        ConfigError: for the first problem, naming file, line and key path, e.g.
            ``recipe.yaml:7 at `stages.0.config.batch_size`: Input should be a valid integer``.
    """
    if isinstance(source, Recipe):
        recipe, document, file = source, None, None
    else:
        file = Path(source)
        document = read_yaml(file)
        if not isinstance(document.data, dict):
            raise ConfigError(
                "a recipe must be a mapping with `name`, `model` and `stages`", file=file, line=1
            )
        recipe = document.validate(Recipe)
    planned: list[PlannedStage] = []
    seen: dict[str, int] = {}
    for position, entry in enumerate(recipe.stages):
        where = LoadedRecipe(recipe, (), file, document)
        definition = STAGES.get(entry.stage)
        if definition is None:
            raise ConfigError(
                f"unknown stage `{entry.stage}`; known stages: {', '.join(sorted(STAGES))}",
                **where.locate(("stages", position, "stage")),
            )
        stage_id = entry.id or entry.stage
        if stage_id in seen:
            raise ConfigError(
                f"stage id `{stage_id}` is used by stages {seen[stage_id]} and {position}; "
                "give one of them a distinct `id`",
                **where.locate(("stages", position)),
            )
        seen[stage_id] = position
        config = validate_with_location(
            definition.config_model, entry.config, document, root=("stages", position, "config")
        )
        hashed = {
            "stage": entry.stage,
            "model": recipe.model,
            "config": config.model_dump(mode="json"),
        }
        planned.append(
            PlannedStage(
                id=stage_id,
                kind=entry.stage,
                position=position,
                definition=definition,
                config=config,
                config_hash=config_hash(hashed),
            )
        )
    return LoadedRecipe(recipe, tuple(planned), file, document)
