"""The newest status of each hub (migrations 0012, 0016) and the history of what changed: written by status
ingest, read by the patient's page and the fleet view.

``save_hub_status`` replaces a hub's row and its device rows in the caller's transaction. It trusts its
caller for authorisation (``gateway.ingest.hub_status.decide_status`` keeps only devices enrolled on the
hub) but still writes nothing unless the hub is enrolled in that municipality, and device rows only for
devices enrolled (and not removed) on that hub, so one hub's status can never reach another hub's
devices even if a caller got that wrong. An offline status (the hub's Last Will) keeps the devices'
batteries, clocks and last times and marks them not connected, and keeps the outbox figures as last
known (the will carries none).

Then the history (``hub_status_history``, migration 0016): :func:`history_state` reduces the stored state
to what an operator acts on; a row is added only when that differs from the hub's newest row, naming
what changed (:func:`changes`), and adding one trims the hub's rows to :data:`HISTORY_RETENTION` and
:data:`HISTORY_ROWS_PER_HUB` (the migration's comment says why). Reading is
``gateway.store.patient_views`` (scoped by viewer) and ``gateway.store.fleet``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg.types.json import Jsonb

from gateway.fleet import battery_band, device_failure, magnitude

#: History rows older than this are deleted when the hub's next row is written: a quarter of a year
#: answers "since when" and "how often" for any problem an operator is still chasing.
HISTORY_RETENTION: Final = timedelta(days=90)
#: At most this many rows per hub, however often it changes (a flapping Bluetooth link): some months of
#: an ordinary home, and a bound on the table of 2,000 x the number of hubs.
HISTORY_ROWS_PER_HUB: Final = 2000


@dataclass(frozen=True, slots=True)
class StatusDevice:
    """One device entry of a status, as stored."""

    device_id: str
    connected: bool
    battery: int | None
    last_seen: datetime | None
    clock: str | None = None
    clock_offset_s: float | None = None
    errors: int | None = None
    last_error: str | None = None
    last_error_type: str | None = None


@dataclass(frozen=True, slots=True)
class HubStatusWrite:
    """One accepted status to store. ``live``: it arrived as published (not a retained copy handed over
    on subscribing), so its time is the hub's last contact. ``evicted``: by reading kind."""

    municipality_id: str
    hub_id: str
    received_at: datetime
    online: bool
    live: bool
    devices: tuple[StatusDevice, ...]
    devices_dropped: int = 0
    dropped_reason: str | None = None
    agent_version: str | None = None
    queue_depth: int | None = None
    awaiting_receipt: int | None = None
    evicted: Mapping[str, int] | None = None
    outbox_full: bool | None = None
    held_in_memory: int | None = None
    config_applied: str | None = None
    config_error: str | None = None
    fields_ignored: int = 0
    ignored_reason: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One row of a hub's status history."""

    received_at: datetime
    live: bool
    online: bool
    changes: tuple[str, ...]
    state: Mapping[str, Any]
    queue_depth: int | None
    awaiting_receipt: int | None
    held_in_memory: int | None


# The hub's columns after a write: what the history compares.
_HUB_COLUMNS = "agent_version, config_applied, evicted_total, outbox_full"
# The figures an online status sets and an offline one (the Last Will, which carries none) keeps.
_KEPT_WHEN_OFFLINE = ", ".join(
    f"{c} = CASE WHEN excluded.online THEN excluded.{c} ELSE s.{c} END"
    for c in (
        "queue_depth",
        "awaiting_receipt",
        "evicted",
        "evicted_total",
        "outbox_full",
        "held_in_memory",
        "config_applied",
        "config_error",
    )
)


def save_hub_status(conn: psycopg.Connection[Any], status: HubStatusWrite) -> bool:
    """Store ``status`` as its hub's newest, and a history row when something that matters changed;
    False (nothing written) when the hub is not enrolled in its municipality."""
    hub = _save_hub(conn, status)
    if hub is None:
        return False
    if status.online:
        conn.execute("DELETE FROM hub_status_devices WHERE hub_id = %s", (status.hub_id,))
        devices = _insert_devices(conn, status.municipality_id, status.hub_id, status.devices)
    else:
        devices = conn.execute(
            "UPDATE hub_status_devices SET connected = false WHERE hub_id = %s"
            " RETURNING device_id, connected, battery, clock, last_error_type",
            (status.hub_id,),
        ).fetchall()
    state = history_state(status.online, hub, devices)
    _record_history(conn, status, state)
    return True


