"""A nurse's review as a FHIR R4B ClinicalImpression: who assessed which patient, when, what was done,
and the triage colour given. Pure: a ``Review`` in, a validated resource (JSON-ready dict) out.

How the colour is coded follows the Danish national eHealth infrastructure (FUT, "Fælles Udbredelse af
Telemedicin"; implementation guide at ehealth.sundhed.dk / github.com/fut-infrastructure). FUT records the
result of triaging a measurement or questionnaire as a ClinicalImpression with ``status`` completed, the
code ``TriagingResult`` of ``http://ehealth.sundhed.dk/cs/clinicalimpression-codes``, and the overall
colour as a ``finding.itemCodeableConcept`` of ``http://ehealth.sundhed.dk/cs/clinicalimpression-finding-codes``:
``red`` / ``yellow`` / ``green`` ("Red overall assessment", ...); a clinician's manual assessment sets
``assessor``. homewatch codes its triage colour the same way, so a FUT consumer reads it as it reads
its own. The resource does not claim FUT's ``ehealth-clinicalimpression`` profile: that profile needs an
EpisodeOfCare and a CarePlan homewatch does not have, and its ``code`` value set is FUT's automated
triage; ``code`` here is homewatch's own (a weekly review of the 30-day risk).

The rest: ``summary`` is the outcome in words (and coded in an extension), ``note`` the reviewer's note,
``assessor`` the reviewer by username (homewatch serves no Practitioner), ``prognosisReference`` the
30-day-risk RiskAssessment the reviewer saw (``GET /fhir/RiskAssessment/{id}``), with its probability and
model in the reference's display. A review of a patient enrolled as synthetic carries the test-data label.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from fhir.resources.R4B.clinicalimpression import ClinicalImpression

from gateway.api.fhir_model import label_test_data
from gateway.store.reviews import Review

FUT_FINDING_SYSTEM = "http://ehealth.sundhed.dk/cs/clinicalimpression-finding-codes"
# FUT's displays of its overall-assessment codes, and what homewatch's colours ask of the nurse.
TRIAGE_FINDINGS: Mapping[str, tuple[str, str]] = {
    "red": ("Red overall assessment", "Red: act today"),
    "yellow": ("Yellow overall assessment", "Yellow: follow up this week"),
    "green": ("Green overall assessment", "Green: routine care"),
}
REVIEW_CODE = {
    "system": "urn:homewatch:clinicalimpression",
    "code": "weekly-risk-review",
    "display": "Weekly review of the 30-day admission risk",
}
OUTCOME_SYSTEM = "urn:homewatch:review-outcome"
OUTCOME_EXTENSION = "urn:homewatch:review-outcome"
# Source-language words: a FHIR resource is not shown in one reader's language.
OUTCOME_TEXT: Mapping[str, str] = {
    "no-action": "No action",
    "phone-call": "Phone call",
    "home-visit": "Home visit",
    "gp-contacted": "GP contacted",
    "other": "Other",
}
USER_SYSTEM = "urn:homewatch:user"


def _instant(review: Review) -> str:
    return review.reviewed_at.astimezone(UTC).isoformat()


def _prognosis(review: Review) -> list[dict[str, Any]]:
    if review.risk_assessment_id is None:
        return []
    shown = f"30-day admission risk {review.risk * 100:.1f} %" if review.risk is not None else "30-day risk"
    model = f" (model {review.model_version})" if review.model_version else ""
    return [{"reference": f"RiskAssessment/{review.risk_assessment_id}", "display": shown + model}]


def clinical_impression(review: Review) -> dict[str, Any]:
    """The ClinicalImpression of ``review``, validated by ``fhir.resources`` (R4B)."""
    finding, meaning = TRIAGE_FINDINGS[review.triage]
    outcome = OUTCOME_TEXT.get(review.outcome, review.outcome)
    resource: dict[str, Any] = {
        "resourceType": "ClinicalImpression",
        "id": review.public_id,
        "extension": [
            {
                "url": OUTCOME_EXTENSION,
                "valueCoding": {"system": OUTCOME_SYSTEM, "code": review.outcome, "display": outcome},
            }
        ],
        "status": "completed",
        "code": {"coding": [REVIEW_CODE], "text": REVIEW_CODE["display"]},
        "subject": {"reference": f"Patient/{review.patient_id}"},
        "effectiveDateTime": _instant(review),
        "date": _instant(review),
        "assessor": {
            "identifier": {"system": USER_SYSTEM, "value": review.reviewer},
            "display": review.reviewer_name or review.reviewer,
        },
        "summary": outcome,
        "finding": [
            {
                "itemCodeableConcept": {
                    "coding": [{"system": FUT_FINDING_SYSTEM, "code": review.triage, "display": finding}],
                    "text": meaning,
                }
            }
        ],
    }
    prognosis = _prognosis(review)
    if prognosis:  # FHIR JSON has no empty arrays
        resource["prognosisReference"] = prognosis
    if review.note:
        resource["note"] = [{"text": review.note, "time": _instant(review)}]
    validated = ClinicalImpression.model_validate(resource)
    built: dict[str, Any] = validated.model_dump(mode="json", exclude_none=True)
    return label_test_data(built) if review.synthetic else built
