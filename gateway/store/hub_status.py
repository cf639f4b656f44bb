"""The newest status of each hub (migration 0012): written by status ingest, read by the patient's page.

``save_hub_status`` replaces a hub's row and its device rows in the caller's transaction. It trusts its
caller for authorisation (``gateway.ingest.hub_status.decide_status`` keeps only devices enrolled on the
hub) but still writes nothing unless the hub is enrolled in that municipality, and device rows only for
devices enrolled on that hub, so one hub's status can never reach another hub's devices even if a
caller got that wrong. An offline status (the hub's Last Will) keeps the devices' batteries and last
times and marks them not connected. Reading is ``gateway.store.patient_views`` (scoped by viewer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class StatusDevice:
    """One device entry of a status, as stored."""

    device_id: str
    connected: bool
    battery: int | None
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class HubStatusWrite:
    """One accepted status to store. ``live``: it arrived as published (not a retained copy handed over
    on subscribing), so its time is the hub's last contact."""

    municipality_id: str
    hub_id: str
    received_at: datetime
    online: bool
    live: bool
    devices: tuple[StatusDevice, ...]
    devices_dropped: int = 0
    dropped_reason: str | None = None


def save_hub_status(conn: psycopg.Connection[Any], status: HubStatusWrite) -> bool:
    """Store ``status`` as its hub's newest; False (nothing written) when the hub is not enrolled in
    its municipality."""
    online_at = status.received_at if status.online and status.live else None
    row = conn.execute(
        "INSERT INTO hub_status AS s (municipality_id, hub_id, received_at, online, online_at,"
        " devices_dropped, dropped_reason)"
        " SELECT h.municipality_id, h.id, %s, %s, %s, %s, %s FROM hubs h"
        " WHERE h.municipality_id = %s AND h.id = %s"
        " ON CONFLICT (hub_id) DO UPDATE SET received_at = excluded.received_at, online = excluded.online,"
        " online_at = greatest(s.online_at, excluded.online_at), devices_dropped = excluded.devices_dropped,"
        " dropped_reason = excluded.dropped_reason"
        " WHERE s.municipality_id = excluded.municipality_id"
        " RETURNING 1",
        (
            status.received_at,
            status.online,
            online_at,
            status.devices_dropped,
            status.dropped_reason,
            status.municipality_id,
            status.hub_id,
        ),
    ).fetchone()
    if row is None:
        return False
    if not status.online:
        conn.execute("UPDATE hub_status_devices SET connected = false WHERE hub_id = %s", (status.hub_id,))
        return True
    conn.execute("DELETE FROM hub_status_devices WHERE hub_id = %s", (status.hub_id,))
    _insert_devices(conn, status.municipality_id, status.hub_id, status.devices)
    return True


def _insert_devices(
    conn: psycopg.Connection[Any], municipality_id: str, hub_id: str, devices: Sequence[StatusDevice]
) -> None:
    if not devices:
        return
    conn.execute(
        "INSERT INTO hub_status_devices (hub_id, device_id, connected, battery, last_seen)"
        " SELECT d.hub_id, d.id, x.connected, x.battery, x.last_seen"
        " FROM unnest(%s::text[], %s::boolean[], %s::smallint[], %s::timestamptz[])"
        "  AS x(device_id, connected, battery, last_seen)"
        " JOIN devices d ON d.id = x.device_id AND d.hub_id = %s AND d.municipality_id = %s",
        (
            [d.device_id for d in devices],
            [d.connected for d in devices],
            [d.battery for d in devices],
            [d.last_seen for d in devices],
            hub_id,
            municipality_id,
        ),
    )