def _save_hub(conn: psycopg.Connection[Any], status: HubStatusWrite) -> tuple[Any, ...] | None:
    """Upsert the hub's row; its columns (``_HUB_COLUMNS``) as stored, or None when not enrolled.

    An online status sets every figure (an absent one becomes NULL: the hub no longer reports it); an
    offline one sets the state and, when it names one, the agent version, and keeps the rest."""
    online_at = status.received_at if status.online and status.live else None
    evicted = None if status.evicted is None else dict(status.evicted)
    evicted_total = None if evicted is None else sum(evicted.values())
    return conn.execute(
        "INSERT INTO hub_status AS s (municipality_id, hub_id, received_at, online, online_at,"
        " devices_dropped, dropped_reason, agent_version, queue_depth, awaiting_receipt, evicted,"
        " evicted_total, outbox_full, held_in_memory, config_applied, config_error, fields_ignored,"
        " ignored_reason)"
        " SELECT h.municipality_id, h.id, %(received_at)s, %(online)s, %(online_at)s, %(dropped)s,"
        " %(dropped_reason)s, %(agent)s, %(queue)s, %(awaiting)s, coalesce(%(evicted)s, '{}'::jsonb),"
        " coalesce(%(evicted_total)s, 0), %(full)s, %(held)s, %(config)s, %(config_error)s, %(ignored)s,"
        " %(ignored_reason)s FROM hubs h"
        " WHERE h.municipality_id = %(municipality)s AND h.id = %(hub)s"
        " ON CONFLICT (hub_id) DO UPDATE SET received_at = excluded.received_at, online = excluded.online,"
        " online_at = greatest(s.online_at, excluded.online_at), devices_dropped = excluded.devices_dropped,"
        " dropped_reason = excluded.dropped_reason,"
        " agent_version = coalesce(excluded.agent_version,"
        "  CASE WHEN NOT excluded.online THEN s.agent_version END),"
        f" {_KEPT_WHEN_OFFLINE},"
        " fields_ignored = excluded.fields_ignored, ignored_reason = excluded.ignored_reason"
        " WHERE s.municipality_id = excluded.municipality_id"
        f" RETURNING {_HUB_COLUMNS}",
        {
            "received_at": status.received_at,
            "online": status.online,
            "online_at": online_at,
            "dropped": status.devices_dropped,
            "dropped_reason": status.dropped_reason,
            "agent": status.agent_version,
            "queue": status.queue_depth,
            "awaiting": status.awaiting_receipt,
            "evicted": None if evicted is None else Jsonb(evicted),
            "evicted_total": evicted_total,
            "full": status.outbox_full,
            "held": status.held_in_memory,
            "config": status.config_applied,
            "config_error": status.config_error,
            "ignored": status.fields_ignored,
            "ignored_reason": status.ignored_reason,
            "municipality": status.municipality_id,
            "hub": status.hub_id,
        },
    ).fetchone()


def _insert_devices(
    conn: psycopg.Connection[Any], municipality_id: str, hub_id: str, devices: Sequence[StatusDevice]
) -> list[tuple[Any, ...]]:
    """Insert the device rows; those written, as (device_id, connected, battery, clock,
    last_error_type)."""
    if not devices:
        return []
    return conn.execute(
        "INSERT INTO hub_status_devices (hub_id, device_id, connected, battery, last_seen, clock,"
        " clock_offset_s, errors, last_error, last_error_type)"
        " SELECT d.hub_id, d.id, x.connected, x.battery, x.last_seen, x.clock, x.clock_offset_s, x.errors,"
        " x.last_error, x.last_error_type"
        " FROM unnest(%s::text[], %s::boolean[], %s::smallint[], %s::timestamptz[], %s::text[],"
        "  %s::float8[], %s::integer[], %s::text[], %s::text[])"
        "  AS x(device_id, connected, battery, last_seen, clock, clock_offset_s, errors, last_error,"
        "  last_error_type)"
        " JOIN devices d ON d.id = x.device_id AND d.hub_id = %s AND d.municipality_id = %s"
        "  AND d.removed_at IS NULL"
        " RETURNING device_id, connected, battery, clock, last_error_type",
        (
            [d.device_id for d in devices],
            [d.connected for d in devices],
            [d.battery for d in devices],
            [d.last_seen for d in devices],
            [d.clock for d in devices],
            [d.clock_offset_s for d in devices],
            [d.errors for d in devices],
            [d.last_error for d in devices],
            [d.last_error_type for d in devices],
            hub_id,
            municipality_id,
        ),
    ).fetchall()


# --- the history --------------------------------------------------------------------------------------


