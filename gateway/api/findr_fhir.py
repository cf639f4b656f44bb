"""``POST /fhir`` from a system account: staff change observations and hospital stays, entry by entry.

A home-care record system (role ``homecare_system``) sends the early-detection change forms its staff
fill in; a hospital system (``hospital_system``) sends inpatient Encounters, an admission first and the
same Encounter (same identifier) again with ``period.end`` at discharge. Both send a ``batch`` Bundle (or
a ``transaction``: all or nothing) to the same ``POST /fhir`` as the hubs; ``deps.FhirPoster`` lets their
token in and ``fhir_api.post_batch`` hands the body here.

Deciding is pure (``decide``: bytes in, values out; no database, the clock passed in), so every rule is
tested without a server and fuzzed with hypothesis. Per entry, in order:

1. the entry holds a ``resource`` object (and, when it has a ``request``, its method is POST or PUT);
2. the account's role and token grant creating that resource type (``scopes.granted``: a home-care system
   ``system/Observation.write``, a hospital system ``system/Encounter.write``); else 403;
3. the resource is valid FHIR R4 (``fhir.resources``, R4B models, which match R4 for both types); else 400;
4. the closed rules, else 422. An Observation: status final, amended or corrected; a code
   ``CHANGE_SYSTEM|CHANGE_FORM`` with one component per checked item (``CHANGE_SYSTEM|<key>`` of
   ``models.codes.CHANGE_OBSERVATIONS``, ``valueBoolean``; a component with a ``dataAbsentReason``
   instead was not checked), or ``CHANGE_SYSTEM|<key>`` with a ``valueBoolean`` of its own; an
   ``effectiveDateTime`` with a time and zone, not before 2015 nor after now + 10 minutes (the
   contract's window, ``fhir_contract.limits``). An Encounter: class IMP, ACUTE or NONAC of v3 ActCode;
   a status of ``ENCOUNTER_STATUSES`` ('finished' with a ``period.end``, one in progress without);
   ``period.start`` in the same window, ``period.end`` (the discharge) not before it nor in the future.
   Both: ``subject`` ``Patient/<FHIR id>`` and an ``identifier`` with a system and a value (printable
   ASCII), which makes the entry idempotent; the system ``WEB_IDENTIFIER_SYSTEM`` is the web form's.

Storing (``store``) writes each decided entry in its own savepoint through ``gateway.store.findr_inputs``
under the account's municipality, never one read from the message: a patient the municipality does not
have (another municipality's among them) is 404, worded the same either way; an identifier already used
for another patient is 409; a value the database refuses is 422; one bad entry never stops the others.
A ``transaction`` is stored only when every entry passes (otherwise one OperationOutcome listing every
problem, and nothing stored). Each stored entry writes a ``fhir-write`` audit row. The answer is a
``batch-response`` (``transaction-response``): 201 Created for a new record, 200 OK for one sent again
or updated (a discharge), a 4xx with an OperationOutcome for a refused entry, in the request's order.

``change_form_resource`` and ``encounter_resource`` build the same shapes for the web form
(``findr_pages``), which stores them through ``decide_resource`` so both paths keep one set of rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import orjson
import psycopg
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from fhir_contract.limits import EFFECTIVE_FLOOR, MAX_BUNDLE_ENTRIES, MAX_CLOCK_AHEAD, is_fhir_id
from gateway.api import scopes
from gateway.api.auth import Claims
from gateway.api.errors import ApiError
from gateway.store import findr_inputs
from gateway.store.audit import record_audit
from gateway.store.errors import describe, is_transient
from gateway.store.findr_inputs import HospitalStay, StaffObservation
from models.codes import ACT_CODE, CHANGE_FORM, CHANGE_OBSERVATIONS, CHANGE_SYSTEM, OBSERVATION_CATEGORY

BundleKind = Literal["batch", "transaction"]
Record = StaffObservation | HospitalStay

OBSERVATION_STATUSES: Final = frozenset({"final", "amended", "corrected"})
# An inpatient stay, by Encounter.class (v3 ActCode): inpatient, inpatient acute, inpatient non-acute.
INPATIENT_CLASSES: Final = frozenset({"IMP", "ACUTE", "NONAC"})
# Statuses of a stay that happened or is happening; 'cancelled' and 'entered-in-error' withdraw one sent
# before (stored, so the same identifier updates it, and never counted: ``findr_inputs.counts``).
ENCOUNTER_STATUSES: Final = frozenset({"in-progress", "onleave", "finished", "cancelled", "entered-in-error"})
_OPEN_STATUSES: Final = frozenset({"in-progress", "onleave"})
# The web form's identifiers (a random uuid each); a system account may not send this system.
WEB_IDENTIFIER_SYSTEM: Final = "urn:homewatch:web"
# Longest identifier (system|value) kept: short enough for any index entry, as the readings' own.
MAX_IDENTIFIER_CHARS: Final = 512
AUDIT_ACTION: Final = "fhir-write"
# Longest text of a sender's value echoed in an answer.
_ECHO_CHARS: Final = 64
_REASONS: Final = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Entity",
}
_ISSUE_TYPE: Final = {400: "structure", 403: "forbidden", 404: "not-found", 409: "duplicate", 413: "too-long"}


class Refused(ApiError, ValueError):
    """Why a Bundle or one entry is refused: the HTTP status, the OperationOutcome issue type and a
    sentence for the sender's developers."""

    def __init__(self, status: int, diagnostics: str, code: str | None = None) -> None:
        super().__init__(f"{status}: {diagnostics}")
        self.status = status
        self.code = code or _ISSUE_TYPE.get(status, "business-rule" if status == 422 else "invalid")
        self.diagnostics = diagnostics


