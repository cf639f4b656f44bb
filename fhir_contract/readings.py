"""The contract's vocabulary: device-neutral readings, what a measurement means before it becomes FHIR.

The hub's parsers (``edge_agent.gatt``) turn bytes into characteristic-specific measurements and their
``to_readings`` functions into these values; ``fhir_contract.observation`` turns a ``Reading`` into an
Observation; the synthetic cohort (``models.cohort``) builds the same values. The contract owns them so
that it knows neither the hub nor the server, and the contract can be tested without Bluetooth and the
parsers without FHIR.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Quantity:
    """A measured number in a UCUM unit, with the device's precision kept (``Decimal('36.60')``)."""

    value: Decimal
    unit: str


@dataclass(frozen=True, slots=True)
class Absent:
    """A value the device reported as special (NaN, NRes, +/-INF, reserved): never turned into a number.

    ``reason`` is a code of http://terminology.hl7.org/CodeSystem/data-absent-reason.
    """

    reason: str


Value = Quantity | Absent


@dataclass(frozen=True, slots=True)
class Component:
    """One part of a compound reading, e.g. the systolic pressure of a blood-pressure panel."""

    kind: str
    value: Value


@dataclass(frozen=True, slots=True)
class Reading:
    """One reading of one type, as the contract's terminology names it (``fhir/terminology.json``).

    ``kind`` is a terminology key such as ``"spo2"`` or ``"blood-pressure"``. A compound reading has
    ``components`` and no ``value``. ``device_time`` is the device's own time stamp exactly as sent
    (naive: device clocks have no zone), or None when the device sent none.

    ``body_site`` names where on the body it was measured, as a site key of the reading type in the
    terminology (``"tympanum"``); None when the device did not say. ``position`` tells apart readings of
    one kind that one characteristic value carries without their own time stamps (the RR intervals of a
    heart-rate notification, the records of a CGM notification): 0 for the first and for every reading
    that is alone of its kind, so that each keeps its own Observation identifier.
    """

    kind: str
    value: Value | None = None
    components: tuple[Component, ...] = ()
    device_time: datetime | None = None
    body_site: str | None = None
    position: int = 0
