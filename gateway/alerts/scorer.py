"""Scores every stored reading and raises the alerts they call for: the step after storage.

Ingest announces, from inside each batch's transaction, the patients whose readings it stored and the
earliest effective time of those readings (``gateway.store.new_data``: NOTIFY, heard only for batches
that committed). ``Scorer.listen`` hands what arrives to ``notify``; ``notify`` never blocks and
coalesces a patient announced twice into one entry from the earlier time. The scorer's thread takes
everything pending at once and ``score_patients`` does it in chunks of :data:`CHUNK_PATIENTS`, each:

1. reads the patients' data in a few queries, whatever the chunk's size
   (``gateway.store.evaluation_reads``): every final reading from each patient's time on, what NEWS2
   and the disease rules stand on before it, and the patient's own limits;
2. evaluates every one of those readings in Python (``gateway.alerts.evaluation``, pure): NEWS2 as of
   that reading, the disease rules of the patient's conditions, the red limits the patient has of their
   own. Later readings are evaluated again too, so a late, out-of-order reading takes its place;
3. writes in one transaction: each finding, in effective-time order per patient, goes to
   ``gateway.alerts.lifecycle.record_trigger`` (raise, add to the active alert, make it worse, or
   nothing: a reading evaluated again is a repeat); a finding that raised or worsened an alert gets its
   score stored (NEWS2 at that reading, or the rule that fired, with its RiskAssessment) and the alert
   points at it; then the patient's current NEWS2 (at the newest reading) is stored with its
   RiskAssessment, last, so that it is the newest score, unless the newest stored one says the same on
   data at most :data:`CURRENT_REFRESH` older. No score is stored per reading otherwise.

Whether an alert fires is therefore a function of the stored readings only, not of how far behind the
scorer is. A barrier on the channel (``wait_heard``) tells a caller that everything committed before it
has been handed to ``notify``, and ``wait_idle`` that it is scored. After the listener loses its
connection it scores again the patients whose readings were stored meanwhile
(``new_data.patients_stored_since``, within :data:`CATCH_UP_WINDOW`).

``score_patient`` scores one patient the same way, from a given time or from their newest reading (what
a caller that stored readings without announcing them wants: the patient as they are now).

Every value scored is the canonical one stored at ingest. The SQL is the store's: reads in
``gateway.store.evaluation_reads``, scores in ``gateway.store.scoring``, alerts through the lifecycle.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import psycopg

from gateway.alerts.evaluation import (
    RULE_KINDS,
    SCORED_KINDS,
    Evaluation,
    Finding,
    News2Point,
    PatientReadings,
    evaluate,
)
from gateway.alerts.home_rules import HISTORY, RULES_BY_CONDITION
from gateway.alerts.lifecycle import Trigger, record_trigger
from gateway.alerts.news2_inputs import NEWS2_KINDS
from gateway.alerts.risk_assessment import news2_risk_assessment, rule_risk_assessment
from gateway.alerts.rules import SEVERITY_RANK, AlertDecision
from gateway.store.evaluation_reads import (
    PatientKey,
    StoredNews2,
    newest_final_reading_times,
    newest_news2_scores,
    own_limits,
    patients_to_score,
    readings_to_score,
)
from gateway.store.new_data import (
    is_barrier,
    listen_for_new_data,
    patients_stored_since,
    read_new_data_notification,
)
from gateway.store.scoring import NewScore, attach_score, record_score, record_scores

log = logging.getLogger(__name__)

# Listener reconnect back-off: a database restart takes seconds; never more than 10 s without scoring.
LISTEN_RETRY_FIRST_S = 0.5
LISTEN_RETRY_MAX_S = 10.0
# Catching up after the listener lost its connection: from a little before the failure was seen (the
# connection may have been dead for a while before a call noticed) ...
CATCH_UP_MARGIN = timedelta(minutes=5)
# ... readings taken this recently (the bound keeps the search to the newest partitions).
CATCH_UP_WINDOW = timedelta(hours=25)
# Barriers read but not (yet) waited for; past this many, their waiters have given up.
MAX_UNCLAIMED_BARRIERS = 64
# Patients read, evaluated and written together (one transaction): big enough that the queries' fixed
# cost is shared, small enough that the first alerts of a large backlog commit within a second.
CHUNK_PATIENTS = 500
# The current NEWS2 is stored again only when what a nurse reads of it changed (total, band, reasons), or
# when the one stored stands on data this much older: a reading a second must not make a score a second.
CURRENT_REFRESH = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class ScoreOutcome:
    """What scoring one patient's readings came to."""

    patient_id: str
    score_id: int | None  # the current NEWS2 score; None without a NEWS2 reading from the time scored
    news2: int | None
    band: str | None
    alert: AlertDecision | None  # the worst alert the readings called for (the newest of equals)
    raised: int  # new alerts opened (not made worse, not added to)
    news2_points: int  # NEWS2 evaluated at this many reading times

    @property
    def alert_raised(self) -> bool:
        return self.raised > 0


