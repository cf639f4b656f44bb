"""The repository on a real PostgreSQL: enrolment, idempotent storage, scoping, partitions, quarantine."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from observation_factory import BASE_TIME, Home, identifier

from fhir_contract.validate import ValidObservation, validate_observation
from gateway.store.errors import EnrolmentConflict
from gateway.store.partitions import (
    ensure_partitions,
    existing_partitions,
    forget_cached_partitions,
)
from gateway.store.repository import (
    Device,
    Hub,
    Patient,
    count_observations,
    enroll_device,
    enroll_hub,
    enroll_patient,
    hub_assignment,
    hub_assignments,
    insert_observations,
    latest_observations,
    observations_for_patient,
    quarantine,
    quarantined,
)

HOME = Home()
OTHER = Home(municipality_id="0147", patient_id="p2", hub_id="hub2", oximeter_id="OXI2", cuff_id="BPC2")


@pytest.fixture
def conn(database_url: str) -> psycopg.Connection[tuple[object, ...]]:
    connection = psycopg.connect(database_url, autocommit=True)
    HOME.enroll(connection)
    OTHER.enroll(connection)
    return connection


def valid(resource: dict[str, object]) -> ValidObservation:
    # The repository stores what it is given; these tests' times need not be before the clock's now.
    return validate_observation(resource, now=datetime(2100, 1, 1, tzinfo=UTC))


def clock_error(resource: dict[str, Any], effective: datetime) -> ValidObservation:
    """A reading dated ``effective`` before the contract's floor, as a writer other than ingest (an
    import, SQL by hand) may store one: validated at a plausible time, then given its old time."""
    checked = valid(resource)
    moved = {**resource, "effectiveDateTime": effective.isoformat()}
    return dataclasses.replace(checked, effective=effective, resource=moved)


def test_enrolment_is_idempotent_and_assignment_lists_devices(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    HOME.enroll(conn)  # a second time changes nothing
    assignment = hub_assignment(conn, HOME.municipality_id, HOME.hub_id)
    assert assignment is not None
    assert assignment.patient_id == HOME.patient_id
    assert assignment.device_ids == {HOME.oximeter_id, HOME.cuff_id}


def test_hub_of_another_municipality_is_unknown(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    assert hub_assignment(conn, OTHER.municipality_id, HOME.hub_id) is None
    assert hub_assignment(conn, HOME.municipality_id, "no-such-hub") is None
    both = hub_assignments(conn, [(HOME.municipality_id, HOME.hub_id), (OTHER.municipality_id, OTHER.hub_id)])
    assert set(both) == {(HOME.municipality_id, HOME.hub_id), (OTHER.municipality_id, OTHER.hub_id)}


def test_enrolment_cannot_cross_municipalities(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    with pytest.raises(EnrolmentConflict) as caught:
        enroll_patient(conn, Patient(OTHER.municipality_id, HOME.patient_id, "Someone else"))
    assert caught.value.kind == "patient"
    with pytest.raises(EnrolmentConflict):
        enroll_hub(conn, Hub(OTHER.municipality_id, "hub9", HOME.patient_id))
    with pytest.raises(EnrolmentConflict):
        enroll_device(conn, Device(OTHER.municipality_id, "DEV9", HOME.hub_id, HOME.patient_id, "scale"))
    name = conn.execute("SELECT name FROM patients WHERE id = %s", (HOME.patient_id,)).fetchone()
    assert name == (f"Patient {HOME.patient_id}",)


def test_same_identifier_twice_is_stored_once(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    rows = [valid(HOME.spo2(95)), valid(HOME.blood_pressure(120, 80))]
    first = insert_observations(conn, HOME.municipality_id, HOME.hub_id, rows)
    again = insert_observations(conn, HOME.municipality_id, HOME.hub_id, [*rows, rows[0]])
    assert (first.inserted, first.duplicates, first.patient_ids) == (2, 0, {HOME.patient_id})
    assert (again.inserted, again.duplicates, again.patient_ids) == (0, 3, set())
    assert count_observations(conn, HOME.municipality_id) == 2


def test_stored_values_round_trip(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    spo2 = HOME.spo2(93)
    insert_observations(
        conn, HOME.municipality_id, HOME.hub_id, [valid(spo2), valid(HOME.blood_pressure(141, 92))]
    )
    stored = observations_for_patient(conn, HOME.municipality_id, HOME.patient_id)
    by_kind = {s.kind: s for s in stored}
    assert by_kind["spo2"].value == 93.0
    assert by_kind["spo2"].unit == "%"
    assert by_kind["spo2"].loinc == "2708-6"
    assert by_kind["spo2"].identifier == identifier(spo2)
    assert by_kind["spo2"].resource == spo2
    assert by_kind["spo2"].effective == BASE_TIME
    assert by_kind["spo2"].device_id == HOME.oximeter_id
    assert by_kind["blood-pressure"].value is None
    assert by_kind["blood-pressure"].components == {"systolic": 141.0, "diastolic": 92.0}


def test_queries_are_scoped_by_municipality(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    insert_observations(conn, HOME.municipality_id, HOME.hub_id, [valid(HOME.spo2(95))])
    assert count_observations(conn, OTHER.municipality_id) == 0
    assert count_observations(conn, OTHER.municipality_id, HOME.patient_id) == 0
    assert observations_for_patient(conn, OTHER.municipality_id, HOME.patient_id) == []
    assert latest_observations(conn, OTHER.municipality_id, HOME.patient_id, ["spo2"]) == {}
    assert count_observations(conn, HOME.municipality_id, HOME.patient_id) == 1


def test_latest_observations_takes_the_newest_per_kind_at_or_before_as_of(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    rows = [valid(HOME.spo2(90 + i, BASE_TIME + timedelta(hours=i))) for i in range(5)]
    rows.append(valid(HOME.pulse(70, BASE_TIME + timedelta(hours=1))))
    insert_observations(conn, HOME.municipality_id, HOME.hub_id, rows)
    now = latest_observations(
        conn, HOME.municipality_id, HOME.patient_id, ["spo2", "pulse-rate-oximeter", "bmi"]
    )
    assert set(now) == {"spo2", "pulse-rate-oximeter"}
    assert now["spo2"].value == 94.0
    earlier = latest_observations(
        conn, HOME.municipality_id, HOME.patient_id, ["spo2"], as_of=BASE_TIME + timedelta(hours=2)
    )
    assert earlier["spo2"].value == 92.0
    assert earlier["spo2"].effective == BASE_TIME + timedelta(hours=2)
    window = observations_for_patient(
        conn,
        HOME.municipality_id,
        HOME.patient_id,
        kinds=["spo2"],
        since=BASE_TIME + timedelta(hours=1),
        until=BASE_TIME + timedelta(hours=3),
    )
    assert [s.value for s in window] == [93.0, 92.0, 91.0]


def test_insert_creates_monthly_partitions_and_rows_land_in_them(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    forget_cached_partitions()
    november, december = BASE_TIME, BASE_TIME + timedelta(days=20)
    insert_observations(conn, HOME.municipality_id, HOME.hub_id, [valid(HOME.spo2(95, november))])
    insert_observations(conn, HOME.municipality_id, HOME.hub_id, [valid(HOME.spo2(96, december))])
    assert {date(2026, 11, 1), date(2026, 12, 1)} <= existing_partitions(conn)
    placed = conn.execute(
        "SELECT tableoid::regclass::text, value FROM observations ORDER BY effective"
    ).fetchall()
    assert placed == [("observations_y2026m11", 95.0), ("observations_y2026m12", 96.0)]


def test_clock_errors_outside_the_horizon_go_to_the_default_partition(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    unset_clock = datetime(2000, 1, 1, tzinfo=UTC)
    insert_observations(conn, HOME.municipality_id, HOME.hub_id, [clock_error(HOME.spo2(95), unset_clock)])
    assert date(2000, 1, 1) not in existing_partitions(conn)
    placed = conn.execute("SELECT tableoid::regclass::text FROM observations").fetchone()
    assert placed == ("observations_default",)


def test_creating_a_partition_moves_rows_out_of_the_default_partition(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    old = datetime(2001, 3, 5, tzinfo=UTC)  # outside the horizon: stored in the default partition
    insert_observations(conn, HOME.municipality_id, HOME.hub_id, [clock_error(HOME.spo2(95), old)])
    with conn.transaction():
        assert ensure_partitions(conn, [old.date()]) == [date(2001, 3, 1)]
    assert ensure_partitions(conn, [old.date()]) == []
    placed = conn.execute("SELECT tableoid::regclass::text FROM observations").fetchone()
    assert placed == ("observations_y2001m03",)
    assert count_observations(conn, HOME.municipality_id) == 1


def test_quarantine_keeps_payload_and_reason(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    quarantine(conn, HOME.topic, HOME.municipality_id, HOME.hub_id, "not-json: bad", b"\xff\x00garbage")
    rows = quarantined(conn, HOME.municipality_id)
    assert len(rows) == 1
    assert rows[0].reason == "not-json: bad"
    assert rows[0].topic == HOME.topic
    assert "garbage" in rows[0].payload
    assert quarantined(conn, OTHER.municipality_id) == []


def test_partition_created_in_a_rolled_back_transaction_is_created_again(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    forget_cached_partitions()
    october = BASE_TIME - timedelta(days=30)
    with pytest.raises(RuntimeError), conn.transaction():
        insert_observations(conn, HOME.municipality_id, HOME.hub_id, [valid(HOME.spo2(95, october))])
        raise RuntimeError("the caller's transaction fails after the insert")
    assert date(2026, 10, 1) not in existing_partitions(conn)
    insert_observations(conn, HOME.municipality_id, HOME.hub_id, [valid(HOME.spo2(95, october))])
    placed = conn.execute("SELECT tableoid::regclass::text FROM observations").fetchone()
    assert placed == ("observations_y2026m10",)


def test_concurrent_writers_create_a_new_month_once(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as setup:
        HOME.enroll(setup)
    forget_cached_partitions()
    september = BASE_TIME - timedelta(days=60)
    errors: list[BaseException] = []

    def write(offset: int) -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as own, own.transaction():
                rows = [
                    valid(HOME.spo2(95, september + timedelta(minutes=offset + i))) for i in range(0, 50, 5)
                ]
                insert_observations(own, HOME.municipality_id, HOME.hub_id, rows)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with psycopg.connect(database_url) as check:
        assert date(2026, 9, 1) in existing_partitions(check)
        assert count_observations(check, HOME.municipality_id) == 40
