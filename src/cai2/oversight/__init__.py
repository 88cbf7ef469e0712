"""Hierarchical oversight: AI levels of judges, human spot-checks, checkpoints and an audit log.

An :class:`OversightHierarchy` of judges (bottom level judges everything; each level above reviews
a sample of the decisions below chosen by uncertainty, disagreement, risk tier and a random share)
decides on replies and sends a sample to people. :class:`OversightRun` stores the decisions in a
:class:`ReviewQueue` (the run store's database) and stops with :class:`CheckpointRequired` at the
mandatory checkpoints. The statistics (:func:`spot_check_bound`, :func:`spot_checks_needed`, …)
bound each level's error rate from the spot-checks. See ``docs/oversight.md``.
"""

from cai2.oversight._checkpoint import CHECKPOINT_EXIT_CODE, CheckpointRequired, OversightRun
from cai2.oversight._config import (
    HumanLevelConfig,
    LevelConfig,
    OversightConfig,
    SamplingPolicy,
    load_oversight_config,
)
from cai2.oversight._hierarchy import (
    ChainLink,
    Decision,
    OversightHierarchy,
    OversightItem,
    review_reasons,
    sample_for_review,
    spot_check_samples,
    uniform_draw,
)
from cai2.oversight._items import default_oversight_config, read_oversight_items
from cai2.oversight._queue import AuditEvent, Checkpoint, QueueEntry, ReviewQueue, ReviewStatus
from cai2.oversight._stats import (
    SpotCheckBound,
    clopper_pearson_interval,
    effective_sample_size,
    horvitz_thompson_error_rate,
    horvitz_thompson_undetected_rate,
    review_share_for_bound,
    spot_check_bound,
    spot_checks_needed,
    upper_bound,
    wilson_interval,
)

__all__ = [
    "CHECKPOINT_EXIT_CODE",
    "AuditEvent",
    "ChainLink",
    "Checkpoint",
    "CheckpointRequired",
    "Decision",
    "HumanLevelConfig",
    "LevelConfig",
    "OversightConfig",
    "OversightHierarchy",
    "OversightItem",
    "OversightRun",
    "QueueEntry",
    "ReviewQueue",
    "ReviewStatus",
    "SamplingPolicy",
    "SpotCheckBound",
    "clopper_pearson_interval",
    "default_oversight_config",
    "effective_sample_size",
    "horvitz_thompson_error_rate",
    "horvitz_thompson_undetected_rate",
    "load_oversight_config",
    "read_oversight_items",
    "review_reasons",
    "review_share_for_bound",
    "sample_for_review",
    "spot_check_bound",
    "spot_check_samples",
    "spot_checks_needed",
    "uniform_draw",
    "upper_bound",
    "wilson_interval",
]
