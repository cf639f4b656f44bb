"""Which patients have new data to score: the announcement ingest sends and the scorer listens for.

Ingest announces the patients whose readings a batch stored with ``announce_new_data`` inside the
batch's transaction (``pg_notify``: PostgreSQL delivers a notification only if its transaction commits,
so no one hears of rows that are not there). The scorer, in another process, ``listen_for_new_data`` on
the same channel and reads each payload with ``read_new_data_notification``. Notifications sent while
nobody listens are lost; ``patients_stored_since`` finds the patients to score again after a listener
was away. The payload is ``{"m": municipality, "p": [patient ids]}``, split (``new_data_notifications``)
to stay under PostgreSQL's 8,000-byte limit. A *barrier* (``send_barrier``) is a payload that names no
patient, only a municipality id no municipality can have: PostgreSQL queues notifications in commit
order, one queue for every listener, so once the scorer's listener has read a barrier it has read every
announcement committed before it (``Scorer.wait_heard``; the demo and tests wait for scoring with it).

Left to others: what is stored (``gateway.store.repository``), when to announce (``gateway.ingest``),
scoring and the listener's reconnecting (``gateway.alerts.scorer``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg import sql

# PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more; stay clear of it.
NOTIFY_PAYLOAD_MAX_BYTES = 7_900
# A barrier's municipality: the colon keeps it out of FHIR ids, so it names no municipality.
BARRIER_PREFIX = "barrier:"
# A barrier's own connection: a database that does not answer within this is not waited for.
CONNECT_TIMEOUT_S = 5


def new_data_notifications(patients: Mapping[str, set[str]]) -> Iterator[str]:
    """NOTIFY payloads naming the patients with new data: ``{"m": municipality, "p": [patient ids]}``,
    as many as it takes to keep each under ``NOTIFY_PAYLOAD_MAX_BYTES``."""
    for municipality_id in sorted(patients):
        empty = len(orjson.dumps({"m": municipality_id, "p": []}))
        chunk: list[str] = []
        size = empty
        for patient_id in sorted(patients[municipality_id]):
            grow = len(orjson.dumps(patient_id)) + 1  # the id and its comma
            if chunk and size + grow > NOTIFY_PAYLOAD_MAX_BYTES:
                yield orjson.dumps({"m": municipality_id, "p": chunk}).decode()
                chunk, size = [], empty
            chunk.append(patient_id)
            size += grow
        if chunk:
            yield orjson.dumps({"m": municipality_id, "p": chunk}).decode()


def read_new_data_notification(payload: str) -> tuple[str, set[str]] | None:
    """The municipality and patients of a ``new_data_notifications`` payload; None when malformed."""
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict):
        return None
    municipality_id, patient_ids = message.get("m"), message.get("p")
    if not isinstance(municipality_id, str) or not isinstance(patient_ids, list):
        return None
    if not all(isinstance(p, str) for p in patient_ids):
        return None
    return municipality_id, set(patient_ids)


def announce_new_data(conn: psycopg.Connection[Any], channel: str, patients: Mapping[str, set[str]]) -> None:
    """Notify ``channel`` of ``patients`` (per municipality) when the caller's transaction commits."""
    for payload in new_data_notifications(patients):
        conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def listen_for_new_data(conn: psycopg.Connection[Any], channel: str) -> None:
    """Start listening on ``channel`` (an autocommit connection; read with ``conn.notifies()``)."""
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))


def patients_stored_since(
    conn: psycopg.Connection[Any], since: datetime, *, effective_within: timedelta
) -> dict[str, set[str]]:
    """Patients, per municipality, with readings stored (``received_at``) at or after ``since`` whose
    effective time lies within ``effective_within`` of the database's now."""
    rows = conn.execute(
        "SELECT DISTINCT municipality_id, patient_id FROM observations"
        " WHERE effective >= now() - %s AND received_at >= %s",
        (effective_within, since),
    ).fetchall()
    patients: dict[str, set[str]] = {}
    for municipality_id, patient_id in rows:
        patients.setdefault(str(municipality_id), set()).add(str(patient_id))
    return patients


def is_barrier(municipality_id: str) -> bool:
    """Whether an announcement's municipality marks a barrier (``send_barrier``), not new data."""
    return municipality_id.startswith(BARRIER_PREFIX)


def send_barrier(database_url: str, channel: str) -> str | None:
    """Notify ``channel`` of a new barrier and return its payload; None when the database is away."""
    payload = orjson.dumps({"m": f"{BARRIER_PREFIX}{uuid.uuid4().hex}", "p": []}).decode()
    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))
    except psycopg.OperationalError:
        return None
    return payload
