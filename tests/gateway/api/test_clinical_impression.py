"""A review as a FHIR R4B ClinicalImpression: valid, completed, its triage colour coded as FUT codes it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from fhir.resources.R4B.clinicalimpression import ClinicalImpression

from gateway.api.clinical_impression import FUT_FINDING_SYSTEM, OUTCOME_TEXT, clinical_impression
from gateway.store.reviews import OUTCOMES, Review

REVIEW = Review(
    id=7,
    public_id="0b9f3c1e-5d0a-4f43-9a57-1f2b8c3d4e5f",
    municipality_id="0101",
    patient_id="p-1",
    reviewer="anna",
    reviewer_name="Anna Jensen",
    reviewed_at=datetime(2026, 12, 7, 9, 30, tzinfo=UTC),
    outcome="phone-call",
    note="Called; more breathless on stairs.",
    triage="yellow",
    risk=0.3142,
    model_version="admission-risk-1.0",
    risk_assessment_id="5a1e7c2b-0000-4000-8000-00000000abcd",
    synthetic=False,
)


def test_a_review_is_a_valid_completed_clinical_impression() -> None:
    resource = clinical_impression(REVIEW)
    ClinicalImpression.model_validate(resource)  # the reference validator accepts what is served
    assert resource["resourceType"] == "ClinicalImpression"
    assert resource["id"] == REVIEW.public_id
    assert resource["status"] == "completed"
    assert resource["subject"] == {"reference": "Patient/p-1"}
    assert resource["assessor"] == {
        "identifier": {"system": "urn:homewatch:user", "value": "anna"},
        "display": "Anna Jensen",
    }
    assert resource["date"].startswith("2026-12-07T09:30:00")
    assert resource["effectiveDateTime"] == resource["date"]
    assert resource["summary"] == "Phone call"
    assert resource["extension"][0]["valueCoding"]["code"] == "phone-call"
    assert resource["note"][0]["text"] == "Called; more breathless on stairs."
    assert resource["prognosisReference"] == [
        {
            "reference": "RiskAssessment/5a1e7c2b-0000-4000-8000-00000000abcd",
            "display": "30-day admission risk 31.4 % (model admission-risk-1.0)",
        }
    ]
    assert "meta" not in resource


@pytest.mark.parametrize(
    ("triage", "display"),
    [
        ("red", "Red overall assessment"),
        ("yellow", "Yellow overall assessment"),
        ("green", "Green overall assessment"),
    ],
)
def test_the_triage_colour_is_a_finding_in_futs_code_system(triage: str, display: str) -> None:
    finding = clinical_impression(replace(REVIEW, triage=triage))["finding"]
    assert len(finding) == 1
    coding = finding[0]["itemCodeableConcept"]["coding"]
    assert coding == [{"system": FUT_FINDING_SYSTEM, "code": triage, "display": display}]
    assert FUT_FINDING_SYSTEM == "http://ehealth.sundhed.dk/cs/clinicalimpression-finding-codes"


def test_a_review_without_note_or_risk_has_no_empty_elements() -> None:
    bare = replace(REVIEW, note="", risk=None, model_version=None, risk_assessment_id=None)
    resource = clinical_impression(bare)
    ClinicalImpression.model_validate(resource)
    assert "note" not in resource and "prognosisReference" not in resource


def test_a_review_of_a_synthetic_patient_is_labelled_as_test_data() -> None:
    security = clinical_impression(replace(REVIEW, synthetic=True))["meta"]["security"]
    assert [(s["system"], s["code"]) for s in security] == [
        ("http://terminology.hl7.org/CodeSystem/v3-ActReason", "HTEST")
    ]


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_every_outcome_has_words_for_the_summary(outcome: str) -> None:
    assert set(OUTCOME_TEXT) == set(OUTCOMES)
    resource = clinical_impression(replace(REVIEW, outcome=outcome, note="what was done"))
    assert resource["summary"] == OUTCOME_TEXT[outcome]
