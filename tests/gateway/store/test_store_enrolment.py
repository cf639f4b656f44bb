"""``gateway.store.enrolment.enroll_homes``: the one way the demo, the tests and the benchmarks enrol a
home (patient, hub, devices), all or nothing. Real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.errors import EnrolmentConflict
from gateway.store.repository import HubAssignment, Municipality, Patient, hub_assignments

OWN, OTHER = Municipality("0101", "København"), Municipality("0147", "Frederiksberg")


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as c:
        yield c


def _home(municipality: str, n: int) -> Home:
    devices = (
        HomeDevice(f"OXI{n}", "pulse-oximeter"),
        HomeDevice(f"BPC{n}", "blood-pressure-cuff", "C4:7C:8D:6A:12:0F"),
    )
    return Home(Patient(municipality, f"p{n}", f"Patient {n}"), f"hub{n}", devices)


def test_homes_are_enrolled_with_their_hub_and_devices_in_their_municipality(
    conn: psycopg.Connection[Any],
) -> None:
    enroll_homes(conn, [OWN, OTHER], [_home(OWN.id, 1), _home(OTHER.id, 2)])

    found = hub_assignments(conn, [(OWN.id, "hub1"), (OTHER.id, "hub2")])
    assert found == {
        (OWN.id, "hub1"): HubAssignment(
            OWN.id, "hub1", "p1", frozenset({"OXI1", "BPC1"}), frozenset({"p1"}),
            {"OXI1": frozenset({"p1"}), "BPC1": frozenset({"p1"})},
        ),
        (OTHER.id, "hub2"): HubAssignment(
            OTHER.id, "hub2", "p2", frozenset({"OXI2", "BPC2"}), frozenset({"p2"}),
            {"OXI2": frozenset({"p2"}), "BPC2": frozenset({"p2"})},
        ),
    }  # fmt: skip
    address = conn.execute("SELECT address FROM devices WHERE id = 'BPC1'").fetchone()
    assert address == ("C4:7C:8D:6A:12:0F",)


def test_enrolling_again_changes_nothing(conn: psycopg.Connection[Any]) -> None:
    enroll_homes(conn, [OWN], [_home(OWN.id, 1)])
    enroll_homes(conn, [OWN], [_home(OWN.id, 1)])
    assert conn.execute("SELECT count(*) FROM devices").fetchone() == (2,)


def test_a_conflicting_home_enrols_none_of_the_homes(conn: psycopg.Connection[Any]) -> None:
    enroll_homes(conn, [OWN, OTHER], [_home(OWN.id, 1)])
    # p1 is OWN's patient: OTHER cannot enrol a home for p1, and the good home before it goes too.
    taken = Home(Patient(OTHER.id, "p1", "Someone else"), "hub9")
    with pytest.raises(EnrolmentConflict) as caught:
        enroll_homes(conn, [OTHER], [_home(OTHER.id, 2), taken])
    assert caught.value.kind == "patient"
    assert hub_assignments(conn, [(OTHER.id, "hub2"), (OTHER.id, "hub9")]) == {}
    assert conn.execute("SELECT name FROM patients WHERE id = 'p1'").fetchone() == ("Patient 1",)
