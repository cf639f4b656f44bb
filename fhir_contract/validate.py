"""Check what arrives against the contract: valid FHIR R4, then the contract's codes, units and ranges.

Structure first. ``validate_observation`` runs the fast closed-world check of
``fhir_contract.fast_structure`` on the parsed JSON and falls back to the full ``fhir.resources`` (R4B
models) validation when the resource holds anything that check does not know (a third-party sender's
element or extension); ``validate_observation_strict`` always runs ``fhir.resources``. Both give the
same verdict (a differential test in ``tests/fhir_contract`` holds them to it). Neither checks code
values, so the contract's own rules run after, on the dict: a known reading type, a UCUM unit that
type allows, a value that is physically possible, and the references the gateway needs (patient,
device, identifier, a time with a zone). Every failure is one ``ContractViolation`` with a machine code
and a sentence a hub operator can act on. The range check converts each value to its type's canonical
unit (``fhir_contract.units``); a ``ValidObservation`` carries those values beside the values as sent,
so the gateway stores both and nothing converts again.

What the gateway stores must also be storable and plausible, whatever a hostile sender tries, so the
contract bounds what FHIR leaves open (``docs/fhir-contract.md``, "Limits"):

- the effective time lies in ``[EFFECTIVE_FLOOR, now + MAX_CLOCK_AHEAD]`` (``implausible-time``): no
  reading is dated in the future (the hub never dates one there, ``docs/devices.md``) or before 2015,
  the date before which the hub calls a device clock unset; a date at the edge of the calendar would
  overflow the time arithmetic of storage;
- the patient, device and hub references carry FHIR ids (``[A-Za-z0-9-.]{1,64}``) and the identifier
  is printable ASCII of at most ``MAX_IDENTIFIER_CHARS`` (no NUL or control character reaches the
  database, no key outgrows an index entry);
- a Bundle holds at most ``MAX_BUNDLE_ENTRIES`` entries (``too-many-entries``; the hub's Bundles are
  smaller, ``edge_agent.config``) and its id, when present, is a FHIR id (it is echoed in the receipt).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from fhir_contract.fast_structure import StructureError, Unsupported, check_observation
from fhir_contract.limits import (
    EFFECTIVE_FLOOR,
    FHIR_ID,
    IDENTIFIER_VALUE,
    MAX_BUNDLE_ENTRIES,
    MAX_CLOCK_AHEAD,
    MAX_IDENTIFIER_CHARS,
    is_fhir_id,
)
from fhir_contract.terminology import (
    GATEWAY_DEVICE_EXTENSION,
    IDENTIFIER_SYSTEM,
    LOINC,
    MDC,
    SUPPLEMENTAL_TYPES_CODE,
    UCUM,
    ComponentType,
    ReadingType,
    find_reading_type,
)
from fhir_contract.units import to_canonical

ACCEPTED_STATUSES = frozenset({"final", "amended", "corrected", "preliminary"})


class ContractViolation(ValueError):
    """Input that breaks the contract. ``code`` is stable for machines, ``reason`` is for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ValidObservation:
    """An Observation that passed the contract, with the fields the server stores and scores.

    ``value``, ``unit`` and ``components`` are as sent; the ``canonical_`` fields are the same values in
    the reading type's first unit (the range check computed them: nothing converts them again), and
    what scoring reads. A panel's ``unit`` and ``canonical_unit`` are its components' canonical unit.
    """

    identifier: str
    kind: str
    loinc: str
    patient_id: str
    device_id: str
    hub_id: str | None
    effective: datetime
    value: float | None
    unit: str | None
    components: dict[str, float | None]
    resource: dict[str, Any]
    canonical_value: float | None
    canonical_unit: str | None
    canonical_components: dict[str, float | None]


@dataclass(frozen=True, slots=True)
class BatchBundle:
    """A ``batch`` Bundle as the gateway reads it: its id and its entries' resources."""

    # Bundle.id: the hub's name for this batch, echoed in the gateway's receipt (None when absent).
    id: str | None
    # Entries that are not objects are kept as they are, for ``validate_observation`` to reject.
    resources: list[Any]