def score_patients(
    conn: psycopg.Connection[Any], since: Mapping[PatientKey, datetime], *, now: datetime | None = None
) -> list[ScoreOutcome]:
    """Score every reading of each patient from ``since[(municipality, patient)]`` on (module
    docstring), in chunks; an unknown patient, or one with nothing to score, has no outcome. ``now``
    (the demo's simulated clock) stamps the scores and the alerts; None: the wall clock."""
    outcomes: list[ScoreOutcome] = []
    for chunk in _chunks(list(since), CHUNK_PATIENTS):
        computed_at = now or datetime.now(UTC)
        started = time.perf_counter()
        data = read_patients(conn, {key: since[key] for key in chunk})
        read = time.perf_counter()
        evaluations = [evaluate(patient) for patient in data]
        evaluated = time.perf_counter()
        with conn.transaction():
            done = record_evaluations(conn, evaluations, computed_at)
        outcomes.extend(done)
        log.debug(
            "scorer: %d patient(s), NEWS2 at %d reading(s), %d alert(s) raised: read %.0f ms, evaluated"
            " %.0f ms, written %.0f ms",
            len(chunk),
            sum(e.news2_points for e in evaluations),
            sum(o.raised for o in done),
            (read - started) * 1000,
            (evaluated - read) * 1000,
            (time.perf_counter() - evaluated) * 1000,
        )
    return outcomes


def score_patient(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    patient_id: str,
    *,
    since: datetime | None = None,
    now: datetime | None = None,
) -> ScoreOutcome | None:
    """Score one patient's readings from ``since`` on; None: from their newest NEWS2 vital or their
    newest reading, whichever is older (the patient as they are now, even when the newest reading is a
    weight). None when the patient is unknown or has nothing to score."""
    key = (municipality_id, patient_id)
    if since is None:
        newest = [
            newest_final_reading_times(conn, [key], kinds).get(key) for kinds in (NEWS2_KINDS, SCORED_KINDS)
        ]
        found = [t for t in newest if t is not None]
        if not found:
            return None
        since = min(found)
    return next(iter(score_patients(conn, {key: since}, now=now)), None)


def read_patients(
    conn: psycopg.Connection[Any], since: Mapping[PatientKey, datetime]
) -> list[PatientReadings]:
    """What each known patient of ``since`` is evaluated on, in a few queries for them all."""
    patients = patients_to_score(conn, since.keys())
    wanted = {key: time for key, time in since.items() if key in patients}
    with_rules = [
        key
        for key, patient in patients.items()
        if any(condition in RULES_BY_CONDITION for condition in patient.conditions)
    ]
    readings = readings_to_score(
        conn,
        wanted,
        kinds=SCORED_KINDS,
        newest_before_kinds=NEWS2_KINDS,
        history_of=with_rules,
        history=HISTORY,
        history_kinds=RULE_KINDS,
    )
    limits = own_limits(conn, wanted.keys())
    return [
        PatientReadings(patients[key], wanted[key], readings.get(key, []), limits.get(key, ()))
        for key in sorted(wanted)
    ]


