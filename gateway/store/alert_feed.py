"""What the live stream of alerts reads: the history rows of alerts (``alert_events``) a viewer may see.

Migration 0013 announces every new ``alert_events`` row on :data:`gateway.store.alerts.EVENTS_CHANNEL`
when its transaction commits, as ``{"id": .., "m": municipality, "p": patient}``. The stream's one
listener per process LISTENs (``listen_for_alert_events``), reads each announcement's id
(``read_announcement``) and, after it was away, finds the ids it missed (``event_ids_after``: ids only,
no patient data). Each viewer's rows are then read through the one access rule
(``access.patient_scope``): ``events_by_id`` for the ids announced, in the order announced (commit
order), ``events_after`` to resume after the last id a browser had; ``latest_event_id`` is where a new
stream starts (the header badge's count is ``gateway.store.alert_inbox.open_count``).

An id the viewer may not see reads as nothing, whichever way it is asked for. Fanning out, auditing what
a person was sent and the HTTP side are ``gateway.api.alert_stream``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg import sql

from gateway.store.access import Viewer, patient_scope
from gateway.store.alerts import EVENTS_CHANNEL


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One event of an alert as the stream sends it: the event, its alert's kind and its alert's
    severity and status now (not when the event happened)."""

    event_id: int
    alert_id: int
    patient_id: str
    action: str
    kind: str
    severity: str
    status: str
    at: datetime


_SELECT = (
    "SELECT e.id, e.alert_id, e.patient_id, e.action, a.kind, a.severity, a.status, e.at"
    " FROM alert_events e"
    " JOIN alerts a ON a.id = e.alert_id AND a.municipality_id = e.municipality_id"
    " JOIN patients p ON p.id = e.patient_id AND p.municipality_id = e.municipality_id"
)


def listen_for_alert_events(conn: psycopg.Connection[Any]) -> None:
    """Start listening for new alert events (an autocommit connection; read with ``conn.notifies()``)."""
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(EVENTS_CHANNEL)))


def read_announcement(payload: str) -> int | None:
    """The event id of an announcement on the channel; None when the payload is not one."""
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    event_id = message.get("id") if isinstance(message, dict) else None
    if not isinstance(event_id, int) or isinstance(event_id, bool) or event_id <= 0:
        return None
    return event_id


def latest_event_id(conn: psycopg.Connection[Any]) -> int:
    """The id of the newest alert event (0 when there is none)."""
    row = conn.execute("SELECT coalesce(max(id), 0) FROM alert_events").fetchone()
    return 0 if row is None else int(row[0])


def event_ids_after(conn: psycopg.Connection[Any], after_id: int, limit: int) -> list[int]:
    """The ids of up to ``limit`` alert events after ``after_id``, oldest first (ids only)."""
    rows = conn.execute(
        "SELECT id FROM alert_events WHERE id > %s ORDER BY id LIMIT %s", (after_id, limit)
    ).fetchall()
    return [int(row[0]) for row in rows]


def events_after(conn: psycopg.Connection[Any], viewer: Viewer, after_id: int, limit: int) -> list[FeedEvent]:
    """Up to ``limit`` events after ``after_id`` of alerts of patients ``viewer`` may see, oldest first."""
    query = sql.SQL(_SELECT + " WHERE e.id > %s AND {scope} ORDER BY e.id LIMIT %s").format(
        scope=patient_scope(viewer)
    )
    return [FeedEvent(*row) for row in conn.execute(query, (after_id, limit)).fetchall()]


def events_by_id(conn: psycopg.Connection[Any], viewer: Viewer, event_ids: Sequence[int]) -> list[FeedEvent]:
    """The events of ``event_ids`` that are of patients ``viewer`` may see, in the order of ``event_ids``."""
    if not event_ids:
        return []
    query = sql.SQL(_SELECT + " WHERE e.id = ANY(%s) AND {scope}").format(scope=patient_scope(viewer))
    found = {row[0]: FeedEvent(*row) for row in conn.execute(query, (list(event_ids),)).fetchall()}
    return [found[event_id] for event_id in dict.fromkeys(event_ids) if event_id in found]
