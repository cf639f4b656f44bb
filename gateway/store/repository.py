"""Typed queries over the homewatch schema: enrolment, observations, quarantine.

Small functions over a synchronous psycopg ``Connection``. Callers own transactions: nothing here commits
(a function that needs several statements to be atomic opens a savepoint with ``conn.transaction()``).
Every query is scoped by municipality, because one database serves many municipalities and nothing may
leak between them: a row of another municipality is, to these functions, a row that does not exist.

Observations are stored once per reading, whatever their effective time. A reading is its identifier
scoped by the device that measured it and its municipality (migration 0004: identifiers are chosen by
senders, so unscoped one sender could claim another's). A batch is COPYed into a temporary staging
table, its readings claim their rows in ``observation_keys`` (not partitioned, so its unique key holds
across all times; ``INSERT ... ON CONFLICT DO NOTHING RETURNING``), and only the rows whose key was new
move into ``observations``, in one statement. A redelivered reading, or one re-sent with another
corrected effective time, is a duplicate and a no-op; a reading whose key is stored with other values
(another patient, kind, value, unit or components) is a conflict, stored neither, and reported to the
caller by its position. The caller learns exactly which rows were new. Monthly partitions are created
on the way (``gateway.store.partitions``; none on a hypertable).
Preliminary Observations (a cuff's pressure while it inflates) are stored and listed like any other, but
never count as a patient's latest value or as new data to score.

Left to others: validation (``fhir_contract``), authorisation of a hub for a patient
(``gateway.ingest.processing``), transactions and retries (``gateway.ingest.mqtt_ingest``), FHIR search
(``gateway.api``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import orjson
import psycopg
from psycopg.rows import tuple_row

from fhir_contract.status import PRELIMINARY
from gateway.store.errors import EnrolmentConflict
from gateway.store.partitions import ensure_partitions_for

if TYPE_CHECKING:
    from fhir_contract.validate import ValidObservation

# Quarantined payloads are kept to explain a rejection, not to be replayed at any size: a hub that sends
# megabytes of garbage must not fill the database. Longer payloads are cut and the cut is recorded.
QUARANTINE_PAYLOAD_LIMIT = 256_000

_STAGING = "_observation_staging"
# A reading's key: its identifier scoped by municipality and device, hashed (migration 0004).
_KEY_ID = "observation_key_id(municipality_id, device_id, identifier)"
OBSERVATION_COLUMNS = (
    "municipality_id",
    "identifier",
    "patient_id",
    "hub_id",
    "device_id",
    "kind",
    "loinc",
    "effective",
    "value",
    "unit",
    "components",
    "resource",
    # The same reading in its type's canonical unit (migration 0006), as validation computed it.
    "canonical_value",
    "canonical_unit",
    "canonical_components",
)


# --- rows ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Municipality:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Patient:
    municipality_id: str
    id: str
    name: str
    birth_date: date | None = None
    conditions: tuple[str, ...] = ()
    spo2_scale2: bool = False
    # Made up (the demo's cohort, a test): what the gateway serves about them is labelled as test data.
    synthetic: bool = False
    # The care team whose nurses see the patient; None: the municipality's default team (its own id).
    care_team_id: str | None = None
    # The patient's GP (a user with role 'gp', of any municipality), who sees them too.
    gp_username: str | None = None
    # The number a nurse calls when the patient's data lag.
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Hub:
    municipality_id: str
    id: str
    patient_id: str


@dataclass(frozen=True, slots=True)
class Device:
    municipality_id: str
    id: str
    hub_id: str
    patient_id: str
    kind: str
    address: str | None = None


@dataclass(frozen=True, slots=True)
class HubAssignment:
    """What a hub may report: the patients living with it and the devices enrolled on it.

    ``patient_id`` is the patient the hub was enrolled for. ``residents`` are everyone it measures (that
    patient included; empty means that patient alone). ``device_patients`` names, per device, whose
    readings it may carry: one patient for a personal device, the residents it has User Indexes for
    when shared; a device it does not list carries ``patient_id``'s."""

    municipality_id: str
    hub_id: str
    patient_id: str
    device_ids: frozenset[str]
    residents: frozenset[str] = frozenset()
    device_patients: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def serves(self, patient_id: str) -> bool:
        """Whether ``patient_id`` lives with this hub."""
        return patient_id == self.patient_id or patient_id in self.residents

    def device_measures(self, device_id: str, patient_id: str) -> bool:
        """Whether ``device_id`` (assigned to the hub) may carry ``patient_id``'s readings."""
        allowed = self.device_patients.get(device_id)
        return patient_id in allowed if allowed is not None else patient_id == self.patient_id