def record_evaluations(
    conn: psycopg.Connection[Any], evaluations: Sequence[Evaluation], computed_at: datetime
) -> list[ScoreOutcome]:
    """Record the findings and store the scores of ``evaluations``, in the caller's transaction."""
    stored = newest_news2_scores(conn, [_key(e) for e in evaluations if e.current is not None])
    raised: list[int] = []
    current_ids: list[int | None] = []
    new_current: list[tuple[int, NewScore]] = []  # (position, score): stored last, together
    for position, evaluation in enumerate(evaluations):
        count, current_id, news2_stored = _record_findings(conn, evaluation, computed_at)
        raised.append(count)
        kept = stored.get(_key(evaluation))
        if current_id is None and evaluation.current is not None:
            # Unless a NEWS2 of an earlier reading was stored just now (it would pass for the newest).
            if kept is not None and not news2_stored and _still_current(kept, evaluation.current):
                current_id = kept.id
            else:
                new_current.append((position, _news2_score(evaluation, evaluation.current, computed_at)))
        current_ids.append(current_id)
    for (position, _), stored_id in zip(
        new_current, record_scores(conn, [score for _, score in new_current]), strict=True
    ):
        current_ids[position] = stored_id
    outcomes: list[ScoreOutcome] = []
    for evaluation, count, score_id in zip(evaluations, raised, current_ids, strict=True):
        if evaluation.current is None and not evaluation.findings:
            continue
        result = None if evaluation.current is None else evaluation.current.result
        outcomes.append(
            ScoreOutcome(
                evaluation.patient.patient_id,
                score_id,
                None if result is None else result.total,
                None if result is None else result.band,
                _worst(evaluation.findings),
                count,
                evaluation.news2_points,
            )
        )
    return outcomes


def _key(evaluation: Evaluation) -> PatientKey:
    return evaluation.patient.municipality_id, evaluation.patient.patient_id


def _still_current(kept: StoredNews2, point: News2Point) -> bool:
    """Whether the stored NEWS2 ``kept`` says what ``point`` says, on data recent enough to stand for it."""
    result = point.result
    says_the_same = (kept.total, kept.band, kept.reasons) == (result.total, result.band, result.reasons())
    return says_the_same and kept.as_of <= point.at < kept.as_of + CURRENT_REFRESH


def _record_findings(
    conn: psycopg.Connection[Any], evaluation: Evaluation, computed_at: datetime
) -> tuple[int, int | None, bool]:
    """Hand each finding to the lifecycle, oldest first; store the score of each that raised or worsened
    an alert and point the alert at it. How many alerts were raised, the id of the current NEWS2's
    score if it was stored on the way, and whether any NEWS2 score was."""
    patient = evaluation.patient
    raised = 0
    current_id: int | None = None
    news2_stored = False
    for finding in evaluation.findings:
        decision = finding.decision
        outcome = record_trigger(
            conn,
            Trigger(
                patient.municipality_id,
                patient.patient_id,
                finding.kind,
                finding.key,
                decision.severity,
                decision.reason,
                finding.at,
                observation_identifier=finding.identifier,
            ),
            now=computed_at,
        )
        if outcome.action not in ("raise", "worse"):
            continue
        raised += outcome.action == "raise"
        score = _finding_score(evaluation, finding, computed_at)
        if score is None or outcome.alert_id is None:
            continue
        score_id = record_score(conn, score)
        attach_score(conn, patient.municipality_id, outcome.alert_id, score_id)
        if finding.news2 is not None:
            news2_stored = True
            if finding.news2 is evaluation.current:
                current_id = score_id
    return raised, current_id, news2_stored


