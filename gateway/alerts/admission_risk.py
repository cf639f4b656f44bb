"""The learned 30-day admission risk in the gateway: every patient scored on a schedule.

NEWS2 and the disease rules answer "is this reading worrying?" on every new reading; the 30-day risk
answers "whom should the nurses look at this week?", so it runs on a schedule (``AdmissionRiskSchedule``:
at start and then every ``interval``), like HUGIN FiNDR's weekly list. Each patient's stored readings
of the last :data:`HISTORY`, in the canonical units stored at ingest (``gateway.store.patient_history``),
and their enrolment (birth date, conditions) are handed to the same reader and features the model was
trained and evaluated with (``models.cohort_reader.patient_cohort``, ``models.features``): no FHIR is
parsed and no unit converted again, and the gateway scores exactly what ``homewatch models replay``
would from the same readings as FHIR (a test holds the two equal). The result
is stored as a score (method :data:`METHOD`) with a FHIR RiskAssessment: the calibrated probability and
the factors that raise it most, in words (readable at ``GET /fhir/RiskAssessment?patient=...``). Right
after, in the same transaction, the replay's alert rule runs on the patient's stored daily risks
(``gateway.alerts.risk_rise``): a rise that the replay would alert on today raises a 'risk-rise' alert.

Each municipality is scored with its own active model version (``gateway.alerts.active_models``: the
registry's choice, loaded once per sha256; the shipped default until an administrator activates a local
one), and the RiskAssessment and the score's detail name that version. The shipped default was trained
on SYNTHETIC data only (``models/MODEL_CARD.md``): its numbers rank patients for review; they are no
clinical prediction.

The staff's early-detection change observations and the hospital stays (``gateway.store.findr_inputs``:
sent to ``POST /fhir`` by a home-care or hospital system, or recorded in the web form) reach the same
reader: every item with a change seen in the :data:`HISTORY` (its key and time), and every stay admitted
in the :data:`ADMISSION_HISTORY` (admission, and discharge when it was known by ``as_of``), so "staff
noted ... in the last 7 days" and "days since the last hospital admission" are the model's features
here as in training.

The patient's answers to the daily symptom check and their measurement plan's occurrences, judged by
the missing alert's rule (``gateway.store.symptom_features``), reach it too: the symptom features of
the last 7 days and the share of the planned measurements of the last 14 days missed. A patient with
neither gets them as not known (imputed by the model), never as "fine".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from fhir_contract.plan import EARLY
from gateway.alerts.active_models import ActiveModels, ChosenModel
from gateway.alerts.risk_assessment import admission_risk_assessment
from gateway.alerts.risk_rise import alert_on_rise
from gateway.store.findr_inputs import counts, hospital_stays, staff_observations
from gateway.store.model_registry import RegistryError
from gateway.store.patient_history import final_readings
from gateway.store.repository import enrolled_patient, enrolled_patient_ids
from gateway.store.scoring import NewScore, record_score
from gateway.store.symptom_features import (
    judged_plan,
    plan_periods,
    planned_reading_times,
    symptom_answers,
    symptom_checks,
)
from models.admission_risk import ModelError, RiskModel, explain
from models.cohort_reader import Cohort, Measurement, patient_cohort
from models.features import patient_features

log = logging.getLogger(__name__)

METHOD = "admission-risk-30d"
# Enough readings for the personal baselines (half-life 14 days) and the 14-day adherence window.
HISTORY = timedelta(days=60)
# "Days since the last admission" is capped at 365 (models.features.DAYS_SINCE_ADMISSION_CAP): a stay
# admitted before that changes nothing, one within it does however old the readings are.
ADMISSION_HISTORY = timedelta(days=365)


def patient_history(
    conn: psycopg.Connection[Any], municipality_id: str, patient_id: str, as_of: datetime
) -> Cohort | None:
    """The patient as the model's reader takes it: enrolment, the final readings of the :data:`HISTORY`
    up to ``as_of`` in canonical units, the changes the staff saw in it, and the hospital stays admitted
    in the :data:`ADMISSION_HISTORY` (a discharge after ``as_of`` not yet known); None for an unknown
    patient."""
    patient = enrolled_patient(conn, municipality_id, patient_id)
    if patient is None:
        return None
    readings = final_readings(conn, municipality_id, patient_id, after=as_of - HISTORY, until=as_of)
    forms = staff_observations(conn, municipality_id, patient_id, after=as_of - HISTORY, until=as_of)
    stays = hospital_stays(conn, municipality_id, patient_id, after=as_of - ADMISSION_HISTORY, until=as_of)
    after = as_of - HISTORY
    answers = symptom_answers(conn, municipality_id, after=after, until=as_of, patient_id=patient_id)
    periods = plan_periods(conn, municipality_id, until=as_of, patient_id=patient_id).get(patient_id, [])
    taken = (
        planned_reading_times(
            conn, municipality_id, since=after - EARLY, until=as_of, patient_id=patient_id
        ).get(patient_id, {})
        if periods
        else {}
    )
    return patient_cohort(
        patient_id,
        birth_date=patient.birth_date,
        conditions=patient.conditions,
        measurements=[Measurement(r.loinc, r.effective, r.value, r.components) for r in readings],
        changes=[(form.effective, key) for form in forms for key, seen in form.items.items() if seen],
        admissions=[
            (stay.period_start, stay.period_end if stay.period_end and stay.period_end <= as_of else None)
            for stay in stays
            if counts(stay)
        ],
        symptoms=symptom_checks(answers.get(patient_id, [])),
        planned=judged_plan(periods, taken, after=after, until=as_of),
    )


def score_admission_risk(
    conn: psycopg.Connection[Any],
    model: RiskModel | ChosenModel,
    municipality_id: str,
    patient_id: str,
    *,
    now: datetime | None = None,
) -> float | None:
    """Score one patient as of the end of today and store it, then raise a 'risk-rise' alert when the
    replay's rule alerts today (``gateway.alerts.risk_rise``); None without readings to score. ``model``
    is the registry's choice for the municipality (its version named as such) or a bare model (its
    ``metadata["model"]`` named)."""
    chosen = model if isinstance(model, ChosenModel) else None
    model = model.model if isinstance(model, ChosenModel) else model
    computed_at = now or datetime.now(UTC)
    cohort = patient_history(conn, municipality_id, patient_id, computed_at)
    if cohort is None:
        return None
    record = next((p for p in cohort.patients if p.patient_id == patient_id), None)
    if record is None or not record.readings:
        return None
    n_days = (computed_at.astimezone(UTC).date() - cohort.origin).days + 1
    row = patient_features(record, cohort, n_days=n_days)[-1]
    probability = float(model.predict(row[None, :])[0])
    reasons = explain(model, row)
    version = str(model.metadata.get("model", "unknown"))
    score_id = record_admission_risk(
        conn,
        municipality_id,
        patient_id,
        probability,
        reasons,
        version,
        computed_at,
        model_kind=None if chosen is None else chosen.version.kind,
        synthetic_training=True if chosen is None else chosen.synthetic_training,
        fallback=None if chosen is None else chosen.fallback,
    )
    alert_on_rise(
        conn, model, municipality_id, patient_id, score_id=score_id, factors=reasons, computed_at=computed_at
    )
    return probability


def record_admission_risk(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    patient_id: str,
    probability: float,
    reasons: list[str],
    model_version: str,
    computed_at: datetime,
    *,
    model_kind: str | None = None,
    synthetic_training: bool = True,
    fallback: str | None = None,
) -> int:
    """Store one 30-day admission risk (a score row with its RiskAssessment); the score's id.

    The one shape the worklist, the patient page and the FHIR API read: the job writes it, and so do the
    tests and the benchmark that need a chosen probability. ``model_kind`` ('default' | 'local' | None:
    not from the registry), ``synthetic_training`` and ``fallback`` (why the municipality's active
    local version did not score it) are kept in the detail and said in the RiskAssessment.
    """
    resource = admission_risk_assessment(
        probability=probability,
        reasons=reasons,
        patient_id=patient_id,
        model_version=model_version,
        as_of=computed_at,
        computed_at=computed_at,
        model_kind=model_kind,
        synthetic_training=synthetic_training,
        fallback=fallback,
    )
    detail: dict[str, Any] = {
        "model": model_version,
        "reasons": reasons,
        "synthetic_training": synthetic_training,
    }
    if model_kind is not None:
        detail["model_kind"] = model_kind
    if fallback is not None:
        detail["model_fallback"] = fallback
    return record_score(
        conn,
        NewScore(
            municipality_id=municipality_id,
            patient_id=patient_id,
            method=METHOD,
            score=probability,
            band="unbanded",
            computed_at=computed_at,
            as_of=computed_at,
            detail=detail,
            resource=resource,
        ),
    )


def score_everyone(database_url: str, model: RiskModel | ActiveModels, *, now: datetime | None = None) -> int:
    """Score every enrolled patient of every municipality, each municipality with its active model
    (``ActiveModels``) or everyone with one given model; return how many got a score. A municipality
    whose model cannot be had (no default registered, the default unloadable) is logged and skipped."""
    scored = 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        by_municipality: dict[str, list[str]] = {}
        for municipality_id, patient_id in enrolled_patient_ids(conn):
            by_municipality.setdefault(municipality_id, []).append(patient_id)
        for municipality_id, patient_ids in by_municipality.items():
            chosen: RiskModel | ChosenModel
            if isinstance(model, ActiveModels):
                try:
                    chosen = model.choose(conn, municipality_id)
                except (RegistryError, ModelError) as exc:
                    said = "30-day admission risk, municipality %s: no model to score with (%s)"
                    log.error(said, municipality_id, exc)
                    continue
            else:
                chosen = model
            for patient_id in patient_ids:
                with conn.transaction():
                    if score_admission_risk(conn, chosen, municipality_id, patient_id, now=now) is not None:
                        scored += 1
    return scored


class AdmissionRiskSchedule:
    """Scores everyone at start and then every ``interval``, in its own thread; ``start`` / ``stop``;
    ``run_now`` for a run at once. ``model``: each municipality's active model (``ActiveModels``), or one
    model for everyone. ``clock`` says as of when (the demo's simulated time); None: the wall clock."""

    def __init__(
        self,
        database_url: str,
        model: RiskModel | ActiveModels,
        interval: timedelta,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._database_url = database_url
        self._model = model
        self._interval = interval
        self._clock = clock
        self._stopping = threading.Event()
        self._wake = threading.Event()  # run_now: end the wait for the next run
        self._done = threading.Condition()
        self._started = 0  # runs begun, counted so that run_now can wait for one begun after it
        self._finished = 0
        self._succeeded = 0  # the number of the last run that stored its scores
        self._thread = threading.Thread(target=self._run, name="admission-risk", daemon=True)
        self.runs = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._wake.set()
        with self._done:
            self._done.notify_all()
        self._thread.join(timeout=timeout)

    def wake(self) -> None:
        """Begin the next run now without waiting for it (a model was activated: rank by it soon)."""
        self._wake.set()

    def run_now(self, timeout: float) -> bool:
        """Score everyone once more now, in the schedule's thread, and wait for that run: True when it
        stored its scores, False when it failed, the schedule stopped or ``timeout`` passed. A run
        already under way finishes first (it may have begun before the data the caller waits for); the
        next scheduled run follows ``interval`` after this one."""
        with self._done:
            wanted = self._started + 1
            self._wake.set()
            self._done.wait_for(lambda: self._finished >= wanted or self._stopping.is_set(), timeout=timeout)
            return self._succeeded >= wanted

    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._done:
                self._started += 1
                number = self._started
            ok = False
            try:
                now = None if self._clock is None else self._clock()
                scored = score_everyone(self._database_url, self._model, now=now)
                self.runs += 1
                ok = True
                log.info("30-day admission risk: scored %d patient(s)", scored)
            except psycopg.Error as exc:
                # Derived data: the next run recomputes it.
                log.warning("30-day admission risk: run failed (%s); next run in %s", exc, self._interval)
            with self._done:
                self._finished = number
                self._succeeded = number if ok else self._succeeded
                self._done.notify_all()
            self._wake.wait(self._interval.total_seconds())
            self._wake.clear()  # a run_now after the wait ended is served by the run that follows
