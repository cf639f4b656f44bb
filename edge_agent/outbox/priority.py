"""Which readings the outbox gives up first when it is full: the one table of critical and non-critical kinds.

A reading kind is *non-critical* when a device sends it at a high rate (a chest strap's heart rate and RR
intervals, a continuous oximeter's fast/slow SpO2 and pulse) or when it is housekeeping (battery level,
energy expended) or a secondary body-composition figure: losing the oldest of those leaves the clinical
picture intact. Everything a nurse or a score acts on (blood pressure, spot-check SpO2 and pulse,
weight, temperature, glucose, respiration rate) is *critical* and goes last. A kind this table does not
know (a new kind added to the contract, or an Observation the contract cannot name) counts as critical:
the safe default. ``tests/edge_agent/outbox/test_outbox_bound.py`` fails when the contract gains a kind
this table has not decided.

The kind is read from the Observation's code (MDC code plus the PHD supplemental type, as
:func:`fhir_contract.terminology.find_reading_type` does), never from the identifier string.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir_contract.status import is_preliminary
from fhir_contract.terminology import MDC, SUPPLEMENTAL_TYPES_CODE, find_reading_type

UNKNOWN_KIND = "unknown"
# Appended to the kind of a preliminary Observation (a cuff's pressure while it inflates): always
# non-critical, since the final reading that follows is what counts.
PRELIMINARY_SUFFIX = "-preliminary"
# The patient's own entries: daily answers and "contact my nurse". Critical, as every kind outside
# NON_CRITICAL_KINDS; the publisher reads them to name each Bundle entry's resource type.
RESPONSE_KIND = "questionnaire-response"
REQUEST_KIND = "contact-request"

NON_CRITICAL_KINDS: frozenset[str] = frozenset(
    {
        # high rate: continuous streams, one reading a second or more
        "heart-rate",
        "rr-interval",
        "spo2-fast",
        "spo2-slow",
        "pulse-rate-oximeter-fast",
        "pulse-rate-oximeter-slow",
        # housekeeping
        "battery-level",
        "energy-expended",
        # secondary body-composition figures sent beside the weight (the weight itself is critical)
        "body-fat-percentage",
        "fat-free-mass",
        "soft-lean-mass",
        "body-water-mass",
        "body-impedance",
        "basal-metabolism",
        "muscle-percentage",
        "muscle-mass",
    }
)

CRITICAL_KINDS: frozenset[str] = frozenset(
    {
        "blood-pressure",
        "pulse-rate-cuff",
        "pulse-rate-oximeter",
        "spo2",
        "body-temperature",
        "body-weight",
        "body-height",
        "bmi",
        "respiratory-rate",
        "glucose-capillary-whole-blood",
        "glucose-capillary-plasma",
        "glucose-venous-whole-blood",
        "glucose-venous-plasma",
        "glucose-arterial-whole-blood",
        "glucose-arterial-plasma",
        "glucose-undetermined-whole-blood",
        "glucose-undetermined-plasma",
        # a CGM sends every 1-5 minutes, but a hypoglycaemia is exactly what must not be dropped
        "cgm-glucose",
    }
)


def is_critical(kind: str) -> bool:
    """Whether ``kind`` goes last when the outbox is full (unknown kinds do; preliminary ones never)."""
    return not kind.endswith(PRELIMINARY_SUFFIX) and kind not in NON_CRITICAL_KINDS


_KIND_OF_RESOURCE = {"QuestionnaireResponse": RESPONSE_KIND, "Task": REQUEST_KIND}
RESOURCE_TYPE_OF_KIND = {kind: resource_type for resource_type, kind in _KIND_OF_RESOURCE.items()}


def resource_kind(resource: Mapping[str, Any]) -> str:
    """The outbox's kind of a resource: its own for the patient's entries, else ``observation_kind``."""
    return _KIND_OF_RESOURCE.get(str(resource.get("resourceType")), "") or observation_kind(resource)


def observation_kind(observation: Mapping[str, Any]) -> str:
    """The contract's reading-type key of an Observation (``UNKNOWN_KIND`` when its code names none),
    with :data:`PRELIMINARY_SUFFIX` when its status is preliminary."""
    code = observation.get("code")
    codings: list[tuple[str, str]] = []
    if isinstance(code, dict):
        for coding in code.get("coding", ()):
            if isinstance(coding, dict) and isinstance(coding.get("system"), str):
                codings.append((coding["system"], str(coding.get("code"))))
    if not codings:
        return UNKNOWN_KIND
    found = find_reading_type(codings, _supplemental_type(observation))
    kind = found.key if found is not None else UNKNOWN_KIND
    return kind + PRELIMINARY_SUFFIX if is_preliminary(observation) else kind


def _supplemental_type(observation: Mapping[str, Any]) -> str | None:
    for component in observation.get("component", ()) or ():
        if not isinstance(component, dict):
            continue
        codings = component.get("code", {}).get("coding", [])
        if any(c.get("system") == MDC and c.get("code") == SUPPLEMENTAL_TYPES_CODE for c in codings):
            for value in component.get("valueCodeableConcept", {}).get("coding", []):
                if value.get("system") == MDC:
                    return str(value.get("code"))
    return None