@dataclass(frozen=True, slots=True)
class Account:
    """Who sends: the system account's user (its municipality is the one everything is stored under)
    and the scopes its token carries."""

    username: str
    municipality_id: str
    role: str
    scopes: frozenset[str]

    @classmethod
    def of(cls, claims: Claims) -> Account:
        return cls(claims.user.username, claims.user.municipality_id, claims.user.role, claims.scopes)


@dataclass(frozen=True, slots=True)
class Decided:
    """One entry: the record to store, or why it is refused."""

    record: Record | None
    refused: Refused | None


@dataclass(frozen=True, slots=True)
class Decision:
    """A whole Bundle: its kind and one decision per entry, in order."""

    kind: BundleKind
    entries: tuple[Decided, ...]


def _echo(value: Any) -> str:
    """A sender's value for an answer: a text cut short, anything else by its JSON type only (never
    serialised again: it may be nested as deep as the parser allows)."""
    if isinstance(value, str):
        return repr(value[:_ECHO_CHARS])
    return "null" if value is None else f"a JSON {type(value).__name__}"


# --- the Bundle -----------------------------------------------------------------------------------------


def read_bundle(payload: bytes, max_bytes: int) -> tuple[BundleKind, list[Any]]:
    """The Bundle's kind and entries; Refused (400, 413) when the payload is not one we take."""
    if len(payload) > max_bytes:
        raise Refused(413, f"payload of {len(payload)} bytes exceeds {max_bytes} bytes")
    try:
        bundle = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise Refused(400, f"payload is not JSON: {exc}") from exc
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise Refused(400, "payload is not a FHIR Bundle")
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise Refused(400, f"Bundle.type is {_echo(kind)}; send a 'batch' or a 'transaction'")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise Refused(400, "Bundle.entry is not a list")
    if len(entries) > MAX_BUNDLE_ENTRIES:
        raise Refused(413, f"Bundle has {len(entries)} entries; at most {MAX_BUNDLE_ENTRIES} are taken")
    return ("batch" if kind == "batch" else "transaction"), entries


def decide(payload: bytes, account: Account, *, max_bytes: int, now: datetime) -> Decision:
    """The decision about every entry of ``payload`` (pure); Refused for a Bundle refused whole."""
    kind, entries = read_bundle(payload, max_bytes)
    return Decision(kind, tuple(_decide_entry(entry, account, now) for entry in entries))


def _decide_entry(entry: Any, account: Account, now: datetime) -> Decided:
    try:
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            raise Refused(400, "the entry holds no resource")
        request = entry.get("request")
        if request is not None:
            method = request.get("method") if isinstance(request, dict) else None
            if method not in ("POST", "PUT"):
                raise Refused(400, f"entry.request.method is {_echo(method)}; only POST or PUT is taken")
        return Decided(decide_resource(entry["resource"], account, now=now), None)
    except Refused as refused:
        return Decided(None, refused)


@dataclass(frozen=True, slots=True)
class _Sender:
    username: str
    municipality_id: str
    source: Literal["fhir", "web"]


def decide_resource(resource: Mapping[str, Any], account: Account, *, now: datetime) -> Record:
    """The record one resource stands for (pure); Refused (403, 400, 422) with why it is not taken."""
    kind = resource.get("resourceType")
    if not isinstance(kind, str) or not scopes.granted(
        account.scopes, account.role, "system", kind, "create"
    ):
        raise Refused(403, f"a {account.role} account may not create {_echo(kind)} resources")
    return _record(resource, _Sender(account.username, account.municipality_id, "fhir"), now)


