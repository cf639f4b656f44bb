"""The missing-measurement job: every few minutes of the gateway's clock, raise 'missing' alerts for
expected measurements that did not come, and resolve those whose measurement came since.

One round (``check_missing``) reads every patient's expected measurements with their newest reading in
one query (``gateway.store.missing_reads``), then, one transaction per alert:

1. resolves each active 'missing' alert whose measurement now has a newer reading than the one it was
   missing since (by the system: no actor, outcome 'measurement-received'). It is done here, on the next
   round, so that ingest stays as it is: a reading is resolved within one interval of being stored;
2. hands each overdue measurement (``gateway.alerts.missing.overdue``) to the lifecycle as a trigger on
   its due time: the first round raises the alert, later rounds find the same due time and repeat.

``MissingMeasurementJob`` runs rounds in its own thread. Its interval is counted on the gateway's clock
(the demo's simulated time runs days in minutes): it looks at the clock every :data:`TICK_S` real
seconds at most and runs a round once the clock has moved on by the interval, so a demo gets its rounds
as often in simulated time as a server does in real time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg

from gateway.alerts.lifecycle import record_trigger
from gateway.alerts.missing import EXPECTATIONS, KIND, missing_trigger, overdue, received
from gateway.store.alerts import lock_patient_kind
from gateway.store.missing_reads import (
    ExpectedReading,
    active_missing_alerts,
    expected_readings,
    resolve_received,
)

log = logging.getLogger(__name__)

# How often, in real seconds, the job looks at the clock: a simulated clock may pass the interval in a
# fraction of a real one; looking costs nothing.
TICK_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class Round:
    """What one round did: alerts raised (new), resolved because the measurement came, and overdue
    measurements found (raised, repeated or held back by the lifecycle)."""

    raised: int
    resolved: int
    overdue: int


def check_missing(conn: psycopg.Connection[Any], now: datetime) -> Round:
    """One round as of ``now`` (module docstring), on an autocommit connection: each alert is its own
    transaction."""
    expected = expected_readings(conn, now=now, measurements=EXPECTATIONS)
    newest: dict[tuple[str, str, str], ExpectedReading] = {
        (e.municipality_id, e.patient_id, e.measurement): e for e in expected
    }
    resolved = 0
    for alert in active_missing_alerts(conn):
        reading = newest.get((alert.municipality_id, alert.patient_id, alert.measurement))
        if not received(alert.since_identifier, reading):
            continue
        assert reading is not None  # received() is False without one
        with conn.transaction():
            lock_patient_kind(conn, alert.municipality_id, alert.patient_id, KIND, alert.measurement)
            if resolve_received(conn, alert.alert_id, at=now, identifier=reading.last_identifier):
                resolved += 1
    raised = 0
    late = overdue(expected, now)
    for item in late:
        with conn.transaction():
            if record_trigger(conn, missing_trigger(item), now=now).action == "raise":
                raised += 1
    return Round(raised=raised, resolved=resolved, overdue=len(late))


class MissingMeasurementJob:
    """Runs ``check_missing`` at start and then each time the ``clock`` (None: the wall clock) has moved
    on by ``interval``, in its own thread; ``start`` / ``stop``; ``run_now`` for a round at once."""

    def __init__(
        self,
        database_url: str,
        interval: timedelta,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._database_url = database_url
        self._interval = interval
        self._clock = clock or (lambda: datetime.now(UTC))
        self._stopping = threading.Event()
        self._wake = threading.Event()  # run_now: a round at once
        self._done = threading.Condition()
        self._requested = 0  # rounds asked for by run_now
        self._finished = 0  # the number of the last request served by a finished round
        self._succeeded = 0  # the same, of a round that committed
        self._thread = threading.Thread(target=self._run, name="missing-measurements", daemon=True)
        self.rounds = 0
        self.last: Round | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._wake.set()
        with self._done:
            self._done.notify_all()
        self._thread.join(timeout=timeout)

    def run_now(self, timeout: float) -> bool:
        """Run a round now (after one under way) and wait for it: True when it committed; False when it
        failed, the job stopped or ``timeout`` passed."""
        with self._done:
            self._requested += 1
            wanted = self._requested
            self._wake.set()
            self._done.wait_for(lambda: self._finished >= wanted or self._stopping.is_set(), timeout=timeout)
            return self._succeeded >= wanted

    def _round(self, now: datetime) -> bool:
        try:
            with psycopg.connect(self._database_url, autocommit=True) as conn:
                self.last = check_missing(conn, now)
        except psycopg.Error as exc:
            # Derived from stored readings: the next round finds the same.
            log.warning("missing measurements: round failed (%s); next in %s", exc, self._interval)
            return False
        self.rounds += 1
        if self.last.raised or self.last.resolved:
            log.info(
                "missing measurements: %d alert(s) raised, %d resolved", self.last.raised, self.last.resolved
            )
        return True

    def _run(self) -> None:
        last_at: datetime | None = None
        while not self._stopping.is_set():
            now = self._clock()
            with self._done:
                serving = self._requested
            due = last_at is None or now < last_at or now - last_at >= self._interval
            if due or serving > self._finished:
                ok = self._round(now)
                last_at = now
                with self._done:
                    self._finished = serving
                    self._succeeded = serving if ok else self._succeeded
                    self._done.notify_all()
            remaining = self._interval - (self._clock() - last_at) if last_at is not None else self._interval
            self._wake.wait(max(0.0, min(remaining.total_seconds(), TICK_S)))
            self._wake.clear()
