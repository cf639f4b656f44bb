"""What the hub does with each kind of device, as data: one :class:`DeviceProfile` row per kind.

A row names the characteristics the link subscribes to (whether bleak enables notifications or
indications is bleak's business: it follows the characteristic's properties) and the one that carries
values still being measured (subscribed only on the hub's opt-in), whether the device must be
bonded before its health service answers, whether it keeps a record history read through the Record
Access Control Point (glucose meters by sequence number, CGMs by time offset), whether its clock is read
from Current Time and whether the hub may set it, and whether the link stays up for live values or is
released once the device has handed over what it holds.

Connecting by these rows is :mod:`edge_agent.ble.connection`'s job; running the history transfer and the
clock step is :mod:`edge_agent.session`'s; ``docs/devices.md`` shows the table to people.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from edge_agent.config import DeviceKind
from edge_agent.gatt.registry import (
    BLOOD_PRESSURE_MEASUREMENT_UUID,
    BLOOD_PRESSURE_SERVICE,
    BODY_COMPOSITION_MEASUREMENT_UUID,
    BODY_COMPOSITION_SERVICE,
    CGM_MEASUREMENT_UUID,
    CGM_SERVICE,
    GLUCOSE_MEASUREMENT_CONTEXT_UUID,
    GLUCOSE_MEASUREMENT_UUID,
    GLUCOSE_SERVICE,
    HEALTH_THERMOMETER_SERVICE,
    HEART_RATE_MEASUREMENT_UUID,
    HEART_RATE_SERVICE,
    INTERMEDIATE_CUFF_PRESSURE_UUID,
    PLX_CONTINUOUS_MEASUREMENT_UUID,
    PLX_SPOT_CHECK_MEASUREMENT_UUID,
    PULSE_OXIMETER_SERVICE,
    RECORD_ACCESS_CONTROL_POINT_UUID,
    TEMPERATURE_MEASUREMENT_UUID,
    WEIGHT_MEASUREMENT_UUID,
    WEIGHT_SCALE_SERVICE,
)

#: How a device numbers the records of its history: the RACP filter (type 0x01) is one or the other.
HistoryKey = Literal["sequence-number", "time-offset"]

#: What the hub does with the device's Current Time: nothing, read it to correct time stamps, or read it
#: and set a wrong or unset clock (when the device accepts the write).
ClockUse = Literal["none", "read", "read-and-set"]


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """One kind of device: its service and what the hub subscribes to, bonds, fetches and corrects."""

    kind: DeviceKind
    service: str
    subscribe: tuple[str, ...]
    bonding: bool = False
    history: HistoryKey | None = None
    clock: ClockUse = "read-and-set"
    # True: the link stays up for live values. False: the hub releases the link once the device has
    # handed over its history, and comes back at its next advertisement.
    live: bool = True
    # Values still being measured (a cuff's 0x2A36 while it inflates), sent as preliminary Observations:
    # subscribed only when the hub opts in, and only where the device has it (it is optional in the spec).
    intermediate: str | None = None

    @property
    def record_uuid(self) -> str | None:
        """The measurement characteristic that carries history records (the first subscription)."""
        return self.subscribe[0] if self.history is not None else None


PROFILES: Mapping[DeviceKind, DeviceProfile] = {
    profile.kind: profile
    for profile in (
        # Cuffs, spot-check oximeters, scales and thermometers keep readings until a central confirms
        # their indications, stamped by their own clock.
        DeviceProfile(
            "blood-pressure-cuff",
            BLOOD_PRESSURE_SERVICE,
            (BLOOD_PRESSURE_MEASUREMENT_UUID,),
            intermediate=INTERMEDIATE_CUFF_PRESSURE_UUID,
        ),
        DeviceProfile("pulse-oximeter", PULSE_OXIMETER_SERVICE, (PLX_SPOT_CHECK_MEASUREMENT_UUID,)),
        DeviceProfile("scale", WEIGHT_SCALE_SERVICE, (WEIGHT_MEASUREMENT_UUID,)),
        DeviceProfile("thermometer", HEALTH_THERMOMETER_SERVICE, (TEMPERATURE_MEASUREMENT_UUID,)),
        # Body composition and weight come from one standing on the scale: both are subscribed.
        DeviceProfile(
            "body-composition-scale",
            BODY_COMPOSITION_SERVICE,
            (BODY_COMPOSITION_MEASUREMENT_UUID, WEIGHT_MEASUREMENT_UUID),
        ),
        # Live streams without time stamps: the hub's receipt time dates them, so the clock is unused.
        DeviceProfile("heart-rate-monitor", HEART_RATE_SERVICE, (HEART_RATE_MEASUREMENT_UUID,), clock="none"),
        DeviceProfile(
            "continuous-oximeter", PULSE_OXIMETER_SERVICE, (PLX_CONTINUOUS_MEASUREMENT_UUID,), clock="none"
        ),
        # A glucose meter answers only a bonded central and hands out its records by sequence number; it
        # sends nothing live, so the link is released after each transfer.
        DeviceProfile(
            "glucose-meter",
            GLUCOSE_SERVICE,
            (GLUCOSE_MEASUREMENT_UUID, GLUCOSE_MEASUREMENT_CONTEXT_UUID, RECORD_ACCESS_CONTROL_POINT_UUID),
            bonding=True,
            history="sequence-number",
            live=False,
        ),
        # A CGM streams live and back-fills by time offset since its session start. Its readings are
        # dated from the session start, which is on the device clock: the hub corrects by the measured
        # offset and never sets this clock (that would move the session start away from its readings).
        DeviceProfile(
            "cgm",
            CGM_SERVICE,
            (CGM_MEASUREMENT_UUID, RECORD_ACCESS_CONTROL_POINT_UUID),
            bonding=True,
            history="time-offset",
            clock="read",
        ),
    )
}


def profile_for(kind: DeviceKind) -> DeviceProfile:
    """The profile of ``kind`` (every :data:`~edge_agent.config.DeviceKind` has one)."""
    return PROFILES[kind]
