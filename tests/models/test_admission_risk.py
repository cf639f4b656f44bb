"""The learned model: labels, calibration, an exact decomposition into contributions, readable
explanations that match the largest contributions, alerts, and the model file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_features_fixtures import fixture_resources

from models.admission_risk import (
    ModelError,
    RiskModel,
    alert_days,
    build_dataset,
    count_alerts,
    describe,
    explain,
    explain_many,
    labels,
    load,
    monitored_rise,
    patient_alerts,
    rise_scores,
    save,
    threshold_for_budget,
    top_factors,
    train,
)
from models.cohort_reader import Admission, PatientRecord, parse_resources
from models.features import COLUMN, FEATURE_NAMES

COHORT = parse_resources(fixture_resources())


@pytest.fixture(scope="module")
def model() -> RiskModel:
    return train(COHORT, description="test fixture")


def _patient(*admissions: Admission) -> PatientRecord:
    return PatientRecord("x", None, None, frozenset(), {}, (), admissions)


def test_label_is_an_admission_starting_in_the_next_30_days_and_hospital_days_are_excluded() -> None:
    y, admitted = labels(_patient(Admission(40.6, 44.2)), 60)
    assert y[9] == 0 and y[10:40].all() and not y[40:].any() and not y[:10].any()
    assert admitted[40:45].all() and not admitted[:40].any() and not admitted[45:].any()
    y, admitted = labels(_patient(Admission(50.0, None)), 60)
    assert admitted[50:].all() and y[20:50].all()  # no end: in hospital to the end of the cohort


def test_calibrated_mean_matches_the_observed_rate_on_training_data(model: RiskModel) -> None:
    data = build_dataset(COHORT)
    keep = ~data.admitted
    predicted = model.predict(data.x[keep])
    assert predicted.mean() == pytest.approx(data.y[keep].mean(), abs=0.03)
    assert ((predicted > 0) & (predicted < 1)).all()
    metrics = model.metadata["training_metrics"]
    assert metrics["auroc"] > 0.6  # the fixture's deteriorations are learnable


def test_contributions_add_up_to_the_log_odds(model: RiskModel) -> None:
    data = build_dataset(COHORT)
    x = data.x[::7]
    logit = np.log(model.predict(x) / (1 - model.predict(x)))
    total = model.contributions(x).sum(axis=1)
    offset = logit - total  # the reference patient-day's log-odds: the same for every row
    assert np.allclose(offset, offset[0])


def test_explain_names_the_largest_contributions_in_words(model: RiskModel) -> None:
    data = build_dataset(COHORT)
    x = data.x[~data.admitted]
    row = x[int(np.argmax(model.predict(x)))]
    reasons = explain(model, row)
    factors = top_factors(model, row)
    assert 1 <= len(reasons) <= 3
    assert reasons == [describe(name, row) for name, _ in factors]
    contrib = model.contributions(row[np.newaxis, :])[0]
    assert factors[0][1] == pytest.approx(contrib.max())
    for text in reasons:
        assert "_" not in text and text[0].isupper()
    assert explain_many(model, row[np.newaxis, :]) == [reasons]


def test_describe_speaks_a_nurses_language() -> None:
    row = np.full(len(FEATURE_NAMES), np.nan)
    row[COLUMN["female"]] = 1
    row[COLUMN["weight_change_3d"]] = 2.3
    row[COLUMN["spo2_latest"]], row[COLUMN["spo2_usual"]] = 89, 93
    row[COLUMN["missed_days_7d"]] = 4
    row[COLUMN["change_breathing_7d"]] = 2
    assert describe("weight_change_3d", row) == "Weight up 2.3 kg in 3 days"
    assert describe("spo2_deviation", row) == "SpO2 4 points below her usual 93 %"
    row[COLUMN["spo2_change_3d"]] = -1
    assert describe("spo2_change_3d", row) == "SpO2 down 1 point in 3 days"
    assert describe("missed_days_7d", row) == "Missed 4 of the last 7 days of measurements"
    assert describe("change_breathing_7d", row) == "Staff noted changed breathing twice this week"


def test_alert_is_the_first_high_day_after_seven_quiet_days() -> None:
    scores = np.array([0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, np.nan, 0, 0, 0, 0, 0, 0, 0, 1], dtype=float)
    assert np.flatnonzero(alert_days(scores, 0.5)).tolist() == [1, 20]


def test_threshold_for_budget_meets_it_on_a_constructed_case() -> None:
    # One patient, 60 days, a spike of height h on day 10*h for h = 1..5: at threshold t the spikes of
    # height >= t alert (they are 10 days apart). A budget of 1 per 30 days allows 2 alerts over 60 days.
    scores = np.zeros(60)
    for h in range(1, 6):
        scores[10 * h] = h
    threshold = threshold_for_budget(scores, np.zeros(60, dtype=np.intp), 1.0)
    assert threshold == 4.0 and alert_days(scores, threshold).sum() == 2


def test_rise_score_uses_only_risks_up_to_the_day_scored() -> None:
    rng = np.random.default_rng(7)
    risk = rng.uniform(0.01, 0.5, 60)
    risk[[5, 6, 30]] = np.nan  # days in hospital
    rise = rise_scores(risk)
    for d in range(60):
        changed = risk.copy()
        changed[d + 1 :] = rng.uniform(0.01, 0.5, 60 - d - 1)
        assert np.array_equal(rise_scores(changed)[: d + 1], rise[: d + 1], equal_nan=True)


def test_rise_score_removes_the_patients_static_level() -> None:
    def logit(p: float) -> float:
        return float(np.log(p / (1 - p)))

    steady = rise_scores(np.full(40, 0.3))
    assert np.isnan(steady[0]) and np.allclose(steady[1:], 0.0)  # high but not rising: no alert score
    step = np.full(40, 0.05)
    step[20:] = 0.2
    step[10:13] = np.nan  # in hospital: skipped, not counted as low
    rise = rise_scores(step)
    assert rise[20] == pytest.approx(logit(0.2) - logit(0.05))
    assert np.isnan(rise[10:13]).all() and rise[13] == pytest.approx(0.0)
    assert rise[34] == pytest.approx(0.0)  # 14 days later the new level is the patient's usual


def test_alert_threshold_is_chosen_on_the_training_cohorts_rise_scores(model: RiskModel) -> None:
    data = build_dataset(COHORT)
    risk = np.where(data.admitted, np.nan, model.predict(data.x))
    expected = threshold_for_budget(monitored_rise(risk, data.patient), data.patient, 1.0)
    assert model.threshold == expected and np.isfinite(expected)
    assert "rise_scores" in model.metadata["alert_score"]


def test_patient_alerts_fire_on_a_rise_and_never_in_hospital(model: RiskModel) -> None:
    risk = np.full(60, 0.02)
    risk[30:] = 0.9
    in_hospital = np.zeros(60, dtype=bool)
    assert np.flatnonzero(patient_alerts(model, risk, in_hospital)).tolist() == [30]
    in_hospital[28:40] = True
    assert not patient_alerts(model, risk, in_hospital)[28:40].any()


def test_model_file_round_trip_and_errors(model: RiskModel, tmp_path: Path) -> None:
    sidecar = save(model, tmp_path / "m.joblib")
    again = load(tmp_path / "m.joblib")
    x = build_dataset(COHORT).x[:50]
    assert np.allclose(again.predict(x), model.predict(x))
    assert again.metadata["training_cohort"]["patients"] == 18 and sidecar.is_file()
    assert (tmp_path / "m.joblib").stat().st_size < 200_000
    old = {k: v for k, v in model.metadata.items() if k != "alert_score"}
    (tmp_path / "m.joblib.json").write_text(json.dumps(old))
    with pytest.raises(ModelError, match="rise in risk"):  # its threshold would mean something else
        load(tmp_path / "m.joblib")
    with pytest.raises(ModelError, match="no model file"):
        load(tmp_path / "missing.joblib")
    (tmp_path / "bad.joblib").write_bytes(b"not a pickle")
    (tmp_path / "bad.joblib.json").write_text("{}")
    with pytest.raises(ModelError):
        load(tmp_path / "bad.joblib")


def test_switched_off_features_get_no_weight_and_do_not_move_the_risk() -> None:
    excluded = ("age", "pulse_latest", "news2_usual")
    model = train(COHORT, description="test fixture", exclude=excluded)
    pipe = model.estimator.calibrated_classifiers_[0].estimator
    coef = dict(zip(model.features, pipe[-1].coef_[0], strict=True))
    assert all(coef[name] == 0.0 for name in excluded) and coef["weight_change_3d"] != 0.0
    x = build_dataset(COHORT).x[:200]
    moved = x.copy()
    moved[:, COLUMN["age"]] += 30.0
    moved[:, COLUMN["pulse_latest"]] = 150.0
    assert np.array_equal(model.predict(moved), model.predict(x))
    assert model.metadata["excluded_features"] == ["pulse_latest", "news2_usual", "age"]
    assert model.metadata["training_cohort"]["patients"] == 18
    with pytest.raises(ModelError, match="cannot exclude"):
        train(COHORT, exclude=("shoe_size",))


def test_a_previous_version_model_still_loads_and_reads_its_own_columns(tmp_path: Path) -> None:
    import joblib
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from models.features import MODEL_FEATURES

    old_features = [name for name in MODEL_FEATURES if name != "news2_usual"]  # version 1.0's list
    data = build_dataset(COHORT)
    keep = ~data.admitted
    columns = [COLUMN[name] for name in old_features]
    pipe = make_pipeline(SimpleImputer(keep_empty_features=True), StandardScaler(), LogisticRegression(C=0.1))
    estimator = CalibratedClassifierCV(pipe, method="sigmoid", cv=3, ensemble=False)
    estimator.fit(data.x[keep][:, columns], data.y[keep])
    joblib.dump({"model": "admission-risk-1.0", "estimator": estimator}, tmp_path / "old.joblib")
    sidecar = {
        "model": "admission-risk-1.0",
        "features": old_features,
        "alert_score": "rise",
        "alert_threshold": 0.3,
    }
    (tmp_path / "old.joblib.json").write_text(json.dumps(sidecar))
    old = load(tmp_path / "old.joblib")
    assert old.features == tuple(old_features)
    x = data.x[:100]
    assert np.allclose(old.predict(x), estimator.predict_proba(x[:, columns])[:, 1])
    assert old.contributions(x).shape == (100, len(old_features))
    assert all(len(reasons) <= 3 for reasons in explain_many(old, x))
    sidecar["features"] = [*old_features, "shoe_size"]
    (tmp_path / "old.joblib.json").write_text(json.dumps(sidecar))
    with pytest.raises(ModelError, match="features differ"):
        load(tmp_path / "old.joblib")


def test_counting_alerts_over_all_patients_at_once_equals_counting_patient_by_patient() -> None:
    rng = np.random.default_rng(11)
    lengths = rng.integers(1, 60, 40)
    patient = np.repeat(np.arange(40), lengths)
    scores = rng.normal(size=patient.size)
    scores[rng.random(patient.size) < 0.1] = np.nan
    bounds = np.flatnonzero(np.diff(patient)) + 1
    for threshold in (-2.0, 0.0, 0.8, 1.6, 3.0):
        one_by_one = sum(int(alert_days(s, threshold).sum()) for s in np.split(scores, bounds))
        assert count_alerts(scores, patient, threshold) == one_by_one


def test_the_usual_news2_is_described_in_words() -> None:
    row = np.full(len(FEATURE_NAMES), np.nan)
    row[COLUMN["news2_usual"]] = 2.0
    assert describe("news2_usual", row) == "Usual NEWS2 2 (median of the last 14 days)"
    row[COLUMN["news2_usual"]] = 1.5
    assert describe("news2_usual", row) == "Usual NEWS2 1.5 (median of the last 14 days)"
