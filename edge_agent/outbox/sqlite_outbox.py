"""The hub's durable outbox: every Observation is written here before anything else happens to it.

SQLite in WAL mode with ``synchronous=FULL``: once ``put`` returns, the reading survives a power cut or a
SIGKILL (``tests/edge_agent/outbox/test_outbox_crash.py``), unless the disk was full (see below). The
publisher reads rows in order and deletes them only once the gateway's receipt says it holds them (or at
the broker's PUBACK, if so configured), so a hub that is offline for days keeps everything and sends it
in order when the link returns. The identifier column is unique, so a reading the device re-sends after
a reconnection is stored once.

The outbox is bounded (``max_rows``, ``max_bytes``): a hub's disk is finite and a hub may be cut off for
weeks. When a ``put`` would pass a bound, the same transaction evicts the OLDEST NON-CRITICAL rows first
(:mod:`edge_agent.outbox.priority` has the one table of kinds); only when nothing non-critical is left do
the oldest critical rows go, and that is logged as an error. Nothing is dropped silently: every eviction
is logged and counted by kind in the ``eviction_count`` table (``Outbox.evicted``), which survives
restarts. ``docs/outbox.md`` describes the guarantees and the measured rates.

A full disk (SQLite's SQLITE_FULL, or no room for the WAL's shared memory at open) loses nothing by
itself: ``put`` keeps the readings it could not write in memory, in a bounded
:class:`~edge_agent.outbox.holding.HoldingArea`, and returns; ``delete`` remembers the delivered rows it
could not delete. ``retry`` writes both, in order, once there is room again (space freed on the disk,
or pages freed by the deletions); the publisher's drain thread calls it every turn and it spaces its
attempts by :data:`RETRY_S`. Meanwhile ``full`` and ``held`` say so (the hub's status carries them),
one WARNING says when the disk filled and one INFO when it had room again; held readings past the
holding area's bound are evicted like rows (oldest non-critical first), counted in ``evicted`` and
logged. Held readings live in memory only: a crash or a stop while the disk is still full loses them
(logged as an ERROR by ``close``).

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

from edge_agent.outbox.holding import HoldingArea, PendingRow
from edge_agent.outbox.priority import is_critical, resource_kind

log = logging.getLogger(__name__)

# A week offline of a busy home (a chest strap at one reading a second with RR intervals, a continuous
# oximeter, spot checks) is about 1.5 million Observations of ~0.6-1 kB: these defaults keep that week
# and stay under 1 GiB, which any hub's storage has to spare.
DEFAULT_MAX_ROWS = 2_000_000
DEFAULT_MAX_BYTES = 1 << 30
# Rows looked at per step when choosing what to evict (bounded memory, few round trips).
_EVICT_CHUNK = 1_000
# Readings kept in memory while the disk is full: two hours of the busiest home (about 2.5 readings a
# second), weeks of a typical one (300 a day); 32 MiB of JSON is little beside a hub's RAM.
DEFAULT_HOLD_MAX_ROWS = 20_000
DEFAULT_HOLD_MAX_BYTES = 32 << 20
# How often the readings held in memory are tried on disk again: an attempt on a full disk fails at its
# first write and costs a few milliseconds, so twice a second is cheap, and once space returns the
# readings are on disk within half a second.
RETRY_S = 0.5
# Held readings are written this many to a transaction: one fsync covers many, and a disk with room for
# only some of them takes those.
_FLUSH_CHUNK = 500
# What SQLite says when the disk has no room: a write or the WAL could not grow (SQLITE_FULL), or the
# WAL's shared-memory file could not be sized when the database was opened.
_NO_ROOM = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR_SHMSIZE})

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
    resource: bytes  # the resource (an Observation, or a patient's answers or request) as compact JSON
    kind: str = ""  # the reading kind, or priority.RESPONSE_KIND / priority.REQUEST_KIND


@dataclass(frozen=True, slots=True)
class Eviction:
    """What one write gave up to stay within the outbox's bound, or within the holding area's
    (``in_memory``: readings the full disk never took, so without sequence numbers)."""

    by_kind: dict[str, int]
    critical: int
    oldest_seq: int
    newest_seq: int
    in_memory: bool = False


class Outbox:
    """A bounded FIFO of Observations on disk. ``put`` is durable when it returns, unless the disk is
    full: then its readings wait in memory (``held``) until ``retry`` writes them."""

    def __init__(
        self,
        path: Path,
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        hold_max_rows: int = DEFAULT_HOLD_MAX_ROWS,
        hold_max_bytes: int = DEFAULT_HOLD_MAX_BYTES,
    ) -> None:
        """Open (or create) the outbox at ``path``; ``max_rows``/``max_bytes`` bound the rows waiting
        (``max_bytes`` counts the stored Observation JSON, not SQLite's page overhead);
        ``hold_max_rows``/``hold_max_bytes`` bound the readings kept in memory while the disk is full."""
        if max_rows < 1 or max_bytes < 1:
            raise ValueError("an outbox needs room for at least one row")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._held = HoldingArea(hold_max_rows, hold_max_bytes)
        self._held_evicted: Counter[str] = Counter()  # evicted from memory, not yet counted on disk
        self._delete_later: set[int] = set()  # confirmed rows whose deletion the disk refused
        self._full_since: float | None = None  # monotonic; from a refused write until all is written
        self._next_retry = 0.0  # monotonic
        self._caught_up = [0, 0]  # held readings written, delivered rows deleted, since the disk filled
        self._rows = self._bytes = 0
        self._db: sqlite3.Connection | None = None  # None while a full disk keeps the file from opening
        try:
            self._open()
        except sqlite3.OperationalError as exc:  # a hub restarted on a full disk still takes readings
            if exc.sqlite_errorcode not in _NO_ROOM:
                raise
            self._disk_refused(exc)

    def _open(self) -> None:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            _migrate(db)
            rows, size = db.execute("SELECT count(*), coalesce(sum(size), 0) FROM outbox").fetchone()
        except BaseException:
            db.close()
            raise
        self._db, self._rows, self._bytes = db, int(rows), int(size)

    # -- writing -----------------------------------------------------------------------------------

    def put(
        self, observations: Iterable[dict[str, object]], *, progress: tuple[str, int] | None = None
    ) -> int:
        """Store Observations durably; return how many were new (a known identifier is a no-op).

        ``progress`` = (device id, sequence number) records, in the same transaction, how far a device's
        history has been read. When the new rows pass a bound, the oldest non-critical rows (then the
        oldest critical ones) are evicted in the same transaction, logged and counted. When the disk is
        full, or earlier readings still wait for room, the readings and the progress wait in memory, in
        order, for ``retry``; they all count as new (a duplicate among them is dropped when written).
        """
        now = time.time()
        rows = []
        for obs in observations:
            kind = resource_kind(obs)
            rows.append(PendingRow(_identifier(obs), now, orjson.dumps(obs), kind, is_critical(kind)))
        marks = [] if progress is None else [progress]
        evictions: list[Eviction | None] = []
        with self._lock:
            added = len(rows)
            if self._full_since is None:
                try:
                    added, eviction = self._write(rows, marks)
                    evictions.append(eviction)
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode not in _NO_ROOM:
                        raise
                    self._disk_refused(exc)
            if self._full_since is not None:
                evictions.append(self._hold(rows, marks))
                evictions += self._retry_locked(force=False)
        self._log_evictions(evictions)
        return added

    def _write(
        self, rows: Sequence[PendingRow], progress: Iterable[tuple[str, int]]
    ) -> tuple[int, Eviction | None]:
        """One transaction: insert ``rows``, evict past the bound, record ``progress`` and the readings
        evicted from memory meanwhile. Returns how many rows were new. Caller holds the lock."""
        db = self._db
        assert db is not None, "written only while the database is open"
        now = time.time()
        eviction: Eviction | None = None
        before = db.total_changes
        (last_seq,) = db.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR IGNORE INTO outbox (identifier, created_at, resource, kind, critical, size)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(r.identifier, r.created_at, r.resource, r.kind, int(r.critical), r.size) for r in rows],
            )
            added = db.total_changes - before
            added_bytes = (
                sum(r.size for r in rows)
                if added == len(rows)
                else int(
                    db.execute(
                        "SELECT coalesce(sum(size), 0) FROM outbox WHERE seq > ?", (last_seq,)
                    ).fetchone()[0]
                )
            )
            rows_now, bytes_now = self._rows + added, self._bytes + added_bytes
            if rows_now > self.max_rows or bytes_now > self.max_bytes:
                eviction, rows_now, bytes_now = self._evict(db, rows_now, bytes_now)
            db.executemany(
                "INSERT INTO device_progress (device_id, last_sequence, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (device_id) DO UPDATE SET last_sequence = excluded.last_sequence,"
                " updated_at = excluded.updated_at",
                [(device, sequence, now) for device, sequence in progress],
            )
            _count_evictions(db, self._held_evicted)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLite rolls back by itself after SQLITE_FULL in COMMIT
                db.execute("ROLLBACK")
            raise
        self._held_evicted.clear()
        self._rows, self._bytes = rows_now, bytes_now
        if added:
            self._changed.notify_all()
        return added, eviction

    def _evict(self, db: sqlite3.Connection, rows_now: int, bytes_now: int) -> tuple[Eviction, int, int]:
        """Delete the oldest non-critical rows, then the oldest critical ones, until within the bound.
        Runs inside ``_write``'s transaction; returns what went and the new totals."""
        by_kind: Counter[str] = Counter()
        seqs: list[int] = []
        critical = 0
        for tier in (0, 1):
            after = 0
            while rows_now > self.max_rows or bytes_now > self.max_bytes:
                chunk = db.execute(
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
        db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
        _count_evictions(db, by_kind)
        eviction = Eviction(dict(by_kind), critical, min(seqs, default=0), max(seqs, default=0))
        return eviction, rows_now, bytes_now

    # -- a full disk -------------------------------------------------------------------------------

    def _disk_refused(self, exc: sqlite3.OperationalError) -> None:
        """The disk has no room: from now on readings wait in memory (caller holds the lock, or is
        ``__init__``)."""
        self._next_retry = time.monotonic() + RETRY_S
        if self._full_since is not None:
            return
        self._full_since = time.monotonic()
        self._caught_up = [0, 0]
        log.warning(
            "outbox %s: disk full (%s): new readings are held in memory (at most %d, %d bytes) and "
            "written when there is room again, tried every %.1f s; stored readings are still sent",
            self.path,
            exc.sqlite_errorname,
            self._held.max_rows,
            self._held.max_bytes,
            RETRY_S,
        )

    def _hold(self, rows: Sequence[PendingRow], progress: Iterable[tuple[str, int]]) -> Eviction | None:
        """Keep ``rows`` and ``progress`` in memory; evict past the holding area's bound (lock held)."""
        evicted = self._held.add(rows)
        self._held.progress.update(progress)
        if not evicted:
            return None
        by_kind = Counter(row.kind for row in evicted)
        self._held_evicted.update(by_kind)
        return Eviction(dict(by_kind), sum(row.critical for row in evicted), 0, 0, in_memory=True)

    def retry(self, *, force: bool = False) -> bool:
        """Write what waits in memory, if an attempt is due (every :data:`RETRY_S`) or ``force``: first
        the deletions of delivered rows (which free pages), then the held readings, oldest first, with
        the history progress that came with them. True when nothing waits any more."""
        with self._lock:
            evictions = self._retry_locked(force=force)
            done = self._full_since is None
        self._log_evictions(evictions)
        return done

    def _retry_locked(self, *, force: bool) -> list[Eviction | None]:
        """The one place held readings and refused deletions are tried again (caller holds the lock)."""
        now = time.monotonic()
        if self._full_since is None or (not force and now < self._next_retry):
            return []
        self._next_retry = now + RETRY_S
        evictions: list[Eviction | None] = []
        try:
            if self._db is None:
                self._open()
            if self._delete_later:
                self._caught_up[1] += self._delete_rows(sorted(self._delete_later))
                self._delete_later.clear()
            while not self._held.empty or self._held_evicted:
                chunk = self._held.oldest(_FLUSH_CHUNK)
                last = len(chunk) == len(self._held)
                added, eviction = self._write(chunk, self._held.progress.items() if last else ())
                evictions.append(eviction)
                self._held.remove(chunk)
                if last:
                    self._held.progress.clear()
                self._caught_up[0] += added
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode not in _NO_ROOM:
                raise
            return evictions
        log.info(
            "outbox %s: the disk has room again after %.1f s: %d held reading(s) written, %d delivered "
            "row(s) deleted",
            self.path,
            now - self._full_since,
            *self._caught_up,
        )
        self._full_since = None
        return evictions

    @property
    def full(self) -> bool:
        """The disk refused a write and not everything that waits has been written since."""
        with self._lock:
            return self._full_since is not None

    @property
    def held(self) -> int:
        """Readings waiting in memory for room on the disk."""
        with self._lock:
            return len(self._held)

    # -- eviction reports ----------------------------------------------------------------------------

    def _log_evictions(self, evictions: Iterable[Eviction | None]) -> None:
        for eviction in evictions:
            if eviction is not None:
                self._log_eviction(eviction)

    def _log_eviction(self, eviction: Eviction) -> None:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(eviction.by_kind.items()))
        if eviction.in_memory:
            where = (
                f"{self.path} full (disk full, and at most {self._held.max_rows} readings, "
                f"{self._held.max_bytes} bytes held in memory)"
            )
            which = f"held in memory; {kinds}"
        else:
            where = f"{self.path} full (max {self.max_rows} rows, {self.max_bytes} bytes)"
            which = f"seq {eviction.oldest_seq}-{eviction.newest_seq}; {kinds}"
        if eviction.critical:
            log.error(
                "outbox %s and only critical readings left: evicted %d critical reading(s) (%s)",
                where,
                eviction.critical,
                which,
            )
        else:
            total = sum(eviction.by_kind.values())
            log.warning("outbox %s: evicted %d oldest non-critical reading(s) (%s)", where, total, kinds)

    # -- reading and deleting ----------------------------------------------------------------------

    @property
    def evicted(self) -> dict[str, int]:
        """Readings evicted because the outbox (or, with the disk full, the memory) was full, by kind,
        over the outbox file's life."""
        with self._lock:
            counts = Counter(self._held_evicted)
            if self._db is not None:
                counts.update(
                    {str(k): int(n) for k, n in self._db.execute("SELECT kind, count FROM eviction_count")}
                )
            return dict(counts)

    def after(self, seq: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` rows with a sequence number above ``seq``, oldest first."""
        with self._lock:
            if self._db is None:
                return []
            cur = self._db.execute(
                "SELECT seq, identifier, resource, kind FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            )
            return self._undelivered(cur.fetchall())

    def rows(self, seqs: Sequence[int]) -> list[OutboxRow]:
        """The rows of ``seqs`` still here (evicted ones are not), oldest first: a Bundle sent again."""
        if not seqs:
            return []
        with self._lock:
            if self._db is None:
                return []
            cur = self._db.execute(
                "SELECT seq, identifier, resource, kind FROM outbox"
                f" WHERE seq IN ({','.join('?' * len(seqs))}) ORDER BY seq",
                list(seqs),
            )
            return self._undelivered(cur.fetchall())

    def _undelivered(self, found: list[tuple[int, str, bytes, str]]) -> list[OutboxRow]:
        """Rows as read, without those delivered whose deletion waits for room (caller holds the lock)."""
        return [
            OutboxRow(int(s), str(i), bytes(r), str(k)) for s, i, r, k in found if s not in self._delete_later
        ]

    def delete(self, seqs: Sequence[int]) -> None:
        """Remove delivered rows (after the gateway's receipt, or the broker's PUBACK), in one
        transaction; rows already gone (evicted) are skipped. On a full disk the deletion waits in
        memory for ``retry`` and the rows count as delivered meanwhile."""
        if not seqs:
            return
        with self._lock:
            if self._full_since is None:
                try:
                    self._delete_rows(seqs)
                    return
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode not in _NO_ROOM:
                        raise
                    self._disk_refused(exc)
            self._delete_later.update(seqs)

    def _delete_rows(self, seqs: Sequence[int]) -> int:
        """Delete ``seqs`` in one transaction; return how many were there (caller holds the lock)."""
        db = self._db
        assert db is not None, "rows are deleted only while the database is open"
        db.execute("BEGIN IMMEDIATE")
        try:
            gone = db.execute(
                f"DELETE FROM outbox WHERE seq IN ({','.join('?' * len(seqs))}) RETURNING size",
                list(seqs),
            ).fetchall()
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._rows -= len(gone)
        self._bytes -= sum(int(g[0]) for g in gone)
        return len(gone)

    def progress(self, device_id: str) -> int | None:
        """The last history sequence number stored for ``device_id`` on disk, or None if none yet (a
        device is asked again from there; what it sends twice is stored once)."""
        with self._lock:
            if self._db is None:
                return None
            row = self._db.execute(
                "SELECT last_sequence FROM device_progress WHERE device_id = ?", (device_id,)
            ).fetchone()
        return None if row is None else int(row[0])

    def depth(self) -> int:
        """Readings waiting to be delivered: on disk, and held in memory while the disk is full."""
        with self._lock:
            return self._rows - len(self._delete_later) + len(self._held)

    def size_bytes(self) -> int:
        """Bytes of Observation JSON waiting on disk (what ``max_bytes`` bounds)."""
        with self._lock:
            return self._bytes

    def wait_for_rows_after(self, seq: int, timeout: float) -> bool:
        """Block until a row above ``seq`` exists or ``timeout`` passes; True when there is one."""

        def found() -> bool:
            db = self._db
            return db is not None and (
                db.execute("SELECT 1 FROM outbox WHERE seq > ? LIMIT 1", (seq,)).fetchone() is not None
            )

        with self._changed:
            return self._changed.wait_for(found, timeout=timeout)

    def wake(self) -> None:
        """Wake any thread blocked in ``wait_for_rows_after`` (used at shutdown)."""
        with self._changed:
            self._changed.notify_all()

    def close(self) -> None:
        """Write what waits in memory if the disk now has room, then close the database (rows stay on
        disk). Readings still held are lost with the process: logged as an error."""
        evictions = []
        with self._lock:
            try:
                evictions = self._retry_locked(force=True)
            finally:
                if self._held:
                    kinds = Counter(row.kind for row in self._held.oldest(len(self._held)))
                    log.error(
                        "outbox %s closed with the disk still full: %d reading(s) held in memory are "
                        "lost (%s)",
                        self.path,
                        len(self._held),
                        ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())),
                    )
                if self._db is not None:
                    self._db.close()
                    self._db = None
        self._log_evictions(evictions)


def _migrate(db: sqlite3.Connection) -> None:
    """Give an outbox from before the bound its kind, critical and size columns (filled in once)."""
    columns = {str(r[1]) for r in db.execute("PRAGMA table_info(outbox)")}
    missing = [(name, decl) for name, decl in _KIND_COLUMNS if name not in columns]
    if missing:
        db.execute("BEGIN IMMEDIATE")
        for name, decl in missing:
            db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {decl}")
        for seq, resource in db.execute("SELECT seq, resource FROM outbox").fetchall():
            kind = resource_kind(orjson.loads(resource))
            db.execute(
                "UPDATE outbox SET kind = ?, critical = ?, size = ? WHERE seq = ?",
                (kind, int(is_critical(kind)), len(resource), seq),
            )
        db.execute("COMMIT")
    # Finds the oldest non-critical rows without scanning the queue.
    db.execute("CREATE INDEX IF NOT EXISTS outbox_by_priority ON outbox (critical, seq)")


def _count_evictions(db: sqlite3.Connection, by_kind: Counter[str]) -> None:
    """Add evictions to the ``eviction_count`` table (inside the caller's transaction)."""
    db.executemany(
        "INSERT INTO eviction_count (kind, critical, count) VALUES (?, ?, ?)"
        " ON CONFLICT (kind) DO UPDATE SET count = count + excluded.count",
        [(kind, int(is_critical(kind)), n) for kind, n in by_kind.items()],
    )


def _identifier(resource: dict[str, object]) -> str:
    # An Observation and a Task carry a list of identifiers; a QuestionnaireResponse carries one.
    identifiers = resource.get("identifier")
    first = identifiers[0] if isinstance(identifiers, list) and identifiers else identifiers
    if isinstance(first, dict):
        value = first.get("value")
        if isinstance(value, str) and value:
            return value
    raise ValueError(f"a {resource.get('resourceType')} without identifier cannot enter the outbox")
