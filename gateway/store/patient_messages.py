"""The care team's messages to a patient (migration 0021): written once, shown on the patient page, and
sent to the patient's hub in its retained config.

``send_message`` is the one writer: in one transaction it checks that the viewer may see the patient
(``access.patient_scope``; anyone else's patient looks unknown), stores the message, counts one change
of the configuration of every hub in service that the patient lives with (their own hub, or a hub they
are a resident of: migration 0022), and writes the audit row. Publishing the new config is the caller's,
after the commit (``gateway.hub_config.publish_hub_config``; the config job does it later otherwise).

``hub_messages`` is what a hub is sent (``gateway.store.hub_config``): its residents' messages, at most
``HUB_MAX_MESSAGES``, newest last, none older than ``HUB_WINDOW`` before the newest. The window is
counted from the newest message, not from a clock, so the same stored messages always make the same
payload (the hub ignores a config it has applied) and the demo's simulated clock changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from gateway.store import access
from gateway.store.administration import bump_config_version
from gateway.store.audit import record_audit

# The hub's NurseMessage holds at most 1000 characters (edge_agent.config), as the table does.
MESSAGE_MAX_CHARS = 1000
AUDIT_SEND = "send-patient-message"
# What a hub is sent: a month of messages, and no more than a patient view lists on a screen or two
# (the hub refuses more than 50 in all, for up to four residents).
HUB_WINDOW = timedelta(days=30)
HUB_MAX_MESSAGES = 20
PAGE_MESSAGES = 20


@dataclass(frozen=True, slots=True)
class PatientMessage:
    """A stored message as the patient page shows it."""

    id: int
    public_id: str
    patient_id: str
    author: str
    author_name: str | None
    text: str
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class HubMessage:
    """A message as a hub's config carries it (``edge_agent.config.NurseMessage``)."""

    id: str  # the message's public id
    patient_id: str
    sent_at: datetime
    text: str


@dataclass(frozen=True, slots=True)
class Sent:
    """What ``send_message`` did: the message (None: no such patient for this viewer), the patient's
    municipality, and the hubs whose configuration changed with it."""

    message: PatientMessage | None
    municipality_id: str | None
    hubs: tuple[str, ...]


def hubs_of_patient(conn: psycopg.Connection[Any], municipality_id: str, patient_id: str) -> list[str]:
    """The hubs in service the patient lives with: enrolled for them, or as a resident (not removed)."""
    rows = conn.execute(
        "SELECT id FROM hubs WHERE municipality_id = %(m)s AND revoked_at IS NULL AND (patient_id = %(p)s"
        " OR id IN (SELECT hub_id FROM hub_residents WHERE patient_id = %(p)s AND removed_at IS NULL))"
        " ORDER BY id",
        {"m": municipality_id, "p": patient_id},
    ).fetchall()
    return [str(row[0]) for row in rows]


def _select(viewer: access.Viewer, where: str) -> sql.Composed:
    return sql.SQL(
        "SELECT m.id, m.public_id::text, m.patient_id, m.author, u.full_name, m.text, m.sent_at"
        " FROM patient_messages m JOIN patients p ON p.municipality_id = m.municipality_id"
        " AND p.id = m.patient_id LEFT JOIN users u ON u.username = m.author"
        " WHERE p.id = %s AND {scope} AND {where} ORDER BY m.sent_at DESC, m.id DESC LIMIT {limit}"
    ).format(scope=access.patient_scope(viewer, "p"), where=sql.SQL(where), limit=sql.Literal(PAGE_MESSAGES))


def send_message(
    conn: psycopg.Connection[Any],
    viewer: access.Viewer,
    patient_id: str,
    text: str,
    *,
    at: datetime,
    client: str | None,
) -> Sent:
    """Store ``text`` (1-``MESSAGE_MAX_CHARS`` characters: the caller checks) as ``viewer``'s message to
    the patient at ``at``, and mark the patient's hubs' configuration changed; audited (module)."""
    with conn.transaction():
        found = conn.execute(
            sql.SQL("SELECT p.municipality_id FROM patients p WHERE p.id = %s AND {scope}").format(
                scope=access.patient_scope(viewer, "p")
            ),
            (patient_id,),
        ).fetchone()
        if found is None:
            return Sent(None, None, ())
        municipality_id = str(found[0])
        row = conn.execute(
            "INSERT INTO patient_messages (municipality_id, patient_id, author, text, sent_at)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (municipality_id, patient_id, viewer.username, text, at),
        ).fetchone()
        assert row is not None
        hubs = tuple(hubs_of_patient(conn, municipality_id, patient_id))
        for hub_id in hubs:
            bump_config_version(conn, hub_id)
        detail = f"message {row[0]} ({len(text)} characters) to hubs: {', '.join(hubs) or 'none'}"
        record_audit(conn, viewer, AUDIT_SEND, [patient_id], detail, client=client)
        stored = conn.execute(_select(viewer, "m.id = %s"), (patient_id, row[0])).fetchone()
    assert stored is not None
    return Sent(PatientMessage(*stored), municipality_id, hubs)


def messages_of(
    conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str
) -> list[PatientMessage]:
    """The newest messages to a patient ``viewer`` may see (none otherwise), newest first."""
    return [PatientMessage(*row) for row in conn.execute(_select(viewer, "true"), (patient_id,)).fetchall()]


def hub_messages(
    conn: psycopg.Connection[Any], municipality_id: str, patient_ids: Sequence[str]
) -> tuple[HubMessage, ...]:
    """The messages a hub of ``patient_ids`` (its residents) is sent: see the module; newest last."""
    rows = conn.execute(
        "SELECT public_id::text, patient_id, sent_at, text FROM ("
        " SELECT m.*, max(m.sent_at) OVER () AS newest FROM patient_messages m"
        " WHERE m.municipality_id = %s AND m.patient_id = ANY(%s)) r"
        " WHERE r.sent_at >= r.newest - %s ORDER BY r.sent_at DESC, r.id DESC LIMIT %s",
        (municipality_id, list(patient_ids), HUB_WINDOW, HUB_MAX_MESSAGES),
    ).fetchall()
    return tuple(HubMessage(*row) for row in reversed(rows))
