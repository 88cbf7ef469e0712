"""Scale-out: run the item-mapping work of a stage on Ray, and spread requests over endpoints.

>>> with RayExecutor(workers=2) as executor:  # doctest: +SKIP
...     for index, results in executor.map_shards(work, shards): ...

- :class:`LocalExecutor` / :class:`RayExecutor` map a :class:`ShardWork` over shards with retries
  and bounded in-flight shards; :func:`run_items` writes the results exactly once to a resumable
  JSONL writer.
- :class:`EndpointPool` spreads an ``openai`` backend's requests over several OpenAI-compatible
  servers, with health checks and failover (spec ``openai:URL1,URL2#model``).
- :func:`accelerate_config` writes an accelerate config for multi-GPU (or multi-CPU) training with
  TRL.
"""

from cai2.scale._executor import (
    Executor,
    ExecutorStats,
    ItemRunReport,
    LocalExecutor,
    RayExecutor,
    ShardWork,
    ensure_ray,
    make_executor,
    run_items,
    shard_items,
)
from cai2.scale._generate import GenerateWork, generate_on_ray
from cai2.scale._pool import Endpoint, EndpointPool, PoolOptions, load_endpoint_pool

__all__ = [
    "Endpoint",
    "EndpointPool",
    "Executor",
    "ExecutorStats",
    "GenerateWork",
    "ItemRunReport",
    "LocalExecutor",
    "PoolOptions",
    "RayExecutor",
    "ShardWork",
    "ensure_ray",
    "generate_on_ray",
    "load_endpoint_pool",
    "make_executor",
    "run_items",
    "shard_items",
]
