"""The missing-measurement job: every few minutes of the gateway's clock, raise 'missing' alerts for
expected measurements that did not come, and resolve those whose measurement came since.

One round (``check_missing``) reads the patients' measurement plans in force (``gateway.store.plans``),
then every other patient's expected measurements with their newest reading in one query
(``gateway.store.missing_reads``: the defaults), and for the patients with a plan the times of their
planned measurements' readings in the plan's window, in one query more; then, one transaction per alert:

1. resolves each active 'missing' alert whose measurement now has a newer reading than the one it was
   missing since (by the system: no actor, outcome 'measurement-received'). It is done here, on the next
   round, so that ingest stays as it is: a reading is resolved within one interval of being stored;
2. hands each overdue measurement (``gateway.alerts.missing.overdue``) and each missed planned
   occurrence (``gateway.alerts.missing.missed``) to the lifecycle as a trigger on its due time: the
   first round raises the alert, later rounds find the same due time and repeat.

A plan's times of day are the home's: its hub's time zone when an administrator set one, else
``zone`` (the gateway's ``time_zone`` setting, which the hub's kit is written with).

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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from gateway.alerts.lifecycle import Trigger, record_trigger
from gateway.alerts.missing import (
    EXPECTATIONS,
    KIND,
    missed,
    missing_trigger,
    overdue,
    planned_trigger,
    readings_from,
    received,
)
from gateway.store.alerts import lock_patient_kind
from gateway.store.missing_reads import (
    active_missing_alerts,
    expected_readings,
    newest_readings,
    readings_taken,
    resolve_received,
)
from gateway.store.plans import PlanInForce, plans_in_force

log = logging.getLogger(__name__)

# How often, in real seconds, the job looks at the clock: a simulated clock may pass the interval in a
# fraction of a real one; looking costs nothing.
TICK_S: Final = 1.0
# The homes' time zone when neither the hub nor the caller says otherwise (GatewaySettings.time_zone).
DEFAULT_ZONE: Final = ZoneInfo("Europe/Copenhagen")


@dataclass(frozen=True, slots=True)
class Round:
    """What one round did: alerts raised (new), resolved because the measurement came, and overdue
    measurements found (raised, repeated or held back by the lifecycle)."""

    raised: int
    resolved: int
    overdue: int


def check_missing(conn: psycopg.Connection[Any], now: datetime, *, zone: ZoneInfo = DEFAULT_ZONE) -> Round:
    """One round as of ``now`` (module docstring), on an autocommit connection: each alert is its own
    transaction."""
    planned = plans_in_force(conn)
    with_plan = {(plan.municipality_id, plan.patient_id) for plan in planned}
    expected = [
        e
        for e in expected_readings(conn, now=now, measurements=EXPECTATIONS)
        if (e.municipality_id, e.patient_id) not in with_plan
    ]
    late = overdue(expected, now)
    triggers = [missing_trigger(item) for item in late] + _planned_triggers(conn, planned, now, zone)
    active = active_missing_alerts(conn)
    newest = newest_readings(
        conn, [(a.municipality_id, a.patient_id, a.measurement) for a in active], now=now
    )
    resolved = 0
    for alert in active:
        reading = newest.get((alert.municipality_id, alert.patient_id, alert.measurement))
        if not received(alert.since_identifier, reading):
            continue
        assert reading is not None  # received() is False without one
        with conn.transaction():
            lock_patient_kind(conn, alert.municipality_id, alert.patient_id, KIND, alert.measurement)
            if resolve_received(conn, alert.alert_id, at=now, identifier=reading.last_identifier):
                resolved += 1
    raised = 0
    for trigger in triggers:
        with conn.transaction():
            if record_trigger(conn, trigger, now=now).action == "raise":
                raised += 1
    return Round(raised=raised, resolved=resolved, overdue=len(triggers))


def _planned_triggers(
    conn: psycopg.Connection[Any], planned: list[PlanInForce], now: datetime, zone: ZoneInfo
) -> list[Trigger]:
    """The triggers of the planned occurrences missed at ``now``: the readings of every planned
    measurement in its plan's window and the newest of each, in two queries for all patients."""
    keys = [(p.municipality_id, p.patient_id, item.measurement, p) for p in planned for item in p.items]
    taken = readings_taken(conn, [(m, pid, k, readings_from(p, now)) for m, pid, k, p in keys], now=now)
    newest = newest_readings(conn, [(m, pid, k) for m, pid, k, _p in keys], now=now)
    triggers = []
    for plan in planned:
        own = {
            item.measurement: (plan.municipality_id, plan.patient_id, item.measurement) for item in plan.items
        }
        found = missed(
            plan,
            {measurement: taken.get(key, []) for measurement, key in own.items()},
            {measurement: newest[key] for measurement, key in own.items() if key in newest},
            now,
            _zone(plan, zone),
        )
        triggers += [planned_trigger(item) for item in found]
    return triggers


def _zone(plan: PlanInForce, default: ZoneInfo) -> ZoneInfo:
    if plan.time_zone is None:
        return default
    try:
        return ZoneInfo(plan.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning(
            "patient %s: hub time zone %r unknown; their plan is read in %s",
            plan.patient_id,
            plan.time_zone,
            default,
        )
        return default


class MissingMeasurementJob:
    """Runs ``check_missing`` at start and then each time the ``clock`` (None: the wall clock) has moved
    on by ``interval``, in its own thread; ``start`` / ``stop``; ``run_now`` for a round at once."""

    def __init__(
        self,
        database_url: str,
        interval: timedelta,
        clock: Callable[[], datetime] | None = None,
        *,
        zone: ZoneInfo = DEFAULT_ZONE,
    ) -> None:
        self._database_url = database_url
        self._interval = interval
        self._zone = zone
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
                self.last = check_missing(conn, now, zone=self._zone)
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
