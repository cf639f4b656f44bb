"""The patient's "contact my nurse" as a FHIR R4 Task: built on the hub, checked at the gateway.

A patient presses one large button on the hub's patient view, optionally saying why (``REASONS``: I feel
worse, I have a question, my equipment does not work; the words are the CodeSystem's in
``fhir/questionnaires/CodeSystem-patient-request.json``). The hub sends a Task through the same outbox and
MQTT delivery as its readings; the gateway stores it and puts it on the care team's worklist, where a
nurse takes it and marks it done.

The Task: ``status`` ``requested``, ``intent`` ``order``, ``code`` = ``contact-me`` of the local
CodeSystem ``REQUEST_SYSTEM``, ``for`` and ``requester`` = the patient, ``authoredOn`` the moment of the
press, one identifier of system ``CONTACT_IDENTIFIER_SYSTEM`` (one request per hub and second, so a
request sent again is the same request), and when given a ``reasonCode`` of the same CodeSystem.
``priority`` is ``asap`` when the patient feels worse, else ``routine``. The hub that recorded it is
named by an extension (``RECORDED_BY_EXTENSION``, a Device reference), as a QuestionnaireResponse's
``author`` names it.

Pure: the hub builds with ``build_contact_request``; the gateway checks with
``validate_contact_request`` (fhir.resources R4B for the structure, then the rules here), which raises
``fhir_contract.validate.ContractViolation`` with a stable code, as Observations do. Who may ask for
whom is the gateway's rule (``gateway.ingest.processing``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.task import Task
from pydantic import ValidationError

from fhir_contract.limits import IDENTIFIER_VALUE, MAX_IDENTIFIER_CHARS
from fhir_contract.questionnaire import Texts, authored_time, code_system_texts, reference_id
from fhir_contract.validate import ContractViolation

FhirJson = dict[str, Any]

REQUEST_SYSTEM = "http://homewatch.example/fhir/CodeSystem/patient-request"
CONTACT_IDENTIFIER_SYSTEM = "urn:homewatch:contact-request"
RECORDED_BY_EXTENSION = "http://homewatch.example/fhir/StructureDefinition/recorded-by"
CONTACT_ME = "contact-me"
REQUESTED = "requested"

# The CodeSystem's words (fhir/questionnaires/CodeSystem-patient-request.json): the request's own code,
# and why the patient asks, as the patient view offers it (code -> Danish and English words).
_CODES = code_system_texts("CodeSystem-patient-request.json")
_CODE_TEXT = _CODES[CONTACT_ME]
REASONS: dict[str, Texts] = {code: texts for code, texts in _CODES.items() if code != CONTACT_ME}
_URGENT_REASONS = frozenset({"feeling-worse"})

_EPOCH_2000 = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ValidContactRequest:
    """A contact request that passed the contract, with what the gateway authorises and stores."""

    identifier: str
    patient_id: str
    requester_patient_id: str
    hub_id: str | None  # from the recorded-by extension, when sent
    authored: datetime
    reason: str | None  # a key of REASONS
    urgent: bool
    resource: FhirJson


def contact_identifier(hub_id: str, authored: datetime) -> str:
    """``hub-contact-seconds``: seconds since 2000-01-01 of ``authored`` (aware)."""
    if authored.tzinfo is None:
        raise ValueError("authored must carry a time zone")
    return f"{hub_id}-contact-{int((authored - _EPOCH_2000).total_seconds())}"


def build_contact_request(
    *, patient_id: str, hub_id: str, authored: datetime, reason: str | None = None
) -> FhirJson:
    """The Task a patient's press of "contact my nurse" becomes (``reason``: a key of REASONS or None)."""
    if reason is not None and reason not in REASONS:
        raise ValueError(f"unknown reason {reason!r} (one of {', '.join(REASONS)})")
    if authored.tzinfo is None:
        raise ValueError("authored must carry a time zone")
    moment = authored.astimezone(UTC).replace(microsecond=0)
    task: FhirJson = {
        "resourceType": "Task",
        "extension": [{"url": RECORDED_BY_EXTENSION, "valueReference": {"reference": f"Device/{hub_id}"}}],
        "identifier": [{"system": CONTACT_IDENTIFIER_SYSTEM, "value": contact_identifier(hub_id, moment)}],
        "status": REQUESTED,
        "intent": "order",
        "priority": "asap" if reason in _URGENT_REASONS else "routine",
        "code": {
            "coding": [{"system": REQUEST_SYSTEM, "code": CONTACT_ME, "display": _CODE_TEXT.en}],
            "text": _CODE_TEXT.da,
        },
        "for": {"reference": f"Patient/{patient_id}"},
        "requester": {"reference": f"Patient/{patient_id}"},
        "authoredOn": moment.isoformat(),
    }
    if reason is not None:
        task["reasonCode"] = {
            "coding": [{"system": REQUEST_SYSTEM, "code": reason, "display": REASONS[reason].en}],
            "text": REASONS[reason].da,
        }
    return task


