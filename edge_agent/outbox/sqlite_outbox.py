"""The hub's durable outbox: every Observation is written here before anything else happens to it.

SQLite in WAL mode with ``synchronous=FULL``: once ``put`` returns, the reading survives a power cut.
The publisher reads rows in order and deletes them only after the broker's PUBACK, so a hub that is
offline for days keeps everything and sends it in order when the link returns. The identifier column is
unique, so a reading the device re-sends after a reconnection is stored once.

Thread-safe: the agent writes from its event loop (through ``asyncio.to_thread``) while the publisher
thread reads and deletes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    identifier TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,  -- unix time the hub stored it
    resource   BLOB NOT NULL
);
-- How far the hub has read each device's record history (a glucose meter's sequence number), written
-- in the same transaction as the readings, so a crash never skips or repeats a record.
CREATE TABLE IF NOT EXISTS device_progress (
    device_id     TEXT PRIMARY KEY,
    last_sequence INTEGER NOT NULL,
    updated_at    REAL NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    identifier: str
    resource: bytes  # the Observation as compact JSON


class Outbox:
    """A FIFO of Observations on disk. ``put`` is durable when it returns."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def put(
        self, observations: Iterable[dict[str, object]], *, progress: tuple[str, int] | None = None
    ) -> int:
        """Store Observations durably; return how many were new (a known identifier is a no-op).

        ``progress`` = (device id, sequence number) records, in the same transaction, how far a device's
        history has been read.
        """
        now = time.time()
        rows = [(_identifier(obs), now, orjson.dumps(obs)) for obs in observations]
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO outbox (identifier, created_at, resource) VALUES (?, ?, ?)", rows
                )
                added = self._db.total_changes - before
                if progress is not None:
                    self._db.execute(
                        "INSERT INTO device_progress (device_id, last_sequence, updated_at) VALUES (?, ?, ?)"
                        " ON CONFLICT (device_id) DO UPDATE SET last_sequence = excluded.last_sequence,"
                        " updated_at = excluded.updated_at",
                        (progress[0], progress[1], now),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if added:
                self._changed.notify_all()
        return added

    def after(self, seq: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` rows with a sequence number above ``seq``, oldest first."""
        with self._lock:
            cur = self._db.execute(
                "SELECT seq, identifier, resource FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            )
            return [OutboxRow(int(s), str(i), bytes(r)) for s, i, r in cur.fetchall()]

    def delete(self, seqs: Sequence[int]) -> None:
        """Remove delivered rows (called after the broker's PUBACK)."""
        with self._lock:
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    def progress(self, device_id: str) -> int | None:
        """The last history sequence number stored for ``device_id``, or None if none yet."""
        with self._lock:
            row = self._db.execute(
                "SELECT last_sequence FROM device_progress WHERE device_id = ?", (device_id,)
            ).fetchone()
        return None if row is None else int(row[0])

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def wait_for_rows_after(self, seq: int, timeout: float) -> bool:
        """Block until a row above ``seq`` exists or ``timeout`` passes; True when there is one."""
        with self._changed:
            return self._changed.wait_for(
                lambda: (
                    self._db.execute("SELECT 1 FROM outbox WHERE seq > ? LIMIT 1", (seq,)).fetchone()
                    is not None
                ),
                timeout=timeout,
            )

    def wake(self) -> None:
        """Wake any thread blocked in ``wait_for_rows_after`` (used at shutdown)."""
        with self._changed:
            self._changed.notify_all()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _identifier(observation: dict[str, object]) -> str:
    identifiers = observation.get("identifier")
    if isinstance(identifiers, list) and identifiers and isinstance(identifiers[0], dict):
        value = identifiers[0].get("value")
        if isinstance(value, str) and value:
            return value
    raise ValueError("an Observation without identifier cannot enter the outbox")
