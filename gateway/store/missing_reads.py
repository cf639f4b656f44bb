"""What the missing-measurement alert reads and writes: expected measurements, their newest readings, and
resolving an alert when the measurement came.

A patient is expected to take the measurements their enrolled devices give (``worklist.EXPECTED_BY_DEVICE``
through ``contract_kind``, as the worklist's cards expect them); each measurement is read from its
reading kinds (``worklist.MEASUREMENTS``: pulse from a cuff, an oximeter or a heart-rate sensor).
``expected_readings`` returns, for every patient of every municipality in one query, each expected
measurement with its newest reading taken up to ``now`` (or none yet). A reading counts whether or not it
carried a number (a hub drops an impossible value but the patient did measure); a preliminary one (a cuff
still inflating) does not.

``active_missing_alerts`` and ``resolve_received`` let the job end an alert by itself once a newer reading
of the measurement is stored: resolved with no person (``resolved_by`` and the event's actor NULL), outcome
:data:`RECEIVED`, and a 'resolved' event in the same transaction. Whether a measurement is overdue is
``gateway.alerts.missing``'s; the lifecycle of raising is ``gateway.alerts.lifecycle``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from fhir_contract.device import contract_kind
from fhir_contract.status import PRELIMINARY
from gateway.store.alerts import add_event
from gateway.store.worklist import EXPECTED_BY_DEVICE, MEASUREMENTS

#: alerts.outcome of a missing-measurement alert that a newer reading ended.
RECEIVED = "measurement-received"
_READING_KINDS: Mapping[str, tuple[str, ...]] = {m.key: m.kinds for m in MEASUREMENTS}


@dataclass(frozen=True, slots=True)
class ExpectedReading:
    """A measurement a patient is expected to take, and their newest reading of it (None: none yet)."""

    municipality_id: str
    patient_id: str
    measurement: str  # a key of worklist.MEASUREMENTS: 'blood-pressure', 'spo2', 'weight', ...
    last_at: datetime | None
    last_identifier: str | None


@dataclass(frozen=True, slots=True)
class ActiveMissing:
    """An active 'missing' alert and the reading it was missing since (its ``observation_identifier``)."""

    alert_id: int
    municipality_id: str
    patient_id: str
    measurement: str
    since_identifier: str | None


def _expected_by_kind(device_kinds: Iterable[str], measurements: frozenset[str]) -> list[tuple[str, str]]:
    """(device kind as enrolled, measurement) for each of ``measurements`` the kind gives."""
    return [
        (kind, measurement)
        for kind in sorted(set(device_kinds))
        for measurement in EXPECTED_BY_DEVICE.get(contract_kind(kind), ())
        if measurement in measurements
    ]


def expected_readings(
    conn: psycopg.Connection[Any], *, now: datetime, measurements: Iterable[str]
) -> list[ExpectedReading]:
    """Every patient's expected ``measurements`` (of those the worklist knows) with the newest reading of
    each taken at or before ``now``; ordered by municipality, patient and measurement."""
    wanted = frozenset(measurements) & _READING_KINDS.keys()
    # The kinds devices are enrolled under (a handful): mapped here, where contract_kind lives.
    enrolled = [str(row[0]) for row in conn.execute("SELECT DISTINCT kind FROM devices").fetchall()]
    pairs = _expected_by_kind(enrolled, wanted)
    if not pairs:
        return []
    rows = conn.execute(
        "WITH expected AS (SELECT DISTINCT d.municipality_id, d.patient_id, m.measurement"
        "  FROM devices d JOIN unnest(%(device_kinds)s::text[], %(measurements)s::text[])"
        "  AS m(device_kind, measurement) ON m.device_kind = d.kind"
        "  JOIN patients p ON p.municipality_id = d.municipality_id AND p.id = d.patient_id),"
        " reading_kinds AS (SELECT * FROM unnest(%(reading_measurements)s::text[], %(reading_kinds)s::text[])"
        "  AS r(measurement, kind))"
        " SELECT e.municipality_id, e.patient_id, e.measurement, n.effective, n.identifier FROM expected e"
        " LEFT JOIN LATERAL (SELECT x.effective, x.identifier FROM reading_kinds rk CROSS JOIN LATERAL ("
        "  SELECT o.effective, o.identifier FROM observations o"
        "  WHERE o.municipality_id = e.municipality_id AND o.patient_id = e.patient_id AND o.kind = rk.kind"
        "  AND o.effective <= %(now)s AND o.resource ->> 'status' IS DISTINCT FROM %(preliminary)s"
        "  ORDER BY o.effective DESC, o.identifier DESC LIMIT 1) x WHERE rk.measurement = e.measurement"
        "  ORDER BY x.effective DESC, x.identifier DESC LIMIT 1) n ON true"
        " ORDER BY e.municipality_id, e.patient_id, e.measurement",
        {
            "device_kinds": [kind for kind, _ in pairs],
            "measurements": [measurement for _, measurement in pairs],
            "reading_measurements": [m for m in sorted(wanted) for _ in _READING_KINDS[m]],
            "reading_kinds": [kind for m in sorted(wanted) for kind in _READING_KINDS[m]],
            "now": now,
            "preliminary": PRELIMINARY,
        },
    ).fetchall()
    return [ExpectedReading(str(m), str(p), str(key), at, ident) for m, p, key, at, ident in rows]


def active_missing_alerts(conn: psycopg.Connection[Any]) -> list[ActiveMissing]:
    """Every active (not resolved) 'missing' alert of every municipality, oldest first."""
    rows = conn.execute(
        "SELECT id, municipality_id, patient_id, key, observation_identifier FROM alerts"
        " WHERE kind = 'missing' AND status <> 'resolved' ORDER BY id"
    ).fetchall()
    return [ActiveMissing(int(i), str(m), str(p), str(k), ident) for i, m, p, k, ident in rows]


def resolve_received(
    conn: psycopg.Connection[Any], alert_id: int, *, at: datetime, identifier: str | None
) -> bool:
    """Resolve the 'missing' alert because the reading ``identifier`` came (no person: actor NULL), with
    its 'resolved' event, in the caller's transaction; False when it was resolved already."""
    row = conn.execute(
        "UPDATE alerts SET status = 'resolved', resolved_at = %s, resolved_by = NULL, outcome = %s,"
        " updated_at = %s WHERE id = %s AND kind = 'missing' AND status <> 'resolved' RETURNING id",
        (at, RECEIVED, at, alert_id),
    ).fetchone()
    if row is None:
        return False
    add_event(conn, alert_id, "resolved", at=at, detail={"outcome": RECEIVED, "observation": identifier})
    return True