@dataclass(frozen=True, slots=True)
class InsertResult:
    inserted: int
    duplicates: int
    # Patients with new rows that can change a score (preliminary ones cannot).
    patient_ids: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class DeliveredObservation:
    """A validated Observation with the hub that delivered it (the hub may differ from its extension)."""

    municipality_id: str
    hub_id: str
    observation: ValidObservation


@dataclass(frozen=True, slots=True)
class BatchResult:
    inserted: int
    duplicates: int
    # Patients with new rows, per municipality (what a scorer should look at again): rows that are only
    # preliminary leave a patient out, since scoring never reads them.
    patients: dict[str, set[str]]
    # Positions (in the rows given) of the rows stored as new, and of the rows in conflict with a stored
    # reading (same device and identifier, other values): neither stored nor duplicates.
    new_positions: frozenset[int] = frozenset()
    conflicts: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredObservation:
    """A stored row: the values as sent, and the same in the canonical unit (what scoring reads)."""

    municipality_id: str
    identifier: str
    patient_id: str
    hub_id: str
    device_id: str
    kind: str
    loinc: str
    effective: datetime
    value: float | None
    unit: str | None
    components: dict[str, float | None]
    canonical_value: float | None
    canonical_unit: str | None
    canonical_components: dict[str, float | None]
    resource: dict[str, Any]
    received_at: datetime


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """One rejected message or Observation, with the raw text that was rejected."""

    topic: str
    municipality_id: str | None
    hub_id: str | None
    reason: str
    payload: bytes | str


# --- enrolment ----------------------------------------------------------------------------------


def enroll_municipality(conn: psycopg.Connection[Any], municipality: Municipality) -> None:
    """Create the municipality or update its name (its default care team, id = its own, comes with it)."""
    conn.execute(
        "INSERT INTO municipalities (id, name) VALUES (%s, %s)"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
        (municipality.id, municipality.name),
    )


def enroll_patient(conn: psycopg.Connection[Any], patient: Patient) -> None:
    """Create or update a patient. A patient id held by another municipality is a conflict, not a move."""
    row = conn.execute(
        "INSERT INTO patients (municipality_id, id, name, birth_date, conditions, spo2_scale2, synthetic,"
        " care_team_id, gp_username, phone)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, birth_date = EXCLUDED.birth_date,"
        " conditions = EXCLUDED.conditions, spo2_scale2 = EXCLUDED.spo2_scale2,"
        " synthetic = EXCLUDED.synthetic, care_team_id = EXCLUDED.care_team_id,"
        " gp_username = EXCLUDED.gp_username, phone = EXCLUDED.phone"
        " WHERE patients.municipality_id = EXCLUDED.municipality_id"
        " RETURNING id",
        (
            patient.municipality_id,
            patient.id,
            patient.name,
            patient.birth_date,
            list(patient.conditions),
            patient.spo2_scale2,
            patient.synthetic,
            patient.care_team_id,
            patient.gp_username,
            patient.phone,
        ),
    ).fetchone()
    if row is None:
        raise EnrolmentConflict(
            "patient", patient.id, patient.municipality_id, "enrolled in another municipality"
        )


