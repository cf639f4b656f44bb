"""Which patients have new data to score, and from when: the announcement ingest sends and the scorer hears.

Ingest announces the patients whose readings a batch stored with ``announce_new_data`` inside the
batch's transaction (``pg_notify``: PostgreSQL delivers a notification only if its transaction commits,
so no one hears of rows that are not there). Each patient comes with the earliest effective time of the
readings the batch stored for them: the scorer evaluates every reading of that patient from that time
on, so a reading that arrives late, or behind newer ones, is scored in its place. The scorer, in another
process, ``listen_for_new_data`` on the same channel and reads each payload with
``read_new_data_notification``. Notifications sent while nobody listens are lost;
``patients_stored_since`` finds the patients (and their earliest readings) to score again after a
listener was away. The payload is ``{"m": municipality, "p": {patient id: earliest effective time,
ISO 8601}}``, split (``new_data_notifications``) to stay under PostgreSQL's 8,000-byte limit. A
*barrier* (``send_barrier``) is a payload that names no patient, only a municipality id no municipality
can have: PostgreSQL queues notifications in commit order, one queue for every listener, so once the
scorer's listener has read a barrier it has read every announcement committed before it
(``Scorer.wait_heard``; the demo and tests wait for scoring with it).

Left to others: what is stored (``gateway.store.repository``), when to announce and the earliest times
(``gateway.ingest``), scoring and the listener's reconnecting (``gateway.alerts.scorer``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg import sql

from fhir_contract.status import PRELIMINARY

# PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more; stay clear of it.
NOTIFY_PAYLOAD_MAX_BYTES = 7_900
# A barrier's municipality: the colon keeps it out of FHIR ids, so it names no municipality.
BARRIER_PREFIX = "barrier:"
# A barrier's own connection: a database that does not answer within this is not waited for.
CONNECT_TIMEOUT_S = 5


def new_data_notifications(patients: Mapping[str, Mapping[str, datetime]]) -> Iterator[str]:
    """NOTIFY payloads naming the patients with new data and the earliest effective time of it:
    ``{"m": municipality, "p": {patient id: time}}``, as many as it takes to keep each under
    ``NOTIFY_PAYLOAD_MAX_BYTES``."""
    for municipality_id in sorted(patients):
        empty = len(orjson.dumps({"m": municipality_id, "p": {}}))
        chunk: dict[str, datetime] = {}
        size = empty
        for patient_id, since in sorted(patients[municipality_id].items()):
            grow = len(orjson.dumps({patient_id: since})) - 1  # the pair and its comma, without the braces
            if chunk and size + grow > NOTIFY_PAYLOAD_MAX_BYTES:
                yield orjson.dumps({"m": municipality_id, "p": chunk}).decode()
                chunk, size = {}, empty
            chunk[patient_id] = since
            size += grow
        if chunk:
            yield orjson.dumps({"m": municipality_id, "p": chunk}).decode()


def read_new_data_notification(payload: str) -> tuple[str, dict[str, datetime]] | None:
    """The municipality, and each patient with the earliest effective time of their new data, of a
    ``new_data_notifications`` payload; None when malformed (a time without its offset too)."""
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict):
        return None
    municipality_id, announced = message.get("m"), message.get("p")
    if not isinstance(municipality_id, str) or not isinstance(announced, dict):
        return None
    patients: dict[str, datetime] = {}
    for patient_id, text in announced.items():
        if not isinstance(text, str):
            return None
        try:
            since = datetime.fromisoformat(text)
        except ValueError:
            return None
        if since.tzinfo is None:
            return None
        patients[patient_id] = since
    return municipality_id, patients


def announce_new_data(
    conn: psycopg.Connection[Any], channel: str, patients: Mapping[str, Mapping[str, datetime]]
) -> None:
    """Notify ``channel`` of ``patients`` (per municipality: patient id -> the earliest effective time of
    the readings stored for them) when the caller's transaction commits."""
    for payload in new_data_notifications(patients):
        conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def listen_for_new_data(conn: psycopg.Connection[Any], channel: str) -> None:
    """Start listening on ``channel`` (an autocommit connection; read with ``conn.notifies()``)."""
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))


def patients_stored_since(
    conn: psycopg.Connection[Any], since: datetime, *, effective_within: timedelta
) -> dict[str, dict[str, datetime]]:
    """Patients, per municipality, with final readings stored (``received_at``) at or after ``since``
    whose effective time lies within ``effective_within`` of the database's now; each with the earliest
    effective time of those readings. (The bound on effective keeps the scan to recent partitions.)"""
    rows = conn.execute(
        "SELECT municipality_id, patient_id, min(effective) FROM observations"
        " WHERE effective >= now() - %s AND received_at >= %s AND resource->>'status' <> %s"
        " GROUP BY municipality_id, patient_id",
        (effective_within, since, PRELIMINARY),
    ).fetchall()
    patients: dict[str, dict[str, datetime]] = {}
    for municipality_id, patient_id, earliest in rows:
        patients.setdefault(str(municipality_id), {})[str(patient_id)] = earliest
    return patients


def is_barrier(municipality_id: str) -> bool:
    """Whether an announcement's municipality marks a barrier (``send_barrier``), not new data."""
    return municipality_id.startswith(BARRIER_PREFIX)


def send_barrier(database_url: str, channel: str) -> str | None:
    """Notify ``channel`` of a new barrier and return its payload; None when the database is away."""
    payload = orjson.dumps({"m": f"{BARRIER_PREFIX}{uuid.uuid4().hex}", "p": {}}).decode()
    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))
    except psycopg.OperationalError:
        return None
    return payload
