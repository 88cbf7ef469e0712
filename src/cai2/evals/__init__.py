"""Evaluation: harmful-output rate, over-refusal, helpfulness, prompt shifts, the ASI, reports.

>>> report = evaluate_model("hf:smollm2-135m", EvalConfig(n_harmful=40, n_benign=40))
>>> report.harm.corrected, report.over_refusal, report.asi.asi
>>> write_html_report([report], Path("report.html"))

Metrics take judged 0/1 outcomes, so they can be recomputed from saved records; the harm rate is
corrected for the harm judge's measured sensitivity and specificity (Rogan–Gladen), and the ASI
(``docs/asi.md``) is the retention of safety and of helpfulness under named prompt shifts.
"""

from cai2.evals._asi import ASIResult, SideStability, alignment_stability_index, retention
from cai2.evals._datasets import (
    EvalItem,
    load_benign_items,
    load_harmful_items,
    sample_items,
)
from cai2.evals._evaluate import (
    ORIGINAL,
    CategoryRate,
    Comparison,
    EvalConfig,
    EvalReport,
    ResponseRecord,
    calibrate_harm_judge,
    compare_reports,
    evaluate_model,
    generate_cached,
    select_items,
    summarise,
)
from cai2.evals._metrics import harm_rate, over_refusal_rate, win_rate
from cai2.evals._report import write_html_report, write_json_report
from cai2.evals._shifts import (
    DEFAULT_SHIFTS,
    SHIFTS,
    Shift,
    add_typos,
    apply_shift,
    encode_text,
    get_shift,
    model_paraphrase,
    rule_paraphrase,
    to_past_tense,
)
from cai2.evals._stats import (
    CorrectedRate,
    Interval,
    McNemarResult,
    bootstrap_ci,
    corrected_rate,
    mcnemar,
    proportion,
    rogan_gladen,
    wilson_interval,
)

__all__ = [
    "DEFAULT_SHIFTS",
    "ORIGINAL",
    "SHIFTS",
    "ASIResult",
    "CategoryRate",
    "Comparison",
    "CorrectedRate",
    "EvalConfig",
    "EvalItem",
    "EvalReport",
    "Interval",
    "McNemarResult",
    "ResponseRecord",
    "Shift",
    "SideStability",
    "add_typos",
    "alignment_stability_index",
    "apply_shift",
    "bootstrap_ci",
    "calibrate_harm_judge",
    "compare_reports",
    "corrected_rate",
    "encode_text",
    "evaluate_model",
    "generate_cached",
    "get_shift",
    "harm_rate",
    "load_benign_items",
    "load_harmful_items",
    "mcnemar",
    "model_paraphrase",
    "over_refusal_rate",
    "proportion",
    "retention",
    "rogan_gladen",
    "rule_paraphrase",
    "sample_items",
    "select_items",
    "summarise",
    "to_past_tense",
    "wilson_interval",
    "win_rate",
    "write_html_report",
    "write_json_report",
]
