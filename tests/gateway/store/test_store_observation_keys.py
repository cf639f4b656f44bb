"""One stored row per reading, whatever its effective time: the key table on a real PostgreSQL.

A reading is its identifier scoped by municipality and device. A hub re-sends a stored reading after its
clock correction changed, so the same identifier arrives with another effective time; ``observation_keys``
stores it once, finds it by FHIR id (scoped by municipality), and stays consistent with ``observations``
for the repository and for other writers. Another device's reading under the same identifier is another
reading (no sender can make a reading of another vanish); the same key with other values is a conflict.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from observation_factory import BASE_TIME, Home, nurse_of
from psycopg.types.json import Jsonb

from fhir_contract.observation import build_observation
from fhir_contract.readings import Quantity, Reading
from fhir_contract.validate import ValidObservation, validate_observation
from gateway.api.fhir_model import observation_id
from gateway.store.fhir_reads import observation_by_id
from gateway.store.repository import (
    DeliveredObservation,
    count_observations,
    insert_observation_batch,
    insert_observations,
    observations_for_patient,
)

HOME = Home()
OTHER = Home(municipality_id="0147", patient_id="p2", hub_id="hub2", oximeter_id="OXI2", cuff_id="BPC2")
DEVICE_TIME = datetime(2026, 11, 20, 7, 58)  # the oximeter's own (naive, slightly wrong) clock

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as connection:  # closed after the test
        HOME.enroll(connection)
        OTHER.enroll(connection)
        yield connection


def spo2(
    value: float, effective: datetime, home: Home = HOME, device_time: datetime = DEVICE_TIME
) -> ValidObservation:
    """A reading stamped ``device_time`` by the device, at the hub's corrected ``effective`` time."""
    resource = build_observation(
        Reading("spo2", Quantity(Decimal(str(value)), "%"), device_time=device_time),
        patient_id=home.patient_id,
        device_id=home.oximeter_id,
        hub_id=home.hub_id,
        effective=effective,
    )
    return validate_observation(resource)


def consistent(conn: Conn) -> None:
    """Every stored row has its key (same effective, municipality, device, patient, id), every key its
    row, and every key the id the API computes."""
    orphans = conn.execute(
        "SELECT count(*) FROM observation_keys k WHERE NOT EXISTS (SELECT 1 FROM observations o"
        " WHERE o.identifier = k.identifier AND o.effective = k.effective AND o.device_id = k.device_id"
        " AND o.municipality_id = k.municipality_id AND o.patient_id = k.patient_id)"
    ).fetchone()
    keyless = conn.execute(
        "SELECT count(*) FROM observations o LEFT JOIN observation_keys k"
        " ON k.identifier = o.identifier AND k.effective = o.effective AND k.device_id = o.device_id"
        " AND k.municipality_id = o.municipality_id WHERE k.id IS NULL"
    ).fetchone()
    keys = conn.execute("SELECT id, municipality_id, device_id, identifier FROM observation_keys").fetchall()
    wrong_ids = [key for key in keys if key[0] != observation_id(*key[1:])]
    assert (orphans, keyless, wrong_ids) == ((0,), (0,), [])


def key_of(home: Home, reading: ValidObservation) -> str:
    return observation_id(home.municipality_id, reading.device_id, reading.identifier)


def test_reading_resent_with_another_effective_time_is_stored_once(conn: Conn) -> None:
    first = spo2(95, BASE_TIME)
    corrected = spo2(95, BASE_TIME + timedelta(seconds=41))  # the hub's clock correction changed
    assert first.identifier == corrected.identifier and first.effective != corrected.effective
    stored = insert_observations(conn, HOME.municipality_id, HOME.hub_id, [first])
    again = insert_observations(conn, HOME.municipality_id, HOME.hub_id, [corrected])
    assert (stored.inserted, stored.duplicates, stored.patient_ids) == (1, 0, {HOME.patient_id})
    assert (again.inserted, again.duplicates, again.patient_ids) == (0, 1, set())
    (only,) = observations_for_patient(conn, HOME.municipality_id, HOME.patient_id)
    assert only.effective == BASE_TIME  # the first copy stored wins
    consistent(conn)


def test_copies_within_one_batch_keep_the_first(conn: Conn) -> None:
    a, b = spo2(95, BASE_TIME), spo2(95, BASE_TIME + timedelta(seconds=41))
    result = insert_observations(conn, HOME.municipality_id, HOME.hub_id, [a, b, a])
    assert (result.inserted, result.duplicates) == (1, 2)
    (only,) = observations_for_patient(conn, HOME.municipality_id, HOME.patient_id)
    assert only.effective == a.effective
    consistent(conn)


