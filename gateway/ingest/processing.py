"""What the gateway decides about one MQTT message: which Observations to store, which to reject and why.

``process_message`` is pure: it takes the topic, the payload and a way to look up a hub's assignment,
and returns values. No broker, no database, no clock; the MQTT worker (``mqtt_ingest``) does the I/O
around it, so every rule here is tested without a server.

Rules, in order:

1. The topic must be ``homewatch/v1/{municipality}/{hub}/observations`` with FHIR ids for the
   municipality and the hub (else ``bad-topic``).
2. The hub must be enrolled in that municipality (else ``unknown-hub``; a hub of another municipality
   is unknown here). These two reject the whole message.
3. The payload must be a FHIR ``batch`` Bundle within the size and entry limits (``not-json``,
   ``not-a-bundle``, ``too-large``, ``too-many-entries``; whole message).
4. Each entry is validated on its own against the contract (``fhir_contract.validate``); one bad
   Observation never rejects its good neighbours.
5. A valid Observation must be about a patient living with the hub (else ``not-authorised``), from a
   device assigned to the hub now (else ``unassigned-device``: a device never assigned to this hub, or
   removed from it; the reading is held in the quarantine for the administrator and never attributed to
   anyone, and ``gateway.ingest.reprocess`` stores it once an enrolment fix assigns the device), that
   measures that patient (a personal device its owner, a shared one the residents it has User Indexes
   for; else ``not-authorised``: two residents never get each other's readings), and, when it names
   a gateway (the ``observation-gatewayDevice`` extension), name this hub (else ``not-authorised``).
6. An entry that is a QuestionnaireResponse (the patient's answers to a daily symptom check) is
   validated by ``fhir_contract.questionnaire`` instead (its codes ``unknown-questionnaire`` and
   ``invalid-answer`` beside the contract's own), and must be about a patient of the hub, answered by
   them (``source``, when sent) and recorded by this hub (``author``, when sent; else
   ``not-authorised``). It is accepted into ``MessageOutcome.responses``, rejected like any entry, and
   counted in the receipt like an Observation.
7. An entry that is a Task is a patient's "contact my nurse" (``fhir_contract.contact``): validated by
   ``validate_contact_request``, it must be about a patient of the hub, asked for by that patient
   (``requester`` = ``for``) and recorded by this hub (the recorded-by extension, when sent; else
   ``not-authorised``). It is accepted into ``MessageOutcome.requests``, rejected like any entry, and
   counted in the receipt like an Observation.

``error_report`` turns the rejections of a message into the OperationOutcome the hub receives on its
``errors`` topic (each reason cut to ``MAX_REASON_CHARS``, so a hostile value echoed in a reason can
never make the report too large for the broker); ``receipt`` is what the hub receives on
``receipts`` once the message is committed (the hub deletes its copies only then:
``docs/outbox.md``). Left to others: storage, acknowledgement,
quarantine (``mqtt_ingest`` and ``gateway.store``), and the contract itself (``fhir_contract``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from fhir_contract.contact import (
    CONTACT_IDENTIFIER_SYSTEM,
    ValidContactRequest,
    contact_identifier_of,
    is_contact_request,
    validate_contact_request,
)
from fhir_contract.limits import is_fhir_id
from fhir_contract.questionnaire import (
    INVALID_ANSWER,
    RESPONSE_IDENTIFIER_SYSTEM,
    UNKNOWN_QUESTIONNAIRE,
    ValidResponse,
    is_questionnaire_response,
    validate_response,
)
from fhir_contract.terminology import IDENTIFIER_SYSTEM
from fhir_contract.validate import ContractViolation, ValidObservation, parse_bundle, validate_observation
from gateway.store.repository import HubAssignment

log = logging.getLogger(__name__)

TOPIC_ROOT = "homewatch/v1"
OBSERVATIONS_SUBSCRIPTION = f"{TOPIC_ROOT}/+/+/observations"

# Rejection codes added here to the contract's own (ContractViolation.code).
BAD_TOPIC = "bad-topic"
UNKNOWN_HUB = "unknown-hub"
NOT_AUTHORISED = "not-authorised"
# A reading of the hub's patient from a device not assigned to the hub (never, or removed since): held in
# the quarantine for the administrator (``gateway.ingest.reprocess`` after an enrolment fix).
UNASSIGNED_DEVICE = "unassigned-device"
# The database refused a row the contract accepted (e.g. a JSON string holding \u0000, which jsonb
# cannot store), or storing a message failed in a way a retry cannot mend. Raised by ``storing`` and the
# worker, listed here so every code lives in one place.
UNSTORABLE = "unstorable"
# Even quarantining the message failed; its bytes were kept in ``dead_letters`` (``storing``).
DEAD_LETTERED = "dead-lettered"
# The reading's identifier is stored already from the same device with other values (``storing``).
CONFLICT = "conflict"
# Longest reason text sent back or kept: enough for any rejection the contract writes.
MAX_REASON_CHARS = 1_000

# FHIR IssueType per rejection code, for the OperationOutcome sent back to the hub.
_ISSUE_TYPE = {
    BAD_TOPIC: "invalid",
    UNKNOWN_HUB: "forbidden",
    NOT_AUTHORISED: "forbidden",
    UNASSIGNED_DEVICE: "forbidden",
    UNSTORABLE: "exception",
    DEAD_LETTERED: "exception",
    CONFLICT: "conflict",
    "not-json": "structure",
    "not-a-bundle": "structure",
    "too-large": "too-long",
    "too-many-entries": "too-costly",
    "implausible-time": "value",
    "invalid-fhir": "invalid",
    "unknown-code": "code-invalid",
    "unit-mismatch": "value",
    "impossible-value": "value",
    "missing-element": "required",
    UNKNOWN_QUESTIONNAIRE: "not-found",
    INVALID_ANSWER: "code-invalid",
}
REJECTION_CODE_SYSTEM = "urn:homewatch:ingest-rejection"
IDENTIFIER_EXTENSION = "urn:homewatch:observation-identifier"

AssignmentLookup = Callable[[str, str], HubAssignment | None]
Checked = TypeVar("Checked")


@dataclass(frozen=True, slots=True)
class HubTopic:
    """The hub a message came from, as its topic names it."""

    municipality_id: str
    hub_id: str

    @property
    def errors_topic(self) -> str:
        return f"{TOPIC_ROOT}/{self.municipality_id}/{self.hub_id}/errors"

    @property
    def receipts_topic(self) -> str:
        return f"{TOPIC_ROOT}/{self.municipality_id}/{self.hub_id}/receipts"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message (``index`` None) or one Bundle entry (``index`` = its position) was refused.

    ``resource`` is the rejected entry as parsed, kept for the quarantine (None for a whole message:
    the raw payload is quarantined instead).
    """

    index: int | None
    identifier: str | None
    code: str
    reason: str
    resource: Any = None
    # What ``identifier`` is an identifier of: an Observation's, a QuestionnaireResponse's or a Task's.
    identifier_system: str = IDENTIFIER_SYSTEM


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    """The decision about one message. ``accepted_positions[i]`` is the Bundle entry of ``accepted[i]``."""

    topic: str
    source: HubTopic | None
    accepted: tuple[ValidObservation, ...]
    rejections: tuple[Rejection, ...]
    accepted_positions: tuple[int, ...] = ()
    # Bundle.id, when the payload was a Bundle that had one: the receipt names it.
    bundle_id: str | None = None
    # How many entries the Bundle had (0 when the payload was no Bundle).
    entries: int = 0
    # The accepted QuestionnaireResponses, and the Bundle entry of each (``response_positions[i]``).
    responses: tuple[ValidResponse, ...] = ()
    response_positions: tuple[int, ...] = ()
    # The accepted contact requests (Tasks), and the Bundle entry of each (``request_positions[i]``).
    requests: tuple[ValidContactRequest, ...] = ()
    request_positions: tuple[int, ...] = ()

    @property
    def message_rejected(self) -> bool:
        """The whole message was refused (bad topic, unknown hub, not a Bundle, too large)."""
        return any(r.index is None for r in self.rejections)


