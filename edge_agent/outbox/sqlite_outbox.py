"""The hub's durable outbox: every Observation is written here before anything else happens to it.

SQLite in WAL mode with ``synchronous=FULL``: once ``put`` returns, the reading survives a power cut or a
SIGKILL (``tests/edge_agent/outbox/test_outbox_crash.py``). The publisher reads rows in order and deletes
them only once the gateway's receipt says it holds them (or at the broker's PUBACK, if so configured),
so a hub that is offline for days keeps everything and sends it in order when the link returns. The
identifier column is unique, so a reading the device re-sends after a reconnection is stored once.

The outbox is bounded (``max_rows``, ``max_bytes``): a hub's disk is finite and a hub may be cut off for
weeks. When a ``put`` would pass a bound, the same transaction evicts the OLDEST NON-CRITICAL rows first
(:mod:`edge_agent.outbox.priority` has the one table of kinds); only when nothing non-critical is left do
the oldest critical rows go, and that is logged as an error. Nothing is dropped silently: every eviction
is logged and counted by kind in the ``eviction_count`` table (``Outbox.evicted``), which survives
restarts. ``docs/outbox.md`` describes the guarantees and the measured rates.

Thread-safe: the agent writes from its event loop (through ``asyncio.to_thread``) while the publisher
thread reads and deletes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from edge_agent.outbox.priority import is_critical, observation_kind

log = logging.getLogger(__name__)

# A week offline of a busy home (a chest strap at one reading a second with RR intervals, a continuous
# oximeter, spot checks) is about 1.5 million Observations of ~0.6-1 kB: these defaults keep that week
# and stay under 1 GiB, which any hub's storage has to spare.
DEFAULT_MAX_ROWS = 2_000_000
DEFAULT_MAX_BYTES = 1 << 30
# Rows looked at per step when choosing what to evict (bounded memory, few round trips).
_EVICT_CHUNK = 1_000

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
-- Rows given up because the outbox was full, by reading kind (never reset by the hub).
CREATE TABLE IF NOT EXISTS eviction_count (
    kind     TEXT PRIMARY KEY,
    critical INTEGER NOT NULL,
    count    INTEGER NOT NULL
);
"""
# Added to outboxes created before the bound existed (see ``_migrate``).
_KIND_COLUMNS = (
    ("kind", "TEXT NOT NULL DEFAULT 'unknown'"),
    ("critical", "INTEGER NOT NULL DEFAULT 1"),
    ("size", "INTEGER NOT NULL DEFAULT 0"),
)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    identifier: str
    resource: bytes  # the Observation as compact JSON


@dataclass(frozen=True, slots=True)
class Eviction:
    """What one ``put`` gave up to stay within the bound."""

    by_kind: dict[str, int]
    critical: int
    oldest_seq: int
    newest_seq: int


