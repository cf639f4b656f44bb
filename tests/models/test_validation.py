"""The patient and time split, the patient bootstrap, the calibration figures and the held-out report."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from models.activation import activation_check
from models.admission_risk import HORIZON_DAYS, SHIPPED_MODEL, labels, load
from models.cohort.ndjson import generate_cohort
from models.cohort_reader import Admission, Cohort, PatientRecord, Series, read_cohort
from models.validation import (
    MIN_HELD_OUT_ADMISSIONS,
    MIN_PATIENTS,
    MIN_TRAINING_ADMISSIONS,
    Validation,
    ValidationError,
    _weighted_auroc,
    calibration_deciles,
    held_out_admissions,
    held_out_cohort,
    logistic_recalibration,
    markdown_report,
    model_card,
    patient_bootstrap_auroc,
    split_cohort,
    training_admissions,
    training_cohort,
    validate,
)

ORIGIN = date(2025, 1, 6)


def _patient(
    i: int, days: int, times: list[float], admissions: list[tuple[float, float | None]]
) -> PatientRecord:
    ts = tuple(sorted(t for t in times if t < days))
    return PatientRecord(
        patient_id=f"p{i:03d}",
        sex=None,
        birth_date=date(1940, 1, 1),
        conditions=frozenset({"heart-failure"}),
        readings={"weight": Series(ts, tuple(80.0 + 0.1 * k for k in range(len(ts))))} if ts else {},
        changes=tuple((t, "breathing") for t in ts[::3]),
        admissions=tuple(Admission(s, e) for s, e in sorted(admissions, key=lambda a: a[0])),
    )


@st.composite
def cohorts(draw: st.DrawFn) -> Cohort:
    """Small hand-made cohorts: 20-40 patients, 90-200 days, readings and admissions anywhere."""
    days = draw(st.integers(90, 200))
    n = draw(st.integers(MIN_PATIENTS, 40))
    day = st.floats(0, days - 0.001, allow_nan=False)
    patients = []
    for i in range(n):
        times = draw(st.lists(day, max_size=12))
        starts = draw(st.lists(day, max_size=3))
        stays = draw(
            st.lists(st.one_of(st.none(), st.floats(0.5, 20)), min_size=len(starts), max_size=len(starts))
        )
        admissions = [(s, None if stay is None else s + stay) for s, stay in zip(starts, stays, strict=True)]
        patients.append(_patient(i, days, times, admissions))
    return Cohort(ORIGIN, days, tuple(patients), synthetic=True)


@settings(max_examples=60, deadline=None)
@given(cohorts(), st.integers(0, 2**16))
def test_split_keeps_held_out_patients_and_later_days_out_of_training(cohort: Cohort, seed: int) -> None:
    split = split_cohort(cohort, seed=seed)
    assert not set(split.training) & set(split.held_out)
    assert set(split.training) | set(split.held_out) == {p.patient_id for p in cohort.patients}
    assert split.train_end == split.cut - HORIZON_DAYS and split.cut <= cohort.days - 14
    training = training_cohort(cohort, split)
    assert training.days == split.train_end
    full = {p.patient_id: p for p in cohort.patients}
    for p in training.patients:
        assert p.patient_id in split.training
        for series in p.readings.values():
            assert all(t < split.train_end for t in series.days)
        assert all(t < split.train_end for t, _key in p.changes)
        assert all(a.start < split.cut for a in p.admissions)
        assert all(a.end is None or a.end < split.train_end for a in p.admissions)
        y, admitted = labels(p, training.days)
        # Every positive label's 30-day window closes before the cut, and it is the label the whole
        # history gives that day: the split changes nothing it keeps.
        assert all(d + HORIZON_DAYS < split.cut for d in np.flatnonzero(y))
        y_full, admitted_full = labels(full[p.patient_id], cohort.days)
        assert np.array_equal(y, y_full[: training.days])
        assert np.array_equal(admitted, admitted_full[: training.days])
    held = held_out_cohort(cohort, split)
    assert {p.patient_id for p in held.patients} == set(split.held_out)
    assert all(split.cut < day < cohort.days for _i, day in held_out_admissions(held, split))


def test_the_split_is_seeded() -> None:
    cohort = Cohort(ORIGIN, 120, tuple(_patient(i, 120, [1.0], []) for i in range(50)), synthetic=True)
    assert split_cohort(cohort, seed=4) == split_cohort(cohort, seed=4)
    assert split_cohort(cohort, seed=4).held_out != split_cohort(cohort, seed=5).held_out
    assert len(split_cohort(cohort).held_out) == 15  # 30 % of 50


# --- too little to train or test on -------------------------------------------------------------------


def test_too_few_patients_says_what_was_found_and_needed() -> None:
    cohort = Cohort(ORIGIN, 180, tuple(_patient(i, 180, [1.0], []) for i in range(12)), synthetic=True)
    with pytest.raises(ValidationError, match="patients in the history: found 12, at least 20 needed"):
        validate(cohort)


def test_too_short_a_history_says_how_many_days_are_needed() -> None:
    cohort = Cohort(ORIGIN, 60, tuple(_patient(i, 60, [1.0], []) for i in range(30)), synthetic=True)
    with pytest.raises(ValidationError, match="days of history: found 60, at least") as raised:
        validate(cohort)
    assert raised.value.found == 60 and raised.value.needed == 90  # 30 + 30 + the last third, 30


def test_too_few_admissions_are_refused_before_training() -> None:
    patients = [_patient(i, 150, [float(d) for d in range(0, 150, 2)], []) for i in range(40)]
    patients[0] = _patient(0, 150, [float(d) for d in range(0, 150, 2)], [(40.0, 45.0), (80.0, 84.0)])
    cohort = Cohort(ORIGIN, 150, tuple(patients), synthetic=True)
    split = split_cohort(cohort)
    assert training_admissions(cohort, split) < MIN_TRAINING_ADMISSIONS
    with pytest.raises(
        ValidationError,
        match=f"admissions in the training part: found [0-2], at least {MIN_TRAINING_ADMISSIONS}",
    ):
        validate(cohort)


# --- the patient bootstrap ----------------------------------------------------------------------------


def _scored_patients(n: int, seed: int, days: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, scores, patient) of n patients: a patient's risk shifts both their label and score."""
    rng = np.random.default_rng(seed)
    level = rng.normal(0, 1, n)
    patient = np.repeat(np.arange(n), days)
    scores = np.round(level[patient] + rng.normal(0, 1, patient.size), 1)  # ties, as NEWS2 has
    y = (rng.uniform(0, 1, patient.size) < 1 / (1 + np.exp(-(level[patient] - 2)))).astype(np.int8)
    return y, scores, patient