def bundle_entry(task: Mapping[str, Any]) -> FhirJson:
    """The entry of a hub's batch Bundle that carries ``task``."""
    return {"resource": dict(task), "request": {"method": "POST", "url": "Task"}}


# --- checking (the gateway) -----------------------------------------------------------------------


def is_contact_request(resource: Any) -> bool:
    return isinstance(resource, Mapping) and resource.get("resourceType") == "Task"


def contact_identifier_of(resource: Any) -> str | None:
    """The request's identifier when it has a readable one, even when the rest is invalid."""
    identifiers = resource.get("identifier") if isinstance(resource, Mapping) else None
    for item in identifiers if isinstance(identifiers, list) else []:
        if isinstance(item, Mapping) and item.get("system") == CONTACT_IDENTIFIER_SYSTEM:
            value = item.get("value")
            return value if isinstance(value, str) else None
    return None


def _check_structure(resource: Mapping[str, Any]) -> None:
    try:
        Task.model_validate(dict(resource))
    except (ValidationError, ValueError, TypeError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) and exc.errors() else None
        where = ".".join(str(p) for p in first["loc"]) if first else ""
        detail = f"{where}: {first['msg']}" if first else str(exc)
        raise ContractViolation("invalid-fhir", f"not a valid FHIR R4 Task ({detail})") from exc


def _identifier(resource: Mapping[str, Any]) -> str:
    value = contact_identifier_of(resource)
    if not value:
        raise ContractViolation(
            "missing-element", f"Task.identifier with system {CONTACT_IDENTIFIER_SYSTEM} is required"
        )
    if not IDENTIFIER_VALUE.fullmatch(value):
        raise ContractViolation(
            "invalid-fhir",
            f"the {CONTACT_IDENTIFIER_SYSTEM} identifier must be 1-{MAX_IDENTIFIER_CHARS}"
            " printable ASCII characters",
        )
    return value


def _coded(concept: Any, element: str, allowed: Mapping[str, Any] | frozenset[str]) -> str:
    codings = concept.get("coding") if isinstance(concept, Mapping) else None
    for coding in codings if isinstance(codings, list) else []:
        if isinstance(coding, Mapping) and coding.get("system") == REQUEST_SYSTEM:
            code = coding.get("code")
            if isinstance(code, str) and code in allowed:
                return code
    raise ContractViolation(
        "unknown-code", f"{element} must carry one of {', '.join(sorted(allowed))} of {REQUEST_SYSTEM}"
    )


def _recorded_by(resource: Mapping[str, Any]) -> str | None:
    extensions = resource.get("extension")
    for extension in extensions if isinstance(extensions, list) else []:
        if isinstance(extension, Mapping) and extension.get("url") == RECORDED_BY_EXTENSION:
            return reference_id(extension.get("valueReference"), "Device", "Task recorded-by")
    return None


def validate_contact_request(
    resource: Mapping[str, Any], *, now: datetime | None = None
) -> ValidContactRequest:
    """Validate one contact-request Task (as parsed JSON): FHIR R4 by fhir.resources, then the contract:
    status ``requested``, intent ``order``, code ``contact-me``, the identifier, ``for`` and
    ``requester`` = Patient/<id>, ``authoredOn`` with a zone inside the contract's window (``now``,
    aware, the clock when None), and a known reason when one is given."""
    if not is_contact_request(resource):
        raise ContractViolation("invalid-fhir", "entry is not a Task resource")
    _check_structure(resource)
    if resource.get("status") != REQUESTED or resource.get("intent") != "order":
        raise ContractViolation("invalid-fhir", "a contact request has status 'requested' and intent 'order'")
    identifier = _identifier(resource)
    _coded(resource.get("code"), "Task.code", frozenset({CONTACT_ME}))
    patient_id = reference_id(resource.get("for"), "Patient", "Task.for")
    requester = reference_id(resource.get("requester"), "Patient", "Task.requester")
    authored = authored_time(resource, now, "authoredOn")
    reason = None
    if resource.get("reasonCode") is not None:
        reason = _coded(resource.get("reasonCode"), "Task.reasonCode", REASONS)
    return ValidContactRequest(
        identifier=identifier,
        patient_id=patient_id,
        requester_patient_id=requester,
        hub_id=_recorded_by(resource),
        authored=authored,
        reason=reason,
        urgent=resource.get("priority") in ("asap", "urgent", "stat"),
        resource=dict(resource),
    )