def parse_bundle(payload: bytes, max_bytes: int) -> BatchBundle:
    """Read a ``batch`` Bundle; ContractViolation when the payload is not one (or too large)."""
    if len(payload) > max_bytes:
        raise ContractViolation("too-large", f"payload of {len(payload)} bytes exceeds {max_bytes} bytes")
    try:
        bundle = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ContractViolation("not-json", f"payload is not JSON: {exc}") from exc
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise ContractViolation("not-a-bundle", "payload is not a FHIR Bundle")
    if bundle.get("type") != "batch":
        raise ContractViolation("not-a-bundle", f"Bundle.type is {bundle.get('type')!r}, expected 'batch'")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise ContractViolation("not-a-bundle", "Bundle.entry is not a list")
    if len(entries) > MAX_BUNDLE_ENTRIES:
        raise ContractViolation(
            "too-many-entries", f"Bundle has {len(entries)} entries; at most {MAX_BUNDLE_ENTRIES} are taken"
        )
    bundle_id = bundle.get("id")
    if bundle_id is not None and not (isinstance(bundle_id, str) and FHIR_ID.fullmatch(bundle_id)):
        raise ContractViolation("invalid-fhir", "Bundle.id is not a FHIR id ([A-Za-z0-9-.]{1,64})")
    return BatchBundle(
        bundle_id,
        [entry.get("resource") if isinstance(entry, dict) else entry for entry in entries],
    )