def enrolled_patient(conn: psycopg.Connection[Any], municipality_id: str, patient_id: str) -> Patient | None:
    """The patient as enrolled; None when the municipality has no such patient."""
    row = conn.execute(
        "SELECT name, birth_date, conditions, spo2_scale2, synthetic FROM patients"
        " WHERE municipality_id = %s AND id = %s",
        (municipality_id, patient_id),
    ).fetchone()
    if row is None:
        return None
    name, birth_date, conditions, scale2, synthetic = row
    return Patient(
        municipality_id, patient_id, name, birth_date, tuple(conditions or ()), bool(scale2), bool(synthetic)
    )


def enrolled_patient_ids(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """Every enrolled patient as ``(municipality_id, patient_id)``, of every municipality, in order."""
    rows = conn.execute("SELECT municipality_id, id FROM patients ORDER BY municipality_id, id").fetchall()
    return [(str(m), str(p)) for m, p in rows]


def enroll_hub(conn: psycopg.Connection[Any], hub: Hub) -> None:
    """Create a hub or move it to another patient of the same municipality."""
    row = conn.execute(
        "INSERT INTO hubs (municipality_id, id, patient_id)"
        " SELECT p.municipality_id, %s, p.id FROM patients p WHERE p.municipality_id = %s AND p.id = %s"
        " ON CONFLICT (id) DO UPDATE SET patient_id = EXCLUDED.patient_id"
        " WHERE hubs.municipality_id = EXCLUDED.municipality_id"
        " RETURNING id",
        (hub.id, hub.municipality_id, hub.patient_id),
    ).fetchone()
    if row is None:
        raise EnrolmentConflict(
            "hub",
            hub.id,
            hub.municipality_id,
            f"patient {hub.patient_id} not in this municipality, or hub is",
        )


def enroll_device(conn: psycopg.Connection[Any], device: Device) -> None:
    """Create a device or re-pair it (a removed device is assigned again); its hub and patient must belong
    to the device's municipality."""
    row = conn.execute(
        "INSERT INTO devices (municipality_id, id, hub_id, patient_id, kind, address)"
        " SELECT h.municipality_id, %s, h.id, h.patient_id, %s, %s FROM hubs h"
        " WHERE h.municipality_id = %s AND h.id = %s AND h.patient_id = %s"
        " ON CONFLICT (id) DO UPDATE SET hub_id = EXCLUDED.hub_id, patient_id = EXCLUDED.patient_id,"
        " kind = EXCLUDED.kind, address = EXCLUDED.address, removed_at = NULL,"
        " assigned_at = CASE WHEN devices.removed_at IS NULL AND devices.hub_id = EXCLUDED.hub_id"
        "  THEN devices.assigned_at ELSE now() END"
        " WHERE devices.municipality_id = EXCLUDED.municipality_id"
        " RETURNING id",
        (device.id, device.kind, device.address, device.municipality_id, device.hub_id, device.patient_id),
    ).fetchone()
    if row is None:
        raise EnrolmentConflict(
            "device",
            device.id,
            device.municipality_id,
            f"hub {device.hub_id} of patient {device.patient_id} not in this municipality, or device is",
        )


def hub_assignments(
    conn: psycopg.Connection[Any], hubs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], HubAssignment]:
    """Assignments of many ``(municipality_id, hub_id)`` pairs in one query; unknown pairs are absent.

    A revoked hub is absent (ingest refuses it) and a removed device is not among its hub's devices.
    The residents are the enrolled patient and the ``hub_residents`` not removed (migration 0022). A device
    with user slots (``device_users``) of residents measures those residents; any other device counts
    only when its patient is a resident, and measures that patient."""
    pairs = sorted(set(hubs))
    if not pairs:
        return {}
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            "WITH hub AS ("
            "  SELECT h.municipality_id, h.id, h.patient_id,"
            "   array_append(coalesce((SELECT array_agg(r.patient_id) FROM hub_residents r"
            "    WHERE r.hub_id = h.id AND r.removed_at IS NULL), '{}'), h.patient_id) AS residents"
            "  FROM unnest(%s::text[], %s::text[]) AS want(municipality_id, hub_id)"
            "  JOIN hubs h ON h.municipality_id = want.municipality_id AND h.id = want.hub_id"
            "  AND h.revoked_at IS NULL)"
            " SELECT hub.municipality_id, hub.id, hub.patient_id, hub.residents,"
            "  coalesce(array_agg(d.id) FILTER (WHERE d.id IS NOT NULL), '{}'),"
            "  coalesce(jsonb_object_agg(d.id, coalesce(slots.patients, ARRAY[d.patient_id]))"
            "   FILTER (WHERE d.id IS NOT NULL), '{}')"
            " FROM hub"
            " LEFT JOIN (devices d LEFT JOIN LATERAL (SELECT array_agg(u.patient_id) AS patients"
            "   FROM device_users u WHERE u.device_id = d.id AND u.removed_at IS NULL) slots ON true)"
            "  ON d.hub_id = hub.id AND d.municipality_id = hub.municipality_id AND d.removed_at IS NULL"
            "  AND (d.patient_id = ANY(hub.residents) OR slots.patients && hub.residents)"
            " GROUP BY hub.municipality_id, hub.id, hub.patient_id, hub.residents",
            ([m for m, _ in pairs], [h for _, h in pairs]),
        )
        return {
            (municipality_id, hub_id): HubAssignment(
                municipality_id,
                hub_id,
                patient_id,
                frozenset(devices),
                residents=frozenset(residents),
                # Only residents, whatever a slot still names: a device never carries anyone else.
                device_patients={d: frozenset(ps) & set(residents) for d, ps in by_device.items()},
            )
            for municipality_id, hub_id, patient_id, residents, devices, by_device in cur.fetchall()
        }


