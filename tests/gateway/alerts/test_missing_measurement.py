"""The 'missing' alert (OpenTele's BLUE alarm): an expected measurement that did not come by its due time
plus a grace raises one alert, however often the job looks; a newer reading resolves it by itself; a
patient who never took a measurement is not expected to. Real PostgreSQL, a simulated clock."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from fhir_contract.observation import build_observation
from fhir_contract.readings import Component, Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.alerts.missing import DAILY, Overdue, missing_reason, overdue
from gateway.alerts.missing_job import MissingMeasurementJob, check_missing
from gateway.api.i18n import use_language
from gateway.api.model_words import model_text
from gateway.broker import BrokerEndpoint, free_port
from gateway.service import Gateway, GatewayOptions
from gateway.settings import GatewaySettings
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.missing_reads import ExpectedReading, expected_readings
from gateway.store.repository import Municipality, Patient, insert_observations

T0 = datetime(2026, 11, 25, 7, 30, tzinfo=UTC)  # the last readings: a Wednesday morning
DUE = T0 + timedelta(hours=24)
LATE = DUE + timedelta(hours=12)  # due + grace: the first moment a measurement is missing

# Devices as the hubs enrol them, and one under the contract's own name (``contract_kind``).
DEVICES = {
    "ann": (("bpm", "blood-pressure-cuff"), ("oxi", "pulse-oximeter"), ("scale", "scale")),
    "bo": (("scale", "weight-scale"), ("thermo", "thermometer")),
    "new": (("bpm", "blood-pressure-cuff"), ("scale", "scale")),  # just enrolled: no readings yet
}


def _reading(kind: str) -> Reading:
    if kind == "blood-pressure":
        return Reading(
            "blood-pressure",
            components=(
                Component("systolic", Quantity(Decimal("128"), "mm[Hg]")),
                Component("diastolic", Quantity(Decimal("80"), "mm[Hg]")),
            ),
        )
    unit = {"spo2": "%", "pulse-rate-cuff": "/min", "pulse-rate-oximeter": "/min", "body-weight": "kg"}
    value = {"spo2": "96", "pulse-rate-cuff": "72", "pulse-rate-oximeter": "73", "body-weight": "81.5"}
    if kind == "body-temperature":
        return Reading(kind, Quantity(Decimal("36.8"), "Cel"))
    return Reading(kind, Quantity(Decimal(value[kind]), unit[kind]))


def _measure(
    conn: psycopg.Connection[Any],
    pid: str,
    device: str,
    kinds: tuple[str, ...],
    at: datetime,
    *,
    preliminary: bool = False,
) -> None:
    rows = [
        validate_observation(
            build_observation(
                _reading(kind),
                patient_id=pid,
                device_id=f"{device}-{pid}",
                hub_id=f"hub-{pid}",
                effective=at,
                preliminary=preliminary,
            )
        )
        for kind in kinds
    ]
    insert_observations(conn, "0101", f"hub-{pid}", rows)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as c:
        homes = [
            Home(
                Patient("0101", pid, f"Synthetic {pid}", birth_date=date(1941, 3, 2)),
                f"hub-{pid}",
                tuple(HomeDevice(f"{device}-{pid}", kind) for device, kind in devices),
            )
            for pid, devices in DEVICES.items()
        ]
        enroll_homes(c, [Municipality("0101", "København")], homes)
        # Ann measures blood pressure (with pulse) and SpO2 (with pulse); she never stood on her scale.
        _measure(c, "ann", "bpm", ("blood-pressure", "pulse-rate-cuff"), T0)
        _measure(c, "ann", "oxi", ("spo2", "pulse-rate-oximeter"), T0 + timedelta(hours=1))
        # Bo weighs himself on a scale enrolled under the contract's name; his thermometer is unused.
        _measure(c, "bo", "scale", ("body-weight",), T0)
        yield c


def _alerts(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT patient_id, key, severity, status, as_of, reason, trigger_count FROM alerts"
        " WHERE kind = 'missing' ORDER BY patient_id, key, id"
    ).fetchall()


def _events(conn: psycopg.Connection[Any], action: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT a.patient_id, a.key, e.actor, e.at FROM alert_events e JOIN alerts a ON a.id = e.alert_id"
        " WHERE e.action = %s ORDER BY e.id",
        (action,),
    ).fetchall()


# --- pure: what is overdue -------------------------------------------------------------------------------


def _expected(measurement: str, last: datetime | None) -> ExpectedReading:
    return ExpectedReading("0101", "p", measurement, last, None if last is None else "obs-1")


def test_a_measurement_is_missing_from_due_plus_grace_on() -> None:
    blood_pressure = [_expected("blood-pressure", T0)]
    assert overdue(blood_pressure, LATE - timedelta(seconds=1)) == []
    [found] = overdue(blood_pressure, LATE)
    assert (found.measurement, found.last_at, found.due_at) == ("blood-pressure", T0, DUE)
    assert DAILY.every + DAILY.grace == timedelta(hours=36)  # the worklist's STALE_AFTER


def test_no_first_reading_and_pulse_are_never_missing() -> None:
    later = LATE + timedelta(days=30)
    assert overdue([_expected("weight", None), _expected("pulse", T0)], later) == []


def test_the_reason_names_the_measurement_its_last_time_and_interval() -> None:
    o = Overdue("0101", "p", "spo2", T0, "obs-1", DUE, timedelta(hours=24))
    assert missing_reason(o) == "No SpO2 received since 2026-11-25 07:30 UTC (expected every 24 h)"


def test_the_reason_is_worded_in_danish_in_copenhagen_time() -> None:
    reason = missing_reason(Overdue("0101", "p", "blood-pressure", T0, None, DUE, timedelta(hours=24)))
    with use_language("da"):
        assert model_text(reason) == (
            "Ingen måling af blodtryk modtaget siden 25. nov. 2026 08.30 (forventes hver 24. time)"
        )
    with use_language("en"):
        assert model_text(reason) == reason


# --- the store: expected measurements and their newest readings ------------------------------------------


def test_expected_measurements_follow_the_devices_and_their_newest_reading(
    conn: psycopg.Connection[Any],
) -> None:
    found = expected_readings(
        conn, now=LATE, measurements=("blood-pressure", "spo2", "weight", "temperature")
    )
    assert [(e.patient_id, e.measurement, e.last_at) for e in found] == [
        ("ann", "blood-pressure", T0),
        ("ann", "spo2", T0 + timedelta(hours=1)),
        ("ann", "weight", None),
        ("bo", "temperature", None),
        ("bo", "weight", T0),
        ("new", "blood-pressure", None),
        ("new", "weight", None),
    ]
    # A reading taken after "now" is not known yet at "now".
    earlier = expected_readings(conn, now=T0 - timedelta(minutes=1), measurements=("blood-pressure",))
    assert [(e.patient_id, e.last_at) for e in earlier] == [("ann", None), ("new", None)]


# --- the job's rounds --------------------------------------------------------------------------------------


def test_overdue_raises_one_alert_and_running_again_raises_no_second(conn: psycopg.Connection[Any]) -> None:
    assert check_missing(conn, LATE - timedelta(minutes=1)).raised == 0  # not before due + grace
    assert _alerts(conn) == []
    first = check_missing(conn, LATE)
    assert (first.raised, first.overdue) == (2, 2)  # Ann's blood pressure, Bo's weight
    again = check_missing(conn, LATE + timedelta(hours=3))
    assert (again.raised, again.resolved, again.overdue) == (
        1,
        0,
        3,
    )  # only Ann's SpO2 (an hour later) is new
    check_missing(conn, LATE + timedelta(hours=4))
    rows = _alerts(conn)
    assert [(p, k, sev, status, as_of, n) for p, k, sev, status, as_of, _r, n in rows] == [
        ("ann", "blood-pressure", "medium", "open", DUE, 1),
        ("ann", "spo2", "medium", "open", DUE + timedelta(hours=1), 1),
        ("bo", "weight", "medium", "open", DUE, 1),
    ]
    assert rows[0][5] == "No blood pressure received since 2026-11-25 07:30 UTC (expected every 24 h)"
    assert len(_events(conn, "raised")) == 3  # one each, however often the job looked


def test_a_patient_without_readings_of_a_measurement_is_not_alerted(conn: psycopg.Connection[Any]) -> None:
    check_missing(conn, LATE + timedelta(days=10))
    keys = {(p, k) for p, k, *_ in _alerts(conn)}
    assert keys == {("ann", "blood-pressure"), ("ann", "spo2"), ("bo", "weight")}  # no pulse, no "new"


def test_a_newer_reading_resolves_the_alert_by_itself(conn: psycopg.Connection[Any]) -> None:
    check_missing(conn, LATE + timedelta(hours=1))
    # A cuff still inflating is no measurement; a reading taken later is.
    _measure(conn, "ann", "bpm", ("blood-pressure",), LATE + timedelta(hours=1), preliminary=True)
    assert check_missing(conn, LATE + timedelta(hours=2)).resolved == 0
    taken = LATE + timedelta(hours=3)
    _measure(conn, "ann", "bpm", ("blood-pressure",), taken)
    assert check_missing(conn, taken + timedelta(minutes=5)).resolved == 1
    row = conn.execute(
        "SELECT status, resolved_by, outcome, resolved_at FROM alerts WHERE key = 'blood-pressure'"
    ).fetchone()
    assert row == ("resolved", None, "measurement-received", taken + timedelta(minutes=5))
    [resolved] = _events(conn, "resolved")
    assert resolved == ("ann", "blood-pressure", None, taken + timedelta(minutes=5))  # actor NULL: homewatch
    active = {(p, k) for p, k, _s, status, *_ in _alerts(conn) if status != "resolved"}
    assert active == {("ann", "spo2"), ("bo", "weight")}
    # Missed again after the new reading: a new alert on the new due time.
    check_missing(conn, taken + timedelta(hours=36))
    rows = [r for r in _alerts(conn) if r[1] == "blood-pressure"]
    assert [(r[3], r[4]) for r in rows] == [("resolved", DUE), ("open", taken + timedelta(hours=24))]


def test_an_alert_a_nurse_resolved_stays_resolved_until_a_newer_reading_is_missed(
    conn: psycopg.Connection[Any],
) -> None:
    check_missing(conn, LATE + timedelta(hours=1))
    conn.execute(
        "UPDATE alerts SET status = 'resolved', resolved_at = %s, resolved_by = 'nurse1',"
        " outcome = 'phone-call' WHERE key = 'spo2'",
        (LATE + timedelta(minutes=10),),
    )
    check_missing(conn, LATE + timedelta(days=2))  # long after the 2 h re-alert quiet time
    spo2 = [r for r in _alerts(conn) if r[1] == "spo2"]
    assert [r[3] for r in spo2] == ["resolved"]


def test_the_job_runs_on_the_gateways_clock(conn: psycopg.Connection[Any], database_url: str) -> None:
    now = [LATE - timedelta(hours=1)]
    job = MissingMeasurementJob(database_url, timedelta(minutes=5), clock=lambda: now[0])
    job.start()
    try:
        assert job.run_now(timeout=30)
        assert _alerts(conn) == [] and job.rounds >= 1
        now[0] = LATE + timedelta(minutes=10)  # simulated time moves on by more than the interval
        deadline = time.monotonic() + 30
        while len(_alerts(conn)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert {(p, k) for p, k, *_ in _alerts(conn)} == {("ann", "blood-pressure"), ("bo", "weight")}
        rounds = job.rounds
        time.sleep(1.5)  # the clock stands still: no round without run_now
        assert job.rounds == rounds
        _measure(conn, "bo", "scale", ("body-weight",), now[0])
        now[0] += timedelta(seconds=30)
        assert job.run_now(timeout=30)
        assert job.last is not None and job.last.resolved == 1
    finally:
        job.stop()
    assert len(_events(conn, "raised")) == 2


def test_the_gateway_runs_the_job_on_its_clock(
    conn: psycopg.Connection[Any], database_url: str, broker: BrokerEndpoint
) -> None:
    """Wired into the composition root: started after the scorer with the gateway's (here simulated)
    clock, stopped with the gateway."""
    options = GatewayOptions(
        database_url=database_url, broker=broker, workers=0, port=free_port(), clock=lambda: LATE
    )
    gateway = Gateway(options, GatewaySettings(environment="development"))
    try:
        gateway.start()
        assert gateway.missing is not None
        assert gateway.missing.run_now(timeout=30)
        assert {(p, k, as_of) for p, k, _s, _st, as_of, *_ in _alerts(conn)} == {
            ("ann", "blood-pressure", DUE),
            ("bo", "weight", DUE),
        }
    finally:
        gateway.stop()
    assert gateway.missing is None
