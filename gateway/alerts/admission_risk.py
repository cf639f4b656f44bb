"""The learned 30-day admission risk in the gateway: every patient scored on a schedule.

NEWS2 and the disease rules answer "is this reading worrying?" on every new reading; the 30-day risk
answers "whom should the nurses look at this week?", so it runs on a schedule (``AdmissionRiskSchedule``:
at start and then every ``interval``), like HUGIN FiNDR's weekly list. Each patient's stored readings
of the last :data:`HISTORY` and their enrolment (birth date, conditions) are handed, as FHIR resources,
to the same reader and features the model was trained and evaluated with (``models.cohort_reader``,
``models.features``), so the gateway scores exactly what ``homewatch models replay`` would. The result
is stored as a score (method :data:`METHOD`) with a FHIR RiskAssessment: the calibrated probability and
the factors that raise it most, in words (readable at ``GET /fhir/RiskAssessment?patient=...``).

The shipped model was trained on SYNTHETIC data only (``models/MODEL_CARD.md``): its numbers rank
patients for review; they are no clinical prediction. Staff change observations and past admissions
do not reach the gateway yet, so those features are absent here (the model treats them as not noted).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg

from gateway.alerts.risk_assessment import admission_risk_assessment
from models.admission_risk import RiskModel, explain
from models.codes import CONDITION_SNOMED, SNOMED
from models.cohort_reader import parse_resources
from models.features import patient_features

log = logging.getLogger(__name__)

METHOD = "admission-risk-30d"
# Enough readings for the personal baselines (half-life 14 days) and the 14-day adherence window.
HISTORY = timedelta(days=60)


def patient_resources(
    conn: psycopg.Connection[Any], municipality_id: str, patient_id: str, as_of: datetime
) -> list[dict[str, Any]]:
    """The patient as the model's reader takes it: Patient, Conditions and the stored Observations of
    the :data:`HISTORY` up to ``as_of``; empty for an unknown patient."""
    row = conn.execute(
        "SELECT birth_date, conditions FROM patients WHERE municipality_id = %s AND id = %s",
        (municipality_id, patient_id),
    ).fetchone()
    if row is None:
        return []
    patient: dict[str, Any] = {"resourceType": "Patient", "id": patient_id}
    if row[0] is not None:
        patient["birthDate"] = row[0].isoformat()
    resources: list[dict[str, Any]] = [patient]
    for condition in row[1] or ():
        if condition in CONDITION_SNOMED:
            code, display = CONDITION_SNOMED[condition]
            resources.append(
                {
                    "resourceType": "Condition",
                    "subject": {"reference": f"Patient/{patient_id}"},
                    "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
                }
            )
    observations = conn.execute(
        "SELECT resource FROM observations WHERE municipality_id = %s AND patient_id = %s"
        " AND effective > %s AND effective <= %s ORDER BY effective",
        (municipality_id, patient_id, as_of - HISTORY, as_of),
    ).fetchall()
    resources += [r[0] for r in observations]
    return resources


def score_admission_risk(
    conn: psycopg.Connection[Any],
    model: RiskModel,
    municipality_id: str,
    patient_id: str,
    *,
    now: datetime | None = None,
) -> float | None:
    """Score one patient as of the end of today and store it; None without readings to score."""
    computed_at = now or datetime.now(UTC)
    resources = patient_resources(conn, municipality_id, patient_id, computed_at)
    cohort = parse_resources(resources)
    record = next((p for p in cohort.patients if p.patient_id == patient_id), None)
    if record is None or not record.readings:
        return None
    n_days = (computed_at.astimezone(UTC).date() - cohort.origin).days + 1
    row = patient_features(record, cohort, n_days=n_days)[-1]
    probability = float(model.predict(row[None, :])[0])
    reasons = explain(model, row)
    version = str(model.metadata.get("model", "unknown"))
    resource = admission_risk_assessment(
        probability=probability,
        reasons=reasons,
        patient_id=patient_id,
        model_version=version,
        as_of=computed_at,
        computed_at=computed_at,
    )
    conn.execute(
        "INSERT INTO scores (municipality_id, patient_id, computed_at, as_of, method, score, band, detail,"
        " resource) VALUES (%s, %s, %s, %s, %s, %s, 'unbanded', %s::jsonb, %s::jsonb)",
        (
            municipality_id,
            patient_id,
            computed_at,
            computed_at,
            METHOD,
            probability,
            orjson.dumps({"model": version, "reasons": reasons, "synthetic_training": True}).decode(),
            orjson.dumps(resource).decode(),
        ),
    )
    return probability


def score_everyone(database_url: str, model: RiskModel, *, now: datetime | None = None) -> int:
    """Score every enrolled patient of every municipality; return how many got a score."""
    scored = 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        patients = conn.execute(
            "SELECT municipality_id, id FROM patients ORDER BY municipality_id, id"
        ).fetchall()
        for municipality_id, patient_id in patients:
            with conn.transaction():
                if score_admission_risk(conn, model, municipality_id, patient_id, now=now) is not None:
                    scored += 1
    return scored


class AdmissionRiskSchedule:
    """Scores everyone at start and then every ``interval``, in its own thread; ``start`` / ``stop``."""

    def __init__(self, database_url: str, model: RiskModel, interval: timedelta) -> None:
        self._database_url = database_url
        self._model = model
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="admission-risk", daemon=True)
        self.runs = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                scored = score_everyone(self._database_url, self._model)
                self.runs += 1
                log.info("30-day admission risk: scored %d patient(s)", scored)
            except psycopg.Error as exc:
                # Derived data: the next run recomputes it.
                log.warning("30-day admission risk: run failed (%s); next run in %s", exc, self._interval)
            self._stopping.wait(self._interval.total_seconds())
