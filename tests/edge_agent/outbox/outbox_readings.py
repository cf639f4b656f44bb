"""Real Observations of chosen kinds for the outbox tests, built with the contract's own builder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fhir_contract.observation import build_observation
from fhir_contract.readings import Component, Quantity, Reading

START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)

# kind -> (unit, value) for the single-value kinds these tests use
_VALUES: dict[str, tuple[str, str]] = {
    "heart-rate": ("/min", "72"),
    "rr-interval": ("s", "0.8"),
    "battery-level": ("%", "80"),
    "spo2-fast": ("%", "95"),
    "spo2": ("%", "96"),
    "body-weight": ("kg", "81.5"),
    "body-temperature": ("Cel", "36.8"),
}


def observation(kind: str, i: int, device_id: str = "DEV1") -> dict[str, Any]:
    """The ``i``-th reading of ``kind`` (one second apart), a valid contract Observation."""
    at = START + timedelta(seconds=i)
    if kind == "blood-pressure":
        reading = Reading(
            "blood-pressure",
            components=(
                Component("systolic", Quantity(Decimal("120"), "mm[Hg]")),
                Component("diastolic", Quantity(Decimal("80"), "mm[Hg]")),
            ),
        )
    else:
        unit, value = _VALUES[kind]
        reading = Reading(kind, Quantity(Decimal(value), unit))
    return build_observation(reading, patient_id="p1", device_id=device_id, hub_id="hub1", effective=at)