class Outbox:
    """A bounded FIFO of Observations on disk. ``put`` is durable when it returns."""

    def __init__(
        self, path: Path, *, max_rows: int = DEFAULT_MAX_ROWS, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        """Open (or create) the outbox at ``path``; ``max_rows``/``max_bytes`` bound the rows waiting
        (``max_bytes`` counts the stored Observation JSON, not SQLite's page overhead)."""
        if max_rows < 1 or max_bytes < 1:
            raise ValueError("an outbox needs room for at least one row")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._migrate()
        rows, size = self._db.execute("SELECT count(*), coalesce(sum(size), 0) FROM outbox").fetchone()
        self._rows, self._bytes = int(rows), int(size)

    def _migrate(self) -> None:
        """Give an outbox from before the bound its kind, critical and size columns (filled in once)."""
        columns = {str(r[1]) for r in self._db.execute("PRAGMA table_info(outbox)")}
        missing = [(name, decl) for name, decl in _KIND_COLUMNS if name not in columns]
        if missing:
            self._db.execute("BEGIN IMMEDIATE")
            for name, decl in missing:
                self._db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {decl}")
            for seq, resource in self._db.execute("SELECT seq, resource FROM outbox").fetchall():
                kind = observation_kind(orjson.loads(resource))
                self._db.execute(
                    "UPDATE outbox SET kind = ?, critical = ?, size = ? WHERE seq = ?",
                    (kind, int(is_critical(kind)), len(resource), seq),
                )
            self._db.execute("COMMIT")
        # Finds the oldest non-critical rows without scanning the queue.
        self._db.execute("CREATE INDEX IF NOT EXISTS outbox_by_priority ON outbox (critical, seq)")

    def put(
        self, observations: Iterable[dict[str, object]], *, progress: tuple[str, int] | None = None
    ) -> int:
        """Store Observations durably; return how many were new (a known identifier is a no-op).

        ``progress`` = (device id, sequence number) records, in the same transaction, how far a device's
        history has been read. When the new rows pass a bound, the oldest non-critical rows (then the
        oldest critical ones) are evicted in the same transaction, logged and counted.
        """
        now = time.time()
        rows = []
        for obs in observations:
            identifier = _identifier(obs)
            kind = observation_kind(obs)
            blob = orjson.dumps(obs)
            rows.append((identifier, now, blob, kind, int(is_critical(kind)), len(blob)))
        eviction: Eviction | None = None
        with self._lock:
            before = self._db.total_changes
            (last_seq,) = self._db.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO outbox (identifier, created_at, resource, kind, critical, size)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
                added = self._db.total_changes - before
                added_bytes = (
                    sum(r[5] for r in rows)
                    if added == len(rows)
                    else int(
                        self._db.execute(
                            "SELECT coalesce(sum(size), 0) FROM outbox WHERE seq > ?", (last_seq,)
                        ).fetchone()[0]
                    )
                )
                rows_now, bytes_now = self._rows + added, self._bytes + added_bytes
                if rows_now > self.max_rows or bytes_now > self.max_bytes:
                    eviction, rows_now, bytes_now = self._evict(rows_now, bytes_now)
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
            self._rows, self._bytes = rows_now, bytes_now
            if added:
                self._changed.notify_all()
        if eviction is not None:
            self._log_eviction(eviction)
        return added

    def _evict(self, rows_now: int, bytes_now: int) -> tuple[Eviction, int, int]:
        """Delete the oldest non-critical rows, then the oldest critical ones, until within the bound.
        Runs inside ``put``'s transaction; returns what went and the new totals."""
        by_kind: Counter[str] = Counter()
        seqs: list[int] = []
        critical = 0
        for tier in (0, 1):
            after = 0
            while rows_now > self.max_rows or bytes_now > self.max_bytes:
                chunk = self._db.execute(
                    "SELECT seq, kind, size FROM outbox WHERE critical = ? AND seq > ? ORDER BY seq LIMIT ?",
                    (tier, after, _EVICT_CHUNK),
                ).fetchall()
                if not chunk:
                    break
                for seq, kind, size in chunk:
                    if rows_now <= self.max_rows and bytes_now <= self.max_bytes:
                        break
                    seqs.append(int(seq))
                    by_kind[str(kind)] += 1
                    critical += tier
                    rows_now -= 1
                    bytes_now -= int(size)
                after = int(chunk[-1][0])
        self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
        self._db.executemany(
            "INSERT INTO eviction_count (kind, critical, count) VALUES (?, ?, ?)"
            " ON CONFLICT (kind) DO UPDATE SET count = count + excluded.count",
            [(kind, int(is_critical(kind)), n) for kind, n in by_kind.items()],
        )
        eviction = Eviction(dict(by_kind), critical, min(seqs, default=0), max(seqs, default=0))
        return eviction, rows_now, bytes_now

    def _log_eviction(self, eviction: Eviction) -> None:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(eviction.by_kind.items()))
        total = sum(eviction.by_kind.values())
        if eviction.critical:
            log.error(
                "outbox %s full (max %d rows, %d bytes) and only critical readings left: evicted %d "
                "critical reading(s) (seq %d-%d; %s)",
                self.path,
                self.max_rows,
                self.max_bytes,
                eviction.critical,
                eviction.oldest_seq,
                eviction.newest_seq,
                kinds,
            )
        else:
            log.warning(
                "outbox %s full (max %d rows, %d bytes): evicted %d oldest non-critical reading(s) (%s)",
                self.path,
                self.max_rows,
                self.max_bytes,
                total,
                kinds,
            )

    @property
    def evicted(self) -> dict[str, int]:
        """Readings evicted because the outbox was full, by kind, over the outbox file's life."""
        with self._lock:
            return {str(k): int(n) for k, n in self._db.execute("SELECT kind, count FROM eviction_count")}

    def after(self, seq: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` rows with a sequence number above ``seq``, oldest first."""
        with self._lock:
            cur = self._db.execute(
                "SELECT seq, identifier, resource FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            )
            return [OutboxRow(int(s), str(i), bytes(r)) for s, i, r in cur.fetchall()]

    def rows(self, seqs: Sequence[int]) -> list[OutboxRow]:
        """The rows of ``seqs`` still here (evicted ones are not), oldest first: a Bundle sent again."""
        if not seqs:
            return []
        with self._lock:
            cur = self._db.execute(
                "SELECT seq, identifier, resource FROM outbox"
                f" WHERE seq IN ({','.join('?' * len(seqs))}) ORDER BY seq",
                list(seqs),
            )
            return [OutboxRow(int(s), str(i), bytes(r)) for s, i, r in cur.fetchall()]

    def delete(self, seqs: Sequence[int]) -> None:
        """Remove delivered rows (after the gateway's receipt, or the broker's PUBACK), in one
        transaction; rows already gone (evicted) are skipped."""
        if not seqs:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                gone = self._db.execute(
                    f"DELETE FROM outbox WHERE seq IN ({','.join('?' * len(seqs))}) RETURNING size",
                    list(seqs),
                ).fetchall()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._rows -= len(gone)
            self._bytes -= sum(int(g[0]) for g in gone)

    def progress(self, device_id: str) -> int | None:
        """The last history sequence number stored for ``device_id``, or None if none yet."""
        with self._lock:
            row = self._db.execute(
                "SELECT last_sequence FROM device_progress WHERE device_id = ?", (device_id,)
            ).fetchone()
        return None if row is None else int(row[0])

    def depth(self) -> int:
        """Rows waiting to be delivered."""
        with self._lock:
            return self._rows

    def size_bytes(self) -> int:
        """Bytes of Observation JSON waiting (what ``max_bytes`` bounds)."""
        with self._lock:
            return self._bytes

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
        """Close the database (rows stay on disk)."""
        with self._lock:
            self._db.close()


def _identifier(observation: dict[str, object]) -> str:
    identifiers = observation.get("identifier")
    if isinstance(identifiers, list) and identifiers and isinstance(identifiers[0], dict):
        value = identifiers[0].get("value")
        if isinstance(value, str) and value:
            return value
    raise ValueError("an Observation without identifier cannot enter the outbox")
