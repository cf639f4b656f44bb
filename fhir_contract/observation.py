"""Build the FHIR R4 Observations and the batch Bundle that a hub sends.

Follows the HL7 Personal Health Device IG where it applies: LOINC coding (vital-signs profile) plus the
IEEE 11073 MDC coding, UCUM units, the sensor as ``Observation.device``, the hub as the
``observation-gatewayDevice`` extension, special values as ``dataAbsentReason``, and a stable identifier
built from device, patient, type and the device's own time stamp, so the server de-duplicates
redeliveries and re-sent stored readings. A body site becomes the site's MDC code (and LOINC coding)
plus ``bodySite``; a variant type (fast SpO2) carries its supplemental-types component. Measurement
status follows the IG too (``fhir_contract.status``): ``preliminary`` for a value still being measured
(intermediate cuff pressure, identified by the hub's receipt time instead, so it never takes a final
reading's identifier), a ``questionable`` interpretation, and ``HTEST`` security for test data.

A number outside the contract's plausible range (``range`` of the reading type or component in
``fhir/terminology.json``, compared in the canonical unit, as the gateway's ``validate_observation``
compares it) is never sent as a number: a device that says a body temperature is -1E+127 Cel has failed,
and the Observation says so with ``dataAbsentReason`` ``error`` (``IMPLAUSIBLE_REASON``), the number the
device sent kept in the reason's ``text``. The Observation still passes the gateway's validation, so
the reading is stored (the device fault is on record) instead of quarantined. The builder stays pure
and logs nothing: the fault travels in the Observation, and what to do about a faulty device is left
to those who read it.
"""

from __future__ import annotations

import copy
import math
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fhir_contract.readings import Absent, Quantity, Reading, Value
from fhir_contract.status import (
    FINAL,
    PRELIMINARY,
    QUESTIONABLE_INTERPRETATION,
    TEST_DATA_SECURITY,
)
from fhir_contract.terminology import (
    DATA_ABSENT_REASON,
    DEVICE_TIME_EXTENSION,
    GATEWAY_DEVICE_EXTENSION,
    IDENTIFIER_SYSTEM,
    MDC,
    OBSERVATION_CATEGORY,
    PHD_CATEGORY,
    RECEIVED_EXTENSION,
    SUPPLEMENTAL_TYPES_CODE,
    UCUM,
    ReadingType,
    reading_type,
)
from fhir_contract.units import to_canonical

_EPOCH_2000 = datetime(2000, 1, 1, tzinfo=UTC)

FhirJson = dict[str, Any]

IMPLAUSIBLE_REASON = "error"
"""The data-absent-reason (http://terminology.hl7.org/CodeSystem/data-absent-reason) of a number outside
the plausible range. ``error`` ("some system or workflow process error means that the information is not
available"), not ``unknown`` ("the value is expected to exist but is not known"): the device did report
a value, and that value proves a fault of the device, which is how the hub already codes a device's own
fault reports (NRes, sensor and strip faults)."""


def observation_identifier(
    device_id: str, patient_id: str, kind: str, stamp: datetime, position: int = 0
) -> str:
    """``device-patient-type-timestamp``, the PHD IG's duplicate guard; seconds since 2000-01-01.

    ``stamp`` is the device's own time stamp when it sent one (naive is read as UTC), so the same
    stored reading re-sent after a reconnection gets the same identifier. A ``position`` above 0 (the
    second and later RR intervals of one notification) is appended, so such readings stay apart.
    """
    aware = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    seconds = int((aware - _EPOCH_2000).total_seconds())
    base = f"{device_id}-{patient_id}-{kind}-{seconds}"
    return f"{base}-{position}" if position else base


