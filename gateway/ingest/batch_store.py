"""Committing a batch of messages so that none can block another: the database side of an ingest worker.

``BatchStore.handle`` takes what arrived together (topic, payload, arrival time), decides each message
(``processing``) and stores the decisions (``storing``) in ONE transaction, and returns the outcomes for
the caller to acknowledge and answer. Failures are of two kinds (``is_transient``), and only one is
retried:

- Transient (the connection, a restarting or full database, a deadlock, a schema not migrated yet):
  ``handle`` keeps the batch and retries with bounded back-off (``RETRY_FIRST_S`` doubling to
  ``RETRY_MAX_S``) until the database takes it, or raises ``Abandoned`` when told to stop meanwhile.
  Nothing is acknowledged until then, so nothing is lost.
- Caused by a message (a value the database refuses, input our code cannot handle): a retry would fail
  the same way and the messages behind it would wait for ever. The batch is taken apart: each message
  is stored in its own transaction, and the one that still fails is set aside whole in the quarantine
  as ``unstorable`` (or, if even that fails, its bytes go to ``dead_letters``), so it too ends with an
  outcome the caller acknowledges and answers. Every message's transaction also counts it in
  ``ingest_metrics`` (``/metrics``).

No broker here: ``gateway.ingest.mqtt_ingest`` feeds it from MQTT, and the fuzz tests feed it directly.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import psycopg

from gateway.errors import GatewayFailure
from gateway.ingest.hub_status import StatusDecision
from gateway.ingest.processing import MessageOutcome, parse_topic, process_message
from gateway.ingest.status_ingest import StatusMessage, store_statuses
from gateway.ingest.storing import Decided, keep_whole, store_decisions
from gateway.settings import GatewaySettings
from gateway.store.errors import describe, is_transient
from gateway.store.ingest_metrics import record_batch
from gateway.store.repository import HubAssignment, hub_assignments

log = logging.getLogger(__name__)

# Database retry: start fast (a restart or a failover takes seconds), cap at 5 s so ingest resumes
# within seconds of the database coming back, and never give up (the broker holds the backlog).
RETRY_FIRST_S = 0.1
RETRY_MAX_S = 5.0
DB_CONNECT_TIMEOUT_S = 5
T = TypeVar("T")


class Inbound(Protocol):
    """A message as ``BatchStore`` needs it."""

    @property
    def topic(self) -> str: ...

    @property
    def payload(self) -> bytes: ...

    @property
    def arrived(self) -> float: ...  # time.monotonic() at arrival: the start of the ingest lag


class Abandoned(GatewayFailure):
    """Told to stop while the database is unavailable: the batch is left to the broker."""


class MessageFailure(GatewayFailure):
    """Storing failed in a way retrying cannot mend (``is_transient`` is False for ``__cause__``)."""


@dataclass(frozen=True, slots=True)
class Handled:
    """What became of a batch: one outcome per message, in order. (The patients with new data are
    announced inside the batch's transaction, ``gateway.store.new_data``.)"""

    outcomes: list[MessageOutcome]


@dataclass(slots=True)
class StoreCounts:
    """Running totals of what this store committed."""

    stored: int = 0
    duplicates: int = 0
    retries: int = 0
    set_aside: int = 0


class BatchStore:
    """Commits batches for the worker named ``worker`` (its ``ingest_metrics`` row). One thread only."""

    def __init__(
        self,
        settings: GatewaySettings,
        worker: str,
        *,
        notify_channel: str | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        """``notify_channel``: the PostgreSQL channel that hears of patients with new data inside each
        transaction; ``stopping``: when set, a batch waiting for the database is given up (Abandoned)."""
        self._settings = settings
        self._worker = worker
        self._notify_channel = notify_channel
        self._stopping = stopping or threading.Event()
        self._db: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._counts = StoreCounts()

    def counts(self) -> StoreCounts:
        with self._lock:
            c = self._counts
            return StoreCounts(c.stored, c.duplicates, c.retries, c.set_aside)

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(psycopg.Error):
                db.close()

    def handle(self, batch: Sequence[Inbound]) -> Handled:
        """Store the batch in one transaction; if a message makes that fail for good, store each message
        on its own and set aside the ones that still fail. Every message gets an outcome."""
        try:
            outcomes = self._retrying(lambda db: self._store(db, self._decide(db, batch), batch))
        except MessageFailure as exc:
            log.warning(
                "ingest %s: a batch of %d message(s) failed (%s); storing each message on its own",
                self._worker,
                len(batch),
                exc,
            )
            outcomes = [self._handle_alone(message).outcomes[0] for message in batch]
        return Handled(outcomes)

    def handle_statuses(self, batch: Sequence[StatusMessage]) -> list[StatusDecision]:
        """Store hubs' status messages (``status_ingest``: one transaction, each refused one
        quarantined), retried while the database is away. Should that fail for good, the statuses are
        dropped with a log line: each hub sends a newer one soon, and observations never wait for them."""
        if not batch:
            return []
        try:
            return self._retrying(lambda db: store_statuses(db, batch, received_at=datetime.now(UTC)))
        except MessageFailure as exc:
            log.error("ingest %s: %d status message(s) dropped: %s", self._worker, len(batch), exc)
            return []

    def _handle_alone(self, message: Inbound) -> Handled:
        """One message in its own transaction; set aside (quarantined whole, else dead-lettered) when it
        cannot be stored."""
        decided: MessageOutcome | None = None
        try:
            decided = self._retrying(lambda db: self._decide(db, [message])[0])
            return Handled(self._retrying(lambda db: self._store(db, [decided], [message])))
        except MessageFailure as exc:
            problem = str(exc)
        log.error(
            "ingest %s: a message on %s cannot be stored (%s); setting it aside",
            self._worker,
            message.topic[:200],
            problem,
        )
        # Retried even when it fails for good: dead-lettering is the last resort and must not give up.
        outcome = self._retrying(
            lambda db: self._set_aside(db, message, decided, problem), message_failures_too=True
        )
        return Handled([outcome])

    def _retrying(
        self, work: Callable[[psycopg.Connection[Any]], T], *, message_failures_too: bool = False
    ) -> T:
        """``work(connection)``, retried with back-off while it fails transiently (``is_transient``);
        a failure the message caused is raised as ``MessageFailure`` (``message_failures_too``: retried
        as well, for the last resort that must not give up). ``Abandoned`` when stopping meanwhile."""
        delay = RETRY_FIRST_S
        while True:
            try:
                return work(self._database())
            except Exception as exc:
                if not message_failures_too and not is_transient(exc):
                    if self._db is not None and self._db.broken:
                        self.close()
                    raise MessageFailure(describe(exc)) from exc
                # Connection lost, server restarting, disk full, schema not migrated yet...: keep the
                # batch, back off, try again. Nothing is acknowledged, so nothing is lost meanwhile.
                self.close()
                with self._lock:
                    self._counts.retries += 1
                log.warning(
                    "ingest %s: storing failed (%s); retrying in %.1f s",
                    self._worker,
                    describe(exc),
                    delay,
                    exc_info=not isinstance(exc, psycopg.Error),
                )
                if self._stopping.wait(delay):
                    raise Abandoned from exc
                delay = min(delay * 2, RETRY_MAX_S)

    def _database(self) -> psycopg.Connection[Any]:
        if self._db is None or self._db.closed:
            self._db = psycopg.connect(
                self._settings.database_url,
                autocommit=True,
                connect_timeout=DB_CONNECT_TIMEOUT_S,
                application_name=f"homewatch-{self._worker}",
            )
        return self._db

    def _decide(self, db: psycopg.Connection[Any], batch: Sequence[Inbound]) -> list[MessageOutcome]:
        hubs = {(t.municipality_id, t.hub_id) for m in batch if (t := parse_topic(m.topic)) is not None}
        assignments = hub_assignments(db, hubs)  # one query for the batch, outside any write transaction

        def lookup(municipality_id: str, hub_id: str) -> HubAssignment | None:
            return assignments.get((municipality_id, hub_id))

        max_bytes = self._settings.max_payload_bytes
        now = datetime.now(UTC)
        return [process_message(m.topic, m.payload, lookup, max_bytes, now) for m in batch]

    def _store(
        self, db: psycopg.Connection[Any], outcomes: Sequence[MessageOutcome], batch: Sequence[Inbound]
    ) -> list[MessageOutcome]:
        """One transaction: accepted rows in, rejections quarantined, the patients with new data
        announced. Returns the outcomes (with rows the database refused turned into rejections)."""
        with db.transaction():
            result = store_decisions(
                db,
                [Decided(o, m.payload) for o, m in zip(outcomes, batch, strict=True)],
                notify_channel=self._notify_channel,
            )
            self._count(db, batch, result.outcomes, stored=result.inserted, duplicates=result.duplicates)
        with self._lock:
            self._counts.stored += result.inserted
            self._counts.duplicates += result.duplicates
        return result.outcomes

    def _set_aside(
        self, db: psycopg.Connection[Any], message: Inbound, decided: MessageOutcome | None, problem: str
    ) -> MessageOutcome:
        """Quarantine the message whole (else keep its bytes in ``dead_letters``) and count it, in one
        transaction."""
        with db.transaction():
            outcome = keep_whole(db, self._worker, message.topic, message.payload, decided, problem)
            self._count(db, [message], [outcome], stored=0, duplicates=0)
        with self._lock:
            self._counts.set_aside += 1
        return outcome

    def _count(
        self,
        db: psycopg.Connection[Any],
        batch: Sequence[Inbound],
        outcomes: Sequence[MessageOutcome],
        *,
        stored: int,
        duplicates: int,
    ) -> None:
        now = time.monotonic()
        record_batch(
            db,
            self._worker,
            lags_s=[now - m.arrived for m in batch],  # up to now, just before the commit
            stored=stored,
            duplicates=duplicates,
            rejected=Counter(r.code for o in outcomes for r in o.rejections),
        )
