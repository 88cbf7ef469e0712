"""Reports: the evaluation as JSON and as one self-contained HTML page with plots.

The HTML page embeds its plots as base64 PNGs (matplotlib, Agg backend), so it can be mailed or
archived as a single file. Every piece of model or prompt text is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cai2.evals._evaluate import Comparison, EvalReport
from cai2.evals._stats import Interval

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;
margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.caveat{color:#8a5a00;font-size:.9rem}.small{color:#666;font-size:.85rem;white-space:nowrap}
pre.config{max-height:none}
img{max-width:100%;height:auto;border:1px solid #eee}
pre{white-space:pre-wrap;word-break:break-word;margin:0;font-size:.85rem;max-height:12rem;
overflow:auto}
.bad{color:#b00020;font-weight:600}.good{color:#1b7f3b;font-weight:600}
.wide{overflow-x:auto}
"""


def write_json_report(
    reports: Sequence[EvalReport], path: Path, comparisons: Sequence[Comparison] = ()
) -> Path:
    """Write the reports (and paired comparisons) as indented JSON to ``path``."""
    from cai2.store import atomic_write_json

    data: dict[str, Any] = {
        "models": [r.model_dump(mode="json") for r in reports],
        "comparisons": [c.model_dump(mode="json") for c in comparisons],
    }
    return atomic_write_json(path, data)


def _figure_png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _harm_point(report: EvalReport) -> Interval:
    return report.harm.corrected or report.harm.raw


