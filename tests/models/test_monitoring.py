"""The figures of the monitoring page, computed from arrays (``models.monitoring``): deciles, AUROC and its
patient-bootstrap interval, calibration, the drift verdict and what a version promised.

The series are SYNTHETIC: patients with a frailty of their own, each day's admission drawn from the risk a
"true" model gives it; a model that is the true one is well calibrated and discriminates; planted
faults (risks halved, risks unrelated to the outcome, risks spread too wide) must raise the finding they
are, and a well-calibrated model none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.metrics import roc_auc_score

from models.monitoring import (
    MIN_ADMISSIONS,
    Interval,
    Monitoring,
    MonitoringError,
    Promise,
    auroc,
    monitor,
    promised_figures,
)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Series:
    """A synthetic live window: per patient-day the true risk, the outcome, a NEWS2, the patient."""

    risk: FloatArray
    outcome: npt.NDArray[np.bool_]
    news2: FloatArray
    patient: list[str]
    admission: list[str | None]


def series(patients: int = 200, days: int = 40, seed: int = 1) -> Series:
    rng = np.random.default_rng(seed)
    pid = np.repeat(np.arange(patients), days)
    frailty = rng.normal(0.0, 1.0, patients)[pid]
    logit = -2.7 + 0.9 * frailty + rng.normal(0.0, 0.4, pid.size)
    risk = 1.0 / (1.0 + np.exp(-logit))
    outcome = rng.random(pid.size) < risk
    # NEWS2 knows a little of the frailty, in whole points; a fifth of the days have none.
    points = np.clip(np.round(2 + 0.6 * frailty + rng.normal(0, 1.5, pid.size)), 0, 20)
    news2 = np.where(rng.random(pid.size) < 0.2, np.nan, points)
    # A positive day's stay: one a patient per 30-day block (several positive days share it).
    admission = [
        f"{p}-{d // 30}" if y else None
        for p, d, y in zip(pid, np.tile(np.arange(days), patients), outcome, strict=True)
    ]
    return Series(risk, outcome, news2, [f"pt-{p}" for p in pid], admission)


def _monitor(s: Series, predicted: FloatArray, promise: Promise) -> Monitoring:
    return monitor(predicted, s.outcome, s.news2, s.patient, s.admission, promise)


def _promise(auroc_value: float, low: float, high: float) -> Promise:
    return Promise("held-out", auroc=auroc_value, auroc_ci=Interval(low, high), news2_auroc=0.6)


def test_deciles_add_up_to_the_totals() -> None:
    s = series()
    m = monitor(s.risk, s.outcome, s.news2, s.patient, s.admission, Promise("none"))
    assert len(m.deciles) == 10
    assert sum(d.patient_days for d in m.deciles) == m.patient_days == s.risk.size
    assert sum(d.observed for d in m.deciles) == m.positive_days == int(s.outcome.sum())
    assert sum(d.expected for d in m.deciles) == pytest.approx(m.expected) == pytest.approx(s.risk.sum())
    # Ranked by predicted risk: each tenth's risks lie above the one before's.
    assert all(a.highest <= b.lowest for a, b in zip(m.deciles, m.deciles[1:], strict=False))
    assert m.deciles[-1].observed_rate > m.deciles[0].observed_rate
    sizes = {d.patient_days for d in m.deciles}
    assert max(sizes) - min(sizes) <= 1


def test_auroc_equals_sklearns_with_ties_and_without() -> None:
    s = series(seed=3)
    continuous = auroc(s.risk, s.outcome)
    assert continuous == pytest.approx(roc_auc_score(s.outcome, s.risk), abs=1e-12)
    tied = np.nan_to_num(s.news2, nan=-1.0)  # whole points: many ties, counted half
    assert auroc(tied, s.outcome) == pytest.approx(roc_auc_score(s.outcome, tied), abs=1e-12)
    assert auroc([0.1, 0.2], [1, 1]) is None  # one class: no AUROC


def test_the_page_figures_are_sklearns_and_the_intervals_contain_them() -> None:
    s = series(seed=4)
    m = monitor(s.risk, s.outcome, s.news2, s.patient, s.admission, Promise("none"))
    assert m.auroc is not None and m.news2_auroc is not None
    assert m.auroc == pytest.approx(roc_auc_score(s.outcome, s.risk), abs=1e-12)
    news2_ranked = np.where(np.isnan(s.news2), np.nanmin(s.news2) - 1, s.news2)
    assert m.news2_auroc == pytest.approx(roc_auc_score(s.outcome, news2_ranked), abs=1e-12)
    assert m.auroc_ci is not None and m.auroc in m.auroc_ci
    assert m.news2_auroc_ci is not None and m.news2_auroc in m.news2_auroc_ci
    assert m.difference_ci is not None and (m.auroc - m.news2_auroc) in m.difference_ci
    assert m.observed_expected is not None and m.observed_expected_ci is not None
    assert m.observed_expected in m.observed_expected_ci
    assert m.calibration_slope is not None and m.calibration_slope_ci is not None
    assert m.calibration_slope in m.calibration_slope_ci
    # A patient bootstrap on 200 patients: an interval of a few hundredths, not a point.
    assert 0.01 < m.auroc_ci.high - m.auroc_ci.low < 0.15
    assert m.admissions == len({a for a in s.admission if a is not None}) < m.positive_days


def test_a_well_calibrated_model_that_keeps_its_promise_raises_no_warning() -> None:
    for seed in range(5):
        s = series(seed=10 + seed)
        m = _monitor(s, s.risk, _promise(0.74, 0.71, 0.77))
        assert m.verdict.status == "no-drift", (seed, m.verdict)
        assert set(m.verdict.judged) == {
            "discrimination",
            "news2",
            "calibration-in-the-large",
            "calibration-slope",
        }
        assert m.calibration_slope == pytest.approx(1.0, abs=0.2)
        assert m.observed_expected == pytest.approx(1.0, abs=0.15)


def test_risks_halved_raise_calibration_in_the_large() -> None:
    s = series(seed=5)
    m = _monitor(s, s.risk * 0.5, _promise(0.74, 0.71, 0.77))
    assert m.verdict.status == "drift"
    kinds = {f.kind for f in m.verdict.findings}
    assert kinds == {"calibration-in-the-large"}  # ranking unchanged: only calibration moved
    [finding] = m.verdict.findings
    assert finding.live == pytest.approx(2.0, rel=0.15)
    assert finding.live_interval.low > 1.25


def test_risks_unrelated_to_the_outcome_raise_discrimination_and_news2() -> None:
    s = series(seed=6)
    shuffled = np.random.default_rng(0).permutation(s.risk)  # same spread and mean, no information
    m = _monitor(s, shuffled, _promise(0.74, 0.71, 0.77))
    kinds = {f.kind for f in m.verdict.findings}
    assert {"discrimination", "news2"} <= kinds
    assert m.auroc == pytest.approx(0.5, abs=0.05)


def test_risks_spread_too_wide_raise_the_calibration_slope() -> None:
    s = series(seed=7)
    logit = np.log(s.risk / (1 - s.risk))
    mean = float(np.mean(logit))
    extreme = 1.0 / (1.0 + np.exp(-(mean + 2.5 * (logit - mean))))
    m = _monitor(s, extreme, _promise(0.74, 0.71, 0.77))
    assert "calibration-slope" in {f.kind for f in m.verdict.findings}
    assert m.calibration_slope == pytest.approx(0.4, abs=0.1)


def test_too_few_admissions_give_no_verdict_however_bad_the_model() -> None:
    s = series(patients=40, days=40, seed=8)
    keep = np.ones(s.risk.size, dtype=bool)
    stays = sorted({a for a in s.admission if a is not None})
    dropped = set(stays[MIN_ADMISSIONS - 1 :])  # keep one admission fewer than needed
    for i, a in enumerate(s.admission):
        if a in dropped:
            keep[i] = False
    few = Series(
        s.risk[keep],
        s.outcome[keep],
        s.news2[keep],
        [p for p, k in zip(s.patient, keep, strict=True) if k],
        [a for a, k in zip(s.admission, keep, strict=True) if k],
    )
    m = _monitor(few, few.risk * 0.2, _promise(0.95, 0.94, 0.96))  # badly off on every count
    assert m.admissions == MIN_ADMISSIONS - 1
    assert m.verdict.status == "too-few" and not m.verdict.findings
    assert m.auroc is not None  # the figures are still shown, only not judged


def test_no_admission_at_all_gives_figures_without_auroc() -> None:
    m = monitor([0.1, 0.2, 0.3], [0, 0, 0], [1.0, np.nan, 3.0], ["a", "a", "b"], [None] * 3, Promise("none"))
    assert m.auroc is None and m.auroc_ci is None and m.observed_expected is None
    assert m.verdict.status == "too-few"
    assert m.patient_days == 3 and m.patients == 2 and m.news2_missing_days == 1
    empty = monitor([], [], [], [], [], Promise("none"))
    assert empty.patient_days == 0 and empty.deciles == ()


def test_rows_that_do_not_fit_are_refused() -> None:
    with pytest.raises(MonitoringError):
        monitor([0.1, 0.2], [0], [1.0, 2.0], ["a", "b"], [None, None], Promise("none"))
    with pytest.raises(MonitoringError):
        monitor([0.1, 1.2], [0, 1], [1.0, 2.0], ["a", "b"], [None, "x"], Promise("none"))


def test_the_promise_is_read_from_a_held_out_report_or_the_sidecar() -> None:
    report = {
        "held_out": {"patients": 120, "admissions": 40},
        "methods": {
            "model": {
                "auroc": 0.71,
                "auroc_ci": [0.68, 0.74],
                "calibration": {"slope": 0.95, "observed_expected": 1.05},
            },
            "news2": {"auroc": 0.62, "auroc_ci": [0.59, 0.65]},
        },
        "margin": 0.02,
    }
    promise = promised_figures(report, {})
    assert promise == Promise("held-out", 0.71, Interval(0.68, 0.74), 0.62, 1.05, 0.95)
    flat = {
        "methods": {
            "model": {"auroc": 0.7, "calibration_slope": 1.1, "mean_predicted": 0.1, "observed_rate": 0.12}
        }
    }
    read = promised_figures(flat, {})
    assert (read.auroc_ci, read.calibration_slope) == (None, 1.1)
    assert read.observed_expected == pytest.approx(1.2)
    # The shipped default: no report; the sidecar's figures on its training data (flattering: said so).
    sidecar = {"training_metrics": {"auroc": 0.63, "mean_predicted": 0.0996, "observed_rate": 0.0996}}
    assert promised_figures({}, sidecar).source == "training"
    assert promised_figures({}, sidecar).observed_expected == pytest.approx(1.0)
    # A sidecar with a held-out evaluation in the report's shape is read as such.
    assert promised_figures({}, {"held_out": report}).source == "held-out"
    assert promised_figures({}, {"metrics": report, "training_metrics": {"auroc": 0.9}}).auroc == 0.71
    # Broken or missing keys are no promise, not an error.
    broken = {"methods": {"model": {"auroc": "0.7", "auroc_ci": [0.8, 0.7]}}}
    assert promised_figures(broken, {"training_metrics": None}) == Promise("none")
    assert (
        promised_figures({"methods": {"model": {"auroc": 0.7, "auroc_ci": [0.8, 0.7]}}}, {}).auroc_ci is None
    )


def test_a_promise_without_figures_judges_only_news2_and_calibration_against_one() -> None:
    s = series(seed=9)
    m = _monitor(s, s.risk, Promise("none"))
    assert m.verdict.status == "no-drift"
    assert "discrimination" not in m.verdict.judged
    assert {"news2", "calibration-in-the-large", "calibration-slope"} <= set(m.verdict.judged)


def test_discrimination_drifts_only_when_the_whole_live_interval_is_below_the_promise() -> None:
    s = series(seed=11)
    live = _monitor(s, s.risk, Promise("none"))
    assert live.auroc is not None and live.auroc_ci is not None
    # A promise whose lower end lies above the live AUROC but inside its interval: chance could do that.
    between = (live.auroc + live.auroc_ci.high) / 2
    near = _monitor(s, s.risk, _promise(between + 0.02, between, between + 0.04))
    assert "discrimination" in near.verdict.judged
    assert "discrimination" not in {f.kind for f in near.verdict.findings}
    # Above the whole interval: it fires, naming the promised lower end.
    above = live.auroc_ci.high + 0.001
    far = _monitor(s, s.risk, _promise(above + 0.02, above, above + 0.04))
    [finding] = [f for f in far.verdict.findings if f.kind == "discrimination"]
    assert finding.reference == above and finding.live == live.auroc
    # Without an interval, the promised AUROC itself is the floor.
    point = _monitor(s, s.risk, Promise("held-out", auroc=above))
    assert "discrimination" in {f.kind for f in point.verdict.findings}
