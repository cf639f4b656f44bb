"""Readings of a shared device that the hub could not give to a resident, waiting for one to claim them.

Two residents sharing a cuff or a scale tell it apart by the User Index the device sends with each
measurement (:mod:`edge_agent.household`). A measurement without an index, or with one no resident has,
is never guessed: the device session builds its Observations for :data:`NOBODY` and adds them here
instead of the outbox. The patient view lists :meth:`UnattributedReadings.pending`; when a resident says
"it was me", :meth:`UnattributedReadings.claim` gives the Observations back rewritten for that resident
(subject and identifier) and the caller puts them into the outbox. Nothing here is ever sent.

One row per measurement (a cuff's panel and its pulse rate together), keyed by its Observation
identifiers, so a device that sends a stored measurement again after a reconnection adds nothing, and a
claimed one is not offered again: a claim keeps the key and drops the Observations. Rows older than
:data:`KEEP_DAYS` are forgotten. SQLite in WAL mode with ``synchronous=FULL`` beside the outbox;
thread-safe (callers on the event loop use ``asyncio.to_thread``). A crash between ``claim`` and the
caller's ``Outbox.put`` loses that one claimed measurement: the window is one function call.
"""

from __future__ import annotations

import copy
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from edge_agent.outbox.priority import observation_kind
from fhir_contract.terminology import MDC, find_reading_type

NOBODY = "~unattributed~"
"""The patient id the hub builds an unattributed measurement's Observations for. Never a valid FHIR id
(``~`` is not allowed in one), so it cannot be any resident's, and the gateway would refuse it."""

KEEP_DAYS = 90
"""How long a row is kept: a measurement nobody claimed in three months will not be claimed."""

