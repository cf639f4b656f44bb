"""The store of FiNDR's inputs (migration 0014): staff change observations and hospital stays are keyed
on their identifier per municipality (a resend is harmless, a discharge updates the stay), never cross a
municipality, and read back by patient and time. Real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from gateway.store import findr_inputs
from gateway.store.findr_inputs import HospitalStay, IdentifierConflict, StaffObservation, UnknownPatient

Conn = psycopg.Connection[Any]
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("INSERT INTO municipalities (id, name) VALUES ('0101', 'Kbh'), ('0147', 'Frb')")
        connection.execute(
            "INSERT INTO patients (municipality_id, id, name)"
            " VALUES ('0101', 'p1', 'A'), ('0101', 'p2', 'B'), ('0147', 'p9', 'C')"
        )
        yield connection


def _form(identifier: str, at: datetime, patient: str = "p1", **items: bool) -> StaffObservation:
    return StaffObservation(
        "0101", patient, identifier, at, dict(items), "homecare", "fhir", {"id": identifier}
    )


def _stay(identifier: str, start: datetime, end: datetime | None, patient: str = "p1") -> HospitalStay:
    status = "in-progress" if end is None else "finished"
    return HospitalStay("0101", patient, identifier, status, "IMP", start, end, "hospital", "fhir", {})


def test_a_form_is_stored_once_and_read_back_by_window(conn: Conn) -> None:
    assert findr_inputs.store_staff_observation(conn, _form("s|1", NOW, breathing=True, sleep=False))
    assert not findr_inputs.store_staff_observation(conn, _form("s|1", NOW, breathing=True, sleep=False))
    assert findr_inputs.store_staff_observation(conn, _form("s|2", NOW - timedelta(days=10), general=True))
    found = findr_inputs.staff_observations(conn, "0101", "p1", after=NOW - timedelta(days=7), until=NOW)
    assert [(o.identifier, o.items, o.source) for o in found] == [
        ("s|1", {"breathing": True, "sleep": False}, "fhir")
    ]
    both = findr_inputs.staff_observations(conn, "0101", "p1", after=NOW - timedelta(days=30), until=NOW)
    assert [o.identifier for o in both] == ["s|2", "s|1"]  # oldest first
    newest = findr_inputs.staff_observations(
        conn, "0101", "p1", after=NOW - timedelta(days=30), until=NOW, limit=1
    )
    assert [o.identifier for o in newest] == ["s|1"]
    # Nothing of another patient or municipality.
    assert (
        findr_inputs.staff_observations(conn, "0147", "p1", after=NOW - timedelta(days=30), until=NOW) == []
    )


def test_an_amended_form_replaces_its_items_and_an_identifier_of_another_patient_is_refused(
    conn: Conn,
) -> None:
    findr_inputs.store_staff_observation(conn, _form("s|1", NOW, breathing=True))
    assert not findr_inputs.store_staff_observation(conn, _form("s|1", NOW, breathing=False, pain=True))
    found = findr_inputs.staff_observations(conn, "0101", "p1", after=NOW - timedelta(days=1), until=NOW)
    assert [o.items for o in found] == [{"breathing": False, "pain": True}]
    with pytest.raises(IdentifierConflict):
        findr_inputs.store_staff_observation(conn, _form("s|1", NOW, patient="p2", breathing=True))
    assert findr_inputs.staff_observations(conn, "0101", "p2", after=NOW - timedelta(days=1), until=NOW) == []


def test_a_patient_of_another_municipality_is_unknown_and_nothing_is_written(conn: Conn) -> None:
    with pytest.raises(UnknownPatient):
        findr_inputs.store_staff_observation(conn, _form("s|x", NOW, patient="p9", breathing=True))
    with pytest.raises(UnknownPatient):
        findr_inputs.store_encounter(conn, _stay("e|x", NOW, None, patient="p9"))
    assert conn.execute("SELECT count(*) FROM staff_observations").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM encounters").fetchone() == (0,)


def test_a_discharge_sent_later_updates_the_stay_and_a_resend_changes_nothing(conn: Conn) -> None:
    admitted = NOW - timedelta(days=5)
    assert findr_inputs.store_encounter(conn, _stay("e|1", admitted, None)) == "created"
    assert findr_inputs.store_encounter(conn, _stay("e|1", admitted, None)) == "unchanged"
    assert findr_inputs.store_encounter(conn, _stay("e|1", admitted, NOW - timedelta(days=1))) == "updated"
    assert findr_inputs.store_encounter(conn, _stay("e|1", admitted, NOW - timedelta(days=1))) == "unchanged"
    stays = findr_inputs.hospital_stays(conn, "0101", "p1", until=NOW)
    assert [(s.period_start, s.period_end, s.status) for s in stays] == [
        (admitted, NOW - timedelta(days=1), "finished")
    ]
    assert findr_inputs.hospital_stays(conn, "0101", "p1", until=admitted - timedelta(seconds=1)) == []
    assert findr_inputs.hospital_stays(conn, "0101", "p1", until=NOW, after=admitted) == []
    with pytest.raises(IdentifierConflict):
        findr_inputs.store_encounter(conn, _stay("e|1", admitted, None, patient="p2"))


def test_a_withdrawn_stay_is_kept_but_does_not_count(conn: Conn) -> None:
    findr_inputs.store_encounter(conn, _stay("e|1", NOW - timedelta(days=3), None))
    withdrawn = HospitalStay(
        "0101", "p1", "e|1", "entered-in-error", "IMP", NOW - timedelta(days=3), None, "h", "fhir", {}
    )
    assert findr_inputs.store_encounter(conn, withdrawn) == "updated"
    (stay,) = findr_inputs.hospital_stays(conn, "0101", "p1", until=NOW)
    assert not findr_inputs.counts(stay)
