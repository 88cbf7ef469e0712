"""The evaluation on the real embedded model (slow): small n, short replies."""

from __future__ import annotations

from pathlib import Path

import pytest

from cai2.evals import EvalConfig, evaluate_model, write_html_report


@pytest.mark.slow
def test_eval_on_the_embedded_model(tmp_path: Path) -> None:
    config = EvalConfig(
        n_harmful=8,
        n_benign=8,
        max_tokens=24,
        shifts=["past-tense", "encoding"],
        bootstrap_resamples=500,
    )
    report = evaluate_model("hf:smollm2-135m", config, out_dir=tmp_path)
    assert report.n_generations == 16 * 3
    calibration = report.judge_calibration
    assert calibration is not None and calibration["judge"] == "embedding-head"
    assert calibration["dataset"] == "pyrit:objective:heldout"
    # The judge is better than chance on held-out human labels, so the correction is defined.
    assert report.harm.sensitivity is not None and report.harm.specificity is not None
    assert report.harm.sensitivity + report.harm.specificity > 1.0
    assert report.harm.corrected is not None
    # The replies are real text, and the metrics are consistent with the records.
    originals = [r for r in report.records if r.shift == "original"]
    assert sum(len(r.response.split()) for r in originals) > 16 * 3
    harmful = [r for r in originals if r.side == "harmful"]
    assert report.harm.raw.estimate == pytest.approx(sum(bool(r.harmful) for r in harmful) / 8)
    assert report.asi is not None
    assert 0.0 <= report.asi.asi.estimate <= 1.0
    page = write_html_report([report], tmp_path / "report.html").read_text()
    assert "embedding-head" in page