# How UCUM units read on a screen.
_UNIT_TEXT = {"mm[Hg]": "mmHg", "Cel": "°C", "[degF]": "°F", "[lb_av]": "lb", "kg/m2": "kg/m²"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS unattributed (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    key          TEXT NOT NULL UNIQUE,  -- the measurement's Observation identifiers, sorted, joined
    device_id    TEXT NOT NULL,
    user_index   INTEGER,               -- what the device sent; NULL: no index
    kind         TEXT NOT NULL,
    summary      TEXT NOT NULL,
    measured_at  TEXT NOT NULL,         -- ISO 8601, aware
    created_at   REAL NOT NULL,         -- unix time the hub stored it
    observations BLOB,                  -- JSON list; NULL once claimed
    claimed_by   TEXT
);
"""


@dataclass(frozen=True, slots=True)
class PendingReading:
    """One measurement waiting for a resident, as the patient view lists it."""

    id: int
    device_id: str
    kind: str  # the contract's reading type of its main Observation ("blood-pressure")
    summary: str  # "132/84 mmHg"
    measured_at: datetime


class UnattributedError(ValueError):
    """A claim the store cannot honour: ``pending_id`` is unknown or already claimed."""

    def __init__(self, pending_id: int, reason: str) -> None:
        self.pending_id = pending_id
        self.reason = reason
        super().__init__(f"unattributed reading {pending_id}: {reason}")


class UnattributedReadings:
    """The hub's store of measurements waiting for a resident to claim them."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        self._db = db

    @staticmethod
    def path_next_to(outbox_path: Path) -> Path:
        """Where a hub keeps it: beside its outbox."""
        return outbox_path.with_name(outbox_path.stem + ".unattributed.sqlite3")

    def add(self, device_id: str, user_index: int | None, observations: list[dict[str, Any]]) -> int:
        """Keep one measurement's Observations (built for :data:`NOBODY`); return its id. The same
        measurement added again (same identifiers) returns the first id and changes nothing."""
        if not observations:
            raise ValueError("an unattributed measurement has at least one Observation")
        key = "\n".join(sorted(_identifier(obs) for obs in observations))
        main = observations[0]
        row = (
            key,
            device_id,
            user_index,
            observation_kind(main),
            summarise(main),
            str(main.get("effectiveDateTime", "")),
            time.time(),
            orjson.dumps(observations),
        )
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "DELETE FROM unattributed WHERE created_at < ?", (time.time() - KEEP_DAYS * 86_400,)
                )
                self._db.execute(
                    "INSERT INTO unattributed (key, device_id, user_index, kind, summary, measured_at,"
                    " created_at, observations) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (key) DO NOTHING",
                    row,
                )
                (pending_id,) = self._db.execute(
                    "SELECT id FROM unattributed WHERE key = ?", (key,)
                ).fetchone()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(pending_id)

    def pending(self) -> list[PendingReading]:
        """The measurements nobody has claimed, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, device_id, kind, summary, measured_at FROM unattributed"
                " WHERE claimed_by IS NULL ORDER BY measured_at, id"
            ).fetchall()
        return [
            PendingReading(int(i), device, kind, summary, datetime.fromisoformat(at))
            for i, device, kind, summary, at in rows
        ]

    def claim(self, pending_id: int, patient_id: str) -> list[dict[str, Any]]:
        """The measurement's Observations rewritten for ``patient_id``, and the measurement off the
        pending list (for good). The caller puts them into the outbox. UnattributedError when
        ``pending_id`` is unknown or was claimed already (two residents tapping at once: one wins)."""
        if not patient_id or patient_id == NOBODY:
            raise ValueError("a claim names a resident")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                found = self._db.execute(
                    "SELECT device_id, observations FROM unattributed WHERE id = ? AND claimed_by IS NULL",
                    (pending_id,),
                ).fetchone()
                if found is None:
                    raise UnattributedError(pending_id, "unknown or already claimed")
                self._db.execute(
                    "UPDATE unattributed SET claimed_by = ?, observations = NULL WHERE id = ?",
                    (patient_id, pending_id),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        device_id, blob = found
        return [attribute(obs, device_id, patient_id) for obs in orjson.loads(blob)]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def attribute(observation: Mapping[str, Any], device_id: str, patient_id: str) -> dict[str, Any]:
    """A copy of ``observation`` about ``patient_id``: its subject and its identifier (the PHD IG's
    ``device-patient-type-time``, so the claimed reading is de-duplicated like any other)."""
    obs = copy.deepcopy(dict(observation))
    reference = str(obs.get("subject", {}).get("reference", ""))
    old = reference.removeprefix("Patient/")
    obs["subject"] = {"reference": f"Patient/{patient_id}"}
    prefix = f"{device_id}-{old}-"
    for identifier in obs.get("identifier", ()):
        value = identifier.get("value")
        if isinstance(value, str) and value.startswith(prefix):
            identifier["value"] = f"{device_id}-{patient_id}-{value.removeprefix(prefix)}"
    return obs


def summarise(observation: Mapping[str, Any]) -> str:
    """What a person reads for an Observation: ``"132/84 mmHg"``, ``"82.4 kg"``, ``"-"`` without a value."""
    quantity = observation.get("valueQuantity")
    if isinstance(quantity, dict):
        return _quantity_text(quantity)
    parts = _components(observation)
    systolic, diastolic = parts.get("systolic"), parts.get("diastolic")
    if systolic is not None and diastolic is not None:
        unit = _UNIT_TEXT.get(str(systolic.get("unit")), str(systolic.get("unit", "")))
        return f"{_number(systolic.get('value'))}/{_number(diastolic.get('value'))} {unit}".strip()
    return "-"


def _components(observation: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The component quantities by their reading-type component key (``systolic``, ``diastolic``)."""
    codings = [
        (str(c.get("system")), str(c.get("code")))
        for c in observation.get("code", {}).get("coding", ())
        if isinstance(c, dict)
    ]
    rtype = find_reading_type(codings)
    if rtype is None:
        return {}
    keys = {part.mdc.code: part.key for part in rtype.components}
    found: dict[str, dict[str, Any]] = {}
    for component in observation.get("component", ()):
        quantity = component.get("valueQuantity") if isinstance(component, dict) else None
        if not isinstance(quantity, dict):
            continue
        for coding in component.get("code", {}).get("coding", ()):
            if coding.get("system") == MDC and coding.get("code") in keys:
                found[keys[coding["code"]]] = quantity
    return found


def _quantity_text(quantity: Mapping[str, Any]) -> str:
    unit = str(quantity.get("code") or quantity.get("unit") or "")
    return f"{_number(quantity.get('value'))} {_UNIT_TEXT.get(unit, unit)}".strip()


def _number(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return "?"
    return format(Decimal(str(value)).normalize(), "f") if isinstance(value, float) else str(value)


def _identifier(observation: Mapping[str, Any]) -> str:
    identifiers: Sequence[Any] = observation.get("identifier", ())
    for identifier in identifiers:
        if isinstance(identifier, dict) and isinstance(identifier.get("value"), str):
            return str(identifier["value"])
    raise ValueError("an Observation without an identifier cannot be kept")
