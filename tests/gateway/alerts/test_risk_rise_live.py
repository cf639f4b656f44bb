"""The live 'risk-rise' alert is the offline replay's alert: after the schedule stores a patient's 30-day
risk, the gateway alerts exactly when `models.admission_risk.patient_alerts` alerts on today's element of the
patient's daily series (the last stored risk of each UTC day), with a reason in words that says the model
was trained on SYNTHETIC data. Real PostgreSQL, the shipped model, a simulated clock."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_contract.observation import build_observation
from fhir_contract.readings import Component, Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.alerts.admission_risk import record_admission_risk, score_admission_risk
from gateway.alerts.risk_rise import LOOKBACK_DAYS, Rise, alert_on_rise, daily_series, rise_reason, rise_today
from gateway.api.i18n import use_language
from gateway.api.model_words import model_text
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.repository import Municipality, Patient, insert_observations
from gateway.store.risk_history import DailyRisk, daily_admission_risks
from models.admission_risk import SHIPPED_MODEL, RiskModel, load, patient_alerts

NOW = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
DAY0 = date(2026, 10, 1)
MUNICIPALITY = Municipality("0101", "København")


@pytest.fixture(scope="module")
def model() -> RiskModel:
    return load(SHIPPED_MODEL)


def _with_threshold(model: RiskModel, threshold: float) -> RiskModel:
    return RiskModel(model.estimator, {**model.metadata, "alert_threshold": threshold})


def _enrol(conn: psycopg.Connection[Any], pid: str) -> None:
    patient = Patient(
        "0101", pid, f"Synthetic {pid}", birth_date=date(1941, 3, 2), conditions=("heart-failure",)
    )
    home = Home(
        patient,
        f"hub-{pid}",
        (HomeDevice(f"scale-{pid}", "scale"), HomeDevice(f"bpm-{pid}", "blood-pressure-cuff")),
    )
    enroll_homes(conn, [MUNICIPALITY], [home])


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as c:
        yield c


def _offline(model: RiskModel, series: np.ndarray) -> np.ndarray:
    """The replay's alerts of a daily series (the gateway knows of no admissions)."""
    return patient_alerts(model, series, np.zeros(series.size, dtype=bool))


def _risks(series: Sequence[float | None]) -> list[DailyRisk]:
    start = datetime.combine(DAY0, datetime.min.time(), tzinfo=UTC)
    return [
        DailyRisk(DAY0 + timedelta(days=d), p, d, start + timedelta(days=d, hours=20))
        for d, p in enumerate(series)
        if p is not None
    ]


# A day's risk: anywhere from 0.1 % to 99.9 %, or no risk stored that day.
_RISK = st.one_of(st.none(), st.floats(0.001, 0.999))
# Random walks in log-odds look like a patient's risk (slow drifts, some jumps); independent draws jump a lot.
_STEP = st.floats(-0.6, 0.6)


@st.composite
def _walks(draw: st.DrawFn, max_days: int = 60) -> list[float | None]:
    start = draw(st.floats(-5.0, 1.0))
    steps = draw(st.lists(_STEP, min_size=1, max_size=max_days))
    gaps = draw(st.lists(st.booleans(), min_size=len(steps), max_size=len(steps)))
    logits = start + np.cumsum(steps)
    return [
        None if gap and i % 3 == 0 else float(1 / (1 + np.exp(-z)))
        for i, (z, gap) in enumerate(zip(logits, gaps, strict=True))
    ]


_SERIES = st.one_of(_walks(), st.lists(_RISK, min_size=1, max_size=60))


# --- the decision, pure ----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(series=_SERIES, threshold=st.sampled_from([0.05, 0.288, 0.6, 1.5]))
def test_the_live_decision_is_the_replays_on_every_day(
    model: RiskModel, series: list[float | None], threshold: float
) -> None:
    tuned = _with_threshold(model, threshold)
    full = np.array([np.nan if p is None else p for p in series])
    offline = _offline(tuned, full)
    risks = _risks(series)
    for t in range(len(series)):
        today = DAY0 + timedelta(days=t)
        known = [r for r in risks if r.day <= today]  # what is stored by the end of day t
        live = rise_today(tuned, daily_series(known, today)) is not None
        assert live == bool(offline[t]), f"day {t}"


def test_the_series_ends_today_and_holds_only_the_days_that_decide() -> None:
    risks = _risks([0.1, None, 0.2] + [0.05] * 30)
    today = DAY0 + timedelta(days=32)
    series = daily_series(risks, today)
    assert series.size == LOOKBACK_DAYS + 1
    assert series[-1] == 0.05
    assert np.isnan(daily_series(risks[:2], today)).all()  # days older than the lookback are not read