def decide_web_resource(
    resource: Mapping[str, Any], *, username: str, municipality_id: str, now: datetime
) -> Record:
    """The record of a resource the web form built for a nurse (``change_form_resource``,
    ``encounter_resource``), by the same rules; Refused as ``decide_resource``."""
    return _record(resource, _Sender(username, municipality_id, "web"), now)


def _record(resource: Mapping[str, Any], sender: _Sender, now: datetime) -> Record:
    kind = resource.get("resourceType")
    if kind == "Observation":
        _structure(Observation, resource)
        return _staff_observation(resource, sender, now)
    if kind == "Encounter":
        _structure(Encounter, resource)
        return _hospital_stay(resource, sender, now)
    raise Refused(403, f"{_echo(kind)} resources are not taken here")


def _structure(model: type[Observation] | type[Encounter], resource: Mapping[str, Any]) -> None:
    """FHIR R4 structure and data types by fhir.resources (R4B models); Refused 400 otherwise."""
    try:
        model.model_validate(dict(resource))
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
        detail = f"{where}: {errors[0]['msg']}" if errors else "invalid"
        raise Refused(400, f"not a valid FHIR R4 {model.__name__} ({detail[:200]})") from exc
    except (ValueError, TypeError, RecursionError) as exc:
        raise Refused(400, f"not a valid FHIR R4 {model.__name__} ({type(exc).__name__})") from exc


# --- the closed rules -----------------------------------------------------------------------------------