def preliminary_identifier(device_id: str, patient_id: str, kind: str, received: datetime) -> str:
    """``device-patient-type-preliminary-microseconds``: the hub's receipt time, microseconds since 2000.

    A value still being measured (intermediate cuff pressure) has no time stamp of its own, or the
    final's, and several arrive within one second: the receipt time keeps each apart, and the
    ``preliminary`` part keeps them all apart from the final reading, whose identifier (and so its
    de-duplication on the hub and the gateway) they must never take.
    """
    if received.tzinfo is None:
        raise ValueError("the receipt time must carry a time zone")
    ticks = (received - _EPOCH_2000) // timedelta(microseconds=1)
    return f"{device_id}-{patient_id}-{kind}-preliminary-{ticks}"


def _number(value: Decimal) -> int | float:
    # JSON has no decimal type; integers stay integers so '72' is not sent as '72.0'.
    return (
        int(value) if value == value.to_integral_value() and value.as_tuple().exponent == 0 else float(value)
    )


def _quantity(q: Quantity) -> FhirJson:
    return {"value": _number(q.value), "unit": q.unit, "system": UCUM, "code": q.unit}


def _absent(a: Absent) -> FhirJson:
    return {"coding": [{"system": DATA_ABSENT_REASON, "code": a.reason}]}


def _plausible(q: Quantity, units: tuple[str, ...], bounds: tuple[float, float]) -> bool:
    """Whether the gateway would take ``q`` as possible: the number as it goes into the JSON, converted to
    the canonical unit, within ``bounds`` (inclusive). A unit the contract does not allow for the type is
    not judged here: the gateway rejects it as a unit mismatch, a fault of the hub, not of the device."""
    if q.unit not in units:
        return True
    if not q.value.is_finite():
        return False
    try:
        canonical, _unit = to_canonical(float(_number(q.value)), q.unit)
    except OverflowError:  # an integer beyond any float: beyond any range too
        return False
    low, high = bounds
    return math.isfinite(canonical) and low <= canonical <= high


def _implausible(q: Quantity, units: tuple[str, ...], bounds: tuple[float, float]) -> FhirJson:
    low, high = bounds
    # The device's number is kept as text (exactly as decoded, e.g. "-1E+127"), never as a number that a
    # consumer could read as a measurement.
    text = f"the device sent {q.value} {q.unit}, outside the possible range {low:g}-{high:g} {units[0]}"
    return {"coding": [{"system": DATA_ABSENT_REASON, "code": IMPLAUSIBLE_REASON}], "text": text}


def _value_fields(value: Value, units: tuple[str, ...], bounds: tuple[float, float] | None) -> FhirJson:
    """``valueQuantity`` for a plausible number; ``dataAbsentReason`` for a special or impossible one."""
    if isinstance(value, Quantity):
        # A type without a range (the blood-pressure panel) takes no value: the gateway says so.
        if bounds is not None and not _plausible(value, units, bounds):
            return {"dataAbsentReason": _implausible(value, units, bounds)}
        return {"valueQuantity": _quantity(value)}
    return {"dataAbsentReason": _absent(value)}


def _code(rtype: ReadingType, reading: Reading) -> FhirJson:
    unit = reading.value.unit if isinstance(reading.value, Quantity) else None
    codings = rtype.codings(unit=unit, site=reading.body_site)
    return {"coding": [c.to_fhir() for c in codings], "text": rtype.display}


def _supplemental_types(rtype: ReadingType) -> list[FhirJson]:
    """The PHD IG's supplemental-types component of a variant type; none for the plain types."""
    if rtype.supplemental_type is None:
        return []
    code = {"system": MDC, "code": SUPPLEMENTAL_TYPES_CODE, "display": "MDC_ATTR_SUPPLEMENTAL_TYPES"}
    concept = {"coding": [rtype.supplemental_type.to_fhir()]}
    return [{"code": {"coding": [code]}, "valueCodeableConcept": concept}]