def test_weighted_auroc_is_sklearns_auroc_with_ties_and_repeated_rows() -> None:
    y, scores, _patient_ids = _scored_patients(40, seed=1)
    order = np.argsort(scores, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(scores[order]) != 0])
    ones = np.ones((1, scores.size))
    assert _weighted_auroc(ones, y[order].astype(bool), starts)[0] == pytest.approx(roc_auc_score(y, scores))
    counts = np.random.default_rng(2).integers(0, 3, scores.size)
    repeated = np.repeat(np.arange(scores.size), counts)
    weighted = _weighted_auroc(counts[order][np.newaxis, :].astype(float), y[order].astype(bool), starts)[0]
    assert weighted == pytest.approx(roc_auc_score(y[repeated], scores[repeated]))


def _interval(n: int) -> tuple[float, float, float]:
    y, scores, patient = _scored_patients(n, seed=n)
    boot = patient_bootstrap_auroc(y, scores, patient, replicates=500, seed=3)
    lo, hi = np.nanpercentile(boot, [2.5, 97.5])
    return float(roc_auc_score(y, scores)), float(lo), float(hi)


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_more_patients() -> None:
    point, lo, hi = _interval(40)
    assert lo < point < hi
    point_many, lo_many, hi_many = _interval(400)
    assert lo_many < point_many < hi_many
    assert (hi_many - lo_many) < 0.6 * (hi - lo)  # about 1/sqrt(10) expected


def test_bootstrap_resamples_patients_not_days() -> None:
    # One patient's days all positive, everybody else's negative: a resample that leaves that patient
    # out has no positives (NaN); resampling days would almost never lose all 30 of them.
    y = np.zeros(20 * 30, dtype=np.int8)
    y[:30] = 1
    scores = np.random.default_rng(0).uniform(0, 1, y.size)
    boot = patient_bootstrap_auroc(y, scores, np.repeat(np.arange(20), 30), replicates=400, seed=1)
    assert 0.25 < np.mean(np.isnan(boot)) < 0.5  # (19/20)^20 = 0.36


