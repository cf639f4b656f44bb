"""A NEWS2 result as a FHIR R4 RiskAssessment: the score, its band, its basis and its reasons.

Every score homewatch shows is stored this way, so a nurse (or another FHIR system) can see why.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from fhir_contract.terminology import IDENTIFIER_SYSTEM
from models.news2 import News2Result

# SNOMED CT 1104051000000101 "Royal College of Physicians National Early Warning Score 2 (NEWS2) total".
NEWS2_METHOD = {"system": "http://snomed.info/sct", "code": "1104051000000101", "display": "NEWS2 score"}
RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
# NEWS2 bands onto the FHIR risk-probability codes (low-medium has no code of its own: 'moderate').
_QUALITATIVE = {"low": "low", "low-medium": "moderate", "medium": "moderate", "high": "high"}


def news2_risk_assessment(
    result: News2Result, *, patient_id: str, basis_identifiers: Iterable[str], computed_at: datetime
) -> dict[str, Any]:
    """The RiskAssessment for one NEWS2 result; ``basis`` names the Observations by identifier."""
    notes = [{"text": reason} for reason in result.reasons()]
    return {
        "resourceType": "RiskAssessment",
        "status": "final",
        "method": {"coding": [NEWS2_METHOD], "text": "NEWS2 (RCP 2017)"},
        "code": {"text": "Early warning score"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "occurrenceDateTime": result.assessed_at.astimezone(UTC).isoformat(),
        "basis": [
            {"identifier": {"system": IDENTIFIER_SYSTEM, "value": ident}, "type": "Observation"}
            for ident in sorted(basis_identifiers)
        ],
        "prediction": [
            {
                "outcome": {"text": "Clinical deterioration"},
                "qualitativeRisk": {
                    "coding": [{"system": RISK_PROBABILITY, "code": _QUALITATIVE[result.band]}],
                    "text": f"NEWS2 {result.total}: {result.band}",
                },
            }
        ],
        "note": notes,
        "extension": [
            {
                "url": "urn:homewatch:news2-total",
                "valueInteger": result.total,
            },
            {"url": "urn:homewatch:computed-at", "valueDateTime": computed_at.astimezone(UTC).isoformat()},
        ],
    }


RULE_METHOD_SYSTEM = "urn:homewatch:rule"


def rule_risk_assessment(
    *,
    rule: str,
    title: str,
    reason: str,
    patient_id: str,
    at: datetime,
    basis_identifier: str,
    computed_at: datetime,
) -> dict[str, Any]:
    """The RiskAssessment of a disease rule that fired (``models.rules``): the rule as the method, the
    reading that fired it as the basis, and the rule's own sentence as the reason."""
    return {
        "resourceType": "RiskAssessment",
        "status": "final",
        "method": {"coding": [{"system": RULE_METHOD_SYSTEM, "code": rule}], "text": title},
        "code": {"text": "Disease-specific warning rule"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "occurrenceDateTime": at.astimezone(UTC).isoformat(),
        "basis": [
            {"identifier": {"system": IDENTIFIER_SYSTEM, "value": basis_identifier}, "type": "Observation"}
        ],
        "prediction": [
            {
                "outcome": {"text": "Clinical deterioration"},
                "qualitativeRisk": {
                    "coding": [{"system": RISK_PROBABILITY, "code": "moderate"}],
                    "text": f"{title}: rule fired",
                },
            }
        ],
        "note": [{"text": reason}],
        "extension": [
            {"url": "urn:homewatch:computed-at", "valueDateTime": computed_at.astimezone(UTC).isoformat()}
        ],
    }


ADMISSION_RISK_METHOD_SYSTEM = "urn:homewatch:model"
# The registry's kind of the version that scored (gateway.store.model_registry), as a second coding.
ADMISSION_RISK_KIND_SYSTEM = "urn:homewatch:model-kind"
MODEL_FALLBACK_EXTENSION = "urn:homewatch:model-fallback"


def _method_text(model_version: str, model_kind: str | None, synthetic_training: bool) -> str:
    """The method in words, naming the version that scored and what it was trained on."""
    if model_kind == "local":
        data = "SYNTHETIC recorded history" if synthetic_training else "recorded history"
        return (
            f"Learned 30-day admission risk, model {model_version}: a local model trained on this"
            f" municipality's own {data}; not clinically validated"
        )
    if model_kind == "default":
        return (
            f"Learned 30-day admission risk, model {model_version}: the day-one default, trained on"
            " SYNTHETIC populations only, not on this municipality's patients"
        )
    return f"Learned 30-day admission risk, model {model_version} (trained on SYNTHETIC data only)"


def admission_risk_assessment(
    *,
    probability: float,
    reasons: list[str],
    patient_id: str,
    model_version: str,
    as_of: datetime,
    computed_at: datetime,
    model_kind: str | None = None,
    synthetic_training: bool = True,
    fallback: str | None = None,
) -> dict[str, Any]:
    """The RiskAssessment of the learned 30-day admission risk: the model version as the method (and its
    registry kind, 'default' or 'local', when known), the calibrated probability for the 30 days from
    ``as_of``, and the factors that raise it most, in words. ``fallback``: why the municipality's active
    local model did not score it (an extension)."""
    coding = [{"system": ADMISSION_RISK_METHOD_SYSTEM, "code": model_version}]
    if model_kind is not None:
        coding.append({"system": ADMISSION_RISK_KIND_SYSTEM, "code": model_kind})
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "status": "final",
        "method": {"coding": coding, "text": _method_text(model_version, model_kind, synthetic_training)},
        "code": {"text": "Risk of hospital admission within 30 days"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "occurrenceDateTime": as_of.astimezone(UTC).isoformat(),
        "prediction": [
            {
                "outcome": {"text": "Hospital admission"},
                "probabilityDecimal": round(probability, 4),
                "whenPeriod": {
                    "start": as_of.astimezone(UTC).isoformat(),
                    "end": (as_of + timedelta(days=30)).astimezone(UTC).isoformat(),
                },
            }
        ],
        "extension": [
            {"url": "urn:homewatch:computed-at", "valueDateTime": computed_at.astimezone(UTC).isoformat()}
        ],
    }
    if reasons:  # FHIR JSON has no empty arrays
        resource["note"] = [{"text": reason} for reason in reasons]
    if fallback is not None:
        resource["extension"].append({"url": MODEL_FALLBACK_EXTENSION, "valueString": fallback})
    return resource