def parse_topic(topic: str) -> HubTopic | None:
    """The hub of an observations topic, or None when the topic is not one."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT or parts[4] != "observations":
        return None
    municipality_id, hub_id = parts[2], parts[3]
    # Ids are FHIR ids (enrolment makes them so): nothing else is looked up in the database.
    if not is_fhir_id(municipality_id) or not is_fhir_id(hub_id):
        return None
    return HubTopic(municipality_id, hub_id)


def _identifier_of(resource: Any) -> str | None:
    """The contract identifier of an entry, if it has a readable one, even when the entry is invalid."""
    if not isinstance(resource, Mapping):
        return None
    identifiers = resource.get("identifier")
    if not isinstance(identifiers, list):
        return None
    for item in identifiers:
        if isinstance(item, Mapping) and item.get("system") == IDENTIFIER_SYSTEM:
            value = item.get("value")
            return value if isinstance(value, str) else None
    return None


def _authorisation_problem(obs: ValidObservation, assignment: HubAssignment) -> tuple[str, str] | None:
    """(code, reason) when the hub may not report ``obs``; None when it may."""
    if not assignment.serves(obs.patient_id):
        return NOT_AUTHORISED, f"hub {assignment.hub_id} does not serve patient {obs.patient_id}"
    if obs.device_id not in assignment.device_ids:
        reason = (
            f"device {obs.device_id} is not assigned to hub {assignment.hub_id} (never, or removed):"
            " the reading is held for the administrator, not attributed"
        )
        return UNASSIGNED_DEVICE, reason
    if not assignment.device_measures(obs.device_id, obs.patient_id):
        # Two residents on one hub: a device measures only the resident(s) it was assigned to.
        return NOT_AUTHORISED, f"device {obs.device_id} does not measure patient {obs.patient_id}"
    if obs.hub_id is not None and obs.hub_id != assignment.hub_id:
        reason = f"gatewayDevice names hub {obs.hub_id}, but the message came from hub {assignment.hub_id}"
        return NOT_AUTHORISED, reason
    return None


def _response_identifier_of(resource: Any) -> str | None:
    """The identifier of a QuestionnaireResponse entry, if it has a readable one, even when invalid."""
    identifier = resource.get("identifier") if isinstance(resource, Mapping) else None
    if isinstance(identifier, Mapping) and identifier.get("system") == RESPONSE_IDENTIFIER_SYSTEM:
        value = identifier.get("value")
        return value if isinstance(value, str) else None
    return None


def _decide_response(
    index: int, resource: Any, assignment: HubAssignment, now: datetime | None
) -> ValidResponse | Rejection:
    """A QuestionnaireResponse entry: the contract's check, then whether this hub may send it."""

    def rejected(code: str, reason: str) -> Rejection:
        identifier = _response_identifier_of(resource)
        return Rejection(index, identifier, code, reason, resource, RESPONSE_IDENTIFIER_SYSTEM)

    response = _checked(index, lambda: validate_response(resource, now=now), rejected)
    if isinstance(response, Rejection):
        return response
    if not assignment.serves(response.patient_id):
        return rejected(
            NOT_AUTHORISED, f"hub {assignment.hub_id} does not serve patient {response.patient_id}"
        )
    if response.source_patient_id not in (None, response.patient_id):
        return rejected(NOT_AUTHORISED, "the answers must be the patient's own (source = the subject)")
    if response.hub_id not in (None, assignment.hub_id):
        reason = f"author names hub {response.hub_id}, but the message came from hub {assignment.hub_id}"
        return rejected(NOT_AUTHORISED, reason)
    return response