def build_observation(
    reading: Reading,
    *,
    patient_id: str,
    device_id: str,
    hub_id: str,
    effective: datetime,
    received: datetime | None = None,
    preliminary: bool = False,
    questionable: bool = False,
    test_data: bool = False,
) -> FhirJson:
    """One Observation for one reading. ``effective`` is the corrected, time-zone-aware measurement time;
    ``received`` (aware) is when the hub got it. Both, and the device's own stamp, are kept.

    Measurement status (PHD IG): ``preliminary`` marks a value still being measured, such as the
    intermediate cuff pressure of 0x2A36 (``status = preliminary``; ``fhir_contract.status.should_send``
    keeps it on the hub unless the hub opts in), identified by ``received`` (or ``effective``) through
    :func:`preliminary_identifier`; ``questionable`` adds the measurement-status interpretation;
    ``test_data`` labels the Observation ``meta.security`` HTEST. Those two leave the identifier as it is.
    """
    if effective.tzinfo is None or (received is not None and received.tzinfo is None):
        raise ValueError("effective and received times must carry a time zone")
    rtype = reading_type(reading.kind)
    categories = [{"coding": [{"system": PHD_CATEGORY, "code": "phd"}]}]
    if rtype.vital_sign:
        categories.insert(
            0, {"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}
        )
    if preliminary:
        identifier = preliminary_identifier(device_id, patient_id, rtype.key, received or effective)
    else:
        stamp = reading.device_time or effective
        identifier = observation_identifier(device_id, patient_id, rtype.key, stamp, reading.position)
    obs: FhirJson = {
        "resourceType": "Observation",
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": identifier}],
        "status": PRELIMINARY if preliminary else FINAL,
        "category": categories,
        "code": _code(rtype, reading),
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": effective.astimezone(UTC).isoformat(),
        "device": {"reference": f"Device/{device_id}"},
        "extension": [{"url": GATEWAY_DEVICE_EXTENSION, "valueReference": {"reference": f"Device/{hub_id}"}}],
    }
    if reading.device_time is not None:
        obs["extension"].append(
            {
                "url": DEVICE_TIME_EXTENSION,
                "valueString": reading.device_time.replace(microsecond=0).isoformat(),
            }
        )
    if received is not None:
        obs["extension"].append(
            {"url": RECEIVED_EXTENSION, "valueDateTime": received.astimezone(UTC).isoformat()}
        )
    meta: FhirJson = {}
    if rtype.profile:
        meta["profile"] = [rtype.profile]
    if test_data:
        meta["security"] = [dict(TEST_DATA_SECURITY)]
    if meta:
        obs["meta"] = meta
    if questionable:
        obs["interpretation"] = [copy.deepcopy(QUESTIONABLE_INTERPRETATION)]
    if reading.body_site is not None:
        site = rtype.site(reading.body_site)
        if site.snomed is not None:
            obs["bodySite"] = {"coding": [site.snomed.to_fhir()]}
    if reading.value is not None:
        obs.update(_value_fields(reading.value, rtype.units, rtype.range))
    components = _supplemental_types(rtype) + [
        {"code": {"coding": [{"system": "http://loinc.org", "code": c.loinc[0]}, c.mdc.to_fhir()]}}
        | _value_fields(part.value, c.units, c.range)
        for part in reading.components
        for c in (rtype.component(part.kind),)
    ]
    if components:
        obs["component"] = components
    return obs


def build_bundle(
    observations: list[FhirJson], *, bundle_id: str | None = None, timestamp: datetime | None = None
) -> FhirJson:
    """A FHIR ``batch`` Bundle: each entry stands alone, so one rejected Observation spares the rest.

    ``bundle_id`` and ``timestamp`` (aware) default to a fresh UUID and now; fixed ones make examples.
    """
    return {
        "resourceType": "Bundle",
        "id": bundle_id or str(uuid.uuid4()),
        "type": "batch",
        "timestamp": (timestamp or datetime.now(UTC)).astimezone(UTC).isoformat(),
        "entry": [
            {"resource": obs, "request": {"method": "POST", "url": "Observation"}} for obs in observations
        ],
    }