def hub_assignment(conn: psycopg.Connection[Any], municipality_id: str, hub_id: str) -> HubAssignment | None:
    """The hub's patient and devices, or None when the hub is unknown in this municipality."""
    return hub_assignments(conn, [(municipality_id, hub_id)]).get((municipality_id, hub_id))


# --- observations -------------------------------------------------------------------------------


def _ensure_staging(conn: psycopg.Connection[Any]) -> None:
    # ON COMMIT DELETE ROWS empties it at every commit; it is also emptied after each use, so two
    # batches in one transaction never see each other's rows. ``seq`` keeps the batch's order, so the
    # first copy of a reading repeated within one batch is the one stored; ``pos`` is the row's position
    # in the caller's list, to report conflicts by; ``key_id`` (the reading's key, migration 0004) is
    # computed once, as the row is copied in.
    conn.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING}"
        f" (LIKE observations INCLUDING DEFAULTS, seq bigint GENERATED ALWAYS AS IDENTITY, pos integer,"
        f"  key_id text GENERATED ALWAYS AS ({_KEY_ID}) STORED)"
        f" ON COMMIT DELETE ROWS"
    )


def _json(value: object) -> str:
    # The resource came from orjson.loads, so it serialises (numbers beyond 64 bits were read as floats).
    return orjson.dumps(value).decode()


def insert_observations(
    conn: psycopg.Connection[Any], municipality_id: str, hub_id: str, rows: Sequence[ValidObservation]
) -> InsertResult:
    """Store validated Observations a hub delivered; rows whose identifier is already stored are skipped.

    Returns how many were new, how many were duplicates (already stored, or repeated in ``rows``), and
    the patients that got new data to score.
    """
    batch = insert_observation_batch(
        conn, [DeliveredObservation(municipality_id, hub_id, row) for row in rows]
    )
    return InsertResult(batch.inserted, batch.duplicates, batch.patients.get(municipality_id, set()))


