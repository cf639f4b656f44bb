"""Scores patients with new readings and raises alerts: the step after storage.

``score_patient`` (one transaction) reads the newest readings, computes NEWS2 as of the newest of
them, stores the score with its detail and RiskAssessment, and opens an alert when the rules call for
one. At most one alert per patient is open at a time (a unique index): a flapping value does not
page anyone twice; a worse score escalates the open alert instead.

``Scorer`` runs ``score_patient`` in its own thread for the patients ingest reports after each
commit (``notify``), coalescing repeats, so ingest never waits for scoring. Ingest in the same process
calls ``notify`` directly (the demo); ingest workers in other processes (``homewatch gateway serve``)
call ``pg_notify`` inside the batch's transaction with ``new_data_notifications`` payloads, and
``Scorer.listen`` turns what arrives on that channel into ``notify`` calls: a notification exists only
for a batch that committed. After the listener loses its connection it re-scores the patients whose
readings were stored meanwhile (``stored_since``).

Besides NEWS2, the disease rules of the patient's conditions (``gateway.alerts.home_rules``: heart-failure
weight gain, COPD SpO2 drop and pulse rise against the personal baseline) are run; each rule that fires
on a new reading is stored once as a score with its own RiskAssessment and opens a ``medium`` alert
when none is open.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg import sql

from gateway.alerts.home_rules import RULES_BY_CONDITION, SERIES_KINDS, fresh_hits, load_series
from gateway.alerts.news2_inputs import NEWS2_KINDS, vitals_from_observations
from gateway.alerts.risk_assessment import news2_risk_assessment, rule_risk_assessment
from gateway.alerts.rules import SEVERITY_RANK, AlertDecision, decide_alert, decide_rule_alert
from gateway.store.repository import latest_observations
from models.news2 import News2Result, score_news2

log = logging.getLogger(__name__)

# PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more; stay clear of it.
NOTIFY_PAYLOAD_MAX_BYTES = 7_900
# Listener reconnect back-off: a database restart takes seconds; never more than 10 s without scoring.
LISTEN_RETRY_FIRST_S = 0.5
LISTEN_RETRY_MAX_S = 10.0
# Catching up after the listener lost its connection: from a little before the failure was seen (the
# connection may have been dead for a while before a call noticed) ...
CATCH_UP_MARGIN = timedelta(minutes=5)
# ... and only readings recent enough to change a score (the scorer reads the last 24 h).
CATCH_UP_WINDOW = timedelta(hours=25)


def new_data_notifications(patients: Mapping[str, set[str]]) -> Iterator[str]:
    """NOTIFY payloads naming the patients with new data: ``{"m": municipality, "p": [patient ids]}``,
    as many as it takes to keep each under ``NOTIFY_PAYLOAD_MAX_BYTES``."""
    for municipality_id in sorted(patients):
        empty = len(orjson.dumps({"m": municipality_id, "p": []}))
        chunk: list[str] = []
        size = empty
        for patient_id in sorted(patients[municipality_id]):
            grow = len(orjson.dumps(patient_id)) + 1  # the id and its comma
            if chunk and size + grow > NOTIFY_PAYLOAD_MAX_BYTES:
                yield orjson.dumps({"m": municipality_id, "p": chunk}).decode()
                chunk, size = [], empty
            chunk.append(patient_id)
            size += grow
        if chunk:
            yield orjson.dumps({"m": municipality_id, "p": chunk}).decode()


def read_new_data_notification(payload: str) -> tuple[str, set[str]] | None:
    """The municipality and patients of a ``new_data_notifications`` payload; None when malformed."""
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict):
        return None
    municipality_id, patient_ids = message.get("m"), message.get("p")
    if not isinstance(municipality_id, str) or not isinstance(patient_ids, list):
        return None
    if not all(isinstance(p, str) for p in patient_ids):
        return None
    return municipality_id, set(patient_ids)


@dataclass(frozen=True, slots=True)
class ScoreOutcome:
    patient_id: str
    score_id: int | None  # the NEWS2 score; None when only a disease rule fired (no NEWS2 vitals)
    news2: int | None
    band: str | None
    alert: AlertDecision | None
    alert_raised: bool  # a new alert was opened (not an escalation or a repeat)


def _patient(
    conn: psycopg.Connection[Any], municipality_id: str, patient_id: str
) -> tuple[bool, list[str]] | None:
    """(SpO2 scale 2, conditions) of an enrolled patient; None when the municipality has no such patient."""
    row = conn.execute(
        "SELECT spo2_scale2, conditions FROM patients WHERE municipality_id = %s AND id = %s",
        (municipality_id, patient_id),
    ).fetchone()
    return None if row is None else (bool(row[0]), [str(c) for c in row[1] or ()])


def score_patient(
    conn: psycopg.Connection[Any], municipality_id: str, patient_id: str, *, now: datetime | None = None
) -> ScoreOutcome | None:
    """Score one patient from stored readings (NEWS2, then the disease rules of their conditions); None
    when the patient is unknown, or has neither NEWS2 vitals nor a rule that fired."""
    computed_at = now or datetime.now(UTC)
    with conn.transaction():
        patient = _patient(conn, municipality_id, patient_id)
        if patient is None:
            return None
        scale2, conditions = patient
        news2 = _score_news2(conn, municipality_id, patient_id, scale2, computed_at)
        rule_alerts = _score_rules(conn, municipality_id, patient_id, conditions, computed_at)
        if news2 is None and not rule_alerts:
            return None
        raised = False
        decision: AlertDecision | None = None
        if news2 is not None and news2.decision is not None:
            decision = news2.decision
            raised = _open_or_escalate(
                conn, municipality_id, patient_id, news2.score_id, news2.as_of, decision
            )
        for rule_score_id, at, rule_decision in rule_alerts:
            # A rule's alert opens one when none is open; it never downgrades a NEWS2 alert.
            raised = (
                _open_or_escalate(conn, municipality_id, patient_id, rule_score_id, at, rule_decision)
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
    detail = result.to_dict()  # includes the reasons, in the order a nurse reads them
    row = conn.execute(
        "INSERT INTO scores (municipality_id, patient_id, computed_at, as_of, method, score, band,"
        " detail, resource) VALUES (%s, %s, %s, %s, 'news2', %s, %s, %s::jsonb, %s::jsonb) RETURNING id",
        (
            municipality_id,
            patient_id,
            computed_at,
            as_of,
            result.total,
            result.band,
            orjson.dumps(detail, default=str).decode(),
            orjson.dumps(resource).decode(),
        ),
    ).fetchone()
    assert row is not None
    return _News2Score(int(row[0]), as_of, result, decide_alert(result))


def _score_rules(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    patient_id: str,
    conditions: list[str],
    computed_at: datetime,
) -> list[tuple[int, datetime, AlertDecision]]:
    """Store each disease rule of the patient's ``conditions`` that newly fired (once per rule and
    reading) as a score with its RiskAssessment; return (score id, reading time, alert) for each."""
    if not any(c in RULES_BY_CONDITION for c in conditions):
        return []
    newest = conn.execute(
        "SELECT max(effective) FROM observations WHERE municipality_id = %s AND patient_id = %s"
        " AND kind = ANY(%s)",
        (municipality_id, patient_id, sorted({k for g in SERIES_KINDS.values() for k in g})),
    ).fetchone()
    if newest is None or newest[0] is None:
        return []
    as_of: datetime = newest[0]
    stored: list[tuple[int, datetime, AlertDecision]] = []
    for fresh in fresh_hits(load_series(conn, municipality_id, patient_id, as_of), conditions, as_of):
        seen = conn.execute(
            "SELECT 1 FROM scores WHERE municipality_id = %s AND patient_id = %s AND method = %s"
            " AND as_of = %s",
            (municipality_id, patient_id, fresh.hit.rule, fresh.at),
        ).fetchone()
        if seen is not None:
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
        inserted = conn.execute(
            "INSERT INTO scores (municipality_id, patient_id, computed_at, as_of, method, score, band,"
            " detail, resource) VALUES (%s, %s, %s, %s, %s, 1, 'medium', %s::jsonb, %s::jsonb) RETURNING id",
            (
                municipality_id,
                patient_id,
                computed_at,
                fresh.at,
                fresh.hit.rule,
                orjson.dumps({"rule": fresh.hit.rule, "reason": fresh.hit.reason}).decode(),
                orjson.dumps(resource).decode(),
            ),
        ).fetchone()
        assert inserted is not None
        stored.append((int(inserted[0]), fresh.at, decide_rule_alert(fresh.title, fresh.hit.reason)))
    return stored


def _open_or_escalate(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    patient_id: str,
    score_id: int,
    as_of: datetime,
    decision: AlertDecision,
) -> bool:
    """Open an alert, or escalate the open one when this is worse; True only for a new alert."""
    open_alert = conn.execute(
        "SELECT id, severity FROM alerts WHERE municipality_id = %s AND patient_id = %s AND status = 'open'"
        " FOR UPDATE",
        (municipality_id, patient_id),
    ).fetchone()
    if open_alert is None:
        conn.execute(
            "INSERT INTO alerts (municipality_id, patient_id, score_id, as_of, severity, reason)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (municipality_id, patient_id, score_id, as_of, decision.severity, decision.reason),
        )
        log.warning("ALERT %s patient %s: %s", decision.severity, patient_id, decision.reason)
        return True
    if SEVERITY_RANK[decision.severity] > SEVERITY_RANK[str(open_alert[1])]:
        conn.execute(
            "UPDATE alerts SET severity = %s, reason = %s, score_id = %s, as_of = %s WHERE id = %s",
            (decision.severity, decision.reason, score_id, as_of, open_alert[0]),
        )
        log.warning(
            "ALERT escalated to %s for patient %s: %s", decision.severity, patient_id, decision.reason
        )
    return False


def stored_since(conn: psycopg.Connection[Any], since: datetime) -> dict[str, set[str]]:
    """Patients, per municipality, with readings of the last day stored at or after ``since``."""
    rows = conn.execute(
        "SELECT DISTINCT municipality_id, patient_id FROM observations"
        " WHERE effective >= now() - %s AND received_at >= %s",
        (CATCH_UP_WINDOW, since),
    ).fetchall()
    patients: dict[str, set[str]] = {}
    for municipality_id, patient_id in rows:
        patients.setdefault(str(municipality_id), set()).add(str(patient_id))
    return patients


class Scorer:
    """A thread that scores patients as ingest reports them. ``notify`` never blocks."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._pending: set[tuple[str, str]] = set()
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
                    outcome = score_patient(conn, municipality_id, patient_id)
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
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self._listening.set()
                    delay = LISTEN_RETRY_FIRST_S
                    if lost_at is not None:
                        # Notifications sent while we were not listening are gone: score again the
                        # patients whose readings were stored meanwhile.
                        for municipality_id, patients in stored_since(conn, lost_at).items():
                            self.notify(municipality_id, patients)
                        lost_at = None
                    while not self._stop_listening.is_set():
                        # Returns after a second without notifications, to look at the stop flag.
                        for note in conn.notifies(timeout=1.0):
                            announced = read_new_data_notification(note.payload)
                            if announced is None:
                                log.warning("scorer: ignoring a malformed notification on %s", channel)
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
