"""Storing the patient's own entries that ``processing`` accepted beside the readings: the daily answers
(``response_storing``) and "contact my nurse" (``request_storing``), in the readings' transaction.

One rule for both, the Observations' (``storing``): an entry stored already is a duplicate (counted,
nothing written); one whose key (municipality, hub, identifier) is stored with other content is a
``conflict``, and one the database refuses outright (a ``\\u0000`` in a string, which jsonb cannot hold)
is ``unstorable``: each becomes a rejection of its own Bundle entry, quarantined and reported to the hub
by the caller, and never blocks the rest of its Bundle. An :class:`EntryKind` says where a kind sits in
a ``MessageOutcome`` and how the store keeps it; the SQL is the store's (``gateway.store``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg

from gateway.ingest.processing import CONFLICT, UNSTORABLE, MessageOutcome, Rejection

log = logging.getLogger(__name__)


class BatchResult(Protocol):
    """What the store says became of a batch: new positions, positions in conflict, duplicates."""

    @property
    def new_positions(self) -> frozenset[int]: ...

    @property
    def conflicts(self) -> tuple[int, ...]: ...

    @property
    def duplicates(self) -> int: ...

    @property
    def inserted(self) -> int: ...


@dataclass(frozen=True, slots=True)
class EntryKind:
    """One kind of entry: its name in reasons and logs, its ``MessageOutcome`` fields (the accepted
    entries and their Bundle positions), its identifier system, what a conflicting copy differs in, and
    the store's row and insert."""

    what: str  # "questionnaire response"
    refused_as: str  # how a database refusal names it: "QuestionnaireResponse"
    accepted: str  # "responses"
    positions: str  # "response_positions"
    identifier_system: str
    differs_in: str  # "patient, questionnaire or answers"
    row: Callable[[str, str, Any], Any]  # (municipality, hub, entry) -> the store's row
    insert: Callable[[psycopg.Connection[Any], list[Any]], BatchResult]


@dataclass(frozen=True, slots=True)
class EntriesStored:
    """The outcomes with refused entries turned into rejections, and what was stored."""

    outcomes: list[MessageOutcome]
    # Per outcome: the Bundle entries stored as a new row.
    new_positions: list[frozenset[int]]
    inserted: int
    duplicates: int


def _refuse(kind: EntryKind, outcome: MessageOutcome, refused: dict[int, tuple[str, str]]) -> MessageOutcome:
    """``outcome`` with its entries at indexes ``refused`` (index -> code, reason) made rejections."""
    if not refused:
        return outcome
    kept, positions, rejections = [], [], list(outcome.rejections)
    entries, places = getattr(outcome, kind.accepted), getattr(outcome, kind.positions)
    for j, (entry, position) in enumerate(zip(entries, places, strict=True)):
        if j in refused:
            code, reason = refused[j]
            rejections.append(
                Rejection(position, entry.identifier, code, reason, entry.resource, kind.identifier_system)
            )
        else:
            kept.append(entry)
            positions.append(position)
    rejections.sort(key=lambda r: -1 if r.index is None else r.index)
    changes: dict[str, Any] = {kind.accepted: tuple(kept), kind.positions: tuple(positions)}
    return dataclasses.replace(outcome, rejections=tuple(rejections), **changes)


def store_entries(
    conn: psycopg.Connection[Any], outcomes: Sequence[MessageOutcome], kind: EntryKind
) -> EntriesStored:
    """Store the accepted entries of ``kind`` of ``outcomes`` in the caller's transaction (the module)."""
    rows: list[Any] = []
    entries: list[tuple[str, Any]] = []  # (hub, entry) per row
    origins: list[tuple[int, int]] = []  # (outcome, entry index) per row
    for i, outcome in enumerate(outcomes):
        if outcome.source is None:
            continue
        for j, entry in enumerate(getattr(outcome, kind.accepted)):
            rows.append(kind.row(outcome.source.municipality_id, outcome.source.hub_id, entry))
            entries.append((outcome.source.hub_id, entry))
            origins.append((i, j))
    refused: list[dict[int, tuple[str, str]]] = [{} for _ in outcomes]
    new: list[set[int]] = [set() for _ in outcomes]
    inserted = duplicates = 0
    try:
        results = [(kind.insert(conn, rows), list(range(len(rows))))]
    except (psycopg.DataError, psycopg.IntegrityError) as exc:
        log.warning("a %s was refused by the database (%s); storing them one by one", kind.what, exc)
        results = []
        for position, row in enumerate(rows):
            try:
                results.append((kind.insert(conn, [row]), [position]))
            except (psycopg.DataError, psycopg.IntegrityError) as refusal:
                i, j = origins[position]
                reason = f"the database refused this {kind.refused_as}: {str(refusal).strip()}"
                refused[i][j] = (UNSTORABLE, reason)
    for result, positions in results:
        inserted += result.inserted
        duplicates += result.duplicates
        for local in result.conflicts:
            i, j = origins[positions[local]]
            hub_id, entry = entries[positions[local]]
            reason = (
                f"{kind.what} {entry.identifier} of hub {hub_id} is stored already with other content"
                f" ({kind.differs_in}); this copy is kept here, not stored"
            )
            refused[i][j] = (CONFLICT, reason)
        for local in result.new_positions:
            i, j = origins[positions[local]]
            new[i].add(j)
    return EntriesStored(
        [_refuse(kind, o, refused[i]) for i, o in enumerate(outcomes)],
        [frozenset(getattr(o, kind.positions)[j] for j in new[i]) for i, o in enumerate(outcomes)],
        inserted,
        duplicates,
    )
