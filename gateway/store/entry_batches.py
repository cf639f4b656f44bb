"""Inserting a batch of the patient's own entries (answers, contact requests) once per key.

Each row is inserted with ``ON CONFLICT DO NOTHING RETURNING id``; a row that was not inserted is a
duplicate when the stored row under its key says the same (the ``same`` query returns true), else a
conflict. All in one savepoint of the caller's transaction, so a refused row (``psycopg.DataError``)
undoes the batch and the caller can retry row by row (``gateway.ingest.entry_storing``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

Row = TypeVar("Row")


@dataclass(frozen=True, slots=True)
class EntryBatchResult:
    """What became of the rows given: positions stored as new, and positions in conflict with a stored
    entry (neither stored nor duplicates); the others were duplicates."""

    new_positions: frozenset[int]
    conflicts: tuple[int, ...]
    duplicates: int

    @property
    def inserted(self) -> int:
        return len(self.new_positions)


def insert_entries(
    conn: psycopg.Connection[Any],
    rows: Sequence[Row],
    insert: tuple[str, Callable[[Row], Sequence[Any]]],
    same: tuple[str, Callable[[Row], Sequence[Any]]],
) -> EntryBatchResult:
    """Insert ``rows`` not stored yet: ``insert`` and ``same`` are each an SQL statement and the
    parameters it takes from a row."""
    new: set[int] = set()
    conflicts: list[int] = []
    if not rows:
        return EntryBatchResult(frozenset(), (), 0)
    (insert_sql, insert_params), (same_sql, same_params) = insert, same
    with conn.transaction(), conn.cursor() as cur:
        for position, row in enumerate(rows):
            cur.execute(insert_sql, insert_params(row))
            if cur.fetchone() is not None:
                new.add(position)
                continue
            cur.execute(same_sql, same_params(row))
            found = cur.fetchone()
            if found is None or not found[0]:
                conflicts.append(position)
    return EntryBatchResult(frozenset(new), tuple(conflicts), len(rows) - len(new) - len(conflicts))