# Transaction-local setting that tells migration 0002's trigger the keys of these rows are written.
_KEYS_WRITTEN = "homewatch.observation_keys_written"
# One statement: the first copy of each reading in the batch claims its key (a reading already stored,
# at any effective time, keeps its key: ON CONFLICT DO NOTHING); only the rows whose key was new move on.
# The keys are chosen from narrow columns, so the wide rows (the resource) are read from staging once.
_MOVE_NEW_ROWS = (
    f"WITH claimed AS ("
    f"  INSERT INTO observation_keys"
    f"   (id, identifier, municipality_id, device_id, patient_id, effective)"
    f"  SELECT DISTINCT ON (key_id) key_id, identifier, municipality_id, device_id, patient_id, effective"
    f"  FROM {_STAGING} ORDER BY key_id, seq"
    f"  ON CONFLICT (id) DO NOTHING RETURNING id, effective)"
    f" INSERT INTO observations ({', '.join(OBSERVATION_COLUMNS)})"
    f" SELECT DISTINCT ON (s.key_id) {', '.join('s.' + c for c in OBSERVATION_COLUMNS)}"
    f" FROM {_STAGING} s JOIN claimed k ON k.id = s.key_id AND k.effective = s.effective"
    f" ORDER BY s.key_id, s.seq"
    f" RETURNING municipality_id, patient_id, resource->>'status', device_id, identifier"
)
# The staged rows whose reading is stored with other values: what a reading is (its patient, type,
# value, unit and components) must not change under the same key. The effective time may: a re-send
# after the hub corrected a device clock is the same reading. Per staged row, one probe of the keys'
# primary key, then one of the stored row's partition (pruned at run time by the key's effective time);
# the LATERAL ... LIMIT 1 keeps the planner from hashing whole tables, which it would for a staging
# table it has no statistics of.
_CONFLICTS = (
    f"SELECT s.pos FROM {_STAGING} s CROSS JOIN LATERAL ("
    f"  SELECT o.patient_id, o.kind, o.value, o.unit, o.components FROM observation_keys k"
    f"  JOIN observations o ON o.municipality_id = k.municipality_id AND o.device_id = k.device_id"
    f"   AND o.identifier = k.identifier AND o.effective = k.effective"
    f"  WHERE k.id = s.key_id LIMIT 1) o"
    f" WHERE (o.patient_id, o.kind, o.value, o.unit, o.components)"
    f"  IS DISTINCT FROM (s.patient_id, s.kind, s.value, s.unit, s.components)"
    f" ORDER BY s.pos"
)


