"""What the missing-measurement alert reads and writes: expected measurements, their newest readings, and
resolving an alert when the measurement came.

A patient is expected to take the measurements their enrolled devices give (``worklist.EXPECTED_BY_DEVICE``
through ``contract_kind``, as the worklist's cards expect them); each measurement is read from its
reading kinds (``worklist.MEASUREMENTS``: pulse from a cuff, an oximeter or a heart-rate sensor).
``expected_readings`` returns, for every patient of every municipality in one query, each expected
measurement with its newest reading taken up to ``now`` (or none yet). A reading counts whether or not it
carried a number (a hub drops an impossible value but the patient did measure); a preliminary one (a cuff
still inflating) does not.

For a patient with a measurement plan (``gateway.store.plans``) the job asks instead for the times of
the readings of each planned measurement in a window (``readings_taken``; what ``fhir_contract.plan``
matches against the plan's occurrences) and the newest reading of each (``newest_readings``). A planned
measurement is read from :data:`PLAN_READING_KINDS` (``fhir_contract.plan.READING_KINDS``, the hub's
table too): the worklist's kinds, and a glucose meter's for glucose (a continuous monitor's stream is no
planned measurement: it would count for every occurrence).

``active_missing_alerts`` and ``resolve_received`` let the job end an alert by itself once a newer reading
of the measurement is stored (``newest_readings`` of the alerts' measurements, whatever raised them):
resolved with no person (``resolved_by`` and the event's actor NULL), outcome :data:`RECEIVED`, and a
'resolved' event in the same transaction. Whether a measurement is overdue is
``gateway.alerts.missing``'s; the lifecycle of raising is ``gateway.alerts.lifecycle``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from fhir_contract.device import contract_kind
from fhir_contract.plan import READING_KINDS
from fhir_contract.status import PRELIMINARY
from gateway.store.alerts import add_event
from gateway.store.worklist import EXPECTED_BY_DEVICE, MEASUREMENTS

#: alerts.outcome of a missing-measurement alert that a newer reading ended.
RECEIVED = "measurement-received"
_READING_KINDS: Mapping[str, tuple[str, ...]] = {m.key: m.kinds for m in MEASUREMENTS}
#: The reading kinds each measurement a plan may name is taken as: the contract's, which the hub reads too.
PLAN_READING_KINDS: Mapping[str, tuple[str, ...]] = READING_KINDS
# Every measurement a 'missing' alert may be keyed by, with its reading kinds.
_ALERT_READING_KINDS: Mapping[str, tuple[str, ...]] = {**_READING_KINDS, **PLAN_READING_KINDS}
# A reading that counts: taken, not a cuff still inflating (shared by the queries below).
_COUNTS = "o.resource ->> 'status' IS DISTINCT FROM %(preliminary)s"


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


def _kind_arrays(measurements: Iterable[str]) -> dict[str, list[str]]:
    wanted = sorted(set(measurements) & _ALERT_READING_KINDS.keys())
    return {
        "kind_measurements": [m for m in wanted for _ in _ALERT_READING_KINDS[m]],
        "kinds": [kind for m in wanted for kind in _ALERT_READING_KINDS[m]],
    }


def newest_readings(
    conn: psycopg.Connection[Any], wanted: Sequence[tuple[str, str, str]], *, now: datetime
) -> dict[tuple[str, str, str], ExpectedReading]:
    """The newest reading taken at or before ``now`` of each ``(municipality, patient, measurement)``
    wanted (a measurement of a plan or of a 'missing' alert); one with none yet has ``last_at`` None."""
    if not wanted:
        return {}
    rows = conn.execute(
        "WITH wanted AS (SELECT DISTINCT * FROM unnest(%(municipalities)s::text[], %(patients)s::text[],"
        "  %(measurements)s::text[]) AS w(municipality_id, patient_id, measurement)),"
        " reading_kinds AS (SELECT * FROM unnest(%(kind_measurements)s::text[], %(kinds)s::text[])"
        "  AS r(measurement, kind))"
        " SELECT w.municipality_id, w.patient_id, w.measurement, n.effective, n.identifier FROM wanted w"
        " LEFT JOIN LATERAL (SELECT x.effective, x.identifier FROM reading_kinds rk CROSS JOIN LATERAL ("
        "  SELECT o.effective, o.identifier FROM observations o"
        "  WHERE o.municipality_id = w.municipality_id AND o.patient_id = w.patient_id AND o.kind = rk.kind"
        f"  AND o.effective <= %(now)s AND {_COUNTS}"
        "  ORDER BY o.effective DESC, o.identifier DESC LIMIT 1) x WHERE rk.measurement = w.measurement"
        "  ORDER BY x.effective DESC, x.identifier DESC LIMIT 1) n ON true",
        {
            "municipalities": [m for m, _p, _k in wanted],
            "patients": [p for _m, p, _k in wanted],
            "measurements": [k for _m, _p, k in wanted],
            **_kind_arrays(k for _m, _p, k in wanted),
            "now": now,
            "preliminary": PRELIMINARY,
        },
    ).fetchall()
    return {
        (str(m), str(p), str(k)): ExpectedReading(str(m), str(p), str(k), at, ident)
        for m, p, k, at, ident in rows
    }


def readings_taken(
    conn: psycopg.Connection[Any], wanted: Sequence[tuple[str, str, str, datetime]], *, now: datetime
) -> dict[tuple[str, str, str], list[datetime]]:
    """When each ``(municipality, patient, measurement, from)`` wanted was measured, from ``from`` up to
    ``now`` (both included), oldest first; a measurement without a reading there is left out."""
    if not wanted:
        return {}
    rows = conn.execute(
        "WITH wanted AS (SELECT * FROM unnest(%(municipalities)s::text[], %(patients)s::text[],"
        "  %(measurements)s::text[], %(since)s::timestamptz[]) AS w(municipality_id, patient_id, measurement,"
        "  since)),"
        " reading_kinds AS (SELECT * FROM unnest(%(kind_measurements)s::text[], %(kinds)s::text[])"
        "  AS r(measurement, kind))"
        " SELECT w.municipality_id, w.patient_id, w.measurement, o.effective"
        " FROM wanted w JOIN reading_kinds rk ON rk.measurement = w.measurement"
        " JOIN observations o ON o.municipality_id = w.municipality_id AND o.patient_id = w.patient_id"
        f"  AND o.kind = rk.kind AND o.effective >= w.since AND o.effective <= %(now)s AND {_COUNTS}"
        " ORDER BY w.municipality_id, w.patient_id, w.measurement, o.effective",
        {
            "municipalities": [m for m, _p, _k, _s in wanted],
            "patients": [p for _m, p, _k, _s in wanted],
            "measurements": [k for _m, _p, k, _s in wanted],
            "since": [s for _m, _p, _k, s in wanted],
            **_kind_arrays(k for _m, _p, k, _s in wanted),
            "now": now,
            "preliminary": PRELIMINARY,
        },
    ).fetchall()
    found: dict[tuple[str, str, str], list[datetime]] = {}
    for m, p, k, at in rows:
        found.setdefault((str(m), str(p), str(k)), []).append(at)
    return found


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