def _finding_score(evaluation: Evaluation, finding: Finding, computed_at: datetime) -> NewScore | None:
    """The score a finding stands on: NEWS2 at its reading, or the rule that fired; None for a reading
    outside the patient's own limits (the alert names the reading)."""
    if finding.news2 is not None:
        return _news2_score(evaluation, finding.news2, computed_at)
    if finding.rule is None or finding.identifier is None:
        return None
    fired = finding.rule
    patient = evaluation.patient
    return NewScore(
        municipality_id=patient.municipality_id,
        patient_id=patient.patient_id,
        method=fired.rule,
        score=1,
        band="medium",
        computed_at=computed_at,
        as_of=finding.at,
        detail={"rule": fired.rule, "reason": fired.reason},
        resource=rule_risk_assessment(
            rule=fired.rule,
            title=fired.title,
            reason=fired.reason,
            patient_id=patient.patient_id,
            at=finding.at,
            basis_identifier=finding.identifier,
            computed_at=computed_at,
        ),
    )


def _news2_score(evaluation: Evaluation, point: News2Point, computed_at: datetime) -> NewScore:
    patient = evaluation.patient
    result = point.result
    return NewScore(
        municipality_id=patient.municipality_id,
        patient_id=patient.patient_id,
        method="news2",
        score=result.total,
        band=result.band,
        computed_at=computed_at,
        as_of=point.at,
        detail=result.to_dict(),  # includes the reasons, in the order a nurse reads them
        resource=news2_risk_assessment(
            result, patient_id=patient.patient_id, basis_identifiers=point.basis, computed_at=computed_at
        ),
    )


def _worst(findings: Sequence[Finding]) -> AlertDecision | None:
    worst: AlertDecision | None = None
    for finding in findings:
        if worst is None or SEVERITY_RANK[finding.decision.severity] >= SEVERITY_RANK[worst.severity]:
            worst = finding.decision
    return worst


def _chunks(keys: Sequence[PatientKey], size: int) -> Iterator[list[PatientKey]]:
    it = iter(keys)
    while chunk := list(islice(it, size)):
        yield chunk


class Scorer:
    """A thread that scores patients as ingest reports them. ``notify`` never blocks. ``clock`` says
    when a score is computed (the demo's simulated time); None: the wall clock."""

    def __init__(self, database_url: str, clock: Callable[[], datetime] | None = None) -> None:
        self._database_url = database_url
        self._clock = clock
        self._pending: dict[PatientKey, datetime] = {}
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
        self.busy_s = 0.0  # time spent scoring (what part of its time the scorer needs, for benchmarks)

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

    def notify(self, municipality_id: str, patients: Mapping[str, datetime]) -> None:
        """Score ``patients`` (patient id -> the earliest effective time of their new readings)."""
        with self._cond:
            self._merge(((municipality_id, p), since) for p, since in patients.items())
            self._cond.notify()

    def _merge(self, work: Iterable[tuple[PatientKey, datetime]]) -> None:
        """Add ``work`` to what is pending (the caller holds the lock); a patient pending already keeps
        the earlier of the two times."""
        for key, since in work:
            held = self._pending.get(key)
            self._pending[key] = since if held is None else min(held, since)

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
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stopping)
                if self._stopping:
                    break
                work, self._pending = self._pending, {}
                self._busy = True
            started = time.monotonic()
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self._database_url, autocommit=True)
                for chunk in _chunks(list(work), CHUNK_PATIENTS):  # first announced, first scored
                    now = None if self._clock is None else self._clock()
                    outcomes = score_patients(conn, {key: work[key] for key in chunk}, now=now)
                    for key in chunk:
                        del work[key]
                    self.scored += len(outcomes)
                    self.alerts_raised += sum(outcome.raised for outcome in outcomes)
            except psycopg.Error as exc:
                # Scores are derived data: put the rest back and retry after a pause, losing nothing.
                log.warning("scorer: database error, retrying: %s", exc)
                with self._cond:
                    self._merge(work.items())
                if conn is not None:
                    conn.close()
                conn = None
                with self._cond:
                    self._cond.wait(timeout=1.0)
            finally:
                self.busy_s += time.monotonic() - started
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
                        # readings stored meanwhile.
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