def _decide_request(
    index: int, resource: Any, assignment: HubAssignment, now: datetime | None
) -> ValidContactRequest | Rejection:
    """A contact-request Task entry: the contract's check, then whether this hub may send it."""

    def rejected(code: str, reason: str) -> Rejection:
        identifier = contact_identifier_of(resource)
        return Rejection(index, identifier, code, reason, resource, CONTACT_IDENTIFIER_SYSTEM)

    request = _checked(index, lambda: validate_contact_request(resource, now=now), rejected)
    if isinstance(request, Rejection):
        return request
    if not assignment.serves(request.patient_id):
        return rejected(
            NOT_AUTHORISED, f"hub {assignment.hub_id} does not serve patient {request.patient_id}"
        )
    if request.requester_patient_id != request.patient_id:
        # One resident never asks on another's behalf: the worklist shows who pressed the button.
        return rejected(NOT_AUTHORISED, "a contact request is the patient's own (requester = for)")
    if request.hub_id not in (None, assignment.hub_id):
        reason = f"recorded-by names hub {request.hub_id}, but the message came from hub {assignment.hub_id}"
        return rejected(NOT_AUTHORISED, reason)
    return request


def _checked(
    index: int, validate: Callable[[], Checked], rejected: Callable[[str, str], Rejection]
) -> Checked | Rejection:
    """What ``validate()`` returns, or the rejection of what the contract refused. Any other exception is
    a rejection too: odd input must never crash the worker (a message that did would be redelivered for
    ever)."""
    try:
        return validate()
    except ContractViolation as exc:
        return rejected(exc.code, exc.reason)
    except Exception as exc:
        log.warning("validator failed on entry %d with %r; rejecting it as invalid-fhir", index, exc)
        return rejected("invalid-fhir", f"entry could not be checked: {exc}")


def _validate(index: int, resource: Any, now: datetime | None) -> ValidObservation | Rejection:
    def rejected(code: str, reason: str) -> Rejection:
        return Rejection(index, _identifier_of(resource), code, reason, resource)

    return _checked(index, lambda: validate_observation(resource, now=now), rejected)