def insert_observation_batch(
    conn: psycopg.Connection[Any], rows: Sequence[DeliveredObservation]
) -> BatchResult:
    """Store Observations of many hubs and municipalities in one COPY and one idempotent statement.

    The ingest worker's path: one batch of MQTT messages is one call, whatever hubs they came from. A
    reading already stored (same municipality, device and identifier, at any effective time), or
    repeated in ``rows``, is a duplicate (the first copy stored wins) unless its values differ: then it
    is a conflict (``BatchResult.conflicts``). Runs in the caller's transaction (a savepoint).
    """
    if not rows:
        return BatchResult(0, 0, {})
    with conn.transaction():
        ensure_partitions_for(conn, (row.observation.effective for row in rows))
        _ensure_staging(conn)
        with conn.cursor(row_factory=tuple_row) as cur:
            columns = ", ".join((*OBSERVATION_COLUMNS, "pos"))
            with cur.copy(f"COPY {_STAGING} ({columns}) FROM STDIN") as copy:
                for position, row in enumerate(rows):
                    obs = row.observation
                    copy.write_row(
                        (
                            row.municipality_id,
                            obs.identifier,
                            obs.patient_id,
                            row.hub_id,
                            obs.device_id,
                            obs.kind,
                            obs.loinc,
                            obs.effective,
                            obs.value,
                            obs.unit,
                            _json(obs.components) if obs.components else None,
                            _json(obs.resource),
                            obs.canonical_value,
                            obs.canonical_unit,
                            _json(obs.canonical_components) if obs.canonical_components else None,
                            position,
                        )
                    )
            # The repository writes the keys itself: its rows skip the key trigger (migration 0002).
            cur.execute("SELECT set_config(%s, 'on', true)", (_KEYS_WRITTEN,))
            cur.execute(_MOVE_NEW_ROWS)
            returned = cur.fetchall()
            cur.execute("SELECT set_config(%s, 'off', true)", (_KEYS_WRITTEN,))
            conflicts: tuple[int, ...] = ()
            if len(returned) < len(rows):  # only a batch with repeats can hold a conflict
                cur.execute(_CONFLICTS)
                conflicts = tuple(pos for (pos,) in cur.fetchall())
            cur.execute(f"DELETE FROM {_STAGING}")
    first_position: dict[tuple[str, str, str], int] = {}
    for position, row in enumerate(rows):
        first_position.setdefault(
            (row.municipality_id, row.observation.device_id, row.observation.identifier), position
        )
    patients: dict[str, set[str]] = {}
    new_positions: set[int] = set()
    for municipality_id, patient_id, status, device_id, identifier in returned:
        new_positions.add(first_position[(municipality_id, device_id, identifier)])
        if status != PRELIMINARY:
            patients.setdefault(municipality_id, set()).add(patient_id)
    return BatchResult(
        inserted=len(returned),
        duplicates=len(rows) - len(returned) - len(conflicts),
        patients=patients,
        new_positions=frozenset(new_positions),
        conflicts=conflicts,
    )


_STORED = (
    "municipality_id, identifier, patient_id, hub_id, device_id, kind, loinc, effective, value, unit,"
    " components, canonical_value, canonical_unit, canonical_components, resource, received_at"
)


def _stored(row: tuple[Any, ...]) -> StoredObservation:
    return StoredObservation(
        municipality_id=row[0],
        identifier=row[1],
        patient_id=row[2],
        hub_id=row[3],
        device_id=row[4],
        kind=row[5],
        loinc=row[6],
        effective=row[7],
        value=row[8],
        unit=row[9],
        components=dict(row[10] or {}),
        canonical_value=row[11],
        canonical_unit=row[12],
        canonical_components=dict(row[13] or {}),
        resource=row[14],
        received_at=row[15],
    )


def count_observations(
    conn: psycopg.Connection[Any], municipality_id: str, patient_id: str | None = None
) -> int:
    """How many Observations are stored for the municipality, or for one of its patients."""
    row = conn.execute(
        "SELECT count(*) FROM observations WHERE municipality_id = %s"
        " AND (%s::text IS NULL OR patient_id = %s)",
        (municipality_id, patient_id, patient_id),
    ).fetchone()
    return int(row[0]) if row else 0


def latest_observations(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    patient_id: str,
    kinds: Iterable[str],
    as_of: datetime | None = None,
) -> dict[str, StoredObservation]:
    """The newest Observation of each kind with ``effective <= as_of`` (now when None); absent kinds omitted.

    Preliminary Observations are passed over: a cuff pressure while inflating is no blood pressure, and
    must neither score nor hide the final reading taken a moment later. One index probe per kind
    (``observations_patient_time``), however long the patient's history.
    """
    wanted = sorted(set(kinds))
    if not wanted:
        return {}
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            f"SELECT o.* FROM unnest(%s::text[]) AS k(kind) CROSS JOIN LATERAL ("
            f" SELECT {_STORED} FROM observations"
            "  WHERE municipality_id = %s AND patient_id = %s AND kind = k.kind"
            "  AND effective <= coalesce(%s::timestamptz, 'infinity')"
            "  AND resource->>'status' <> %s"
            "  ORDER BY effective DESC LIMIT 1) o",
            (wanted, municipality_id, patient_id, as_of, PRELIMINARY),
        )
        return {stored.kind: stored for stored in map(_stored, cur.fetchall())}


