"""``gateway.store.thresholds``: a patient's own limits per vital sign, newest in force, history kept,
order checked (by ``models.triage`` and by the schema), scoped to the viewer, audited. Real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from gateway.api.auth import create_user
from gateway.store.thresholds import LimitsRefused, current_limits, limits_history, set_limits
from models.triage import Limits

Conn = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class Viewer:
    username: str
    municipality_id: str
    role: str


NURSE = Viewer("anna", "0101", "nurse")
OTHER_TEAM = Viewer("berit", "0101", "nurse")
OTHER_MUNICIPALITY = Viewer("bo", "0147", "nurse")
GP = Viewer("dr-gp", "0147", "gp")


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as c:
        c.execute(
            "INSERT INTO municipalities (id, name) VALUES ('0101', 'København'), ('0147', 'Frederiksberg')"
        )
        c.execute("INSERT INTO care_teams (municipality_id, id, name) VALUES ('0101', 'team-b', 'Team B')")
        create_user(c, "anna", "0101", "nurse", "a password")
        create_user(c, "berit", "0101", "nurse", "a password", care_teams=("team-b",))
        create_user(c, "bo", "0147", "nurse", "a password")
        create_user(c, "dr-gp", "0147", "gp", "a password")
        c.execute(
            "INSERT INTO patients (municipality_id, id, name, gp_username)"
            " VALUES ('0101', 'p1', 'Karen', 'dr-gp')"
        )
        yield c


def _audit(conn: Conn) -> list[tuple[str, str | None, str]]:
    rows = conn.execute("SELECT username, patient_id, action FROM audit_log ORDER BY id").fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def test_the_newest_limits_of_each_vital_sign_are_in_force_and_all_are_kept(conn: Conn) -> None:
    set_limits(conn, NURSE, "p1", {"spo2": Limits(88, 90)}, client="10.0.0.1")
    set_limits(conn, NURSE, "p1", {"spo2": Limits(86, 89), "pulse": Limits(40, 50, 100, 120)}, client=None)
    current = current_limits(conn, NURSE, "p1")
    assert {vital: stored.limits for vital, stored in current.items()} == {
        "spo2": Limits(86, 89),
        "pulse": Limits(40, 50, 100, 120),
    }
    assert current["spo2"].set_by == "anna"
    history = limits_history(conn, NURSE, "p1")  # newest first; one change's rows by vital sign, last first
    assert [(h.vital, h.limits) for h in history] == [
        ("spo2", Limits(86, 89)),
        ("pulse", Limits(40, 50, 100, 120)),
        ("spo2", Limits(88, 90)),
    ]
    assert _audit(conn) == [("anna", "p1", "set-thresholds")] * 2


def test_setting_nothing_writes_nothing(conn: Conn) -> None:
    assert set_limits(conn, NURSE, "p1", {}, client=None) == 0
    assert limits_history(conn, NURSE, "p1") == [] and _audit(conn) == []


@pytest.mark.parametrize("viewer", [OTHER_TEAM, OTHER_MUNICIPALITY])
def test_a_patient_outside_the_viewers_assignment_has_no_limits_and_gets_none(
    conn: Conn, viewer: Viewer
) -> None:
    set_limits(conn, NURSE, "p1", {"spo2": Limits(88, 90)}, client=None)
    assert current_limits(conn, viewer, "p1") == {} and limits_history(conn, viewer, "p1") == []
    with pytest.raises(LimitsRefused, match="no such patient"):
        set_limits(conn, viewer, "p1", {"spo2": Limits(80, 85)}, client=None)
    assert [h.limits for h in limits_history(conn, NURSE, "p1")] == [Limits(88, 90)]


def test_the_patients_gp_in_another_municipality_sets_limits(conn: Conn) -> None:
    set_limits(conn, GP, "p1", {"temperature": Limits(35.5, 36.0, 37.8, 38.5)}, client=None)
    stored = current_limits(conn, NURSE, "p1")["temperature"]
    assert stored.set_by == "dr-gp" and stored.limits == Limits(35.5, 36.0, 37.8, 38.5)
    row = conn.execute("SELECT municipality_id FROM patient_thresholds").fetchone()
    assert row == ("0101",)  # the patient's municipality, not the GP's


def test_limits_out_of_order_or_of_an_unknown_vital_sign_are_refused(conn: Conn) -> None:
    with pytest.raises(LimitsRefused, match="red_low is above yellow_high"):
        set_limits(conn, NURSE, "p1", {"pulse": Limits(red_low=100, yellow_high=90)}, client=None)
    with pytest.raises(LimitsRefused, match="unknown vital sign"):
        set_limits(conn, NURSE, "p1", {"mood": Limits(1, 2)}, client=None)
    assert limits_history(conn, NURSE, "p1") == [] and _audit(conn) == []


def test_the_schema_refuses_limits_out_of_order_written_by_hand(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO patient_thresholds (municipality_id, patient_id, vital, red_low, red_high, set_by)"
            " VALUES ('0101', 'p1', 'pulse', 120, 100, 'anna')"
        )


def test_limits_are_never_changed_or_removed(conn: Conn) -> None:
    set_limits(conn, NURSE, "p1", {"spo2": Limits(88, 90)}, client=None)
    for statement in (
        "UPDATE patient_thresholds SET red_low = 70",
        "DELETE FROM patient_thresholds",
        "TRUNCATE patient_thresholds",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
    assert [h.limits for h in limits_history(conn, NURSE, "p1")] == [Limits(88, 90)]
