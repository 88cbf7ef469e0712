"""Executors: map a piece of work over shards of items, here or on a Ray cluster.

A :class:`ShardWork` is a picklable object with ``setup()`` (run once per worker, e.g. to load a
model) and ``__call__(shard) -> results``. An executor runs it over shards with a bounded number of
shards in flight (back-pressure: the driver never holds more than ``max_in_flight`` unfinished
shards, however many items there are) and retries a shard whose worker raised or died. Results come
back shard by shard through :meth:`Executor.map_shards`; :func:`run_items` writes them to a
resumable JSONL writer, so each item's result is written exactly once and a re-run skips finished
items.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from cai2.errors import ConfigError, ModelError
from cai2.store import JsonlWriter

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class ShardWork(Protocol[ItemT, ResultT]):
    """What an executor runs: ``setup()`` once per worker, then ``work(shard)`` per shard.

    ``work(shard)`` returns one result per item, in order. The object is pickled to Ray workers,
    so keep heavy state (models) out of ``__init__`` and build it in ``setup``.
    """

    def setup(self) -> None:
        """Prepare the worker (load models, open clients); called before the first shard."""
        ...

    def __call__(self, shard: list[ItemT]) -> list[ResultT]:
        """Process one shard."""
        ...


@dataclass
class ExecutorStats:
    """What an executor did during its last :meth:`Executor.map_shards`."""

    shards: int = 0
    retries: int = 0
    worker_restarts: int = 0
    max_in_flight_seen: int = 0
    errors: list[str] = field(default_factory=list)


class Executor(Protocol):
    """Runs a :class:`ShardWork` over shards (:class:`LocalExecutor`, :class:`RayExecutor`)."""

    name: str
    stats: ExecutorStats

    def map_shards(
        self, work: ShardWork[ItemT, ResultT], shards: Sequence[list[ItemT]]
    ) -> Iterator[tuple[int, list[ResultT]]]:
        """Yield ``(shard index, results)`` as shards finish (in any order)."""
        ...

    def close(self) -> None:
        """Release workers."""
        ...


def _check_results(index: int, shard: Sequence[Any], results: Any) -> list[Any]:
    if not isinstance(results, list) or len(results) != len(shard):
        got = len(results) if isinstance(results, list) else type(results).__name__
        raise ModelError(f"shard {index}: the work returned {got} results for {len(shard)} items")
    return results


def _give_up(index: int, attempts: int, problem: str) -> ModelError:
    return ModelError(
        f"shard {index} failed {attempts} times (last: {problem}); finished shards are kept, "
        "rerun to resume"
    )


class LocalExecutor:
    """Runs shards in this process, one after another, retrying a shard that raises.

    Args:
        max_retries: Further attempts of a shard after it raised.
    """

    name = "local"

    def __init__(self, *, max_retries: int = 2) -> None:
        if max_retries < 0:
            raise ConfigError("`max_retries` must be 0 or more")
        self.max_retries = max_retries
        self.stats = ExecutorStats()
        self._ready: set[int] = set()

    def map_shards(
        self, work: ShardWork[ItemT, ResultT], shards: Sequence[list[ItemT]]
    ) -> Iterator[tuple[int, list[ResultT]]]:
        """Yield ``(index, results)`` for each shard in order."""
        self.stats = ExecutorStats(max_in_flight_seen=1 if shards else 0)
        if id(work) not in self._ready:
            work.setup()
            self._ready.add(id(work))
        for index, shard in enumerate(shards):
            attempt = 0
            while True:
                try:
                    results = _check_results(index, shard, work(list(shard)))
                    break
                except Exception as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                    self.stats.errors.append(problem)
                    if attempt >= self.max_retries:
                        raise _give_up(index, attempt + 1, problem) from exc
                    attempt += 1
                    self.stats.retries += 1
            self.stats.shards += 1
            yield index, results

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ShardActor(Generic[ItemT, ResultT]):
    """The Ray actor body: holds one set-up copy of the work (e.g. one model replica)."""

    def __init__(self, work: ShardWork[ItemT, ResultT]) -> None:
        self.work = work
        self.work.setup()

    def pid(self) -> int:
        return os.getpid()

    def run(self, shard: list[ItemT]) -> list[ResultT]:
        return self.work(shard)


def ensure_ray(
    *, address: str | None = None, num_cpus: int | None = None, **init_options: Any
) -> Any:
    """Import Ray and connect to (or start) a Ray runtime; returns the ``ray`` module.

    Connects to ``address`` (or ``$RAY_ADDRESS``) when given, else starts a local runtime with
    ``num_cpus`` CPUs. A runtime that is already up in this process is reused.

    Raises:
        ConfigError: if Ray is not installed.
    """
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is a dependency
        raise ConfigError("the Ray executor needs Ray: `pip install ray==2.60.0`") from exc
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        options: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "ignore_reinit_error": True,
            **init_options,
        }
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=num_cpus, **options)
    return ray


class RayExecutor:
    """Runs shards on Ray actors: ``workers`` replicas of the work, each set up once.

    Each actor takes one shard at a time; at most ``max_in_flight`` shards are submitted at once
    (default: one per worker). A shard whose task raised is retried; a shard whose actor died (its
    process was killed, or ran out of memory) is retried on a fresh actor that replaces the dead
    one.

    Args:
        workers: Number of actors (model replicas).
        num_cpus: CPUs Ray reserves for each actor (also the thread count torch uses there).
        max_retries: Further attempts of a shard after a failure.
        max_in_flight: Shards submitted and not yet collected; default ``workers``.
        address: Ray cluster to join (default ``$RAY_ADDRESS``, else a local runtime).
        actor_options: More ``ray.remote`` options for the actors (e.g. ``{"num_gpus": 1}``).
    """

    name = "ray"

    def __init__(
        self,
        *,
        workers: int = 2,
        num_cpus: float = 1,
        max_retries: int = 2,
        max_in_flight: int | None = None,
        address: str | None = None,
        actor_options: dict[str, Any] | None = None,
    ) -> None:
        if workers < 1:
            raise ConfigError("`workers` of the Ray executor must be at least 1")
        if max_retries < 0:
            raise ConfigError("`max_retries` must be 0 or more")
        self.workers = workers
        self.max_retries = max_retries
        self.max_in_flight = max_in_flight or workers
        if self.max_in_flight < 1:
            raise ConfigError("`max_in_flight` must be at least 1")
        self.ray = ensure_ray(address=address)
        options = {"num_cpus": num_cpus, "max_restarts": 0, "max_task_retries": 0}
        options.update(actor_options or {})
        self._actor_class = self.ray.remote(**options)(_ShardActor)
        self._actors: list[Any] = []
        self._work_key: int | None = None
        self.stats = ExecutorStats()
        self.on_submit: Callable[[int, int], None] | None = None
        """Test and monitoring hook: called as ``on_submit(shard index, actor slot)``."""

    def actor_pids(self) -> list[int]:
        """Process ids of the live actors (for monitoring and fault tests)."""
        return [int(pid) for pid in self.ray.get([actor.pid.remote() for actor in self._actors])]

    def start(self, work: ShardWork[Any, Any]) -> None:
        """Create the actors for ``work`` now (else the first :meth:`map_shards` does)."""
        if self._work_key == id(work) and self._actors:
            return
        self._kill_actors()
        self._actors = [self._actor_class.remote(work) for _ in range(self.workers)]
        self._work_key = id(work)

    def map_shards(
        self, work: ShardWork[ItemT, ResultT], shards: Sequence[list[ItemT]]
    ) -> Iterator[tuple[int, list[ResultT]]]:
        """Yield ``(index, results)`` as shards finish, at most ``max_in_flight`` pending."""
        from ray.exceptions import RayActorError, RayTaskError

        ray = self.ray
        self.stats = ExecutorStats()
        if not shards:
            return
        self.start(work)
        waiting: deque[int] = deque(range(len(shards)))
        attempts = [0] * len(shards)
        idle: deque[int] = deque(range(len(self._actors)))
        pending: dict[Any, tuple[int, int]] = {}  # object ref → (shard index, actor slot)

        def submit() -> None:
            while waiting and idle and len(pending) < self.max_in_flight:
                index, slot = waiting.popleft(), idle.popleft()
                ref = self._actors[slot].run.remote(list(shards[index]))
                pending[ref] = (index, slot)
                if self.on_submit is not None:
                    self.on_submit(index, slot)
            self.stats.max_in_flight_seen = max(self.stats.max_in_flight_seen, len(pending))

        submit()
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            index, slot = pending.pop(ref)
            try:
                results = _check_results(index, shards[index], ray.get(ref))
            except (RayActorError, RayTaskError, ModelError) as exc:
                cause = exc.cause if isinstance(exc, RayTaskError) else None
                shown = cause if isinstance(cause, BaseException) else exc
                problem = f"{type(shown).__name__}: {str(shown).splitlines()[0][:300]}"
                self.stats.errors.append(problem)
                if isinstance(exc, RayActorError):
                    # The actor's process is gone: replace it, so the pool keeps its size.
                    self._actors[slot] = self._actor_class.remote(work)
                    self.stats.worker_restarts += 1
                if attempts[index] >= self.max_retries:
                    for other in pending:
                        ray.cancel(other, force=False)
                    raise _give_up(index, attempts[index] + 1, problem) from exc
                attempts[index] += 1
                self.stats.retries += 1
                waiting.appendleft(index)
                idle.append(slot)
                submit()
                continue
            idle.append(slot)
            submit()
            self.stats.shards += 1
            yield index, results

    def _kill_actors(self) -> None:
        for actor in self._actors:
            self.ray.kill(actor)
        self._actors = []
        self._work_key = None

    def close(self) -> None:
        """Stop the actors (the Ray runtime stays up for the next executor)."""
        self._kill_actors()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_executor(name: str, **options: Any) -> LocalExecutor | RayExecutor:
    """``local`` or ``ray`` executor by name, with its keyword options.

    Raises:
        ConfigError: for an unknown name.
    """
    if name == "local":
        return LocalExecutor(**{k: v for k, v in options.items() if k == "max_retries"})
    if name == "ray":
        return RayExecutor(**options)
    raise ConfigError(f"unknown executor `{name}`; use `local` or `ray`")


@dataclass(frozen=True)
class ItemRunReport:
    """What :func:`run_items` did."""

    total: int
    skipped: int
    written: int
    seconds: float
    stats: ExecutorStats


def shard_items(items: Sequence[ItemT], shard_size: int) -> list[list[ItemT]]:
    """Consecutive shards of at most ``shard_size`` items."""
    if shard_size < 1:
        raise ConfigError("`shard_size` must be at least 1")
    return [list(items[start : start + shard_size]) for start in range(0, len(items), shard_size)]


def run_items(
    executor: Executor,
    work: ShardWork[ItemT, dict[str, Any]],
    items: Sequence[ItemT],
    writer: JsonlWriter,
    *,
    item_id: Callable[[ItemT], Any],
    shard_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> ItemRunReport:
    """Run ``work`` over the items ``writer`` does not hold yet and append each result once.

    The driver is the only writer: a shard's results are appended (and fsynced) when the shard
    comes back, and a result whose id is already in ``writer.done_ids`` is never written again, so
    retries and re-runs cannot duplicate an item.

    Args:
        executor: Where the shards run.
        work: Returns one record per item; each record must carry the writer's ``id_key``.
        items: Everything to process, finished or not.
        writer: A :class:`~cai2.store.JsonlWriter` opened with ``id_key``.
        item_id: The id of an item, as stored under ``writer.id_key``.
        shard_size: Items per shard.
        progress: Called as ``progress(done, total)`` after each shard is written.

    Raises:
        ConfigError: if the writer does not track ids.
        ModelError: if a shard keeps failing or a record has the wrong id.
    """
    if writer.id_key is None:
        raise ConfigError("run_items needs a JsonlWriter opened with `id_key`")
    began = time.perf_counter()
    todo = [item for item in items if item_id(item) not in writer.done_ids]
    skipped = len(items) - len(todo)
    shards = shard_items(todo, shard_size)
    done, written = skipped, 0
    if progress is not None:
        progress(done, len(items))
    for index, results in executor.map_shards(work, shards):
        for item, record in zip(shards[index], results, strict=True):
            if record.get(writer.id_key) != item_id(item):
                raise ModelError(
                    f"shard {index}: a result has id {record.get(writer.id_key)!r}, expected "
                    f"{item_id(item)!r}; the work must keep the items' order and ids"
                )
            if item_id(item) in writer.done_ids:
                continue
            writer.append(record)
            written += 1
        done += len(results)
        if progress is not None:
            progress(done, len(items))
    return ItemRunReport(
        total=len(items),
        skipped=skipped,
        written=written,
        seconds=time.perf_counter() - began,
        stats=executor.stats,
    )
