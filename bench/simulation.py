"""Benchmark of the oversight scaling simulation (issue 6 targets).

Measures, and writes to ``bench/results/simulation.json``:

* ``engels_max_abs_err_pp``: largest error against the published reference points of Engels et al.
  (2025), in percentage points (target ≤ 0.5);
* ``mc_fraction_within_99``: share of Monte Carlo estimates of the default sweep inside the 99%
  binomial interval of the exact value (about 0.99 expected from a correct simulation);
* ``sweep_seconds``: wall time of the full default sweep — orders of magnitude 0–6 × 61 points × 3
  values of κ × 6 protocols × 10⁴ Monte Carlo cycles, plus the failure-mode study (target ≤ 10 s).

Run: ``.venv/bin/python bench/simulation.py``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

from cai2.simulation import SweepConfig, engels_reference_points, run_sweep

RESULTS = Path(__file__).resolve().parent / "results" / "simulation.json"


def main() -> dict[str, object]:
    """Run the benchmark and write its JSON."""
    points = engels_reference_points()
    engels_error = max(point.error_pp for point in points)

    config = SweepConfig()
    run_sweep(SweepConfig(points=3, trials=100, failure_study=None))  # warm caches and imports
    started = time.perf_counter()
    result = run_sweep(config)
    sweep_seconds = time.perf_counter() - started
    check = result.mc_check()

    report: dict[str, object] = {
        "engels_max_abs_err_pp": engels_error,
        "engels_points": [
            {
                "general_gap": point.general_gap,
                "domain_gap": point.domain_gap,
                "steps": point.computed_steps,
                "optimal": point.steps is None,
                "success": point.success,
                "published_success": point.published_success,
            }
            for point in points
        ],
        "mc_comparisons": check["comparisons"],
        "mc_within_99": check["within_99"],
        "mc_fraction_within_99": check["fraction_within_99"],
        "mc_p_value_outside_count": check["p_value_outside_count"],
        "sweep_seconds": sweep_seconds,
        "sweep": {
            "orders": [config.orders_min, config.orders_max],
            "points": config.points,
            "elo_per_order": config.elo_per_order,
            "protocols": [entry.display_label for entry in config.protocols],
            "trials": config.trials,
            "failure_study": config.failure_study is not None,
        },
        "targets": {
            "engels_max_abs_err_pp": 0.5,
            "sweep_seconds": 10.0,
        },
        "met": {
            "engels_max_abs_err_pp": engels_error <= 0.5,
            "sweep_seconds": sweep_seconds <= 10.0,
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    outcome = main()
    for key in ("engels_max_abs_err_pp", "mc_fraction_within_99", "sweep_seconds"):
        print(f"{key}: {outcome[key]}")
    print(f"wrote {RESULTS}")
