"""Check what arrives against the contract: valid FHIR R4, then the contract's codes, units and ranges.

``fhir.resources`` (R4B models) checks structure and types but not code values, so the contract's own
rules run after it: a known reading type, a UCUM unit that type allows, a value that is physically
possible, and the references the gateway needs (patient, device, identifier, a time with a zone).
Every failure is one ``ContractViolation`` with a machine code and a sentence a hub operator can act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from fhir_contract.terminology import (
    GATEWAY_DEVICE_EXTENSION,
    IDENTIFIER_SYSTEM,
    LOINC,
    MDC,
    SUPPLEMENTAL_TYPES_CODE,
    UCUM,
    ReadingType,
    find_reading_type,
    to_canonical,
)

ACCEPTED_STATUSES = frozenset({"final", "amended", "corrected", "preliminary"})


class ContractViolation(ValueError):
    """Input that breaks the contract. ``code`` is stable for machines, ``reason`` is for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ValidObservation:
    """An Observation that passed the contract, with the fields the server stores and scores."""

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
    bundle_id = bundle.get("id")
    return BatchBundle(
        bundle_id if isinstance(bundle_id, str) and bundle_id else None,
        [entry.get("resource") if isinstance(entry, dict) else entry for entry in entries],
    )


def _reference_id(ref: Any, resource_type: str, element: str) -> str:
    value = ref.get("reference") if isinstance(ref, dict) else None
    prefix = f"{resource_type}/"
    if not isinstance(value, str) or not value.startswith(prefix) or len(value) == len(prefix):
        raise ContractViolation("missing-element", f"{element} must reference {resource_type}/<id>")
    return value[len(prefix) :]


def _codings(concept: Any) -> list[tuple[str, str]]:
    codings = concept.get("coding", []) if isinstance(concept, dict) else []
    return [(c.get("system", ""), c.get("code", "")) for c in codings if isinstance(c, dict)]


def _check_value(
    quantity: Any, units: tuple[str, ...], bounds: tuple[float, float], what: str
) -> tuple[float, str]:
    unit = quantity.get("code")
    if quantity.get("system") != UCUM or unit not in units:
        raise ContractViolation(
            "unit-mismatch",
            f"{what} unit {unit!r} (system {quantity.get('system')!r}) is not one of {units} in UCUM",
        )
    value = float(quantity["value"])
    canonical, canonical_unit = to_canonical(value, unit)
    low, high = bounds
    if not low <= canonical <= high:
        raise ContractViolation(
            "impossible-value",
            f"{what} {value:g} {unit} is outside the possible range {low:g}-{high:g} {canonical_unit}",
        )
    return value, unit


def _supplemental_type(resource: Mapping[str, Any]) -> str | None:
    """The MDC code in the Observation's supplemental-types component (PHD IG), if it has one."""
    for part in resource.get("component", []):
        if (MDC, SUPPLEMENTAL_TYPES_CODE) in _codings(part.get("code")):
            return next(
                (code for system, code in _codings(part.get("valueCodeableConcept")) if system == MDC), None
            )
    return None


def _components(resource: Mapping[str, Any], rtype: ReadingType) -> dict[str, float | None]:
    found: dict[str, float | None] = {}
    for part in resource.get("component", []):
        codings = _codings(part.get("code"))
        ctype = next(
            (
                c
                for c in rtype.components
                if (MDC, c.mdc.code) in codings or any((LOINC, code) in codings for code in c.loinc)
            ),
            None,
        )
        if ctype is None:
            raise ContractViolation("unknown-code", f"{rtype.display} has an unknown component {codings}")
        if "valueQuantity" in part:
            found[ctype.key] = _check_value(part["valueQuantity"], ctype.units, ctype.range, ctype.key)[0]
        elif "dataAbsentReason" in part:
            found[ctype.key] = None
        else:
            raise ContractViolation(
                "missing-element", f"component {ctype.key} has neither value nor dataAbsentReason"
            )
    missing = [key for key in rtype.required_components if key not in found]
    if missing:
        raise ContractViolation("missing-element", f"{rtype.display} lacks component(s) {', '.join(missing)}")
    return found


def validate_observation(resource: Mapping[str, Any]) -> ValidObservation:
    """Validate one Observation (as parsed JSON) against FHIR R4 and the contract."""
    if not isinstance(resource, Mapping) or resource.get("resourceType") != "Observation":
        raise ContractViolation("invalid-fhir", "entry is not an Observation resource")
    try:
        Observation.model_validate(dict(resource))
    except (ValidationError, ValueError, TypeError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) and exc.errors() else None
        where = ".".join(str(p) for p in first["loc"]) if first else ""
        detail = f"{where}: {first['msg']}" if first else str(exc)
        raise ContractViolation("invalid-fhir", f"not a valid FHIR R4 Observation ({detail})") from exc

    status = resource.get("status")
    if status not in ACCEPTED_STATUSES:
        raise ContractViolation(
            "invalid-fhir", f"status {status!r} is not one of {sorted(ACCEPTED_STATUSES)}"
        )
    identifier = next(
        (i.get("value") for i in resource.get("identifier", []) if i.get("system") == IDENTIFIER_SYSTEM), None
    )
    if not identifier:
        raise ContractViolation(
            "missing-element", f"Observation.identifier with system {IDENTIFIER_SYSTEM} is required"
        )
    codings = _codings(resource.get("code"))
    rtype = find_reading_type(codings, _supplemental_type(resource))
    if rtype is None:
        raise ContractViolation(
            "unknown-code", f"Observation.code {codings} is no reading type of the contract"
        )
    patient_id = _reference_id(resource.get("subject"), "Patient", "Observation.subject")
    device_id = _reference_id(resource.get("device"), "Device", "Observation.device")
    hub_id = next(
        (
            _reference_id(ext.get("valueReference"), "Device", "gatewayDevice extension")
            for ext in resource.get("extension", [])
            if ext.get("url") == GATEWAY_DEVICE_EXTENSION
        ),
        None,
    )
    raw_time = resource.get("effectiveDateTime")
    try:
        effective = datetime.fromisoformat(raw_time) if isinstance(raw_time, str) else None
    except ValueError:
        effective = None
    if effective is None or effective.tzinfo is None:
        raise ContractViolation("missing-element", "effectiveDateTime with a time zone is required")

    value: float | None = None
    unit: str | None = None
    if "valueQuantity" in resource:
        if rtype.range is None:
            raise ContractViolation("invalid-fhir", f"{rtype.display} takes components, not a value")
        value, unit = _check_value(resource["valueQuantity"], rtype.units, rtype.range, rtype.display)
    elif not rtype.components and "dataAbsentReason" not in resource:
        raise ContractViolation("missing-element", f"{rtype.display} has neither value nor dataAbsentReason")
    components = _components(resource, rtype) if rtype.components else {}
    if components and rtype.components:
        unit = rtype.components[0].units[0]

    loinc = rtype.loinc_for(unit)
    return ValidObservation(
        identifier=identifier,
        kind=rtype.key,
        loinc=loinc[0] if loinc else "",
        patient_id=patient_id,
        device_id=device_id,
        hub_id=hub_id,
        effective=effective,
        value=value,
        unit=unit,
        components=components,
        resource=dict(resource),
    )