def _objects(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _codes(concept: Any, system: str) -> list[str]:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return [
        c["code"] for c in _objects(codings) if c.get("system") == system and isinstance(c.get("code"), str)
    ]


def _patient(resource: Mapping[str, Any]) -> str:
    subject = resource.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    kind, slash, ident = reference.partition("/") if isinstance(reference, str) else ("", "", "")
    if kind != "Patient" or not slash or not is_fhir_id(ident):
        raise Refused(422, "subject must reference Patient/<id>")
    return ident


def _identifier(resource: Mapping[str, Any], *, web: bool) -> str:
    """``system|value`` of the first identifier with both; printable ASCII, short enough to index."""
    for item in _objects(resource.get("identifier")):
        system, value = item.get("system"), item.get("value")
        if isinstance(system, str) and isinstance(value, str) and system and value:
            if system == WEB_IDENTIFIER_SYSTEM and not web:
                raise Refused(422, f"the identifier system {WEB_IDENTIFIER_SYSTEM} is the web form's own")
            text = f"{system}|{value}"
            if len(text) > MAX_IDENTIFIER_CHARS or not all("!" <= c <= "~" for c in text):
                raise Refused(
                    422,
                    f"identifier system and value must be printable ASCII, {MAX_IDENTIFIER_CHARS} at most",
                )
            return text
    raise Refused(422, "an identifier with a system and a value is required (it makes a resend harmless)")


def _moment(text: Any, element: str, now: datetime) -> datetime:
    """An aware moment in the contract's window [2015, now + 10 min]; Refused 422 otherwise."""
    moment = None
    if isinstance(text, str) and "T" in text:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
    if moment is None or moment.tzinfo is None:
        raise Refused(422, f"{element} must be a date and time with a zone (e.g. 2026-01-05T09:30:00+01:00)")
    try:
        plausible = EFFECTIVE_FLOOR <= moment <= now + MAX_CLOCK_AHEAD
        moment = moment.astimezone(UTC)
    except OverflowError:  # an offset that pushes the moment past the calendar's ends
        plausible = False
    if not plausible:
        raise Refused(422, f"{element} {_echo(text)} is before 2015 or in the future")
    return moment


def _item_value(holder: Mapping[str, Any], key: str) -> bool | None:
    """True (change seen), False (checked, none seen) or None (not checked: a dataAbsentReason)."""
    value = holder.get("valueBoolean")
    if isinstance(value, bool):
        return value
    if "dataAbsentReason" in holder and not any(k.startswith("value") for k in holder):
        return None
    raise Refused(422, f"item {key} needs a valueBoolean (true: a change seen) or a dataAbsentReason")


def _item_key(concept: Any) -> str:
    keys = _codes(concept, CHANGE_SYSTEM)
    if not keys or keys[0] not in CHANGE_OBSERVATIONS:
        raise Refused(422, f"an item's code must be {CHANGE_SYSTEM}|one of {', '.join(CHANGE_OBSERVATIONS)}")
    return keys[0]


def _items(resource: Mapping[str, Any]) -> dict[str, bool]:
    codes = _codes(resource.get("code"), CHANGE_SYSTEM)
    if not codes:
        raise Refused(422, f"not an early-detection observation: code must be {CHANGE_SYSTEM}|{CHANGE_FORM}")
    found: dict[str, bool] = {}
    if codes[0] == CHANGE_FORM:
        if any(k.startswith("value") for k in resource):
            raise Refused(422, "a change form carries its items as components, not a value of its own")
        seen: set[str] = set()
        for component in _objects(resource.get("component")):
            key = _item_key(component.get("code"))
            if key in seen:
                raise Refused(422, f"item {key} appears twice in the form")
            seen.add(key)
            value = _item_value(component, key)
            if value is not None:
                found[key] = value
    else:
        key = _item_key(resource.get("code"))
        if resource.get("component") is not None:
            raise Refused(422, "a single item has no components")
        value = _item_value(resource, key)
        if value is not None:
            found[key] = value
    if not found:
        raise Refused(422, "the observation records no checked item")
    return found


def _staff_observation(resource: Mapping[str, Any], sender: _Sender, now: datetime) -> StaffObservation:
    status = resource.get("status")
    if status not in OBSERVATION_STATUSES:
        raise Refused(422, f"status {_echo(status)} is not one of {sorted(OBSERVATION_STATUSES)}")
    items = _items(resource)
    return StaffObservation(
        municipality_id=sender.municipality_id,
        patient_id=_patient(resource),
        identifier=_identifier(resource, web=sender.source == "web"),
        effective=_moment(resource.get("effectiveDateTime"), "effectiveDateTime", now),
        items=items,
        recorded_by=sender.username,
        source=sender.source,
        resource=dict(resource),
    )


def _hospital_stay(resource: Mapping[str, Any], sender: _Sender, now: datetime) -> HospitalStay:
    klass = resource.get("class")
    system = klass.get("system") if isinstance(klass, dict) else None
    code = klass.get("code") if isinstance(klass, dict) else None
    if system != ACT_CODE or code not in INPATIENT_CLASSES:
        raise Refused(422, f"class must be {ACT_CODE}|IMP, ACUTE or NONAC (a hospital stay)")
    status = resource.get("status")
    if status not in ENCOUNTER_STATUSES:
        raise Refused(422, f"status {_echo(status)} is not one of {sorted(ENCOUNTER_STATUSES)}")
    period = resource.get("period")
    period = period if isinstance(period, dict) else {}
    start = _moment(period.get("start"), "period.start", now)
    end = None if period.get("end") is None else _moment(period.get("end"), "period.end", now)
    if end is not None and end < start:
        raise Refused(422, "period.end (the discharge) is before period.start (the admission)")
    if status == "finished" and end is None:
        raise Refused(422, "a finished stay needs period.end (the discharge)")
    if status in _OPEN_STATUSES and end is not None:
        raise Refused(422, f"a stay {status} has no period.end yet; send status finished with it")
    return HospitalStay(
        municipality_id=sender.municipality_id,
        patient_id=_patient(resource),
        identifier=_identifier(resource, web=sender.source == "web"),
        status=str(status),
        class_code=str(code),
        period_start=start,
        period_end=end,
        recorded_by=sender.username,
        source=sender.source,
        resource=dict(resource),
    )


# --- storing and answering ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    """What became of one entry: 201, 200 or the refusal."""

    status: int
    refused: Refused | None = None
    patient_id: str | None = None


def store_record(conn: psycopg.Connection[Any], record: Record) -> int:
    """Store one decided record in its own savepoint: 201 new, 200 sent again or updated; Refused
    404 (no such patient here), 409 (identifier of another patient), 422 (the database refuses a value).
    A database that is away is raised as it is (the app answers 503)."""
    try:
        with conn.transaction():
            if isinstance(record, StaffObservation):
                created = findr_inputs.store_staff_observation(conn, record)
            else:
                created = findr_inputs.store_encounter(conn, record) == "created"
    except findr_inputs.UnknownPatient as exc:
        # The id is not echoed (the entry's position says which), nor whether another municipality has it.
        raise Refused(404, "the subject's Patient is not known in this municipality", "not-found") from exc
    except findr_inputs.IdentifierConflict as exc:
        raise Refused(409, "the identifier is stored already for another patient") from exc
    except psycopg.Error as exc:
        if is_transient(exc):
            raise
        raise Refused(422, f"the database cannot store the entry ({describe(exc)[:200]})") from exc
    return 201 if created else 200


def store(conn: psycopg.Connection[Any], decision: Decision, account: Account, client: str) -> list[Result]:
    """Store every decided entry (a transaction: all or none) and audit the patients written."""
    results: list[Result] = []
    if decision.kind == "transaction" and any(d.refused for d in decision.entries):
        return [Result(d.refused.status, d.refused) if d.refused else Result(200) for d in decision.entries]
    with conn.transaction():
        for decided in decision.entries:
            if decided.record is None:
                assert decided.refused is not None
                results.append(Result(decided.refused.status, decided.refused))
                continue
            try:
                results.append(Result(store_record(conn, decided.record), None, decided.record.patient_id))
            except Refused as refused:
                if decision.kind == "transaction":
                    raise _TransactionFailed([*results, Result(refused.status, refused)]) from refused
                results.append(Result(refused.status, refused))
        written = [r.patient_id for r in results if r.patient_id is not None]
        if written:
            detail = f"POST /fhir {decision.kind}: {len(written)} of {len(results)} entries stored"
            record_audit(conn, account, AUDIT_ACTION, written, detail, client=client)
    return results


class _TransactionFailed(Exception):
    def __init__(self, results: list[Result]) -> None:
        super().__init__("transaction failed")
        self.results = results


def _outcome(issues: Sequence[tuple[int | None, Refused]]) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": refused.code,
                "diagnostics": refused.diagnostics,
                "expression": ["Bundle" if index is None else f"Bundle.entry[{index}]"],
            }
            for index, refused in issues
        ],
    }