def process_message(
    topic: str,
    payload: bytes,
    assignment_lookup: AssignmentLookup,
    max_bytes: int,
    now: datetime | None = None,
) -> MessageOutcome:
    """Decide about one message; see the module docstring for the rules. ``now`` (aware) is the time
    the contract's window of effective times ends at (the clock when None)."""
    source = parse_topic(topic)
    if source is None:
        reason = f"topic {clip(repr(topic), 200)} is not {TOPIC_ROOT}/{{municipality}}/{{hub}}/observations"
        return MessageOutcome(topic, None, (), (Rejection(None, None, BAD_TOPIC, reason),))
    assignment = assignment_lookup(source.municipality_id, source.hub_id)
    if assignment is None:
        reason = f"hub {source.hub_id} is not enrolled in municipality {source.municipality_id}"
        return MessageOutcome(topic, source, (), (Rejection(None, None, UNKNOWN_HUB, reason),))
    try:
        bundle = parse_bundle(payload, max_bytes)
    except ContractViolation as exc:
        return MessageOutcome(topic, source, (), (Rejection(None, None, exc.code, exc.reason),))
    resources = bundle.resources

    accepted: list[ValidObservation] = []
    positions: list[int] = []
    rejections: list[Rejection] = []
    responses: list[ValidResponse] = []
    response_positions: list[int] = []
    requests: list[ValidContactRequest] = []
    request_positions: list[int] = []
    for index, resource in enumerate(resources):
        if is_contact_request(resource):
            request = _decide_request(index, resource, assignment, now)
            if isinstance(request, Rejection):
                rejections.append(request)
            else:
                requests.append(request)
                request_positions.append(index)
            continue
        if is_questionnaire_response(resource):
            decided = _decide_response(index, resource, assignment, now)
            if isinstance(decided, Rejection):
                rejections.append(decided)
            else:
                responses.append(decided)
                response_positions.append(index)
            continue
        checked = _validate(index, resource, now)
        if isinstance(checked, Rejection):
            rejections.append(checked)
            continue
        problem = _authorisation_problem(checked, assignment)
        if problem is not None:
            code, reason = problem
            rejections.append(Rejection(index, checked.identifier, code, reason, resource))
            continue
        accepted.append(checked)
        positions.append(index)
    return MessageOutcome(
        topic,
        source,
        tuple(accepted),
        tuple(rejections),
        tuple(positions),
        bundle_id=bundle.id,
        entries=len(resources),
        responses=tuple(responses),
        response_positions=tuple(response_positions),
        requests=tuple(requests),
        request_positions=tuple(request_positions),
    )


def receipt(outcome: MessageOutcome) -> dict[str, Any] | None:
    """What the hub is told once the message's transaction committed, or None when nothing is owed.

    A receipt means the gateway holds every entry of the Bundle: stored, or quarantined with the
    reason the hub also gets on ``errors``. Only then may the hub forget the readings. A message from
    a hub that is not enrolled gets none (the hub keeps its readings and sends them again later, so
    fixing the enrolment recovers them), nor does a payload whose Bundle id could not be read.
    """
    if outcome.source is None or outcome.bundle_id is None:
        return None
    if any(r.code == UNKNOWN_HUB for r in outcome.rejections):
        return None
    # A message set aside whole after it could not be stored (``unstorable``) is held too: all its
    # entries count as rejected.
    rejected = sum(r.index is not None for r in outcome.rejections)
    if outcome.message_rejected:
        rejected = outcome.entries
    accepted = len(outcome.accepted) + len(outcome.responses) + len(outcome.requests)
    return {"bundle": outcome.bundle_id, "accepted": accepted, "rejected": rejected}


def clip(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying so."""
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(text)} characters)"


def error_report(outcome: MessageOutcome) -> dict[str, Any]:
    """A FHIR OperationOutcome listing each rejection: code, reason, Bundle position, identifier."""
    issues: list[dict[str, Any]] = []
    for rejection in outcome.rejections:
        issue: dict[str, Any] = {
            "severity": "error",
            "code": _ISSUE_TYPE.get(rejection.code, "processing"),
            "details": {
                "coding": [{"system": REJECTION_CODE_SYSTEM, "code": rejection.code}],
                "text": clip(rejection.reason),
            },
            "expression": [
                "Bundle" if rejection.index is None else f"Bundle.entry[{rejection.index}].resource"
            ],
        }
        if rejection.identifier is not None:
            issue["extension"] = [
                {
                    "url": IDENTIFIER_EXTENSION,
                    "valueIdentifier": {"system": rejection.identifier_system, "value": rejection.identifier},
                }
            ]
        issues.append(issue)
    return {"resourceType": "OperationOutcome", "issue": issues}
