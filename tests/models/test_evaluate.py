"""Evaluation metrics against tiny cases worked out by hand, the Markdown table and the PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_features_fixtures import fixture_resources

from models.admission_risk import train
from models.cohort_reader import parse_resources
from models.evaluate import (
    BudgetResult,
    MethodResult,
    evaluate_cohort,
    markdown_table,
    reliability_plot,
    sensitivity_at_budget,
)


def test_sensitivity_and_lead_time_at_a_fixed_threshold_by_hand() -> None:
    # Patient 0: 40 days, high on day 5 and day 20. Admissions on day 25 (alerts 20 and 5 are 5 and 20 days
    # before: the first in the window is day 5, lead 20) and day 38 (day 20 is 18 days before: lead 18).
    # Patient 1: 40 days, high on day 30 only; admission on day 10 (nothing before it: missed).
    s0 = np.zeros(40)
    s0[[5, 20]] = 1.0
    s1 = np.zeros(40)
    s1[30] = 1.0
    scores = np.concatenate([s0, s1])
    patient = np.repeat(np.arange(2), 40)
    day = np.tile(np.arange(40), 2)
    result = sensitivity_at_budget(scores, patient, day, [(0, 25), (0, 38), (1, 10)], threshold=0.5)
    assert result.alerts == 3 and result.admissions == 3 and result.detected == 2
    assert result.sensitivity == pytest.approx(2 / 3)
    assert result.median_lead_days == 19.0  # median of 20 and 18
    assert result.alerts_per_patient_week == pytest.approx(3 / (80 / 7))


def test_alert_on_the_admission_day_itself_does_not_count() -> None:
    scores = np.zeros(30)
    scores[12] = 1.0
    result = sensitivity_at_budget(scores, np.zeros(30, np.intp), np.arange(30), [(0, 12)], threshold=0.5)
    assert result.detected == 0 and result.median_lead_days is None


def test_budget_threshold_spends_one_alert_per_patient_month() -> None:
    # 3 patients x 90 days: a budget of 1 per 30 days allows 9 alerts; patient-specific spikes every
    # 10 days with rising heights leave exactly one threshold level that gives 9.
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 0.1, 270)
    for i in range(27):
        scores[i * 10] = 1 + i
    patient = np.repeat(np.arange(3), 90)
    result = sensitivity_at_budget(scores, patient, np.tile(np.arange(90), 3), [])
    assert result.alerts == 9 and result.threshold == 19.0


def test_markdown_table_and_reliability_png(tmp_path: Path) -> None:
    budget = BudgetResult(0.3, 10, 0.2, 4, 3, 0.75, 8.0)
    table = markdown_table([MethodResult("Learned model", 0.81, 0.4, 0.05, budget)])
    assert "| Learned model | 0.810 | 0.400 | 0.75 (3/4) | 0.200 | 8.0 | 0.0500 |" in table
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 500)
    y = (rng.uniform(0, 1, 500) < p).astype(np.int8)
    png = reliability_plot(y, p, tmp_path / "img" / "rel.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_alerts_use_the_training_threshold_and_set_the_burden_for_every_other_method() -> None:
    model = train(parse_resources(fixture_resources(18, 60, seed=3)))
    results, _risk, _data = evaluate_cohort(model, parse_resources(fixture_resources(12, 60, seed=4)))
    names = [r.name for r in results]
    assert names[:2] == ["Learned model (risk_30d)", "Learned model, rise in risk (alerts)"]
    alerts = results[1].budget
    assert alerts.threshold == pytest.approx(model.threshold, abs=1e-5)  # not re-chosen on the test data
    for r in results[2:]:  # each baseline's threshold is chosen for the burden the alerts reach
        assert r.budget.alerts <= alerts.alerts + 1
