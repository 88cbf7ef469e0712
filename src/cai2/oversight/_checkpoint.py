"""Mandatory human checkpoints: a run of the hierarchy that stops and waits for people.

:class:`OversightRun` feeds items through an :class:`OversightHierarchy` in batches and stores every
decision (with its chain) before going on. It stops with :class:`CheckpointRequired`

- after ``checkpoint_every`` (K) decisions since the last cleared checkpoint, and
- when the upper bound on the AI's undetected error rate, from the people's random spot-checks,
  exceeds ``max_undetected_error`` (tested once ``min_spot_checks`` spot-checks exist, and only
  while some spot-checks are newer than the last checkpoint a person cleared).

A stop is cleared only by a person: every queued decision of the run reviewed (approved, overridden
or skipped) and the checkpoint cleared (``cai2 review`` does both). Running the same items again
then resumes: decided items are skipped, so no work is lost or repeated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cai2.errors import Cai2Error, DataError
from cai2.oversight._config import HumanLevelConfig
from cai2.oversight._hierarchy import Decision, OversightHierarchy, OversightItem
from cai2.oversight._queue import Checkpoint, ReviewQueue
from cai2.oversight._stats import SpotCheckBound, spot_check_bound
from cai2.store import check_run_id

CHECKPOINT_EXIT_CODE = 3
"""Exit code of ``cai2 oversee`` when the run stopped for human review."""


class CheckpointRequired(Cai2Error):
    """The run stopped at a mandatory checkpoint and waits for human review.

    Attributes:
        run_id: The stopped run.
        pending: Decisions awaiting review.
        reason: Why it stopped.
    """

    exit_code = CHECKPOINT_EXIT_CODE

    def __init__(self, run_id: str, pending: int, reason: str) -> None:
        self.run_id = run_id
        self.pending = pending
        self.reason = reason
        super().__init__(
            f"{pending} decisions await human review ({reason}); run `cai2 review --run {run_id}`, "
            "then run the same command again to resume"
        )


class OversightRun:
    """Runs a hierarchy over items, storing decisions and stopping at checkpoints.

    Args:
        hierarchy: The hierarchy to run.
        queue: Where decisions, reviews and checkpoints are kept.
        run_id: Id of the run (usually a run store run); reusing it resumes.
        batch_size: Items judged per batch (a stop never lands inside a batch).
    """

    def __init__(
        self,
        hierarchy: OversightHierarchy,
        queue: ReviewQueue,
        run_id: str,
        batch_size: int = 32,
    ) -> None:
        if batch_size < 1:
            raise DataError(f"`batch_size` must be at least 1; got {batch_size}")
        self.hierarchy = hierarchy
        self.queue = queue
        self.run_id = check_run_id(run_id)
        self.batch_size = batch_size

    @property
    def human(self) -> HumanLevelConfig:
        """The human level's settings (checkpoints and bounds)."""
        return self.hierarchy.config.human

    def undetected_error_bound(self) -> SpotCheckBound | None:
        """Bound on the AI's error rate on decisions no rule sent to people (None: no checks)."""
        errors, inclusion = self.queue.spot_checks(self.run_id)
        if not errors:
            return None
        return spot_check_bound(
            errors,
            inclusion,
            confidence=self.human.confidence,
            method=self.human.bound_method,
        )

    def _stop(self, reason: str, spot_checks: int) -> CheckpointRequired:
        self.queue.open_checkpoint(self.run_id, reason, spot_checks)
        return CheckpointRequired(self.run_id, self.queue.pending_count(self.run_id), reason)

    def _check_bound(self, last: Checkpoint | None) -> None:
        errors, _ = self.queue.spot_checks(self.run_id)
        if len(errors) < self.human.min_spot_checks:
            return
        if last is not None and last.spot_checks >= len(errors):
            return  # a person cleared a checkpoint after seeing this evidence
        bound = self.undetected_error_bound()
        if bound is not None and bound.upper > self.human.max_undetected_error:
            raise self._stop(
                f"bound: undetected error ≤ {bound.upper:.3f} at {bound.confidence:.0%} "
                f"exceeds {self.human.max_undetected_error} after {len(errors)} spot-checks",
                len(errors),
            )

    def process(
        self,
        items: Sequence[OversightItem],
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Decision]:
        """Decide every item not decided yet, stopping at checkpoints.

        Args:
            items: The items of the run (the same list on every resume).
            progress: Called with (decided, total) after each batch.

        Returns:
            The run's decisions for ``items``, in their order, with human reviews merged in.

        Raises:
            CheckpointRequired: when the run must wait for human review (state is saved).
        """
        waiting = self.queue.waiting_checkpoint(self.run_id)
        if waiting is not None:
            raise CheckpointRequired(
                self.run_id, self.queue.pending_count(self.run_id), waiting.reason
            )
        decided = self.queue.decided_ids(self.run_id)
        todo = [item for item in items if item.id not in decided]
        k = self.human.checkpoint_every
        while True:
            last = self.queue.last_checkpoint(self.run_id)
            self._check_bound(last)
            if not todo:
                break
            made = self.queue.decision_count(self.run_id)
            since = made - (last.after_decisions if last is not None else 0)
            if since >= k:
                spot_checks = len(self.queue.spot_checks(self.run_id)[0])
                raise self._stop(
                    f"{since} decisions since the last checkpoint (K = {k})", spot_checks
                )
            size = min(self.batch_size, k - since)
            batch, todo = todo[:size], todo[size:]
            self.queue.record(self.run_id, batch, self.hierarchy.review(batch))
            if progress is not None:
                progress(len(items) - len(todo), len(items))
        by_id = {decision.item_id: decision for decision in self.queue.decisions(self.run_id)}
        return [by_id[item.id] for item in items]
