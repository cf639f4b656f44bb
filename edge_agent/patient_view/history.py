"""The hub's own short memory of its residents' readings and answers, for the patient view.

The outbox forgets a reading once the gateway has it; the patient view still wants to say "Blodtryk
modtaget 08.14" and draw the last 30 days. :class:`LocalHistory` keeps, in a small SQLite file next to
the outbox, what a patient recognises of each stored Observation: whose it is, which measurement
(blood pressure, pulse, oxygen level, weight, temperature, blood sugar), when it was taken, its numbers
and unit, and the plan measurement it counts for (``edge_agent.plan_schedule.measurement_of``). It is
fed by :class:`~edge_agent.service.HubService`'s ``on_stored`` hook, bounded to :data:`KEEP` of time and
:data:`MAX_ROWS` rows, and read per patient only: no read returns another resident's rows.

Preliminary values, readings without a value (a device's artefact) and kinds a patient would not
recognise (a scale's impedance, a battery level, a continuous stream) are not kept. Blocking: call it
through ``asyncio.to_thread`` from async code. Losing the file loses only this view's memory; the
readings themselves are in the outbox or at the gateway.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import orjson

from edge_agent.outbox.priority import observation_kind
from edge_agent.patient_view.texts import number
from edge_agent.plan_schedule import measurement_of

log = logging.getLogger(__name__)

#: How long a reading is kept: the trends show 30 days; a quarter lets a resident look back a little.
KEEP: Final = timedelta(days=90)
#: A hard bound whatever the rate (an emulated device measures every few seconds): the oldest go first.
MAX_ROWS: Final = 50_000

# Contract reading type -> what the patient calls it (the texts' ``m.`` keys).
_GROUP_OF_KIND: Final[Mapping[str, str]] = {
    "blood-pressure": "blood-pressure",
    "pulse-rate-cuff": "pulse",
    "pulse-rate-oximeter": "pulse",
    "heart-rate": "pulse",
    "spo2": "spo2",
    "body-weight": "weight",
    "body-temperature": "temperature",
}
#: The measurements in the order the view shows them.
GROUPS: Final = ("blood-pressure", "pulse", "spo2", "weight", "temperature", "glucose")
# Blood-pressure components by LOINC code.
_COMPONENTS: Final = {"8480-6": "systolic", "8462-4": "diastolic"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    identifier TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL,
    grp TEXT NOT NULL,
    plan_key TEXT,
    taken REAL NOT NULL,
    numbers TEXT NOT NULL,
    unit TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_patient_taken ON readings (patient_id, taken);
CREATE TABLE IF NOT EXISTS answers (
    patient_id TEXT NOT NULL,
    questionnaire TEXT NOT NULL,
    authored REAL NOT NULL,
    PRIMARY KEY (patient_id, questionnaire, authored)
);
"""


@dataclass(frozen=True, slots=True)
class LocalReading:
    """One reading as the patient view shows it. ``numbers``: ``{"value": x}``, or for blood pressure
    ``{"systolic": s, "diastolic": d}``."""

    identifier: str
    patient_id: str
    group: str
    plan_key: str | None
    taken: datetime  # aware, UTC
    numbers: Mapping[str, float]
    unit: str

    def summary(self, language: str = "da") -> str:
        """The value as written on a screen: ``132/84 mmHg``, ``80,5 kg`` (``80.5 kg`` in English)."""
        unit = _UNIT_SHOWN.get(self.unit, {}).get(language, self.unit)
        if self.group == "blood-pressure":
            systolic, diastolic = (number(self.numbers[k], language) for k in ("systolic", "diastolic"))
            return f"{systolic}/{diastolic} {unit}"
        return f"{number(self.numbers['value'], language)} {unit}".strip()


# UCUM units as a patient reads them, per language (any other unit is shown as it is).
_UNIT_SHOWN: Final = {
    "mm[Hg]": {"da": "mmHg", "en": "mmHg"},
    "Cel": {"da": "°C", "en": "°C"},
    "/min": {"da": "slag/min", "en": "beats/min"},
    "[lb_av]": {"da": "lb", "en": "lb"},
    "[degF]": {"da": "°F", "en": "°F"},
}


def _group(kind: str) -> str | None:
    if kind.startswith("glucose-"):
        return "glucose"
    return _GROUP_OF_KIND.get(kind)


def _quantity(element: Any) -> tuple[float, str] | None:
    quantity = element.get("valueQuantity") if isinstance(element, Mapping) else None
    if not isinstance(quantity, Mapping):
        return None
    value, unit = quantity.get("value"), quantity.get("code") or quantity.get("unit") or ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value), str(unit)


def _subject(observation: Mapping[str, Any]) -> str | None:
    subject = observation.get("subject")
    reference = subject.get("reference") if isinstance(subject, Mapping) else None
    if isinstance(reference, str) and reference.startswith("Patient/") and len(reference) > 8:
        return reference[8:]
    return None