def test_batch_of_many_hubs_reports_new_rows_per_municipality(conn: Conn) -> None:
    insert_observations(conn, HOME.municipality_id, HOME.hub_id, [spo2(95, BASE_TIME)])
    batch = [
        DeliveredObservation(HOME.municipality_id, HOME.hub_id, spo2(95, BASE_TIME + timedelta(minutes=1))),
        DeliveredObservation(
            HOME.municipality_id,
            HOME.hub_id,
            spo2(96, BASE_TIME, device_time=DEVICE_TIME + timedelta(hours=1)),
        ),
        DeliveredObservation(OTHER.municipality_id, OTHER.hub_id, spo2(91, BASE_TIME, OTHER)),
    ]
    result = insert_observation_batch(conn, batch)
    assert (result.inserted, result.duplicates) == (2, 1)
    assert result.patients == {
        HOME.municipality_id: {HOME.patient_id},
        OTHER.municipality_id: {OTHER.patient_id},
    }
    consistent(conn)


def test_preliminary_only_rows_leave_their_patient_out(conn: Conn) -> None:
    resource = build_observation(
        Reading("spo2", Quantity(Decimal("94"), "%")),
        patient_id=HOME.patient_id,
        device_id=HOME.oximeter_id,
        hub_id=HOME.hub_id,
        effective=BASE_TIME,
        preliminary=True,
    )
    result = insert_observations(conn, HOME.municipality_id, HOME.hub_id, [validate_observation(resource)])
    assert (result.inserted, result.patient_ids) == (1, set())
    consistent(conn)


def test_rolled_back_batch_leaves_neither_keys_nor_rows(conn: Conn) -> None:
    reading = spo2(95, BASE_TIME)
    with pytest.raises(RuntimeError), conn.transaction():
        insert_observations(conn, HOME.municipality_id, HOME.hub_id, [reading])
        raise RuntimeError("the caller's transaction fails after the insert")
    assert conn.execute("SELECT count(*) FROM observation_keys").fetchone() == (0,)
    stored = insert_observations(conn, HOME.municipality_id, HOME.hub_id, [reading])
    assert stored.inserted == 1
    consistent(conn)


def test_observation_is_read_by_id_and_only_in_its_municipality(conn: Conn) -> None:
    reading = spo2(95, BASE_TIME)
    insert_observations(conn, HOME.municipality_id, HOME.hub_id, [reading])
    found = observation_by_id(conn, nurse_of(conn, HOME), key_of(HOME, reading))
    assert found is not None
    assert (found.patient_id, found.at, found.key) == (HOME.patient_id, BASE_TIME, reading.identifier)
    assert found.resource == reading.resource
    assert observation_by_id(conn, nurse_of(conn, HOME), key_of(HOME, reading).upper()) == found
    assert observation_by_id(conn, nurse_of(conn, OTHER), key_of(HOME, reading)) is None
    assert observation_by_id(conn, nurse_of(conn, HOME), "0" * 64) is None


def test_read_by_id_probes_the_key_index_then_one_partition(conn: Conn) -> None:
    months = [BASE_TIME - timedelta(days=60), BASE_TIME - timedelta(days=30), BASE_TIME]
    rows = [spo2(90 + n, at, device_time=DEVICE_TIME + timedelta(days=n)) for n, at in enumerate(months)]
    insert_observations(conn, HOME.municipality_id, HOME.hub_id, rows)
    conn.execute("SET enable_seqscan = off")  # a few rows would be read whole; check a large table's plan
    plans: list[str] = []
    execute = conn.execute

    def explained(query: Any, params: Any = None) -> Any:
        """Record each statement's plan, then run it."""
        text = query.as_string(conn) if isinstance(query, psycopg.sql.Composable) else query
        plans.append("\n".join(line for (line,) in execute(f"EXPLAIN (COSTS OFF) {text}", params)))
        return execute(query, params)

    nurse = nurse_of(conn, HOME)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conn, "execute", explained)
        found = observation_by_id(conn, nurse, key_of(HOME, rows[-1]))
    assert found is not None and found.key == rows[-1].identifier
    keys_plan, row_plan = plans
    assert "Index Scan using observation_keys_pkey on observation_keys" in keys_plan
    # Pruned when planned: one partition, the key's month, read through an index.
    assert row_plan.startswith("Index Scan using ") and " on observations_y2026m11 " in row_plan, row_plan
    assert "Append" not in row_plan


