"""Scoring from stored readings: NEWS2 from the newest vitals, a RiskAssessment with reasons, one active
alert per patient and kind (no double paging), made worse when worse, the current NEWS2 stored when it
says something new; the scorer's thread, its catch-up and its barrier. Real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from fhir.resources.R4B.riskassessment import RiskAssessment

from fhir_contract.observation import build_observation
from fhir_contract.readings import Absent, Component, Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.alerts.news2_inputs import NEWS2_KINDS, vitals_from_observations
from gateway.alerts.scorer import CATCH_UP_WINDOW, Scorer, score_patient, score_patients
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.new_data import announce_new_data, patients_stored_since, send_barrier
from gateway.store.repository import Municipality, Patient, insert_observations, latest_observations

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as c:
        homes = [
            Home(
                Patient("0101", pid, f"Synthetic {pid}", spo2_scale2=scale2),
                f"hub-{pid}",
                (HomeDevice(f"dev-{pid}", "pulse-oximeter"),),
            )
            for pid, scale2 in (("p-1", False), ("p-2", True))
        ]
        enroll_homes(c, [Municipality("0101", "København")], homes)
        yield c


def _store(
    c: psycopg.Connection[Any], pid: str, at: datetime, spo2: int, pulse: int, sbp: int, temp: str
) -> None:
    readings = [
        Reading("spo2", Quantity(Decimal(spo2), "%")),
        Reading("pulse-rate-oximeter", Quantity(Decimal(pulse), "/min")),
        Reading(
            "blood-pressure",
            components=(
                Component("systolic", Quantity(Decimal(sbp), "mm[Hg]")),
                Component("diastolic", Quantity(Decimal(sbp - 45), "mm[Hg]")),
            ),
        ),
        Reading("body-temperature", Quantity(Decimal(temp), "Cel")),
    ]
    rows = [
        validate_observation(
            build_observation(r, patient_id=pid, device_id=f"dev-{pid}", hub_id=f"hub-{pid}", effective=at)
        )
        for r in readings
    ]
    insert_observations(c, "0101", f"hub-{pid}", rows)


def _alerts(c: psycopg.Connection[Any], pid: str) -> list[tuple[Any, ...]]:
    return c.execute(
        "SELECT severity, status, reason FROM alerts WHERE patient_id = %s ORDER BY id", (pid,)
    ).fetchall()


def test_normal_vitals_score_zero_with_missing_parameters_said(conn: psycopg.Connection[Any]) -> None:
    _store(conn, "p-1", T0, spo2=97, pulse=70, sbp=128, temp="36.8")
    outcome = score_patient(conn, "0101", "p-1")
    assert outcome is not None and outcome.news2 == 0 and outcome.band == "low"
    assert outcome.alert is None and not outcome.alert_raised
    detail, resource = conn.execute(
        "SELECT detail, resource FROM scores WHERE id = %s", (outcome.score_id,)
    ).fetchone()
    assert {m["name"] for m in detail["missing"]} == {"respiration_rate", "consciousness", "air_or_oxygen"}
    assert detail["reasons"]
    RiskAssessment.model_validate(resource)
    assert len(resource["basis"]) == 4
    assert _alerts(conn, "p-1") == []


def test_deterioration_raises_one_alert_and_escalates_without_paging_twice(
    conn: psycopg.Connection[Any],
) -> None:
    _store(conn, "p-1", T0, spo2=93, pulse=95, sbp=105, temp="38.2")  # 2+1+1+1 = 5 -> medium
    first = score_patient(conn, "0101", "p-1")
    assert first is not None and first.news2 == 5 and first.alert_raised
    assert first.alert is not None and first.alert.severity == "medium"
    again = score_patient(conn, "0101", "p-1")
    assert again is not None and not again.alert_raised  # same state: no second page
    _store(conn, "p-1", T0 + timedelta(hours=6), spo2=90, pulse=125, sbp=95, temp="39.4")  # 3+2+2+2 = 9
    worse = score_patient(conn, "0101", "p-1")
    assert worse is not None and worse.news2 == 9 and not worse.alert_raised
    alerts = _alerts(conn, "p-1")
    assert len(alerts) == 1
    assert alerts[0][0] == "high" and alerts[0][1] == "open"
    assert "SpO2" in alerts[0][2]


def test_scale2_patient_is_not_alerted_for_their_usual_low_saturation(conn: psycopg.Connection[Any]) -> None:
    for pid in ("p-1", "p-2"):
        _store(conn, pid, T0, spo2=89, pulse=80, sbp=130, temp="36.9")
    scale1 = score_patient(conn, "0101", "p-1")
    scale2 = score_patient(conn, "0101", "p-2")
    assert scale1 is not None and scale1.news2 == 3 and scale1.alert is not None  # red score on scale 1
    assert scale2 is not None and scale2.news2 == 0 and scale2.alert is None


def test_unknown_patient_or_no_vitals_gives_no_score(conn: psycopg.Connection[Any]) -> None:
    assert score_patient(conn, "0101", "nobody") is None
    assert score_patient(conn, "0101", "p-2") is None
    assert score_patient(conn, "0147", "p-1") is None  # another municipality sees nothing


def test_scorer_thread_scores_notified_patients(conn: psycopg.Connection[Any], database_url: str) -> None:
    _store(conn, "p-1", T0, spo2=91, pulse=112, sbp=100, temp="38.5")
    scorer = Scorer(database_url)
    scorer.start()
    try:
        scorer.notify("0101", {"p-1": T0})
        scorer.notify("0101", {"p-1": T0})
        assert scorer.wait_idle(timeout=10)
    finally:
        scorer.stop()
    assert scorer.alerts_raised == 1
    count = conn.execute("SELECT count(*) FROM scores WHERE patient_id = 'p-1'").fetchone()
    assert count is not None and 1 <= count[0] <= 2


def test_a_preliminary_blood_pressure_changes_neither_the_news2_inputs_nor_the_score(
    conn: psycopg.Connection[Any],
) -> None:
    _store(conn, "p-1", T0, spo2=97, pulse=70, sbp=128, temp="36.8")
    before = score_patient(conn, "0101", "p-1")
    inputs = vitals_from_observations(latest_observations(conn, "0101", "p-1", NEWS2_KINDS), scale2=False)
    # A minute later the cuff inflates past 85 mmHg: as a systolic pressure that would score 3.
    cuff = Reading(
        "blood-pressure",
        components=(
            Component("systolic", Quantity(Decimal(85), "mm[Hg]")),
            Component("diastolic", Absent("not-a-number")),
            Component("mean", Absent("not-a-number")),
        ),
    )
    at = T0 + timedelta(minutes=1)
    preliminary = build_observation(
        cuff,
        patient_id="p-1",
        device_id="dev-p-1",
        hub_id="hub-p-1",
        effective=at,
        received=at,
        preliminary=True,
    )
    stored = insert_observations(conn, "0101", "hub-p-1", [validate_observation(preliminary)])
    assert (stored.inserted, stored.patient_ids) == (1, set())  # stored, but nothing new to score

    latest = latest_observations(conn, "0101", "p-1", NEWS2_KINDS)
    assert latest["blood-pressure"].components["systolic"] == 128  # the final reading, not the cuff
    assert vitals_from_observations(latest, scale2=False) == inputs
    after = score_patient(conn, "0101", "p-1")
    assert before is not None and after is not None
    assert (after.news2, after.band, after.alert) == (before.news2, before.band, None) == (0, "low", None)
    as_of = conn.execute("SELECT as_of FROM scores WHERE id = %s", (after.score_id,)).fetchone()
    assert as_of == (T0,)  # the preliminary value's later time does not move the score's time either
    assert _alerts(conn, "p-1") == []


def test_catch_up_finds_patients_with_recent_readings_stored_since_a_moment(
    conn: psycopg.Connection[Any],
) -> None:
    """What the scorer scores again after its listening connection was lost (NOTIFYs are not kept)."""
    before = datetime.now(UTC) - timedelta(seconds=1)
    now = datetime.now(UTC)
    _store(conn, "p-1", now - timedelta(hours=2), 96, 70, 125, "36.8")
    _store(conn, "p-2", now - timedelta(days=3), 96, 70, 125, "36.8")  # too old to change a score
    stored = patients_stored_since(conn, before, effective_within=CATCH_UP_WINDOW)
    assert stored == {"0101": {"p-1": now - timedelta(hours=2)}}  # from its earliest reading stored since
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert patients_stored_since(conn, later, effective_within=CATCH_UP_WINDOW) == {}


def test_a_barrier_is_heard_only_after_the_announcements_committed_before_it(
    conn: psycopg.Connection[Any], database_url: str
) -> None:
    """What the demo and tests wait on (``Gateway.wait_scored``): once the listener has read a barrier,
    a batch announced before it has been handed to the scorer, so ``wait_idle`` then means scored."""
    _store(conn, "p-1", T0, spo2=91, pulse=112, sbp=100, temp="38.5")
    scorer = Scorer(database_url)
    scorer.start()
    scorer.listen("t_barrier")
    try:
        assert scorer.wait_listening(timeout=10)
        assert not scorer.wait_heard("never sent", timeout=0.3)
        with conn.transaction():
            announce_new_data(conn, "t_barrier", {"0101": {"p-1": T0}})
        barrier = send_barrier(database_url, "t_barrier")
        assert barrier is not None
        assert scorer.wait_heard(barrier, timeout=10)
        assert scorer.wait_idle(timeout=10)
        scored = conn.execute("SELECT count(*) FROM scores WHERE patient_id = 'p-1'").fetchone()
        assert scored is not None and scored[0] >= 1
        assert scorer.scored >= 1  # the barrier itself named no one to score
    finally:
        scorer.stop()


def _news2_rows(c: psycopg.Connection[Any], pid: str) -> list[tuple[Any, ...]]:
    return c.execute(
        "SELECT score, as_of FROM scores WHERE patient_id = %s AND method = 'news2' ORDER BY computed_at, id",
        (pid,),
    ).fetchall()


def _pulse(c: psycopg.Connection[Any], pid: str, value: int, at: datetime) -> None:
    reading = Reading("pulse-rate-oximeter", Quantity(Decimal(value), "/min"))
    observation = build_observation(
        reading, patient_id=pid, device_id=f"dev-{pid}", hub_id=f"hub-{pid}", effective=at
    )
    insert_observations(c, "0101", f"hub-{pid}", [validate_observation(observation)])


def test_the_current_news2_is_stored_when_it_says_something_new_not_once_a_reading(
    conn: psycopg.Connection[Any],
) -> None:
    """A reading a second must not make a RiskAssessment a second: the patient's current NEWS2 is stored
    when its total, band or reasons change, or when the stored one stands on data 10 minutes older."""
    for second in range(5):  # 70-74 /min: 0 points each, NEWS2 0 with the same reasons
        _pulse(conn, "p-1", 70 + second, T0 + timedelta(seconds=second))
        score_patients(conn, {("0101", "p-1"): T0 + timedelta(seconds=second)}, now=T0)
    assert _news2_rows(conn, "p-1") == [(0, T0)]
    _pulse(conn, "p-1", 95, T0 + timedelta(seconds=5))  # 1 point: something new to say
    score_patients(conn, {("0101", "p-1"): T0 + timedelta(seconds=5)}, now=T0)
    _pulse(conn, "p-1", 70, T0 + timedelta(minutes=11))  # 0 again, and more than 10 minutes on
    [outcome] = score_patients(conn, {("0101", "p-1"): T0 + timedelta(minutes=11)}, now=T0)
    assert _news2_rows(conn, "p-1") == [
        (0, T0),
        (1, T0 + timedelta(seconds=5)),
        (0, T0 + timedelta(minutes=11)),
    ]
    newest = conn.execute(
        "SELECT id FROM scores WHERE patient_id = 'p-1' AND method = 'news2'"
        " ORDER BY computed_at DESC, id DESC LIMIT 1"
    ).fetchone()
    assert newest == (outcome.score_id,)


def test_after_an_alert_on_an_earlier_reading_the_current_news2_is_still_the_newest_score(
    conn: psycopg.Connection[Any],
) -> None:
    _pulse(conn, "p-1", 70, T0)
    score_patients(conn, {("0101", "p-1"): T0}, now=T0)
    _pulse(conn, "p-1", 140, T0 + timedelta(seconds=1))  # 3 points: raises, its score is stored
    _pulse(conn, "p-1", 70, T0 + timedelta(seconds=2))  # back to what the stored current one says
    score_patients(conn, {("0101", "p-1"): T0 + timedelta(seconds=1)}, now=T0)
    assert _news2_rows(conn, "p-1") == [
        (0, T0),
        (3, T0 + timedelta(seconds=1)),
        (0, T0 + timedelta(seconds=2)),
    ]
    alert = conn.execute(
        "SELECT s.score, s.as_of FROM alerts a JOIN scores s ON s.id = a.score_id WHERE a.patient_id = 'p-1'"
    ).fetchone()
    assert alert == (3, T0 + timedelta(seconds=1))