def frontier_plot(reports: Sequence[EvalReport]) -> str:
    """Harm rate (corrected when possible) against over-refusal, one point per model with CIs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.0, 4.6))
    for index, report in enumerate(reports):
        harm, refusal = _harm_point(report), report.over_refusal
        colour = _COLOURS[index % len(_COLOURS)]
        axes.errorbar(
            refusal.estimate,
            harm.estimate,
            xerr=[[refusal.estimate - refusal.low], [refusal.high - refusal.estimate]],
            yerr=[[harm.estimate - harm.low], [harm.high - harm.estimate]],
            fmt="o",
            color=colour,
            capsize=4,
            markersize=8,
            label=report.model,
        )
    axes.set_xlim(-0.03, 1.03)
    axes.set_ylim(-0.03, 1.03)
    axes.set_xlabel("over-refusal rate on benign prompts")
    axes.set_ylabel("harmful-output rate (judge-corrected)")
    axes.set_title("Harm vs over-refusal (lower-left is better)")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right", fontsize=8)
    return _figure_png(figure)


def asi_plot(reports: Sequence[EvalReport]) -> str | None:
    """Retention R_t per shift, for the harm side and the benign side of each model, with CIs."""
    with_asi = [r for r in reports if r.asi is not None]
    if not with_asi:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    shifts = with_asi[0].asi.shifts if with_asi[0].asi else []
    figure, panels = plt.subplots(1, 2, figsize=(11.0, 4.2), sharey=True)
    width = 0.8 / len(with_asi)
    positions = np.arange(len(shifts))
    for panel, side, title in (
        (panels[0], "harm", "harmful prompts: stays safe"),
        (panels[1], "benign", "benign prompts: stays helpful"),
    ):
        for index, report in enumerate(with_asi):
            assert report.asi is not None
            stability = getattr(report.asi, side)
            values = [stability.per_shift[t] for t in shifts if t in stability.per_shift]
            estimates = [v.estimate for v in values]
            errors = [
                [v.estimate - v.low for v in values],
                [v.high - v.estimate for v in values],
            ]
            panel.bar(
                positions[: len(values)] + (index - (len(with_asi) - 1) / 2) * width,
                estimates,
                width,
                yerr=errors,
                capsize=3,
                color=_COLOURS[index % len(_COLOURS)],
                label=report.model,
            )
        panel.set_xticks(positions, shifts, rotation=35, ha="right")
        panel.set_ylim(0, 1.08)
        panel.set_title(title)
        panel.grid(axis="y", alpha=0.3)
    panels[0].set_ylabel("retention R_t")
    # One legend under both panels, where it cannot hide a bar.
    handles, labels = panels[0].get_legend_handles_labels()
    labels = [
        f"{label}: ASI_harm {r.asi.harm.asi.estimate:.2f}, "
        f"ASI_benign {r.asi.benign.asi.estimate:.2f}"
        for label, r in zip(labels, with_asi, strict=True)
        if r.asi is not None
    ]
    figure.legend(
        handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=1, fontsize=9
    )
    figure.suptitle("Alignment Stability Index per shift family (95% cluster-bootstrap CIs)")
    return _figure_png(figure)


def category_plot(reports: Sequence[EvalReport]) -> str:
    """Harm rate per harmful category and refusal rate per benign category, per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = sorted({k for r in reports for k in r.per_category}, key=lambda k: (k.split("/")[0], k))
    height = 0.8 / len(reports)
    figure, axes = plt.subplots(figsize=(8.0, 0.32 * len(keys) * max(1, len(reports)) + 1.2))
    positions = np.arange(len(keys))
    for index, report in enumerate(reports):
        values = [report.per_category.get(k) for k in keys]
        estimates = [v.rate.estimate if v else np.nan for v in values]
        errors = [
            [v.rate.estimate - v.rate.low if v else 0 for v in values],
            [v.rate.high - v.rate.estimate if v else 0 for v in values],
        ]
        axes.barh(
            positions + (index - (len(reports) - 1) / 2) * height,
            estimates,
            height,
            xerr=errors,
            capsize=2,
            color=_COLOURS[index % len(_COLOURS)],
            label=report.model,
        )
    labels = [
        f"{k.split('/', 1)[1]} ({'harm' if k.startswith('harmful') else 'refusal'})" for k in keys
    ]
    axes.set_yticks(positions, labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 1.05)
    axes.set_xlabel("rate: harmful output (harmful categories) / refusal (benign categories)")
    axes.set_title("Per-category breakdown")
    axes.grid(axis="x", alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    return _figure_png(figure)


def _fmt(interval: Interval | None, percent: bool = True) -> str:
    if interval is None:
        return "—"
    if percent:
        return (
            f"{interval.estimate * 100:.1f}% "
            f"<span class='small'>[{interval.low * 100:.1f}, {interval.high * 100:.1f}]</span>"
        )
    return (
        f"{interval.estimate:.3f} "
        f"<span class='small'>[{interval.low:.3f}, {interval.high:.3f}]</span>"
    )


def _summary_table(reports: Sequence[EvalReport]) -> str:
    rows = []
    for report in reports:
        asi = report.asi
        worst = f"{asi.worst[1]} ({asi.worst[0]}, {asi.worst[2]:.2f})" if asi else "—"
        rows.append(
            "<tr>"
            f"<td>{html.escape(report.model)}</td>"
            f"<td class='num'>{_fmt(report.harm.raw)}</td>"
            f"<td class='num'>{_fmt(report.harm.corrected)}</td>"
            f"<td class='num'>{_fmt(report.over_refusal)}</td>"
            f"<td class='num'>{_fmt(report.over_refusal_by_kind.get('alarming'))}</td>"
            f"<td class='num'>{_fmt(report.helpfulness)}</td>"
            f"<td class='num'>{_fmt(asi.asi if asi else None, percent=False)}</td>"
            f"<td class='num'>{_fmt(asi.harm.asi if asi else None, percent=False)}</td>"
            f"<td class='num'>{_fmt(asi.benign.asi if asi else None, percent=False)}</td>"
            f"<td>{html.escape(worst)}</td>"
            "</tr>"
        )
    head = (
        "<tr><th>model</th><th>harm rate (raw)</th><th>harm rate (corrected)</th>"
        "<th>over-refusal</th><th>over-refusal (alarming)</th><th>helpfulness win rate</th>"
        "<th>ASI</th><th>ASI harm</th><th>ASI benign</th><th>worst shift</th></tr>"
    )
    return f"<div class='wide'><table>{head}{''.join(rows)}</table></div>"


def _calibration_section(reports: Sequence[EvalReport]) -> str:
    calibration = next((r.judge_calibration for r in reports if r.judge_calibration), None)
    caveats = {r.harm.caveat for r in reports if r.harm.caveat}
    if calibration is None:
        return "<p class='caveat'>The harm judge was not calibrated; rates are uncorrected.</p>"
    fields = ("judge", "dataset", "n", "accuracy", "kappa", "auroc", "sensitivity", "specificity")
    cells = []
    for field in fields:
        value = calibration.get(field)
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        cells.append(f"<tr><th>{field}</th><td class='num'>{html.escape(shown)}</td></tr>")
    notes = "".join(f"<p class='caveat'>{html.escape(c)}</p>" for c in sorted(caveats))
    return (
        "<p>Harmful replies are decided by the harm judge below, measured against PyRIT's "
        "human-labelled held-out replies. The corrected rate inverts the judge's errors "
        "(Rogan–Gladen): p = (q + spec − 1) / (sens + spec − 1).</p>"
        f"<table>{''.join(cells)}</table>{notes}"
    )


def _comparison_section(comparisons: Sequence[Comparison]) -> str:
    if not comparisons:
        return ""
    rows = []
    for c in comparisons:
        for label, result in (("harmful reply", c.harmful), ("refused benign", c.refused_benign)):
            p = result["p_value"]
            rows.append(
                f"<tr><td>{html.escape(c.model_a)} vs {html.escape(c.model_b)}</td>"
                f"<td>{label}</td><td class='num'>{int(result['only_a'])}</td>"
                f"<td class='num'>{int(result['only_b'])}</td>"
                f"<td class='num {'good' if p < 0.05 else ''}'>{p:.4f}</td></tr>"
            )
    return (
        "<h2>Paired comparison (exact McNemar)</h2><table><tr><th>models</th><th>outcome</th>"
        "<th>only A</th><th>only B</th><th>p-value</th></tr>" + "".join(rows) + "</table>"
    )


def _examples_section(report: EvalReport, max_chars: int = 600) -> str:
    rows = []
    for record in report.examples:
        if record.side == "harmful":
            verdict = "harmful" if record.harmful else "safe"
            score = f"P(harm) {record.p_harmful:.2f}" if record.p_harmful is not None else ""
        else:
            verdict = "refused" if record.refused else "answered"
            score = f"P(refused) {record.p_refused:.2f}"
        good = (record.side == "harmful" and not record.harmful) or (
            record.side == "benign" and not record.refused
        )
        sent = "\n\n".join(f"[{m['role']}] {m['content']}" for m in record.conversation)
        response = record.response[:max_chars] + ("…" if len(record.response) > max_chars else "")
        rows.append(
            "<tr>"
            f"<td>{html.escape(record.side)}<br><span class='small'>"
            f"{html.escape(record.category)}</span></td>"
            f"<td>{html.escape(record.shift)}</td>"
            f"<td><pre>{html.escape(sent)}</pre></td>"
            f"<td><pre>{html.escape(response)}</pre></td>"
            f"<td class='{'good' if good else 'bad'}'>{html.escape(verdict)}<br>"
            f"<span class='small'>{html.escape(score)}</span></td>"
            "</tr>"
        )
    return (
        f"<h3>{html.escape(report.model)}</h3><table><tr><th>side</th><th>shift</th>"
        "<th>prompt sent</th><th>reply</th><th>verdict</th></tr>" + "".join(rows) + "</table>"
    )


def write_html_report(
    reports: Sequence[EvalReport],
    path: Path,
    comparisons: Sequence[Comparison] = (),
    title: str = "cai2 evaluation",
) -> Path:
    """Write one self-contained HTML page for ``reports`` (one or more models on the same items)."""
    images = [
        ("Harm vs over-refusal", frontier_plot(reports)),
        ("Alignment Stability Index per shift", asi_plot(reports)),
        ("Per-category breakdown", category_plot(reports)),
    ]
    first = reports[0]
    config = html.escape(json.dumps(first.config.model_dump(mode="json"), indent=1))
    figures = "".join(
        f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}' "
        f"src='data:image/png;base64,{png}'>"
        for name, png in images
        if png is not None
    )
    n_harmful = first.harm.raw.n
    body = (
        f"<h1>{html.escape(title)}</h1>"
        f"<p>{n_harmful} harmful and {first.over_refusal.n} benign prompts per model; "
        f"shifts: {html.escape(', '.join(first.config.shifts) or 'none')}; intervals are 95%. "
        f"Generations per model: {first.n_generations}.</p>"
        "<h2>Summary</h2>"
        + _summary_table(reports)
        + "<h2>Harm judge calibration</h2>"
        + _calibration_section(reports)
        + _comparison_section(comparisons)
        + figures
        + "<h2>Examples</h2><p class='small'>Original prompts first, then shifted prompts where "
        "the property held on the original but not under the shift.</p>"
        + "".join(_examples_section(r) for r in reports)
        + f"<h2>Configuration</h2><pre class='config'>{config}</pre>"
    )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )
    from cai2.store import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, page)
    return path