# --- calibration --------------------------------------------------------------------------------------


def test_calibration_of_a_calibrated_score_is_slope_one_intercept_zero() -> None:
    rng = np.random.default_rng(7)
    p = rng.uniform(0.02, 0.6, 40_000)
    y = (rng.uniform(0, 1, p.size) < p).astype(np.int8)
    slope, intercept = logistic_recalibration(y, p)
    assert slope == pytest.approx(1.0, abs=0.06) and intercept == pytest.approx(0.0, abs=0.1)
    for decile in calibration_deciles(y, p):
        assert decile["observed"] == pytest.approx(decile["predicted"], abs=0.03)
    # Predictions twice as extreme on the log-odds scale: slope about one half.
    logit = np.log(p / (1 - p))
    extreme = 1 / (1 + np.exp(-2 * logit))
    assert logistic_recalibration(y, extreme)[0] == pytest.approx(0.5, abs=0.05)


# --- the report on a simulated municipality -----------------------------------------------------------


def _enough(folder: Path) -> Cohort:
    """A small SYNTHETIC cohort with enough admissions on both sides of the split (the first seed that
    has them, so a change of the simulator's rates moves the seed, not the test)."""
    for seed in range(11, 17):
        generate_cohort(folder / str(seed), 140, 150, seed)
        cohort = read_cohort(folder / str(seed))
        split = split_cohort(cohort)
        held = held_out_admissions(held_out_cohort(cohort, split), split)
        if (
            training_admissions(cohort, split) >= MIN_TRAINING_ADMISSIONS + 5
            and len(held) >= MIN_HELD_OUT_ADMISSIONS + 2
        ):
            return cohort
    raise AssertionError("no seed of 140 x 150 days has enough admissions for the split")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cohort, Validation]:
    cohort = _enough(tmp_path_factory.mktemp("cohort"))
    return cohort, validate(
        cohort, active=load(SHIPPED_MODEL), active_version="shipped-default", replicates=300
    )


def test_report_has_the_documented_shape_on_the_same_patient_days(report: tuple[Cohort, Validation]) -> None:
    cohort, validation = report
    metrics = validation.metrics
    json.dumps(metrics, allow_nan=False)  # PostgreSQL's jsonb takes it
    held = metrics["held_out"]
    assert set(held) >= {"patients", "patient_days", "admissions", "from", "to"}
    assert held["admissions"] >= MIN_HELD_OUT_ADMISSIONS and held["patients"] == round(
        0.3 * len(cohort.patients)
    )
    assert set(metrics["methods"]) == {"model", "news2", "weight_rule", "active"}
    assert metrics["methods"]["active"]["version"] == "shipped-default"
    assert (
        metrics["margin"] == 0.02
        and activation_check(metrics).model_auroc == metrics["methods"]["model"]["auroc"]
    )
    for key, m in metrics["methods"].items():
        lo, hi = m["auroc_ci"]
        assert lo <= m["auroc"] <= hi, key
        assert m["admissions"] == held["admissions"], key  # the same admissions for every method
        # The same alert burden: each threshold spends at most one alert per patient-month.
        assert 0 < m["alerts_per_patient_week"] <= 7 / 30 + 1e-9, key
        if key in ("model", "active"):
            assert sum(d["patient_days"] for d in m["calibration"]["deciles"]) == held["patient_days"]
        else:
            assert "calibration" not in m
    assert metrics["training"]["to"] < metrics["training"]["labels_until"] < held["from"]


def test_report_and_card_say_what_was_trained_and_the_gates_verdict(
    report: tuple[Cohort, Validation],
) -> None:
    _cohort, validation = report
    metrics = validation.metrics
    table = markdown_report(metrics)
    for name in ("New model", "Active model shipped-default", "NEWS2 of the day", "Weight rule"):
        assert name in table
    card = model_card(
        metrics, validation.model, version="v-test", municipality="0101", source="an NDJSON export"
    )
    assert "SYNTHETIC" in card and "`v-test`" in card and "0101" in card
    assert "not a clinical prediction" in card
    assert activation_check(metrics).reason in card
    assert math.isfinite(metrics["methods"]["model"]["calibration"]["slope"])
