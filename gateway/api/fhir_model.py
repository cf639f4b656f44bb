"""The FHIR resources the API answers with, built from rows: values in, JSON-ready dicts out.

Stored Observations and RiskAssessments are served as stored, with a server id added; the Patient and
the OperationOutcome are built with ``fhir.resources.R4B`` so they are valid by construction. One Bundle
builder makes every searchset with its ``self`` and ``next`` links. Reading rows is left to ``queries.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient

from gateway.api.fhir_search import Cursor, Search, format_search

FHIR_JSON = "application/fhir+json"


def observation_id(identifier: str) -> str:
    """The stable, URL-safe FHIR id of a stored Observation: the SHA-256 of its identifier, in hex.

    ``queries.observation_by_id`` computes the same in SQL; an identifier itself may hold characters
    (':' '/' '|') or a length that a FHIR id may not.
    """
    return hashlib.sha256(identifier.encode()).hexdigest()


def risk_assessment_id(score_id: int) -> str:
    """The FHIR id of a stored score's RiskAssessment."""
    return f"score-{score_id}"


def with_id(resource: Mapping[str, Any], resource_id: str) -> dict[str, Any]:
    """A copy of a stored resource carrying the server's id (placed after ``resourceType``)."""
    body = {key: value for key, value in resource.items() if key not in ("resourceType", "id")}
    return {"resourceType": resource.get("resourceType"), "id": resource_id, **body}


def patient_resource(
    patient_id: str, name: str, birth_date: date | None, municipality_name: str
) -> dict[str, Any]:
    """A Patient resource from a patients row."""
    patient = Patient.model_validate(
        {
            "id": patient_id,
            "active": True,
            "name": [{"text": name}],
            "birthDate": birth_date,
            "managingOrganization": {"display": municipality_name},
        }
    )
    built: dict[str, Any] = patient.model_dump(mode="json", exclude_none=True)
    return built


def operation_outcome(code: str, diagnostics: str, severity: str = "error") -> dict[str, Any]:
    """An OperationOutcome with one issue (``code`` from http://hl7.org/fhir/issue-type)."""
    outcome = OperationOutcome.model_validate(
        {"issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}]}
    )
    built: dict[str, Any] = outcome.model_dump(mode="json", exclude_none=True)
    return built


@dataclass(frozen=True, slots=True)
class Entry:
    """One search match: its resource (with id) and the position the next page would start after."""

    resource: dict[str, Any]
    position: Cursor


def searchset(base_url: str, search: Search, entries: Sequence[Entry], has_more: bool) -> dict[str, Any]:
    """A searchset Bundle of ``entries``; ``has_more`` adds the ``next`` link after the last entry."""
    endpoint = f"{base_url}/{search.resource_type}"
    links = [{"relation": "self", "url": f"{endpoint}?{format_search(search, search.cursor)}"}]
    if has_more and entries:
        links.append({"relation": "next", "url": f"{endpoint}?{format_search(search, entries[-1].position)}"})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": links}
    if entries:  # FHIR JSON has no empty arrays
        bundle["entry"] = [
            {
                "fullUrl": f"{base_url}/{entry.resource['resourceType']}/{entry.resource['id']}",
                "resource": entry.resource,
                "search": {"mode": "match"},
            }
            for entry in entries
        ]
    return bundle
