"""``gateway.store.notes``: notes on a patient, append-only, scoped to the viewer, audited. Real
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from gateway.api.auth import create_user
from gateway.store.notes import NOTE_MAX_CHARS, NoteRefused, add_note, notes_of

Conn = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class Viewer:
    username: str
    municipality_id: str
    role: str


NURSE = Viewer("anna", "0101", "nurse")
OTHER_MUNICIPALITY = Viewer("bo", "0147", "nurse")


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as c:
        c.execute(
            "INSERT INTO municipalities (id, name) VALUES ('0101', 'København'), ('0147', 'Frederiksberg')"
        )
        create_user(c, "anna", "0101", "nurse", "a password")
        create_user(c, "bo", "0147", "nurse", "a password")
        c.execute("UPDATE users SET full_name = 'Anna Jensen' WHERE username = 'anna'")
        c.execute("INSERT INTO patients (municipality_id, id, name) VALUES ('0101', 'p1', 'Karen')")
        yield c


def test_notes_are_read_back_newest_first_with_their_author(conn: Conn) -> None:
    first = add_note(conn, NURSE, "p1", "Visited: fine", client="10.0.0.1")
    second = add_note(conn, NURSE, "p1", "Called: short of breath", client="10.0.0.1")
    assert [n.text for n in notes_of(conn, NURSE, "p1")] == ["Called: short of breath", "Visited: fine"]
    assert second.author == "anna" and second.author_name == "Anna Jensen" and first.id < second.id
    audit = conn.execute("SELECT username, patient_id, action, client FROM audit_log ORDER BY id").fetchall()
    assert audit == [("anna", "p1", "add-note", "10.0.0.1")] * 2


@pytest.mark.parametrize(("text", "reason"), [("  ", "empty"), ("x" * (NOTE_MAX_CHARS + 1), "at most")])
def test_an_empty_or_too_long_note_is_refused(conn: Conn, text: str, reason: str) -> None:
    with pytest.raises(NoteRefused, match=reason):
        add_note(conn, NURSE, "p1", text, client=None)
    assert notes_of(conn, NURSE, "p1") == []


def test_a_patient_outside_the_viewers_assignment_has_no_notes_and_gets_none(conn: Conn) -> None:
    add_note(conn, NURSE, "p1", "Visited", client=None)
    assert notes_of(conn, OTHER_MUNICIPALITY, "p1") == []
    with pytest.raises(NoteRefused, match="no such patient"):
        add_note(conn, OTHER_MUNICIPALITY, "p1", "Not mine", client=None)
    assert [n.text for n in notes_of(conn, NURSE, "p1")] == ["Visited"]
    assert conn.execute("SELECT count(*) FROM audit_log WHERE username = 'bo'").fetchone() == (0,)


def test_notes_are_never_changed_or_removed(conn: Conn) -> None:
    add_note(conn, NURSE, "p1", "Visited", client=None)
    for statement in (
        "UPDATE patient_notes SET text = 'x'",
        "DELETE FROM patient_notes",
        "TRUNCATE patient_notes",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
    assert [n.text for n in notes_of(conn, NURSE, "p1")] == ["Visited"]
