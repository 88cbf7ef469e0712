"""Run a recipe's stages in order, recording each in the run store, resuming where a run stopped.

Run identity: a recipe runs into the run whose id is ``--run-id``, else the recipe's ``run_id``,
else its ``name``. Running the same recipe again therefore reopens the same run directory and
continues: finished stages are skipped and the first unfinished stage resumes (the ``generate``
stage skips the items already written). If a stage that has already started now has a different
config (its hash differs), the run refuses with a ConfigError pointing at that stage;
``restart=True`` deletes the old run first, and a new run id starts a separate run. Stages added to
the end of a recipe simply run. One difference is allowed: settings a newer cai2 added to a stage
(absent from the run's saved config) that the recipe leaves at their defaults, so that upgrading
does not strand a run half done; the run log notes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from cai2.errors import Cai2Error, ConfigError, StoreError
from cai2.models import ChatModel
from cai2.pipeline._context import ModelLoader, ProgressCallback, StageContext
from cai2.pipeline._recipe import LoadedRecipe, Recipe, load_recipe
from cai2.store import Run, RunStore, Status, check_run_id


def run_recipe(
    recipe: str | Path | Recipe | LoadedRecipe,
    *,
    runs_dir: str | Path | None = None,
    index_url: str | None = None,
    run_id: str | None = None,
    restart: bool = False,
    on_progress: ProgressCallback | None = None,
    model_loader: ModelLoader | None = None,
) -> Run:
    """Run (or resume) every stage of ``recipe`` and return the finished run.

    Args:
        recipe: A recipe file, a :class:`Recipe`, or a recipe already loaded with
            :func:`load_recipe`.
        runs_dir: Folder of run directories; default: the recipe's ``runs_dir``, then
            ``$CAI2_RUNS_DIR``, then ``./runs``.
        index_url: SQLAlchemy URL of the run index (default: SQLite in ``runs_dir``).
        run_id: Run to create or resume; default: the recipe's ``run_id`` or ``name``.
        restart: Delete an existing run with this id and start from scratch.
        on_progress: Called with a :class:`StageProgress` as items finish; raising from it (e.g.
            KeyboardInterrupt) stops the run with every finished item kept.
        model_loader: Builds a model from a spec; default :func:`cai2.models.load_model`.

    Raises:
        ConfigError: for an invalid recipe, or a config that changed under an existing run.
        StoreError: if the run is being run by another process.
        KeyboardInterrupt: passed on after the stage is marked failed ("interrupted").
    """
    loaded = recipe if isinstance(recipe, LoadedRecipe) else load_recipe(recipe)
    spec = loaded.recipe
    the_run_id = check_run_id(run_id or spec.run_id or spec.name)
    store = RunStore(runs_dir or spec.runs_dir, url=index_url)
    # The lock lives beside (not inside) the run directory so it also guards deletion on restart.
    lock = FileLock(str(store.root / f".{the_run_id}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise StoreError(
            f"run `{the_run_id}` is being run by another process (lock {lock.lock_file}); "
            "wait for it to finish or use another run id"
        ) from exc
    try:
        run = _open_run(store, loaded, the_run_id, restart)
        _run_stages(run, loaded, on_progress, model_loader or _default_loader())
    finally:
        lock.release()
    return run


def _default_loader() -> ModelLoader:
    from cai2.models import load_model

    return lambda spec: load_model(spec)


def _open_run(store: RunStore, loaded: LoadedRecipe, run_id: str, restart: bool) -> Run:
    config = loaded.resolved_config()
    if restart:
        store.delete_run(run_id)  # also removes a directory left without an index row
    run = store.find_run(run_id)
    if run is None:
        return store.create_run(loaded.recipe.name, config, run_id=run_id)
    existing = {record.name: record for record in run.stages()}
    for planned in loaded.stages:
        record = existing.get(planned.id)
        if record is None or record.status is Status.PENDING:
            continue
        if record.kind != planned.kind or record.config_hash != planned.config_hash:
            added = _added_defaults(run.config, loaded, planned.id)
            if added is not None:
                run.log(
                    f"stage `{planned.id}`: settings new since the run started, at their "
                    f"defaults: {', '.join(added)}; resuming"
                )
                run.stage(planned.id).set_config_hash(planned.config_hash)
                continue
            raise ConfigError(
                f"stage `{planned.id}` of run `{run_id}` ({run.dir}) already ran with a "
                f"different config (hash {record.config_hash[:8]}, now "
                f"{planned.config_hash[:8]}); rerun with --restart to discard that run, or pass "
                "a new --run-id to keep it",
                **loaded.locate(("stages", planned.position, "config")),
            )
    run.set_config(config)
    return run


def _added_defaults(saved: dict[str, Any], loaded: LoadedRecipe, stage_id: str) -> list[str] | None:
    """Settings of stage ``stage_id`` missing from the ``saved`` run config, if that is all.

    Returns the dotted keys that the recipe's config has and the saved one lacks, when each is at
    its default and every other key is unchanged (the recipe's model too); else ``None``.
    """
    planned = next(stage for stage in loaded.stages if stage.id == stage_id)
    old = next(
        (s for s in saved.get("stages", []) if isinstance(s, dict) and s.get("id") == stage_id),
        None,
    )
    if old is None or saved.get("model") != loaded.recipe.model or old.get("stage") != planned.kind:
        return None
    full = planned.config.model_dump(mode="json")
    non_default = planned.config.model_dump(mode="json", exclude_defaults=True)
    added: list[str] = []

    def same(before: Any, now: Any, set_now: Any, path: str) -> bool:
        if not (isinstance(before, dict) and isinstance(now, dict)):
            return bool(before == now)
        if set(before) - set(now):
            return False  # a setting was removed
        explicit = set_now if isinstance(set_now, dict) else {}
        for key, value in now.items():
            where = f"{path}{key}"
            if key in before:
                if not same(before[key], value, explicit.get(key), f"{where}."):
                    return False
            elif key in explicit:
                return False  # new, and the recipe sets it away from its default
            else:
                added.append(where)
        return True

    return added if same(old.get("config"), full, non_default, "") and added else None


def _run_stages(
    run: Run, loaded: LoadedRecipe, on_progress: ProgressCallback | None, loader: ModelLoader
) -> None:
    models: dict[str, ChatModel] = {}

    def load_cached(spec: str) -> ChatModel:
        if spec not in models:
            run.log(f"loading model {spec}")
            models[spec] = loader(spec)
        return models[spec]

    run.set_status(Status.RUNNING)
    for planned in loaded.stages:
        stage = run.stage(
            planned.id,
            kind=planned.kind,
            position=planned.position,
            config_hash=planned.config_hash,
        )
        if stage.status is Status.DONE:
            run.log(f"stage `{planned.id}` already done; skipped")
            continue
        stage.start(planned.config_hash)
        context = StageContext(
            run=run,
            stage=stage,
            model_spec=loaded.recipe.model,
            base_dir=loaded.base_dir,
            load_model=load_cached,
            on_progress=on_progress,
        )
        try:
            metrics = planned.definition.run(context, planned.config)
        except KeyboardInterrupt:
            stage.fail("interrupted; rerun to resume")
            run.set_status(Status.FAILED, f"interrupted in stage `{planned.id}`")
            raise
        except Cai2Error as exc:
            stage.fail(str(exc))
            run.set_status(Status.FAILED, f"stage `{planned.id}`: {exc}")
            raise
        except Exception as exc:
            stage.fail(f"{type(exc).__name__}: {exc}")
            run.set_status(Status.FAILED, f"stage `{planned.id}`: {type(exc).__name__}: {exc}")
            raise
        stage.finish(metrics)
    run.set_status(Status.DONE)