def test_writers_outside_the_repository_get_keys_and_cannot_store_a_second_copy(conn: Conn) -> None:
    reading = spo2(95, BASE_TIME)
    sql = (
        "INSERT INTO observations (municipality_id, identifier, patient_id, hub_id, device_id, kind, loinc,"
        " effective, value, unit, resource) VALUES (%s, %s, %s, %s, %s, 'spo2', '2708-6', %s, 95, '%%', %s)"
    )
    params = (HOME.municipality_id, reading.identifier, HOME.patient_id, HOME.hub_id, HOME.oximeter_id)
    conn.execute(sql, (*params, BASE_TIME, Jsonb(reading.resource)))
    assert observation_by_id(conn, nurse_of(conn, HOME), key_of(HOME, reading)) is not None
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(sql, (*params, BASE_TIME + timedelta(seconds=41), Jsonb(reading.resource)))
    assert insert_observations(conn, HOME.municipality_id, HOME.hub_id, [reading]).duplicates == 1
    assert count_observations(conn, HOME.municipality_id) == 1
    consistent(conn)


def test_concurrent_workers_with_differently_corrected_copies_store_each_reading_once(
    database_url: str,
) -> None:
    with psycopg.connect(database_url, autocommit=True) as setup:
        HOME.enroll(setup)
    stamps = [DEVICE_TIME + timedelta(minutes=n) for n in range(20)]
    inserted: list[int] = []
    errors: list[BaseException] = []

    def write(correction_s: int) -> None:
        # Each worker got the same readings with another clock correction (another effective time).
        rows = [
            spo2(95, BASE_TIME + timedelta(minutes=n, seconds=correction_s), device_time=s)
            for n, s in enumerate(stamps)
        ]
        try:
            with psycopg.connect(database_url, autocommit=True) as own, own.transaction():
                inserted.append(insert_observations(own, HOME.municipality_id, HOME.hub_id, rows).inserted)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n * 7,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(inserted) == len(stamps)
    with psycopg.connect(database_url) as check:
        assert count_observations(check, HOME.municipality_id) == len(stamps)
        consistent(check)


def test_another_devices_reading_under_the_same_identifier_is_another_reading(conn: Conn) -> None:
    # A hub of municipality 0147 sends, from its own device, a reading under HOME's identifier first.
    genuine = spo2(95, BASE_TIME)
    squatter = dataclasses.replace(
        spo2(60, BASE_TIME, OTHER),
        identifier=genuine.identifier,
        resource={**spo2(60, BASE_TIME, OTHER).resource, "identifier": genuine.resource["identifier"]},
    )
    assert insert_observations(conn, OTHER.municipality_id, OTHER.hub_id, [squatter]).inserted == 1
    result = insert_observations(conn, HOME.municipality_id, HOME.hub_id, [genuine])
    assert (result.inserted, result.duplicates) == (1, 0)  # before migration 0004: (0, 1), and lost
    found = observation_by_id(conn, nurse_of(conn, HOME), key_of(HOME, genuine))
    assert found is not None and found.resource == genuine.resource
    assert key_of(HOME, genuine) != key_of(OTHER, squatter)
    consistent(conn)


def test_the_same_key_with_other_values_is_a_conflict_not_a_duplicate(conn: Conn) -> None:
    first = spo2(95, BASE_TIME)
    other_value = spo2(80, BASE_TIME + timedelta(seconds=41))  # same device stamp: same identifier
    same_again = spo2(95, BASE_TIME + timedelta(seconds=41))
    assert other_value.identifier == first.identifier
    insert_observations(conn, HOME.municipality_id, HOME.hub_id, [first])
    batch = [DeliveredObservation(HOME.municipality_id, HOME.hub_id, r) for r in (same_again, other_value)]
    result = insert_observation_batch(conn, batch)
    assert (result.inserted, result.duplicates, result.conflicts) == (0, 1, (1,))
    (only,) = observations_for_patient(conn, HOME.municipality_id, HOME.patient_id)
    assert only.value == 95.0
    consistent(conn)


def test_conflicting_copies_within_one_batch_keep_the_first_and_report_the_other(conn: Conn) -> None:
    first, second = spo2(95, BASE_TIME), spo2(81, BASE_TIME)
    batch = [DeliveredObservation(HOME.municipality_id, HOME.hub_id, r) for r in (first, second, first)]
    result = insert_observation_batch(conn, batch)
    assert (result.inserted, result.duplicates, result.conflicts) == (1, 1, (1,))
    assert result.new_positions == {0}
    consistent(conn)
