"""Measurement status as the PHD IG carries it, and which Observations a hub sends by default.

The IG maps a device's measurement status onto standard FHIR elements (STU 2, "Measurement status"):
an early estimate is ``status = preliminary``, a questionable value gets the ``interpretation``
``measurement-status#questionable``, and test data is labelled ``meta.security = v3-ActReason#HTEST``.
``fhir_contract.observation.build_observation`` sets these from its keyword options; this module holds
the codes and the delivery rule. Whether to send preliminary values at all (for example intermediate
cuff pressure, 0x2A36, while a cuff inflates) is the hub's choice: ``should_send`` says no by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MEASUREMENT_STATUS = "http://hl7.org/fhir/uv/pocd/CodeSystem/measurement-status"
"""The code system of the PHD IG's measurement-status interpretations."""
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
TEST_DATA = "HTEST"
"""v3-ActReason code labelling test data in ``meta.security``."""

QUESTIONABLE_INTERPRETATION: dict[str, Any] = {
    "coding": [{"system": MEASUREMENT_STATUS, "code": "questionable", "display": "questionable"}]
}
TEST_DATA_SECURITY: dict[str, str] = {"system": ACT_REASON, "code": TEST_DATA, "display": "test health data"}

FINAL = "final"
PRELIMINARY = "preliminary"


def is_preliminary(observation: Mapping[str, Any]) -> bool:
    """True for an Observation of a value still being measured (``status = preliminary``)."""
    return observation.get("status") == PRELIMINARY


def is_test_data(observation: Mapping[str, Any]) -> bool:
    """True for an Observation labelled as test data (``meta.security`` HTEST)."""
    security = observation.get("meta", {}).get("security", [])
    return any(s.get("system") == ACT_REASON and s.get("code") == TEST_DATA for s in security)


def should_send(observation: Mapping[str, Any], *, send_preliminary: bool = False) -> bool:
    """Whether a hub sends ``observation``: everything but preliminary values, unless asked to.

    Questionable values and test data are sent: they are labelled, and the server decides what to do
    with them.
    """
    return send_preliminary or not is_preliminary(observation)
