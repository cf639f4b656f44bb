"""Readings the hub's disk refused, waiting in memory until the outbox can write them.

When SQLite reports the disk full, :class:`~edge_agent.outbox.Outbox` keeps the readings it could not
store here, in arrival order, and writes them when space returns. Memory is finite too, so the area is
bounded by rows and bytes, and past the bound it gives up readings the way the outbox does: the oldest
non-critical first (:mod:`edge_agent.outbox.priority`), the oldest critical only when nothing else is
left. It returns what it gave up; counting and logging that is the outbox's job.

Pure: no I/O, no lock (the outbox calls it under its own).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PendingRow:
    """One Observation as the outbox stores it, before it has a sequence number."""

    identifier: str
    created_at: float  # unix time the hub took it
    resource: bytes  # the Observation as compact JSON
    kind: str
    critical: bool

    @property
    def size(self) -> int:
        return len(self.resource)


class HoldingArea:
    """A bounded FIFO of rows, unique by identifier, that evicts like the outbox."""

    def __init__(self, max_rows: int, max_bytes: int) -> None:
        if max_rows < 1 or max_bytes < 1:
            raise ValueError("a holding area needs room for at least one row")
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._rows: OrderedDict[str, PendingRow] = OrderedDict()  # by identifier, oldest first
        self._non_critical: OrderedDict[str, None] = OrderedDict()  # the same order, non-critical only
        self._bytes = 0
        #: Device history progress (device key -> last record) put with held rows: written in the
        #: transaction that writes the last of them, so a crash never skips a record.
        self.progress: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def empty(self) -> bool:
        """Nothing waits: no row and no progress."""
        return not self._rows and not self.progress

    def add(self, rows: Iterable[PendingRow]) -> list[PendingRow]:
        """Keep ``rows`` (one whose identifier is already held is a no-op); return the rows given up to
        stay within the bound: the oldest non-critical ones, then the oldest critical ones."""
        for row in rows:
            if row.identifier in self._rows:
                continue
            self._rows[row.identifier] = row
            self._bytes += row.size
            if not row.critical:
                self._non_critical[row.identifier] = None
        evicted = []
        while len(self._rows) > self.max_rows or self._bytes > self.max_bytes:
            oldest = next(iter(self._non_critical or self._rows))
            evicted.append(self._remove(oldest))
        return evicted

    def oldest(self, limit: int) -> list[PendingRow]:
        """Up to ``limit`` rows, oldest first (they stay until ``remove``)."""
        return list(itertools.islice(self._rows.values(), limit))

    def remove(self, rows: Iterable[PendingRow]) -> None:
        """Forget rows now written to disk."""
        for row in rows:
            self._remove(row.identifier)

    def _remove(self, identifier: str) -> PendingRow:
        row = self._rows.pop(identifier)
        self._non_critical.pop(identifier, None)
        self._bytes -= row.size
        return row