def refused_whole(refused: Refused) -> tuple[int, dict[str, Any]]:
    """The status and OperationOutcome answering a Bundle refused whole."""
    return refused.status, _outcome([(None, refused)])


def answer(kind: BundleKind, results: Sequence[Result]) -> tuple[int, dict[str, Any]]:
    """The status and body answering the stored Bundle: a batch-response (a transaction-response), or,
    for a transaction with a refused entry, the OperationOutcome of every refused entry."""
    refused = [(i, r.refused) for i, r in enumerate(results) if r.refused is not None]
    if kind == "transaction" and refused:
        return refused[0][1].status, _outcome(refused)
    entries = []
    for index, result in enumerate(results):
        response: dict[str, Any] = {"status": f"{result.status} {_REASONS[result.status]}"}
        if result.refused is not None:
            response["outcome"] = _outcome([(index, result.refused)])
        entries.append({"response": response})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": f"{kind}-response"}
    if entries:  # FHIR JSON has no empty arrays
        bundle["entry"] = entries
    return 200, bundle


def post(
    conn: psycopg.Connection[Any], claims: Claims, payload: bytes, *, max_bytes: int, client: str
) -> tuple[int, dict[str, Any]]:
    """Decide, store and answer a system account's Bundle: the HTTP status and the body."""
    account = Account.of(claims)
    try:
        decision = decide(payload, account, max_bytes=max_bytes, now=datetime.now(UTC))
    except Refused as refused:
        return refused_whole(refused)
    try:
        results = store(conn, decision, account, client)
    except _TransactionFailed as failed:
        return answer("transaction", failed.results)
    return answer(decision.kind, results)


# --- building the same shapes for the web form ----------------------------------------------------------


def change_form_resource(
    patient_id: str, identifier: str, effective: datetime, items: Mapping[str, bool]
) -> dict[str, Any]:
    """A change form as an Observation (``models.codes``): one component per checked item."""
    return {
        "resourceType": "Observation",
        "identifier": [{"system": WEB_IDENTIFIER_SYSTEM, "value": identifier}],
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey"}]}],
        "code": {"coding": [{"system": CHANGE_SYSTEM, "code": CHANGE_FORM}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": effective.isoformat(),
        "component": [
            {"code": {"coding": [{"system": CHANGE_SYSTEM, "code": key}]}, "valueBoolean": value}
            for key, value in items.items()
        ],
    }


def encounter_resource(
    patient_id: str,
    identifier: str,
    start: datetime,
    end: datetime | None,
    *,
    system: str = WEB_IDENTIFIER_SYSTEM,
) -> dict[str, Any]:
    """A hospital stay as an inpatient Encounter: in progress, or finished at ``end``."""
    period = {"start": start.isoformat()} | ({"end": end.isoformat()} if end is not None else {})
    return {
        "resourceType": "Encounter",
        "identifier": [{"system": system, "value": identifier}],
        "status": "in-progress" if end is None else "finished",
        "class": {"system": ACT_CODE, "code": "IMP"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": period,
    }


def discharged_resource(resource: Mapping[str, Any], end: datetime) -> dict[str, Any]:
    """A stored stay's Encounter as sent again with its discharge: status finished, ``period.end``."""
    period = resource.get("period")
    return {
        **resource,
        "status": "finished",
        "period": {**(period if isinstance(period, dict) else {}), "end": end.isoformat()},
    }