def observations_for_patient(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    patient_id: str,
    *,
    kinds: Iterable[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[StoredObservation]:
    """A patient's Observations, newest first, optionally of some kinds and in ``[since, until]``."""
    kind_list = sorted(set(kinds)) if kinds is not None else None
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            f"SELECT {_STORED} FROM observations"
            " WHERE municipality_id = %s AND patient_id = %s"
            " AND (%s::text[] IS NULL OR kind = ANY(%s::text[]))"
            " AND effective >= coalesce(%s::timestamptz, '-infinity')"
            " AND effective <= coalesce(%s::timestamptz, 'infinity')"
            " ORDER BY effective DESC, identifier LIMIT %s OFFSET %s",
            (municipality_id, patient_id, kind_list, kind_list, since, until, limit, offset),
        )
        return [_stored(row) for row in cur.fetchall()]


# --- quarantine ---------------------------------------------------------------------------------


def _payload_text(payload: bytes | str) -> tuple[str, bool]:
    text = payload if isinstance(payload, str) else payload.decode("utf-8", errors="backslashreplace")
    # PostgreSQL text cannot hold NUL; keep it visible rather than failing the whole batch.
    text = text.replace("\x00", "\\x00")
    if len(text) > QUARANTINE_PAYLOAD_LIMIT:
        return text[:QUARANTINE_PAYLOAD_LIMIT], True
    return text, False


def quarantine_many(conn: psycopg.Connection[Any], entries: Sequence[QuarantineEntry]) -> None:
    """Keep rejected input with its reason (one statement for the lot)."""
    if not entries:
        return
    params: list[tuple[str, str | None, str | None, str, str]] = []
    for entry in entries:
        text, cut = _payload_text(entry.payload)
        reason = entry.reason + (f" (payload cut to {QUARANTINE_PAYLOAD_LIMIT} characters)" if cut else "")
        params.append((entry.topic, entry.municipality_id, entry.hub_id, reason.replace("\x00", ""), text))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO quarantine (topic, municipality_id, hub_id, reason, payload)"
            " VALUES (%s, %s, %s, %s, %s)",
            params,
        )


def quarantine(
    conn: psycopg.Connection[Any],
    topic: str,
    municipality_id: str | None,
    hub_id: str | None,
    reason: str,
    payload: bytes | str,
) -> None:
    """Keep one rejected message or Observation with its reason."""
    quarantine_many(conn, [QuarantineEntry(topic, municipality_id, hub_id, reason, payload)])


def dead_letter(conn: psycopg.Connection[Any], worker: str, topic: str, reason: str, payload: bytes) -> None:
    """Keep the bytes of a message that could not even be quarantined (``dead_letters``: bytea columns
    take any bytes, so nothing in the message can make this fail)."""
    conn.execute(
        "INSERT INTO dead_letters (worker, topic, reason, payload) VALUES (%s, %s, %s, %s)",
        (worker, topic.encode("utf-8", "surrogateescape"), reason.replace("\x00", "\\x00"), payload),
    )


@dataclass(frozen=True, slots=True)
class QuarantinedRow:
    id: int
    received_at: datetime
    topic: str
    municipality_id: str | None
    hub_id: str | None
    reason: str
    payload: str


def quarantined(
    conn: psycopg.Connection[Any], municipality_id: str, limit: int = 100
) -> list[QuarantinedRow]:
    """The municipality's newest quarantined rows (for operators and tests)."""
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            "SELECT id, received_at, topic, municipality_id, hub_id, reason, payload FROM quarantine"
            " WHERE municipality_id = %s ORDER BY id DESC LIMIT %s",
            (municipality_id, limit),
        )
        return [QuarantinedRow(*row) for row in cur.fetchall()]
