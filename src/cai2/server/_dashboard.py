"""Dashboard numbers and the plot over time (matplotlib → SVG).

Per time bucket: the share of judged answers the AI called a violation (harm verdict rate), the
share sent to people (escalation rate), the reviewers' agreement with the AI (approved ÷
approved + overridden) and the median latency.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from cai2.oversight import QueueEntry
from cai2.server._db import RequestRow


def totals(requests: list[RequestRow], reviewed: list[QueueEntry]) -> list[tuple[str, str]]:
    """Headline numbers over all records."""
    judged = [r for r in requests if r.violation is not None and r.chain]
    agree = [e for e in reviewed if e.status.value in ("approved", "overridden")]
    latencies = [r.latency_ms for r in requests]
    actions: dict[str, int] = {}
    for r in requests:
        actions[r.action] = actions.get(r.action, 0) + 1

    def share(part: int, whole: int) -> str:
        return f"{part / whole:.3f} ({part}/{whole})" if whole else "n/a"

    return [
        ("requests", str(len(requests))),
        ("actions", ", ".join(f"{k} {v}" for k, v in sorted(actions.items())) or "none"),
        ("harm verdict rate (judged)", share(sum(bool(r.violation) for r in judged), len(judged))),
        ("escalation rate", share(sum(r.human_review for r in requests), len(requests))),
        (
            "reviewer agreement",
            share(sum(e.status.value == "approved" for e in agree), len(agree)),
        ),
        ("latency p50 ms", f"{np.median(latencies):.1f}" if latencies else "n/a"),
        ("latency p99 ms", f"{np.percentile(latencies, 99):.1f}" if latencies else "n/a"),
    ]


def _buckets(times: list[datetime], count: int = 20) -> tuple[datetime, timedelta]:
    start, end = min(times), max(times)
    width = max((end - start) / count, timedelta(seconds=1))
    return start, width


def plot_svg(requests: list[RequestRow], reviewed: list[QueueEntry]) -> str:
    """Four panels over time as an SVG document."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 1, figsize=(9, 8), sharex=True)
    titles = ["harm verdict rate", "escalation rate", "reviewer agreement", "latency p50 (ms)"]
    series: list[tuple[list[datetime], list[float]]] = [([], []), ([], []), ([], []), ([], [])]
    if requests:
        times = [r.created_at for r in requests] + [
            e.reviewed_at for e in reviewed if e.reviewed_at is not None
        ]
        start, width = _buckets(times)
        groups: dict[int, list[RequestRow]] = {}
        for r in requests:
            groups.setdefault(int((r.created_at - start) / width), []).append(r)
        for index in sorted(groups):
            rows = groups[index]
            at = start + width * (index + 0.5)
            judged = [r for r in rows if r.violation is not None and r.chain]
            if judged:
                series[0][0].append(at)
                series[0][1].append(sum(bool(r.violation) for r in judged) / len(judged))
            series[1][0].append(at)
            series[1][1].append(sum(r.human_review for r in rows) / len(rows))
            series[3][0].append(at)
            series[3][1].append(float(np.median([r.latency_ms for r in rows])))
        review_groups: dict[int, list[Any]] = {}
        for e in reviewed:
            if e.reviewed_at is not None and e.status.value in ("approved", "overridden"):
                review_groups.setdefault(int((e.reviewed_at - start) / width), []).append(e)
        for index in sorted(review_groups):
            entries = review_groups[index]
            series[2][0].append(start + width * (index + 0.5))
            series[2][1].append(sum(e.status.value == "approved" for e in entries) / len(entries))
    for axis, title, (xs, ys) in zip(axes, titles, series, strict=True):
        axis.set_title(title, fontsize=10, loc="left")
        if xs:
            axis.plot(xs, ys, marker="o", linewidth=1.2)
        else:
            axis.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=axis.transAxes)
        if "rate" in title or "agreement" in title:
            axis.set_ylim(-0.05, 1.05)
        axis.grid(alpha=0.3)
    axes[-1].set_xlabel("time (UTC)")
    axes[-1].xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M:%S"))
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    return buffer.getvalue()