def history_state(online: bool, hub: Sequence[Any], devices: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """What the history compares (migration 0016): the hub's state and each device's, evictions by order
    of magnitude, the battery by band, a device's last error only when it is a failure. ``hub``:
    ``_HUB_COLUMNS``; ``devices``: (device_id, connected, battery, clock, last_error_type)."""
    agent_version, config_applied, evicted_total, outbox_full = hub
    return {
        "online": online,
        "agent": agent_version,
        "config": config_applied,
        "evictions": magnitude(evicted_total),
        "outboxFull": outbox_full,
        "devices": {
            str(device_id): {
                "connected": connected,
                "battery": battery_band(battery),
                "clock": clock,
                "error": device_failure(error_type),
            }
            for device_id, connected, battery, clock, error_type in sorted(devices, key=lambda d: str(d[0]))
        },
    }


# The order in which changes are named.
_HUB_CHANGES: Final = (
    ("agent", "agent-version"),
    ("config", "config"),
    ("evictions", "evictions"),
    ("outboxFull", "outbox-full"),
)
_DEVICE_CHANGES: Final = (
    ("connected", "connected"),
    ("battery", "battery"),
    ("clock", "clock"),
    ("error", "error"),
)


def changes(previous: Mapping[str, Any] | None, state: Mapping[str, Any]) -> tuple[str, ...]:
    """What changed from ``previous`` to ``state`` (both :func:`history_state`), in a fixed order; ("first",)
    when there was no previous; () when nothing that matters changed."""
    if previous is None:
        return ("first",)
    found: list[str] = []
    if previous.get("online") != state["online"]:
        found.append("online" if state["online"] else "offline")
    found += [name for key, name in _HUB_CHANGES if previous.get(key) != state[key]]
    before: Mapping[str, Any] = previous.get("devices") or {}
    after: Mapping[str, Any] = state["devices"]
    if after.keys() - before.keys():
        found.append("device-added")
    if before.keys() - after.keys():
        found.append("device-gone")
    for key, name in _DEVICE_CHANGES:
        if any(before[d].get(key) != after[d][key] for d in after.keys() & before.keys()):
            found.append(name)
    return tuple(found)


def _record_history(conn: psycopg.Connection[Any], status: HubStatusWrite, state: dict[str, Any]) -> None:
    row = conn.execute(
        "SELECT state FROM hub_status_history WHERE hub_id = %s ORDER BY received_at DESC, id DESC LIMIT 1",
        (status.hub_id,),
    ).fetchone()
    changed = changes(None if row is None else row[0], state)
    if not changed:
        return
    conn.execute(
        "INSERT INTO hub_status_history (municipality_id, hub_id, received_at, live, online, changes, state,"
        " queue_depth, awaiting_receipt, held_in_memory)"
        " SELECT municipality_id, hub_id, %s, %s, %s, %s, %s, queue_depth, awaiting_receipt, held_in_memory"
        " FROM hub_status WHERE hub_id = %s",
        (status.received_at, status.live, status.online, list(changed), Jsonb(state), status.hub_id),
    )
    # Retention (migration 0016): older than the window, or beyond the newest HISTORY_ROWS_PER_HUB.
    conn.execute(
        "DELETE FROM hub_status_history h WHERE h.hub_id = %(hub)s AND (h.received_at < %(cutoff)s"
        " OR (h.received_at, h.id) < (SELECT k.received_at, k.id FROM hub_status_history k"
        "  WHERE k.hub_id = %(hub)s ORDER BY k.received_at DESC, k.id DESC OFFSET %(keep)s LIMIT 1))",
        {
            "hub": status.hub_id,
            "cutoff": status.received_at - HISTORY_RETENTION,
            "keep": HISTORY_ROWS_PER_HUB - 1,
        },
    )


def hub_history(
    conn: psycopg.Connection[Any], municipality_id: str, hub_id: str, *, limit: int = 200
) -> list[HistoryRow]:
    """The hub's status history, newest first, at most ``limit`` rows; [] for a hub of another
    municipality."""
    rows = conn.execute(
        "SELECT received_at, live, online, changes, state, queue_depth, awaiting_receipt, held_in_memory"
        " FROM hub_status_history WHERE hub_id = %s AND municipality_id = %s"
        " ORDER BY received_at DESC, id DESC LIMIT %s",
        (hub_id, municipality_id, limit),
    ).fetchall()
    return [HistoryRow(r[0], r[1], r[2], tuple(r[3]), r[4], r[5], r[6], r[7]) for r in rows]