def test_the_oldest_day_that_decides_is_read(model: RiskModel) -> None:
    """21 days back decides: it moves the median of day -7's window, so whether day -7 rose, so whether
    today is the first rise after 7 quiet days."""
    logits = [0.0] * 7 + [-3.0] * 7 + [-2.0] + [-3.0] * 6 + [-1.0]  # day -21 .. today
    series = [float(1 / (1 + np.exp(-z))) for z in logits]
    offline = _offline(model, np.array(series))
    assert offline[-1]  # with day -21, day -7 did not rise: today is the first rise
    assert not _offline(model, np.array(series[1:]))[-1]  # without it, day -7 rose
    today = DAY0 + timedelta(days=len(series) - 1)
    assert rise_today(model, daily_series(_risks(series), today)) is not None


def test_a_rise_is_told_from_the_median_of_the_window_to_today(model: RiskModel) -> None:
    series = np.array([np.nan] * 5 + [0.04, 0.05, 0.06] * 5 + [0.05] * 2 + [0.12])
    rise = rise_today(model, series)
    assert rise is not None
    assert rise.before == pytest.approx(0.05) and rise.after == pytest.approx(0.12)
    assert rise.days == 14  # the whole window is scored
    steady = rise_today(model, np.array([np.nan] * 19 + [0.05, 0.051]))
    assert steady is None
    young = rise_today(model, np.array([np.nan] * 18 + [0.05, 0.05, 0.2]))
    assert young is not None and young.days == 2


def test_the_reason_says_synthetic_and_names_the_factors() -> None:
    reason = rise_reason(Rise(0.0823, 0.129, 14), ["Weight up 2.3 kg in 3 days", "Age 85"])
    assert reason == (
        "30-day admission risk rose from 8.2 % to 12.9 % in 14 days (model trained on SYNTHETIC data only): "
        "Weight up 2.3 kg in 3 days; Age 85"
    )
    assert rise_reason(Rise(0.1, 0.2, 1), []).endswith("in 1 day (model trained on SYNTHETIC data only)")


def test_the_reason_is_worded_in_danish() -> None:
    reason = rise_reason(Rise(0.0823, 0.129, 14), ["Weight up 2.3 kg in 3 days", "Age 85"])
    with use_language("da"):
        danish = model_text(reason)
        one_day = model_text(rise_reason(Rise(0.1, 0.25, 1), []))
    assert danish == (
        "Indlæggelsesrisikoen inden for 30 dage er steget fra 8,2 % til 12,9 % på 14 dage "
        "(modellen er kun trænet på SYNTETISKE data): Vægt steget 2,3 kg på 3 dage; Alder 85"
    )
    assert "på 1 dag (" in one_day and "10,0 % til 25,0 %" in one_day
    with use_language("en"):
        assert model_text(reason) == reason


# --- the decision on stored risks ------------------------------------------------------------------------


def _store_day(
    conn: psycopg.Connection[Any], pid: str, day: int, values: list[float]
) -> list[tuple[int, datetime]]:
    """Store a day's risks in order (the last is the day's); (score id, computed at) of each."""
    stored = []
    for k, p in enumerate(values):
        at = datetime.combine(DAY0 + timedelta(days=day), datetime.min.time(), tzinfo=UTC) + timedelta(
            hours=2 + 7 * k, minutes=day % 50
        )
        stored.append((record_admission_risk(conn, "0101", pid, p, [], "test-model", at), at))
    return stored


