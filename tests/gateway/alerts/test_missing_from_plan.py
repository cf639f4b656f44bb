"""The 'missing' alert from a measurement plan (issue 21): a planned occurrence whose deadline passed
without a reading raises one alert, however often the job looks; the next missed occurrence is counted on
it; a reading resolves it; a patient without a plan keeps the defaults. Real PostgreSQL, the plan set
through the service a nurse's page uses, the job on a simulated clock, and the nurse's worklist and
inbox showing the alert.

Times: the homes are in Europe/Copenhagen, UTC+1 in November, so the plan's 08:00 and 20:00 are 07:00
and 19:00 UTC. The plan is set on Tuesday 24 November 2026 at 12:00 UTC.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from fhir_contract.examples import example_reading
from fhir_contract.observation import build_observation
from fhir_contract.plan import PlanItem, parse_plan
from fhir_contract.validate import validate_observation
from gateway.administration.plans import set_plan
from gateway.alerts.missing import LOOKBACK, missed, planned_reason
from gateway.alerts.missing_job import MissingMeasurementJob, check_missing
from gateway.api.app import create_app
from gateway.api.auth import create_user
from gateway.api.i18n import use_language
from gateway.api.model_words import model_text
from gateway.settings import GatewaySettings
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.missing_reads import ExpectedReading
from gateway.store.plans import PlanInForce
from gateway.store.repository import Municipality, Patient, insert_observations

ZONE = ZoneInfo("Europe/Copenhagen")
SET_AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
EVENING = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)  # 20:00 in the home
MORNING = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)  # 08:00 in the home, Wednesday
GRACE = timedelta(minutes=120)
PLAN = parse_plan([{"measurement": "blood-pressure", "times": ["08:00", "20:00"], "grace_minutes": 120}])
NURSE, PASSWORD = "anna", "a password of the test"
DEVICES = {
    "ann": (("bpm", "blood-pressure-cuff"), ("scale", "scale")),  # a plan of blood pressure only
    "bo": (("bpm", "blood-pressure-cuff"),),  # no plan: the defaults
}


def _measure(conn: psycopg.Connection[Any], pid: str, device: str, kind: str, at: datetime) -> str:
    observation = build_observation(
        replace(example_reading(kind), device_time=None),  # stamped with ``at``
        patient_id=pid,
        device_id=f"{device}-{pid}",
        hub_id=f"hub-{pid}",
        effective=at,
    )
    insert_observations(conn, "0101", f"hub-{pid}", [validate_observation(observation)])
    return str(observation["identifier"][0]["value"])


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as c:
        homes = [
            Home(
                Patient("0101", pid, f"Synthetic {pid}", synthetic=True),
                f"hub-{pid}",
                tuple(HomeDevice(f"{device}-{pid}", kind) for device, kind in devices),
            )
            for pid, devices in DEVICES.items()
        ]
        enroll_homes(c, [Municipality("0101", "København")], homes)
        create_user(c, NURSE, "0101", "nurse", PASSWORD)  # the municipality's default team: both patients
        # Both measured blood pressure (and Ann weighed herself) the morning the plan was set.
        for pid in DEVICES:
            _measure(c, pid, "bpm", "blood-pressure", SET_AT - timedelta(hours=5))
        _measure(c, "ann", "scale", "body-weight", SET_AT - timedelta(hours=5))
        yield c


def _plan(conn: psycopg.Connection[Any], items: tuple[PlanItem, ...] = PLAN, at: datetime = SET_AT) -> None:
    set_plan(conn, "ann", items, by=NURSE, at=at, publisher=None)


def _alerts(conn: psycopg.Connection[Any], patient: str | None = None) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT patient_id, key, status, as_of, reason, trigger_count, observation_identifier, outcome"
        " FROM alerts WHERE kind = 'missing' AND patient_id = coalesce(%s, patient_id) ORDER BY id",
        (patient,),
    ).fetchall()


# --- pure: which occurrences are missed --------------------------------------------------------------------


def _in_force(items: tuple[PlanItem, ...] = PLAN, set_at: datetime = SET_AT) -> PlanInForce:
    return PlanInForce("0101", "p", items, set_at, None)


def _newest(at: datetime | None) -> dict[str, ExpectedReading]:
    return {"blood-pressure": ExpectedReading("0101", "p", "blood-pressure", at, None if at is None else "r")}


def test_an_occurrence_is_missed_once_its_deadline_has_passed_without_a_reading() -> None:
    plan = _in_force()
    taken = {"blood-pressure": [EVENING - timedelta(minutes=30)]}  # measured before the reminder: counts
    deadline = MORNING + GRACE
    assert missed(plan, taken, _newest(EVENING), deadline, ZONE) == []  # a reading at the deadline counts
    [found] = missed(plan, taken, _newest(EVENING), deadline + timedelta(seconds=1), ZONE)
    assert (found.occurrence.due_at, found.occurrence.deadline, found.last_at) == (MORNING, deadline, EVENING)
    assert planned_reason(found) == (
        "Planned blood pressure measurement due 2026-11-25 07:00 UTC not received (grace 120 min)"
    )


def test_only_the_newest_missed_occurrence_is_a_trigger_and_none_before_the_plan_was_set() -> None:
    later = EVENING + timedelta(days=1, hours=3)  # the evening after: morning and evening both missed
    [found] = missed(_in_force(), {}, _newest(None), later, ZONE)
    assert found.occurrence.due_at == EVENING + timedelta(days=1) and found.last_identifier is None
    # A plan set after this morning's 08:00 does not ask for it.
    assert (
        missed(_in_force(set_at=MORNING + timedelta(minutes=1)), {}, _newest(None), MORNING + GRACE * 2, ZONE)
        == []
    )
    # A week without the job: only the last LOOKBACK is looked at, and still the newest is found.
    week = missed(_in_force(), {}, _newest(None), SET_AT + timedelta(days=7, hours=9), ZONE)
    assert [m.occurrence.due_at for m in week] == [MORNING + timedelta(days=6)] and timedelta(
        days=7
    ) > LOOKBACK


def test_a_late_reading_after_the_deadline_is_no_trigger_a_reading_long_before_does_not_count() -> None:
    after = MORNING + GRACE + timedelta(minutes=30)
    assert (
        missed(_in_force(), {"blood-pressure": [after]}, _newest(after), after + timedelta(minutes=1), ZONE)
        == []
    )
    too_early = MORNING - timedelta(hours=3)  # more than EARLY (2 h) before the due time
    [found] = missed(_in_force(), {"blood-pressure": [too_early]}, _newest(too_early), after, ZONE)
    assert found.occurrence.due_at == MORNING


def test_days_the_plan_leaves_out_are_not_expected() -> None:
    weekends = parse_plan([{"measurement": "blood-pressure", "times": ["08:00"], "days": [6, 7]}])
    assert missed(_in_force(weekends), {}, _newest(None), MORNING + timedelta(days=1), ZONE) == []
    [saturday] = missed(_in_force(weekends), {}, _newest(None), MORNING + timedelta(days=3, hours=3), ZONE)
    assert saturday.occurrence.due_at == MORNING + timedelta(days=3)


def test_the_reason_is_worded_in_danish_in_copenhagen_time() -> None:
    reason = "Planned blood pressure measurement due 2026-11-25 07:00 UTC not received (grace 120 min)"
    with use_language("en"):
        assert model_text(reason) == reason
    with use_language("da"):
        worded = model_text(reason)
    # Until the catalogue has the Danish sentence, its msgid; the time is Copenhagen's either way.
    assert "25. nov. 2026 08.00" in worded and "blodtryk" in worded


# --- the job's rounds on a simulated clock -----------------------------------------------------------------


def test_a_missed_planned_measurement_raises_one_alert_a_reading_resolves_it(
    conn: psycopg.Connection[Any],
) -> None:
    _plan(conn)
    _measure(conn, "ann", "bpm", "blood-pressure", EVENING - timedelta(minutes=30))  # this evening's: done
    evening_reading = conn.execute(
        "SELECT identifier FROM observations WHERE patient_id = 'ann' AND effective = %s",
        (EVENING - timedelta(minutes=30),),
    ).fetchone()
    assert check_missing(conn, EVENING + GRACE + timedelta(minutes=5), zone=ZONE).raised == 0
    assert check_missing(conn, MORNING + GRACE, zone=ZONE).raised == 0  # the deadline itself still counts
    first = check_missing(conn, MORNING + GRACE + timedelta(minutes=5), zone=ZONE)
    assert first.raised == 1
    for hours in (1, 3, 6):  # later rounds find the same due time: nobody is told again
        assert check_missing(conn, MORNING + GRACE + timedelta(hours=hours), zone=ZONE).raised == 0
    [alert] = _alerts(conn, "ann")
    assert alert[:4] == ("ann", "blood-pressure", "open", MORNING)
    assert (
        alert[4] == "Planned blood pressure measurement due 2026-11-25 07:00 UTC not received (grace 120 min)"
    )
    assert evening_reading is not None and alert[6] == evening_reading[0]  # the reading it is missing since
    # The evening's 20:00 missed too: counted on the same alert, not a second one (Bo, without a plan,
    # gets the defaults' alert now: 36 h after his last reading).
    check_missing(conn, EVENING + timedelta(days=1) + GRACE + timedelta(minutes=5), zone=ZONE)
    [alert] = _alerts(conn, "ann")
    assert alert[5] == 2
    # She measures the next morning: the next round resolves the alert by itself.
    taken = MORNING + timedelta(days=1, minutes=-10)
    _measure(conn, "ann", "bpm", "blood-pressure", taken)
    assert check_missing(conn, taken + timedelta(minutes=5), zone=ZONE).resolved == 1
    [alert] = _alerts(conn, "ann")
    assert (alert[2], alert[7]) == ("resolved", "measurement-received")
    # That evening's 20:00 missed: a new alert on its due time.
    check_missing(conn, EVENING + timedelta(days=2) + GRACE + timedelta(minutes=1), zone=ZONE)
    assert [(a[2], a[3]) for a in _alerts(conn, "ann")] == [
        ("resolved", MORNING),
        ("open", EVENING + timedelta(days=2)),
    ]


def test_the_plan_replaces_the_defaults_and_a_patient_without_one_keeps_them(
    conn: psycopg.Connection[Any],
) -> None:
    _plan(conn, parse_plan([{"measurement": "glucose", "times": ["09:00"], "grace_minutes": 60}]))
    later = SET_AT + timedelta(days=3)
    check_missing(conn, later, zone=ZONE)
    found = {(p, k): (as_of, since) for p, k, _s, as_of, _r, _n, since, _o in _alerts(conn)}
    # Ann: glucose, which she never measured (the plan asks for it); not her blood pressure nor her
    # weight, which the defaults would have alerted on by now. Bo, without a plan: the defaults.
    assert set(found) == {("ann", "glucose"), ("bo", "blood-pressure")}
    assert found[("ann", "glucose")] == (datetime(2026, 11, 27, 8, 0, tzinfo=UTC), None)
    # Any glucose reading ends an alert that was missing since none.
    _measure(conn, "ann", "glucose", "glucose-capillary-plasma", later + timedelta(minutes=1))
    assert check_missing(conn, later + timedelta(minutes=2), zone=ZONE).resolved == 1
    # The nurse removes the plan: the defaults apply to Ann again.
    set_plan(conn, "ann", (), by=NURSE, at=later + timedelta(minutes=3), publisher=None)
    check_missing(conn, later + timedelta(minutes=4), zone=ZONE)
    keys = {(p, k) for p, k, status, *_ in _alerts(conn) if status != "resolved"}
    assert keys == {("ann", "blood-pressure"), ("ann", "weight"), ("bo", "blood-pressure")}


def test_the_hubs_own_time_zone_places_the_plans_times(conn: psycopg.Connection[Any]) -> None:
    conn.execute("UPDATE hubs SET settings = '{\"timezone\": \"America/Nuuk\"}' WHERE id = 'hub-ann'")
    _plan(conn)
    nuuk_evening = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)  # 20:00 in Nuuk (UTC-2)
    _measure(conn, "ann", "bpm", "blood-pressure", nuuk_evening - timedelta(minutes=15))
    assert (
        check_missing(conn, MORNING + GRACE + timedelta(minutes=5), zone=ZONE).raised == 0
    )  # Copenhagen's would
    nuuk_morning = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    check_missing(conn, nuuk_morning + GRACE + timedelta(minutes=5), zone=ZONE)
    assert [(p, as_of) for p, _k, _s, as_of, *_ in _alerts(conn)] == [("ann", nuuk_morning)]


def test_a_missed_planned_measurement_reaches_the_nurses_worklist_and_inbox(
    conn: psycopg.Connection[Any], database_url: str
) -> None:
    """Done when (issue 21): the job on the gateway's (simulated) clock raises the alert, and the nurse
    finds it on her worklist and in her inbox, on the same clock."""
    _plan(conn)
    now = [SET_AT + timedelta(hours=1)]
    job = MissingMeasurementJob(database_url, timedelta(minutes=5), clock=lambda: now[0], zone=ZONE)
    job.start()
    try:
        assert job.run_now(timeout=30) and _alerts(conn) == []
        now[0] = EVENING + GRACE + timedelta(minutes=10)  # simulated time moves on: this evening missed
        deadline = time.monotonic() + 30
        while not _alerts(conn) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(p, k, as_of) for p, k, _s, as_of, *_ in _alerts(conn)] == [
            ("ann", "blood-pressure", EVENING)
        ]
    finally:
        job.stop()
    reason = "Planned blood pressure measurement due 2026-11-24 19:00 UTC not received (grace 120 min)"
    settings = GatewaySettings(
        database_url=database_url,
        secret_key=SecretStr("test-secret-of-the-plan-alerts"),
        default_language="en",
    )
    with ConnectionPool(database_url, min_size=1, max_size=2, open=True) as pool:
        app = create_app(settings, pool)
        app.state.clock = lambda: now[0]
        with TestClient(app) as client:
            form = client.get("/login").text
            token = form.split('name="csrf" value="')[1].split('"')[0]
            login = client.post(
                "/login",
                data={"username": NURSE, "password": PASSWORD, "csrf": token},
                follow_redirects=False,
            )
            assert login.status_code == 303
            worklist = client.get("/")
            assert worklist.status_code == 200 and reason in worklist.text
            card = worklist.text.split(reason)[0].rsplit("<article", 1)[-1]
            assert 'data-patient="ann"' in card  # on Ann's card, not Bo's
            inbox = client.get("/alerts")
            assert reason in inbox.text and "Measurement missing: Blood pressure" in inbox.text
