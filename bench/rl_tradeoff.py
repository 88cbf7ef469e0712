"""Every stage-4 variant on the validation split, in one picture → bench/results/rl_tradeoff.json.

Collects the validation results of the stage-4 runs in ``docs/oversight.md`` (written by
``bench/rl_effect.py --eval-split validation``, ``bench/_effect.py --split validation`` and
``bench/rl_grpo.py``) and
draws ``docs/img/rl-tradeoff.png``: harmful compliance against benign answering, one arrow per
variant from its start model to its DPO model. The shaded box is what the validation rule accepts
(harm below the start's, benign answering at most 5 points below it). Nothing is trained or
generated here; it reads the results files and takes a second.

Run: ``python bench/rl_tradeoff.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _figures import save_figure  # bench/ is on sys.path when run as a script

RESULTS = Path(__file__).parent / "results"
OUT = RESULTS / "rl_tradeoff.json"
FIGURE = Path(__file__).parent.parent / "docs" / "img" / "rl-tradeoff.png"
START = "rl_effect_validation_start.json"
"""The first 300-prompt stage-2 model, evaluated alone (the start of the session-7 variants)."""
VARIANTS: tuple[tuple[str, str], ...] = (
    ("plain DPO, 48+48 prompts", "rl_effect_validation_none.json"),
    ("borrowed refusals, ratio 0.25", "rl_effect_validation_r025.json"),
    ("borrowed refusals, ratio 0.5", "rl_effect_validation_r050.json"),
    ("borrowed refusals, all", "rl_effect_validation_all.json"),
    ("ensemble review level", "rl_effect_validation_ensemble.json"),
    ("risk tag in the prompt", "rl_effect_validation_context.json"),
    ("β 0.5 (rebuilt start)", "rl_effect_validation_beta05.json"),
    ("300 prompts × 8 at T 0.7", "rl_effect_validation_big.json"),
    ("+ NLL on chosen (RPO)", "rl_effect_validation_rpo.json"),
    ("+ helpful pairs repeated", "rl_effect_validation_balance.json"),
    ("+ borderline prompts", "rl_effect_validation_borderline.json"),
    ("GRPO, online (seed 0)", "rl_grpo_validation.json"),
    ("GRPO, online (seed 1)", "rl_grpo_validation_seed1.json"),
    ("GRPO + borderline (seed 0)", "rl_grpo_borderline_validation.json"),
    ("GRPO + borderline (seed 1)", "rl_grpo_borderline_validation_seed1.json"),
)
RULE_POINTS = 0.05


def _point(data: dict[str, Any], which: str) -> tuple[float, float]:
    if which == "start" and "start_harm_rate" in data:
        return data["start_harm_rate"], data["start_benign_answer_rate"]
    for prefix in ("rl_", "grpo_", ""):
        if f"{prefix}harm_rate" in data:
            return data[f"{prefix}harm_rate"], data[f"{prefix}benign_answer_rate"]
    raise KeyError("no harm rate in the results file")


def collect() -> list[dict[str, Any]]:
    """One row per variant whose results file exists: start and DPO model's (harm, benign)."""
    first_start = json.loads((RESULTS / START).read_text(encoding="utf-8"))
    rows = []
    for label, name in VARIANTS:
        path = RESULTS / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        # `_effect.py` files hold only the tuned model; their start is the first stage-2 model.
        start = _point(data if "start_harm_rate" in data else first_start, "start")
        end = _point(data, "end")
        passes = end[0] < start[0] and end[1] >= start[1] - RULE_POINTS - 1e-9
        rows.append(
            {
                "variant": label,
                "file": name,
                "start_harm": round(start[0], 4),
                "start_benign": round(start[1], 4),
                "harm": round(end[0], 4),
                "benign": round(end[1], 4),
                "passes_validation_rule": passes,
            }
        )
    return rows


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Arrows from each variant's start to its DPO model, the rule's box around each start."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    figure, axes = plt.subplots(figsize=(9.6, 5.0))
    starts = sorted({(r["start_harm"], r["start_benign"]) for r in rows})
    for harm, benign in starts:
        box = Rectangle(
            (0.0, benign - RULE_POINTS), harm, 1.05 - benign + RULE_POINTS, color="tab:green"
        )
        box.set_alpha(0.07)
        axes.add_patch(box)
        axes.scatter([harm], [benign], color="black", s=30, zorder=3)
    colours = plt.get_cmap("tab20").colors
    for index, row in enumerate(rows):
        colour = colours[index % len(colours)]
        axes.annotate(
            "",
            xy=(row["harm"], row["benign"]),
            xytext=(row["start_harm"], row["start_benign"]),
            arrowprops={"arrowstyle": "->", "color": colour, "linewidth": 1.4},
        )
        axes.scatter(
            [row["harm"]],
            [row["benign"]],
            color=colour,
            s=28,
            zorder=3,
            marker="o" if row["passes_validation_rule"] else "x",
            label=row["variant"] + (" (passes)" if row["passes_validation_rule"] else ""),
        )
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    axes.set_xlim(0.0, 0.8)
    axes.set_ylim(0.55, 1.03)
    axes.set_xlabel("harmful compliance, 30 validation AdvBench prompts (lower is better)")
    axes.set_ylabel("benign answered, 30 validation prompts")
    save_figure(
        figure,
        axes,
        "Stage 4 variants on validation: start model (black) → stage-4 model\n"
        "(shaded: what the rule accepts from each start; one prompt is 0.033 on either axis)",
        path,
    )


def main() -> None:
    rows = collect()
    OUT.write_text(json.dumps({"rule_points": RULE_POINTS, "rows": rows}, indent=2) + "\n")
    plot(rows, FIGURE)
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
