"""The fleet's facts, read in two queries, and the fleet report (``gateway.fleet`` judges them).

``fleet_report(conn, municipality_id | None, now)`` reads every hub of one municipality (None: every
municipality; a system administrator's and the CLI's view) with its newest status (migrations 0012,
0016), and every device assigned to those hubs (not removed) with what the hub's status says of it, its
newest reading and its newest battery-level reading, then applies ``gateway.fleet``'s rules and returns
the hubs most urgent first. ``fleet_hub`` is one hub of one municipality (a hub of another is None).

The newest reading of each device is the costly part on a large ``observations`` table. It is found by
index probes alone: for each reading kind the device's kind delivers (``gateway.fleet.READING_KINDS``:
two for a cuff, six for an oximeter), the newest row of the patient's readings of that kind on the
existing index ``observations_patient_time (municipality_id, patient_id, kind, effective DESC)``, walked
until a row of this device is found; the newest of those. A patient's one device of a kind is found at
the first row; a second device of the same kind walks past the first one's newer readings. No index on
``(device_id, effective)`` is added: it would cost every reading ingest writes (the table's hottest path)
for a page an administrator opens a few times a day, and these probes read a handful of index pages per
device (``bench`` figures in docs/gateway.md). ``last_reading_sql`` gives the same probe to the worklist,
which flags a patient's silent device (``gateway.store.worklist``).

A revoked hub's devices are not the patient's any more (the worklist leaves them out); the fleet shows
them under the revoked hub, which it flags "revoked" and nothing else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from gateway.fleet import (
    DeviceFacts,
    FleetHub,
    HubFacts,
    assess_hub,
    enrolled_kind_pairs,
    fleet_json,
    ordered,
)

__all__ = ["fleet_hub", "fleet_json", "fleet_report", "last_reading_sql"]

# The reading kind a device's Battery Level (0x2A19) is stored as (edge_agent.gatt.battery).
BATTERY_LEVEL = "battery-level"


def last_reading_sql(device: str) -> sql.Composable:
    """SQL: a scalar subquery, the measurement time of the newest reading of the device row ``device``
    (an alias of ``devices``), by the index probes of the module docstring; NULL when it has none."""
    pairs = enrolled_kind_pairs()
    return sql.SQL(
        "(SELECT x.effective FROM unnest({device_kinds}::text[], {reading_kinds}::text[])"
        " AS rk(device_kind, kind) CROSS JOIN LATERAL ("
        "  SELECT o.effective FROM observations o WHERE o.municipality_id = {d}.municipality_id"
        "  AND o.patient_id = {d}.patient_id AND o.kind = rk.kind AND o.device_id = {d}.id"
        "  ORDER BY o.effective DESC LIMIT 1) x"
        " WHERE rk.device_kind = {d}.kind ORDER BY x.effective DESC LIMIT 1)"
    ).format(
        device_kinds=sql.Literal([device_kind for device_kind, _ in pairs]),
        reading_kinds=sql.Literal([kind for _, kind in pairs]),
        d=sql.Identifier(device),
    )


_HUBS = sql.SQL(
    "SELECT h.municipality_id, h.id, h.patient_id, h.revoked_at, h.settings, h.config_version,"
    " s.received_at, s.online, s.online_at, s.agent_version, s.queue_depth, s.awaiting_receipt,"
    " coalesce(s.evicted_total, 0), s.outbox_full, s.held_in_memory, s.config_applied, s.config_error"
    " FROM hubs h LEFT JOIN hub_status s ON s.hub_id = h.id AND s.municipality_id = h.municipality_id"
    " WHERE {scope} ORDER BY h.municipality_id, h.id"
)

_DEVICES = sql.SQL(
    "SELECT d.hub_id, d.id, d.kind, d.assigned_at, d.expected_interval, {last_reading},"
    " b.value, b.effective, sd.battery, hs.received_at, sd.connected, sd.last_seen, sd.clock,"
    " sd.clock_offset_s, sd.errors, sd.last_error, sd.last_error_type"
    " FROM devices d JOIN hubs h ON h.id = d.hub_id AND h.municipality_id = d.municipality_id"
    " LEFT JOIN hub_status hs ON hs.hub_id = h.id AND hs.municipality_id = h.municipality_id"
    " LEFT JOIN hub_status_devices sd ON sd.hub_id = h.id AND sd.device_id = d.id"
    " LEFT JOIN LATERAL (SELECT coalesce(o.canonical_value, o.value) AS value, o.effective"
    "  FROM observations o WHERE o.municipality_id = d.municipality_id AND o.patient_id = d.patient_id"
    "  AND o.kind = {battery} AND o.device_id = d.id AND o.value IS NOT NULL"
    "  ORDER BY o.effective DESC LIMIT 1) b ON true"
    " WHERE d.removed_at IS NULL AND {scope} ORDER BY d.hub_id, d.kind, d.id"
)


def _scope(municipality_id: str | None, hub_id: str | None) -> sql.Composable:
    clauses = [sql.SQL("true")]
    if municipality_id is not None:
        clauses.append(sql.SQL("h.municipality_id = %(municipality)s"))
    if hub_id is not None:
        clauses.append(sql.SQL("h.id = %(hub)s"))
    return sql.SQL(" AND ").join(clauses)


def _device(row: Sequence[Any]) -> tuple[str, DeviceFacts]:
    (hub_id, device_id, kind, assigned_at, expected, last_reading, reading_battery, reading_at) = row[:8]
    status_battery, status_at, connected, last_seen, clock, offset, errors, last_error, error_type = row[8:]
    battery, battery_at = reading_battery, reading_at
    # The newer of the status's battery (the time the gateway took it) and a battery-level reading.
    if status_battery is not None and (battery_at is None or status_at >= battery_at):
        battery, battery_at = status_battery, status_at
    return hub_id, DeviceFacts(
        device_id=device_id,
        kind=kind,
        assigned_at=assigned_at,
        expected_interval=expected,
        last_reading=last_reading,
        battery=None if battery is None else float(battery),
        battery_at=battery_at,
        connected=connected,
        last_seen=last_seen,
        clock=clock,
        clock_offset_s=offset,
        errors=errors,
        last_error=last_error,
        last_error_type=error_type,
    )


def _facts(conn: psycopg.Connection[Any], municipality_id: str | None, hub_id: str | None) -> list[HubFacts]:
    params = {"municipality": municipality_id, "hub": hub_id}
    scope = _scope(municipality_id, hub_id)
    devices: dict[str, list[DeviceFacts]] = defaultdict(list)
    query = _DEVICES.format(
        last_reading=last_reading_sql("d"), battery=sql.Literal(BATTERY_LEVEL), scope=scope
    )
    for row in conn.execute(query, params).fetchall():
        owner, device = _device(row)
        devices[owner].append(device)
    return [
        HubFacts(
            municipality_id=row[0],
            hub_id=row[1],
            patient_id=row[2],
            revoked_at=row[3],
            settings=row[4] or {},
            config_version=int(row[5]),
            status_at=row[6],
            reported_online=row[7],
            online_at=row[8],
            agent_version=row[9],
            queue_depth=row[10],
            awaiting_receipt=row[11],
            evicted_total=int(row[12]),
            outbox_full=row[13],
            held_in_memory=row[14],
            config_applied=row[15],
            config_error=row[16],
            devices=tuple(devices.get(row[1], ())),
        )
        for row in conn.execute(_HUBS.format(scope=scope), params).fetchall()
    ]


def fleet_report(conn: psycopg.Connection[Any], municipality_id: str | None, now: datetime) -> list[FleetHub]:
    """Every hub of ``municipality_id`` (None: of every municipality) as ``gateway.fleet`` judges it at
    ``now``, most urgent first (``gateway.fleet.ordered``)."""
    return ordered([assess_hub(facts, now) for facts in _facts(conn, municipality_id, None)])


def fleet_hub(
    conn: psycopg.Connection[Any], municipality_id: str, hub_id: str, now: datetime
) -> FleetHub | None:
    """One hub of ``municipality_id`` as judged at ``now``; None when the municipality has no such hub."""
    found = _facts(conn, municipality_id, hub_id)
    return assess_hub(found[0], now) if found else None
