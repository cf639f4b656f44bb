"""The FHIR resources the API answers with, built from rows: values in, JSON-ready dicts out.

Stored Observations and RiskAssessments are served as stored, with a server id added; the Patient and
the OperationOutcome are built with ``fhir.resources.R4B`` so they are valid by construction, and a
sensor Device by the contract's PHD IG builder (``fhir_contract.device``); a hub is served as a Device
of the gateway type. One Bundle builder makes every searchset with its ``total`` and its ``self`` and
``next`` links. ``label_test_data`` marks what is served for a synthetic patient with FHIR's test-data
label. Reading rows is left to ``gateway.store``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient

from fhir_contract.device import build_sensor_device, contract_kind, device_kinds, format_eui
from fhir_contract.status import ACT_REASON, TEST_DATA, TEST_DATA_SECURITY
from fhir_contract.terminology import contract_dir
from gateway.api.fhir_search import format_search
from gateway.store.fhir_query import Cursor, Search

FHIR_JSON = "application/fhir+json"
# Every Device also carries the id homewatch enrolled it under (what Observation.device references).
DEVICE_ID_SYSTEM = "urn:homewatch:device"


def observation_id(municipality_id: str, device_id: str, identifier: str) -> str:
    """The stable, URL-safe FHIR id of a stored Observation: the SHA-256, in hex, of the reading's key
    (its identifier scoped by municipality and device: migration 0004's ``observation_key_id``).

    The repository stores it as ``observation_keys.id``, which ``fhir_reads.observation_by_id`` looks up; an
    identifier itself may hold characters (':' '/' '|') or a length that a FHIR id may not.
    """
    return hashlib.sha256(f"{municipality_id}/{device_id}/{identifier}".encode()).hexdigest()


def risk_assessment_id(public_id: str) -> str:
    """The FHIR id of a stored score's RiskAssessment: its random ``scores.public_id`` (a uuid), which
    says nothing about other scores (``scores.id`` counts every municipality's scores in one sequence)."""
    return public_id


def with_id(resource: Mapping[str, Any], resource_id: str) -> dict[str, Any]:
    """A copy of a stored resource carrying the server's id (placed after ``resourceType``)."""
    body = {key: value for key, value in resource.items() if key not in ("resourceType", "id")}
    return {"resourceType": resource.get("resourceType"), "id": resource_id, **body}


def label_test_data(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``resource`` labelled as test data (``meta.security`` v3-ActReason#HTEST, the label the
    contract gives synthetic Observations); a resource that has the label already keeps it once."""
    labelled = dict(resource)
    meta = dict(labelled.get("meta") or {})
    security = list(meta.get("security") or [])
    if not any(s.get("system") == ACT_REASON and s.get("code") == TEST_DATA for s in security):
        security.append(dict(TEST_DATA_SECURITY))
    meta["security"] = security
    labelled["meta"] = meta
    return labelled


def patient_resource(
    patient_id: str, name: str, birth_date: date | None, municipality_name: str, *, synthetic: bool = False
) -> dict[str, Any]:
    """A Patient resource from a patients row; labelled as test data when ``synthetic``."""
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
    return label_test_data(built) if synthetic else built


@cache
def _device_type(key: str) -> dict[str, Any]:
    """A Device.type as the contract's data declares it: ``sensor_type`` (MDC_MOC_VMS_MDS_SIMP) or
    ``gateway_type`` (MDC_MOC_VMS_MDS_AHD)."""
    data = json.loads((contract_dir() / "devices.json").read_text(encoding="utf-8"))
    return {"coding": [{"system": data["systems"]["mdc"], **data[key]}]}


def _eui48(address: str | None) -> str | None:
    if address is None:
        return None
    try:
        return format_eui(address, 6)
    except ValueError:
        return None


def device_resource(device_id: str, kind: str, address: str | None, patient_id: str) -> dict[str, Any]:
    """A Device from a devices row: a PhdDevice when its kind and Bluetooth address are known.

    The PHD IG identifies a sensor by its EUI-64 or Bluetooth address; a device enrolled without a
    (well-formed) address, or of a kind the contract does not know, is served without the profile but
    with the same type, its homewatch id and its patient.
    """
    contract = contract_kind(kind)
    eui48 = _eui48(address)
    if contract in device_kinds() and eui48 is not None:
        device = build_sensor_device(device_id, contract, bluetooth_address=eui48, patient_id=patient_id)
    else:
        device = {
            "resourceType": "Device",
            "id": device_id,
            "type": _device_type("sensor_type"),
            "patient": {"reference": f"Patient/{patient_id}"},
        }
    identifiers = [*device.get("identifier", []), {"system": DEVICE_ID_SYSTEM, "value": device_id}]
    # Placed after the id, in the order FHIR's JSON examples use.
    head = {"resourceType": "Device", "id": device_id, "identifier": identifiers, "status": "active"}
    return {**head, **{key: value for key, value in device.items() if key not in head}}


def hub_resource(hub_id: str, patient_id: str) -> dict[str, Any]:
    """A Device for a hub (what an Observation's gatewayDevice extension references): typed
    MDC_MOC_VMS_MDS_AHD, with its homewatch id and the patient in whose home it is.

    Not a PhgDevice: that profile needs the hub's EUI-64 system id, which enrolment does not record.
    """
    return {
        "resourceType": "Device",
        "id": hub_id,
        "identifier": [{"system": DEVICE_ID_SYSTEM, "value": hub_id}],
        "status": "active",
        "type": _device_type("gateway_type"),
        "patient": {"reference": f"Patient/{patient_id}"},
    }


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


def searchset(
    base_url: str, search: Search, entries: Sequence[Entry], has_more: bool, total: int
) -> dict[str, Any]:
    """A searchset Bundle of ``entries``, one page of ``total`` matches; ``has_more`` adds the ``next``
    link after the last entry."""
    endpoint = f"{base_url}/{search.resource_type}"
    links = [{"relation": "self", "url": f"{endpoint}?{format_search(search, search.cursor)}"}]
    if has_more and entries:
        links.append({"relation": "next", "url": f"{endpoint}?{format_search(search, entries[-1].position)}"})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links}
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
