"""The care staff's notes on a patient (table ``patient_notes``, migration 0011): append-only.

A note is never edited nor removed (the database refuses UPDATE and DELETE): a correction is a new note,
so what a colleague read when she decided stays readable. Every function takes the viewer and goes
through ``access.patient_scope``; ``add_note`` writes its audit row in the same transaction. Wording is
left to ``gateway.api``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from gateway.store import access
from gateway.store.audit import record_audit
from gateway.store.errors import StoreError

# A note is a few lines about a visit or a call, not a record of its own (the schema agrees).
NOTE_MAX_CHARS = 4000
AUDIT_ACTION = "add-note"


class NoteRefused(StoreError):
    """A note that cannot be stored: empty, too long, or about a patient the viewer may not see."""

    def __init__(self, patient_id: str, detail: str) -> None:
        super().__init__(f"note on {patient_id} refused: {detail}")
        self.patient_id = patient_id
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Note:
    """One note: who wrote what, when."""

    id: int
    author: str
    author_name: str | None  # users.full_name while the user exists and has one
    written_at: datetime
    text: str


def add_note(
    conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str, text: str, *, client: str | None
) -> Note:
    """Store ``viewer``'s note on the patient with its audit row (``client``: where the request came
    from), atomically; NoteRefused (nothing written) for an empty or too long text or a patient the
    viewer may not see."""
    if not text.strip():
        raise NoteRefused(patient_id, "the note is empty")
    if len(text) > NOTE_MAX_CHARS:
        raise NoteRefused(patient_id, f"at most {NOTE_MAX_CHARS} characters")
    insert = sql.SQL(
        "INSERT INTO patient_notes (municipality_id, patient_id, author, text)"
        " SELECT p.municipality_id, p.id, %s, %s FROM patients p WHERE p.id = %s AND {scope}"
        " RETURNING id, author, (SELECT u.full_name FROM users u WHERE u.username = patient_notes.author),"
        " written_at, text"
    ).format(scope=access.patient_scope(viewer, "p"))
    with conn.transaction():
        row = conn.execute(insert, (viewer.username, text, patient_id)).fetchone()
        if row is None:
            raise NoteRefused(patient_id, "no such patient among the viewer's")
        record_audit(conn, viewer, AUDIT_ACTION, [patient_id], f"note {row[0]}", client=client)
    return Note(*row)


def notes_of(
    conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str, limit: int = 50
) -> list[Note]:
    """The patient's newest notes, newest first (at most ``limit``)."""
    query = sql.SQL(
        "SELECT n.id, n.author, (SELECT u.full_name FROM users u WHERE u.username = n.author),"
        " n.written_at, n.text FROM patients p"
        " JOIN patient_notes n ON n.municipality_id = p.municipality_id AND n.patient_id = p.id"
        " WHERE p.id = %s AND {scope} ORDER BY n.written_at DESC, n.id DESC LIMIT %s"
    ).format(scope=access.patient_scope(viewer, "p"))
    return [Note(*row) for row in conn.execute(query, (patient_id, limit)).fetchall()]