_DAY_VALUES: st.SearchStrategy[list[float]] = st.one_of(
    st.just([]), st.lists(st.floats(0.001, 0.999), min_size=1, max_size=3)
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(days=st.lists(_DAY_VALUES, min_size=1, max_size=40), threshold=st.sampled_from([0.288, 0.8]))
def test_alerts_on_stored_risks_are_the_replays(
    conn: psycopg.Connection[Any], model: RiskModel, days: list[list[float]], threshold: float
) -> None:
    """Several risks a day stored in PostgreSQL: the gateway's trigger after each day's last equals the
    replay's alert on the series of each day's last risk."""
    tuned = _with_threshold(model, threshold)
    pid = f"p-{uuid.uuid4().hex[:8]}"
    _enrol(conn, pid)
    series = np.array([values[-1] if values else np.nan for values in days])
    offline = _offline(tuned, series)
    for d, values in enumerate(days):
        stored = _store_day(conn, pid, d, values)
        if not stored:
            continue
        score_id, at = stored[-1]
        with conn.transaction():
            outcome = alert_on_rise(conn, tuned, "0101", pid, score_id=score_id, factors=[], computed_at=at)
        assert (outcome is not None) == bool(offline[d]), f"day {d}"
    raised = conn.execute(
        "SELECT count(*) FROM alerts WHERE patient_id = %s AND kind = 'risk-rise'", (pid,)
    ).fetchone()
    assert raised is not None and raised[0] <= int(offline.sum())


def test_the_last_risk_of_each_utc_day_is_the_days(conn: psycopg.Connection[Any]) -> None:
    _enrol(conn, "p")
    first = _store_day(conn, "p", 0, [0.1, 0.3, 0.2])
    _store_day(conn, "p", 2, [0.4])
    # 23:30 in Copenhagen on day 3 is 22:30 UTC: still day 3 (the model's days are UTC days).
    late = datetime.combine(DAY0 + timedelta(days=3), datetime.min.time(), tzinfo=UTC) + timedelta(
        hours=22, minutes=30
    )
    record_admission_risk(conn, "0101", "p", 0.5, [], "test-model", late)
    days = daily_admission_risks(conn, "0101", "p", first_day=DAY0, until=late)
    assert [(r.day, r.probability) for r in days] == [
        (DAY0, 0.2),
        (DAY0 + timedelta(days=2), 0.4),
        (DAY0 + timedelta(days=3), 0.5),
    ]
    assert days[0].score_id == first[-1][0]
    # As of the middle of day 0, the day's risk is the last stored by then.
    middle = daily_admission_risks(conn, "0101", "p", first_day=DAY0, until=first[1][1])
    assert [(r.day, r.probability) for r in middle] == [(DAY0, 0.3)]


# --- the schedule's scoring raises it --------------------------------------------------------------------


def _readings(conn: psycopg.Connection[Any], pid: str, kilos: list[float], now: datetime) -> None:
    rows = []
    for back, kg in enumerate(reversed(kilos)):
        at = now - timedelta(days=back, hours=12)
        weight = Reading("body-weight", Quantity(Decimal(str(kg)), "kg"))
        bp = Reading(
            "blood-pressure",
            components=(
                Component("systolic", Quantity(Decimal("128"), "mm[Hg]")),
                Component("diastolic", Quantity(Decimal("80"), "mm[Hg]")),
            ),
        )
        for reading, device in ((weight, "scale"), (bp, "bpm")):
            obs = build_observation(
                reading, patient_id=pid, device_id=f"{device}-{pid}", hub_id=f"hub-{pid}", effective=at
            )
            rows.append(validate_observation(obs))
    insert_observations(conn, "0101", f"hub-{pid}", rows)


def _alerts(conn: psycopg.Connection[Any], pid: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT id, kind, key, severity, reason, as_of, score_id, trigger_count, status FROM alerts"
        " WHERE patient_id = %s ORDER BY id",
        (pid,),
    ).fetchall()


def test_scoring_a_risen_risk_raises_one_risk_rise_alert(
    conn: psycopg.Connection[Any], model: RiskModel
) -> None:
    _enrol(conn, "gaining")
    # Two quiet weeks of a low risk, stored by earlier runs of the schedule ...
    for back in range(20, 0, -1):
        record_admission_risk(conn, "0101", "gaining", 0.01, [], "test-model", NOW - timedelta(days=back))
    # ... then today's readings: 3.6 kg gained in the last days.
    _readings(conn, "gaining", [82.0] * 25 + [82.6, 83.3, 84.1, 84.9, 85.6], NOW)
    with conn.transaction():
        probability = score_admission_risk(conn, model, "0101", "gaining", now=NOW)
    assert probability is not None and probability > 0.02
    [(alert_id, kind, key, severity, reason, as_of, score_id, count, status)] = _alerts(conn, "gaining")
    assert (kind, key, severity, as_of, count) == ("risk-rise", "", "medium", NOW, 1)
    stored = conn.execute(
        "SELECT id, score FROM scores WHERE patient_id = 'gaining' AND computed_at = %s", (NOW,)
    ).fetchone()
    assert stored is not None and score_id == stored[0]
    m = re.fullmatch(
        r"30-day admission risk rose from 1\.0 % to (\d+\.\d) % in 14 days "
        r"\(model trained on SYNTHETIC data only\): (.+)",
        reason,
    )
    assert m is not None, reason
    assert float(m[1]) == pytest.approx(100 * stored[1], abs=0.05)
    assert "eight" in m[2]  # "Weight up ..." among the factors
    events = conn.execute(
        "SELECT action FROM alert_events WHERE alert_id = %s ORDER BY id", (alert_id,)
    ).fetchall()
    assert events[0] == ("raised",)  # what delivery wrote after it is routing's

    # The schedule runs again later the same day: the rise is still today's, counted on the same alert.
    with conn.transaction():
        score_admission_risk(conn, model, "0101", "gaining", now=NOW + timedelta(hours=2))
    # And the next day the rise is no longer the first after 7 quiet days: nothing more.
    with conn.transaction():
        score_admission_risk(conn, model, "0101", "gaining", now=NOW + timedelta(days=1))
    [(same_id, *_rest, count, status)] = _alerts(conn, "gaining")
    assert same_id == alert_id and count == 2 and status != "resolved"
    raised = conn.execute("SELECT count(*) FROM alert_events WHERE action = 'raised'").fetchone()
    assert raised == (1,)


def test_a_steady_risk_raises_nothing(conn: psycopg.Connection[Any], model: RiskModel) -> None:
    _enrol(conn, "steady")
    _readings(conn, "steady", [82.0 + 0.1 * (i % 3) for i in range(30)], NOW)
    for back in range(20, -1, -1):
        with conn.transaction():
            assert (
                score_admission_risk(conn, model, "0101", "steady", now=NOW - timedelta(days=back))
                is not None
            )
    assert _alerts(conn, "steady") == []