def reading_of(observation: Mapping[str, Any]) -> LocalReading | None:
    """What the view keeps of one Observation, or None when it keeps nothing of it (pure)."""
    group = _group(observation_kind(observation))
    patient = _subject(observation)
    identifiers = observation.get("identifier")
    first = identifiers[0] if isinstance(identifiers, list) and identifiers else None
    identifier = first.get("value") if isinstance(first, Mapping) else None
    effective = observation.get("effectiveDateTime")
    if group is None or patient is None or not isinstance(identifier, str) or not isinstance(effective, str):
        return None
    try:
        taken = datetime.fromisoformat(effective)
    except ValueError:
        return None
    if taken.tzinfo is None:
        return None
    numbers: dict[str, float] = {}
    unit = ""
    if group == "blood-pressure":
        for component in observation.get("component") or []:
            codings = component.get("code", {}).get("coding", []) if isinstance(component, Mapping) else []
            name = next((_COMPONENTS[c.get("code")] for c in codings if c.get("code") in _COMPONENTS), None)
            found = _quantity(component)
            if name is not None and found is not None:
                numbers[name], unit = found
        if set(numbers) != {"systolic", "diastolic"}:
            return None
    else:
        found = _quantity(observation)
        if found is None:
            return None
        numbers["value"], unit = found
    return LocalReading(
        identifier, patient, group, measurement_of(observation), taken.astimezone(UTC), numbers, unit
    )


class LocalHistory:
    """The residents' recent readings and answers in SQLite (thread-safe; blocking)."""

    def __init__(self, path: Path, *, keep: timedelta = KEEP, max_rows: int = MAX_ROWS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._keep = keep
        self._max_rows = max_rows
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    @staticmethod
    def path_next_to(outbox_path: Path) -> Path:
        """Where a hub keeps it: beside its outbox."""
        return outbox_path.with_name(outbox_path.stem + ".patient-history.sqlite3")

    def add(self, observations: Iterable[Mapping[str, Any]], *, now: datetime | None = None) -> int:
        """Keep what the view shows of ``observations`` (a reading seen again is kept once); forget
        what is older than the bound. Returns how many were new."""
        rows = [r for r in map(reading_of, observations) if r is not None]
        now = now or datetime.now(UTC)
        with self._lock:
            if self._db is None:
                return 0
            with self._db:
                before = self._db.total_changes
                self._db.executemany(
                    "INSERT OR IGNORE INTO readings VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            r.identifier,
                            r.patient_id,
                            r.group,
                            r.plan_key,
                            r.taken.timestamp(),
                            orjson.dumps(dict(r.numbers)).decode(),
                            r.unit,
                        )
                        for r in rows
                    ],
                )
                added = self._db.total_changes - before
                self._forget(now)
        return added

    def _forget(self, now: datetime) -> None:
        assert self._db is not None
        limit = (now - self._keep).timestamp()
        self._db.execute("DELETE FROM readings WHERE taken < ?", (limit,))
        self._db.execute("DELETE FROM answers WHERE authored < ?", (limit,))
        self._db.execute(
            "DELETE FROM readings WHERE identifier IN (SELECT identifier FROM readings"
            " ORDER BY taken DESC LIMIT -1 OFFSET ?)",
            (self._max_rows,),
        )

    def readings(self, patient_id: str, since: datetime, until: datetime | None = None) -> list[LocalReading]:
        """``patient_id``'s readings taken from ``since`` (aware) to ``until``, oldest first."""
        end = until.timestamp() if until is not None else float("inf")
        with self._lock:
            if self._db is None:
                return []
            rows = self._db.execute(
                "SELECT identifier, patient_id, grp, plan_key, taken, numbers, unit FROM readings"
                " WHERE patient_id = ? AND taken >= ? AND taken <= ? ORDER BY taken, identifier",
                (patient_id, since.timestamp(), end),
            ).fetchall()
        return [
            LocalReading(i, p, g, k, datetime.fromtimestamp(t, UTC), orjson.loads(n), u)
            for i, p, g, k, t, n, u in rows
        ]

    def answered(self, patient_id: str, questionnaire: str, authored: datetime) -> None:
        """Remember that ``patient_id`` sent answers to ``questionnaire`` at ``authored``."""
        with self._lock:
            if self._db is None:
                return
            with self._db:
                self._db.execute(
                    "INSERT OR IGNORE INTO answers VALUES (?, ?, ?)",
                    (patient_id, questionnaire, authored.timestamp()),
                )

    def last_answer(self, patient_id: str, questionnaire: str) -> datetime | None:
        """When ``patient_id`` last sent answers to ``questionnaire`` from this hub, or None."""
        with self._lock:
            if self._db is None:
                return None
            row = self._db.execute(
                "SELECT max(authored) FROM answers WHERE patient_id = ? AND questionnaire = ?",
                (patient_id, questionnaire),
            ).fetchone()
        return None if row is None or row[0] is None else datetime.fromtimestamp(row[0], UTC)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class HistoryFeed:
    """Feeds a :class:`LocalHistory` from the event loop: each batch written off the loop (SQLite waits
    for the disk), every write awaited by :meth:`close` before the file is closed. ``now`` is the clock
    the history forgets by (the hub's, or a demo's simulated one)."""

    def __init__(self, history: LocalHistory, now: Callable[[], datetime] | None = None) -> None:
        self.history = history
        self._now = now
        self._writes: set[asyncio.Future[int]] = set()

    def add(self, observations: list[dict[str, Any]]) -> None:
        """Keep ``observations`` (called on the loop, returns at once)."""
        if not observations:
            return
        at = self._now() if self._now is not None else None
        write = asyncio.get_running_loop().run_in_executor(
            None, lambda: self.history.add(observations, now=at)
        )
        self._writes.add(write)
        write.add_done_callback(self._written)

    def _written(self, write: asyncio.Future[int]) -> None:
        self._writes.discard(write)
        if not write.cancelled() and write.exception() is not None:
            log.error("the patient view's history failed: %s", write.exception())

    async def close(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        self.history.close()