def _objects(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON array; anything else (null, a string fhir.resources read as JSON) is none."""
    return [item for item in value if type(item) is dict] if type(value) is list else []


def _reference_id(ref: Any, resource_type: str, element: str) -> str:
    value = ref.get("reference") if type(ref) is dict else None
    kind, slash, ident = value.partition("/") if type(value) is str else ("", "", "")
    if kind != resource_type or not slash or not ident:
        raise ContractViolation("missing-element", f"{element} must reference {resource_type}/<id>")
    if not is_fhir_id(ident):
        raise ContractViolation("invalid-fhir", f"{element} must reference {resource_type}/<a FHIR id>")
    return ident


def _codings(concept: Any) -> list[tuple[str, str]]:
    codings = concept.get("coding") if type(concept) is dict else None
    if type(codings) is not list:
        return []
    return [(c.get("system", ""), c.get("code", "")) for c in codings if type(c) is dict]


class _Checked(NamedTuple):
    """A value that passed its unit and range check: as sent, and in the canonical unit. (A tuple, not
    a frozen dataclass: one is made per value on ingest's hot path, and a tuple is made several times
    faster.)"""

    value: float
    unit: str
    canonical: float
    canonical_unit: str


def _check_value(quantity: Any, units: tuple[str, ...], bounds: tuple[float, float], what: str) -> _Checked:
    if not isinstance(quantity, dict):
        raise ContractViolation("invalid-fhir", f"{what} valueQuantity is not a JSON object")
    unit = quantity.get("code")
    if quantity.get("system") != UCUM or unit not in units:
        raise ContractViolation(
            "unit-mismatch",
            f"{what} unit {unit!r} (system {quantity.get('system')!r}) is not one of {units} in UCUM",
        )
    raw = quantity.get("value")
    # A FHIR decimal is a JSON number; fhir.resources also takes "72", the contract does not.
    if not isinstance(raw, int | float) or isinstance(raw, bool):
        raise ContractViolation("invalid-fhir", f"{what} valueQuantity.value {raw!r} is not a JSON number")
    value = float(raw)
    canonical, canonical_unit = to_canonical(value, unit)
    low, high = bounds
    if not low <= canonical <= high:
        raise ContractViolation(
            "impossible-value",
            f"{what} {value:g} {unit} is outside the possible range {low:g}-{high:g} {canonical_unit}",
        )
    return _Checked(value, unit, canonical, canonical_unit)


def _supplemental_type(resource: Mapping[str, Any]) -> str | None:
    """The MDC code in the Observation's supplemental-types component (PHD IG), if it has one."""
    for part in _objects(resource.get("component")):
        if (MDC, SUPPLEMENTAL_TYPES_CODE) in _codings(part.get("code")):
            return next(
                (code for system, code in _codings(part.get("valueCodeableConcept")) if system == MDC), None
            )
    return None


_COMPONENT_INDEXES: dict[str, dict[tuple[str, str], ComponentType]] = {}


def _component_index(rtype: ReadingType) -> dict[tuple[str, str], ComponentType]:
    """A reading type's components by each coding that names one, (MDC, code) or (LOINC, code): the
    first such component in the type's order."""
    index = _COMPONENT_INDEXES.get(rtype.key)
    if index is None:
        index = {}
        for component in reversed(rtype.components):
            index.update({(LOINC, code): component for code in component.loinc})
            index[(MDC, component.mdc.code)] = component
        _COMPONENT_INDEXES[rtype.key] = index
    return index


def _components(resource: Mapping[str, Any], rtype: ReadingType) -> dict[str, _Checked | None]:
    found: dict[str, _Checked | None] = {}
    for part in _objects(resource.get("component")):
        codings = _codings(part.get("code"))
        # The type's first component named by any of the codings (its MDC code or a LOINC code).
        index = _component_index(rtype)
        ctype = min(
            (index[coding] for coding in codings if coding in index), key=rtype.components.index, default=None
        )
        if ctype is None:
            raise ContractViolation("unknown-code", f"{rtype.display} has an unknown component {codings}")
        if part.get("valueQuantity") is not None:
            found[ctype.key] = _check_value(part["valueQuantity"], ctype.units, ctype.range, ctype.key)
        elif part.get("dataAbsentReason") is not None:
            found[ctype.key] = None
        else:
            raise ContractViolation(
                "missing-element", f"component {ctype.key} has neither value nor dataAbsentReason"
            )
    missing = [key for key in rtype.required_components if key not in found]
    if missing:
        raise ContractViolation("missing-element", f"{rtype.display} lacks component(s) {', '.join(missing)}")
    return found


def _check_structure_strict(resource: Mapping[str, Any]) -> None:
    """FHIR R4 structure and data types by fhir.resources (R4B models, which match R4 for Observation)."""
    try:
        Observation.model_validate(dict(resource))
    except (ValidationError, ValueError, TypeError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) and exc.errors() else None
        where = ".".join(str(p) for p in first["loc"]) if first else ""
        detail = f"{where}: {first['msg']}" if first else str(exc)
        raise ContractViolation("invalid-fhir", f"not a valid FHIR R4 Observation ({detail})") from exc


def _check_structure_fast(resource: Mapping[str, Any]) -> None:
    """The same verdict as ``_check_structure_strict``: the fast check, or fhir.resources when the
    resource holds something the fast check leaves to it."""
    try:
        check_observation(resource)
    except Unsupported:
        _check_structure_strict(resource)
    except StructureError as exc:
        raise ContractViolation("invalid-fhir", f"not a valid FHIR R4 Observation ({exc})") from exc


def _is_observation(resource: Any) -> bool:
    return isinstance(resource, Mapping) and resource.get("resourceType") == "Observation"


def validate_observation(resource: Mapping[str, Any], *, now: datetime | None = None) -> ValidObservation:
    """Validate one Observation (as parsed JSON) against FHIR R4 and the contract (fast structure
    check, falling back to fhir.resources for anything it does not know). ``now`` (aware; the clock
    when None) bounds the effective time."""
    if not _is_observation(resource):
        raise ContractViolation("invalid-fhir", "entry is not an Observation resource")
    _check_structure_fast(resource)
    return _check_contract(resource, now)


def validate_observation_strict(
    resource: Mapping[str, Any], *, now: datetime | None = None
) -> ValidObservation:
    """``validate_observation`` with the structure always checked by fhir.resources (the reference
    the fast check is tested against; about ten times slower)."""
    if not _is_observation(resource):
        raise ContractViolation("invalid-fhir", "entry is not an Observation resource")
    _check_structure_strict(resource)
    return _check_contract(resource, now)


def check_effective(effective: datetime, now: datetime | None = None) -> None:
    """ContractViolation ``implausible-time`` unless ``effective`` (aware) lies in the contract's window."""
    latest = (now or datetime.now(UTC)) + MAX_CLOCK_AHEAD
    try:
        plausible = EFFECTIVE_FLOOR <= effective <= latest
    except OverflowError:  # a zone offset that pushes the moment past the calendar's ends
        plausible = False
    if not plausible:
        raise ContractViolation(
            "implausible-time",
            f"effectiveDateTime {effective.isoformat()} is outside {EFFECTIVE_FLOOR.date().isoformat()}"
            f" .. now + {MAX_CLOCK_AHEAD.total_seconds() / 60:g} min (a device clock not set, or wrong)",
        )


def _check_contract(resource: Mapping[str, Any], now: datetime | None) -> ValidObservation:
    """The contract's rules, on a structurally valid Observation as parsed JSON."""
    status = resource.get("status")
    if status not in ACCEPTED_STATUSES:
        raise ContractViolation(
            "invalid-fhir", f"status {status!r} is not one of {sorted(ACCEPTED_STATUSES)}"
        )
    identifier = None
    for item in _objects(resource.get("identifier")):
        if item.get("system") == IDENTIFIER_SYSTEM:
            identifier = item.get("value")
            break
    if not identifier or not isinstance(identifier, str):
        raise ContractViolation(
            "missing-element", f"Observation.identifier with system {IDENTIFIER_SYSTEM} is required"
        )
    if not IDENTIFIER_VALUE.fullmatch(identifier):
        raise ContractViolation(
            "invalid-fhir",
            f"the {IDENTIFIER_SYSTEM} identifier must be 1-{MAX_IDENTIFIER_CHARS} printable ASCII characters",
        )
    codings = _codings(resource.get("code"))
    rtype = find_reading_type(codings, _supplemental_type(resource))
    if rtype is None:
        raise ContractViolation(
            "unknown-code", f"Observation.code {codings} is no reading type of the contract"
        )
    patient_id = _reference_id(resource.get("subject"), "Patient", "Observation.subject")
    device_id = _reference_id(resource.get("device"), "Device", "Observation.device")
    hub_id = None
    for ext in _objects(resource.get("extension")):
        if ext.get("url") == GATEWAY_DEVICE_EXTENSION:
            hub_id = _reference_id(ext.get("valueReference"), "Device", "gatewayDevice extension")
            break
    raw_time = resource.get("effectiveDateTime")
    try:
        effective = datetime.fromisoformat(raw_time) if isinstance(raw_time, str) else None
    except ValueError:
        effective = None
    if effective is None or effective.tzinfo is None:
        raise ContractViolation("missing-element", "effectiveDateTime with a time zone is required")
    check_effective(effective, now)

    checked: _Checked | None = None
    if resource.get("valueQuantity") is not None:
        if rtype.range is None:
            raise ContractViolation("invalid-fhir", f"{rtype.display} takes components, not a value")
        checked = _check_value(resource["valueQuantity"], rtype.units, rtype.range, rtype.display)
    elif not rtype.components and resource.get("dataAbsentReason") is None:
        raise ContractViolation("missing-element", f"{rtype.display} has neither value nor dataAbsentReason")
    unit = checked.unit if checked is not None else None
    canonical_unit = checked.canonical_unit if checked is not None else None
    components = _components(resource, rtype) if rtype.components else {}
    if components and rtype.components:
        unit = canonical_unit = rtype.components[0].units[0]

    loinc = rtype.loinc_for(unit)
    return ValidObservation(
        identifier=identifier,
        kind=rtype.key,
        loinc=loinc[0] if loinc else "",
        patient_id=patient_id,
        device_id=device_id,
        hub_id=hub_id,
        effective=effective,
        value=checked.value if checked is not None else None,
        unit=unit,
        components={key: None if c is None else c.value for key, c in components.items()},
        resource=dict(resource),
        canonical_value=checked.canonical if checked is not None else None,
        canonical_unit=canonical_unit,
        canonical_components={key: None if c is None else c.canonical for key, c in components.items()},
    )
