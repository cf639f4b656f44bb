"""Scores patients with new readings and raises alerts: the step after storage.

``score_patient`` (one transaction) reads the newest readings, computes NEWS2 as of the newest of
them, stores the score with its detail and RiskAssessment, and opens an alert when the rules call for
one. At most one alert per patient is open at a time (a unique index): a flapping value does not
page anyone twice; a worse score escalates the open alert instead.

``Scorer`` runs ``score_patient`` in its own thread for the patients ingest reports after each
commit (``notify``), coalescing repeats, so ingest never waits for scoring. Ingest workers, in worker
processes or in a thread (``gateway.workers``), announce the patients inside the batch's transaction
(``gateway.store.new_data``: NOTIFY), and ``Scorer.listen`` turns what arrives on that channel into
``notify`` calls: a notification exists only for a batch that committed. A barrier on the channel
(``wait_heard``) tells a caller that everything committed before it has been handed to ``notify``.
After the listener loses its connection it re-scores the patients whose
readings were stored meanwhile (``new_data.patients_stored_since``).

Besides NEWS2, the disease rules of the patient's conditions (``gateway.alerts.home_rules``: heart-failure
weight gain, COPD SpO2 drop and pulse rise against the personal baseline) are run; each rule that fires
on a new reading is stored once as a score with its own RiskAssessment and opens a ``medium`` alert
when none is open.

Every value scored is the canonical one stored at ingest (``news2_inputs``, ``home_rules``). The SQL is
the store's: ``gateway.store.scoring`` writes scores and alerts, ``gateway.store.patient_history`` and
``repository.latest_observations`` read the readings.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from gateway.alerts.home_rules import RULES_BY_CONDITION, SERIES_KINDS, fresh_hits, load_series
from gateway.alerts.lifecycle import Kind, Trigger, record_trigger
from gateway.alerts.news2_inputs import NEWS2_KINDS, vitals_from_observations
from gateway.alerts.risk_assessment import news2_risk_assessment, rule_risk_assessment
from gateway.alerts.rules import AlertDecision, decide_alert, decide_rule_alert
from gateway.store.new_data import (
    is_barrier,
    listen_for_new_data,
    patients_stored_since,
    read_new_data_notification,
)
from gateway.store.patient_history import newest_reading_time
from gateway.store.repository import enrolled_patient, latest_observations
from gateway.store.scoring import NewScore, has_score, record_score
from models.news2 import News2Result, score_news2

log = logging.getLogger(__name__)

# Listener reconnect back-off: a database restart takes seconds; never more than 10 s without scoring.
LISTEN_RETRY_FIRST_S = 0.5
LISTEN_RETRY_MAX_S = 10.0
# Catching up after the listener lost its connection: from a little before the failure was seen (the
# connection may have been dead for a while before a call noticed) ...
CATCH_UP_MARGIN = timedelta(minutes=5)
# ... and only readings recent enough to change a score (the scorer reads the last 24 h).
CATCH_UP_WINDOW = timedelta(hours=25)
# Barriers read but not (yet) waited for; past this many, their waiters have given up.
MAX_UNCLAIMED_BARRIERS = 64


@dataclass(frozen=True, slots=True)
class ScoreOutcome:
    patient_id: str
    score_id: int | None  # the NEWS2 score; None when only a disease rule fired (no NEWS2 vitals)
    news2: int | None
    band: str | None
    alert: AlertDecision | None
    alert_raised: bool  # a new alert was opened (not an escalation or a repeat)


def score_patient(
    conn: psycopg.Connection[Any], municipality_id: str, patient_id: str, *, now: datetime | None = None
) -> ScoreOutcome | None:
    """Score one patient from stored readings (NEWS2, then the disease rules of their conditions); None
    when the patient is unknown, or has neither NEWS2 vitals nor a rule that fired. ``now`` (the demo's
    simulated clock) stamps the scores and a new alert; None: the wall clock, and the database's for
    the alert."""
    computed_at = now or datetime.now(UTC)
    with conn.transaction():
        patient = enrolled_patient(conn, municipality_id, patient_id)
        if patient is None:
            return None
        news2 = _score_news2(conn, municipality_id, patient_id, patient.spo2_scale2, computed_at)
        rule_alerts = _score_rules(conn, municipality_id, patient_id, patient.conditions, computed_at)
        if news2 is None and not rule_alerts:
            return None
        raised = False
        decision: AlertDecision | None = None
        if news2 is not None and news2.decision is not None:
            decision = news2.decision
            raised = _open_or_escalate(
                conn, municipality_id, patient_id, news2.score_id, news2.as_of, decision, now
            )
        for rule, rule_score_id, at, rule_decision in rule_alerts:
            raised = (
                _open_or_escalate(
                    conn,
                    municipality_id,
                    patient_id,
                    rule_score_id,
                    at,
                    rule_decision,
                    now,
                    kind="disease-rule",
                    key=rule,
                )
                or raised
            )
            decision = decision or rule_decision
    return ScoreOutcome(
        patient_id,
        None if news2 is None else news2.score_id,
        None if news2 is None else news2.result.total,
        None if news2 is None else news2.result.band,
        decision,
        raised,
    )


@dataclass(frozen=True, slots=True)
class _News2Score:
    score_id: int
    as_of: datetime
    result: News2Result
    decision: AlertDecision | None


def _score_news2(
    conn: psycopg.Connection[Any], municipality_id: str, patient_id: str, scale2: bool, computed_at: datetime
) -> _News2Score | None:
    """Store NEWS2 from the newest vitals, with its RiskAssessment; None without any NEWS2 vital."""
    latest = latest_observations(conn, municipality_id, patient_id, NEWS2_KINDS)
    if not latest:
        return None
    as_of = max(obs.effective for obs in latest.values())
    result = score_news2(vitals_from_observations(latest, scale2=scale2), as_of)
    resource = news2_risk_assessment(
        result,
        patient_id=patient_id,
        basis_identifiers=[o.identifier for o in latest.values()],
        computed_at=computed_at,
    )
    score_id = record_score(
        conn,
        NewScore(
            municipality_id=municipality_id,
            patient_id=patient_id,
            method="news2",
            score=result.total,
            band=result.band,
            computed_at=computed_at,
            as_of=as_of,
            detail=result.to_dict(),  # includes the reasons, in the order a nurse reads them
            resource=resource,
        ),
    )
    return _News2Score(score_id, as_of, result, decide_alert(result))


def _score_rules(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    patient_id: str,
    conditions: tuple[str, ...],
    computed_at: datetime,
) -> list[tuple[str, int, datetime, AlertDecision]]:
    """Store each disease rule of the patient's ``conditions`` that newly fired (once per rule and
    reading) as a score with its RiskAssessment; return (score id, reading time, alert) for each."""
    if not any(c in RULES_BY_CONDITION for c in conditions):
        return []
    as_of = newest_reading_time(
        conn, municipality_id, patient_id, {k for group in SERIES_KINDS.values() for k in group}
    )
    if as_of is None:
        return []
    stored: list[tuple[str, int, datetime, AlertDecision]] = []
    for fresh in fresh_hits(load_series(conn, municipality_id, patient_id, as_of), conditions, as_of):
        if has_score(conn, municipality_id, patient_id, fresh.hit.rule, fresh.at):
            continue  # this rule already fired on this reading: scored before
        resource = rule_risk_assessment(
            rule=fresh.hit.rule,
            title=fresh.title,
            reason=fresh.hit.reason,
            patient_id=patient_id,
            at=fresh.at,
            basis_identifier=fresh.identifier,
            computed_at=computed_at,
        )
        score_id = record_score(
            conn,
            NewScore(
                municipality_id=municipality_id,
                patient_id=patient_id,
                method=fresh.hit.rule,
                score=1,
                band="medium",
                computed_at=computed_at,
                as_of=fresh.at,
                detail={"rule": fresh.hit.rule, "reason": fresh.hit.reason},
                resource=resource,
            ),
        )
        stored.append((fresh.hit.rule, score_id, fresh.at, decide_rule_alert(fresh.title, fresh.hit.reason)))
    return stored


def _open_or_escalate(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    patient_id: str,
    score_id: int,
    as_of: datetime,
    decision: AlertDecision,
    raised_at: datetime | None = None,
    *,
    kind: Kind = "news2",
    key: str = "",
) -> bool:
    """Hand the alert a score calls for to the lifecycle; True only for a new alert."""
    outcome = record_trigger(
        conn,
        Trigger(municipality_id, patient_id, kind, key, decision.severity, decision.reason, as_of, score_id),
        now=raised_at or datetime.now(UTC),
    )
    return outcome.action == "raise"


class Scorer:
    """A thread that scores patients as ingest reports them. ``notify`` never blocks. ``clock`` says
    when a score is computed (the demo's simulated time); None: the wall clock."""

    def __init__(self, database_url: str, clock: Callable[[], datetime] | None = None) -> None:
        self._database_url = database_url
        self._clock = clock
        self._pending: set[tuple[str, str]] = set()
        self._barriers: set[str] = set()
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="scorer", daemon=True)
        self._listener: threading.Thread | None = None
        self._listening = threading.Event()
        self._stop_listening = threading.Event()
        self.scored = 0
        self.alerts_raised = 0

    def start(self) -> None:
        self._thread.start()

    def listen(self, channel: str) -> None:
        """Also score the patients announced on PostgreSQL ``channel`` (ingest in other processes)."""
        self._listener = threading.Thread(
            target=self._listen, args=(channel,), name="scorer-listen", daemon=True
        )
        self._listener.start()

    def wait_listening(self, timeout: float) -> bool:
        """True once ``LISTEN`` is in place (notifications from now on reach this scorer)."""
        return self._listening.wait(timeout)

    def notify(self, municipality_id: str, patient_ids: set[str]) -> None:
        with self._cond:
            self._pending.update((municipality_id, p) for p in patient_ids)
            self._cond.notify()

    def wait_heard(self, barrier: str, timeout: float) -> bool:
        """True once the listener has read ``barrier`` (``gateway.store.new_data.send_barrier``): every
        announcement committed before it has then been handed to ``notify``; False after ``timeout``."""
        with self._cond:
            heard = self._cond.wait_for(lambda: barrier in self._barriers, timeout=timeout)
            self._barriers.discard(barrier)
            return heard

    def _heard_barrier(self, barrier: str) -> None:
        with self._cond:
            if len(self._barriers) >= MAX_UNCLAIMED_BARRIERS:  # their waiters gave up long ago
                self._barriers.clear()
            self._barriers.add(barrier)
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is pending or being scored (for the demo's final summary and tests)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout=timeout)

    def stop(self) -> None:
        self._stop_listening.set()
        if self._listener is not None:
            self._listener.join(timeout=10)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stopping)
                if self._stopping:
                    break
                work, self._pending = self._pending, set()
                self._busy = True
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self._database_url, autocommit=True)
                for municipality_id, patient_id in sorted(work):
                    now = None if self._clock is None else self._clock()
                    outcome = score_patient(conn, municipality_id, patient_id, now=now)
                    if outcome is not None:
                        self.scored += 1
                        self.alerts_raised += int(outcome.alert_raised)
            except psycopg.Error as exc:
                # Scores are derived data: put the work back and retry after a pause, losing nothing.
                log.warning("scorer: database error, retrying: %s", exc)
                with self._cond:
                    self._pending |= work
                if conn is not None:
                    conn.close()
                conn = None
                with self._cond:
                    self._cond.wait(timeout=1.0)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
        if conn is not None:
            conn.close()

    def _listen(self, channel: str) -> None:
        """Score the patients named on ``channel``; after a lost connection, catch up from the table."""
        delay = LISTEN_RETRY_FIRST_S
        lost_at: datetime | None = None  # when the last listening connection failed
        while not self._stop_listening.is_set():
            try:
                with psycopg.connect(self._database_url, autocommit=True) as conn:
                    listen_for_new_data(conn, channel)
                    self._listening.set()
                    delay = LISTEN_RETRY_FIRST_S
                    if lost_at is not None:
                        # Notifications sent while we were not listening are gone: score again the
                        # patients whose readings were stored meanwhile.
                        meanwhile = patients_stored_since(conn, lost_at, effective_within=CATCH_UP_WINDOW)
                        for municipality_id, patients in meanwhile.items():
                            self.notify(municipality_id, patients)
                        lost_at = None
                    while not self._stop_listening.is_set():
                        # Returns after a second without notifications, to look at the stop flag.
                        for note in conn.notifies(timeout=1.0):
                            announced = read_new_data_notification(note.payload)
                            if announced is None:
                                log.warning("scorer: ignoring a malformed notification on %s", channel)
                            elif is_barrier(announced[0]):
                                self._heard_barrier(note.payload)
                            else:
                                self.notify(*announced)
            except psycopg.Error as exc:
                self._listening.clear()
                if lost_at is None:
                    lost_at = datetime.now(UTC) - CATCH_UP_MARGIN
                log.warning("scorer: listening on %s failed (%s); retrying in %.1f s", channel, exc, delay)
                if self._stop_listening.wait(delay):
                    break
                delay = min(delay * 2, LISTEN_RETRY_MAX_S)
        self._listening.clear()
