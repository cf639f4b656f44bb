"""When was a reading taken? The device's stamp, corrected by the device's measured clock offset, if
the result is believable; else the hub's receipt time. A reading is never dated in the future or
months in the past.

The offset comes from ``edge_agent.clock_sync`` (the connection reads the device's Current Time);
without one the stamp is read as local time in the hub's zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from edge_agent.clock_sync import ClockCorrection, corrected_stamp

# A device clock may run a little ahead of the hub's; more than this is a wrong clock, not drift.
MAX_AHEAD = timedelta(minutes=5)
# Devices hold stored readings for days, rarely weeks; a stamp older than this is a clock fault.
MAX_AGE = timedelta(days=90)

TimeSource = Literal[
    "device", "device-corrected", "receipt-no-device-time", "receipt-device-time-implausible"
]


@dataclass(frozen=True, slots=True)
class EffectiveTime:
    at: datetime  # time-zone aware
    source: TimeSource


def effective_time(
    device_time: datetime | None,
    received: datetime,
    zone: ZoneInfo,
    correction: ClockCorrection | None = None,
) -> EffectiveTime:
    """The measurement time to report. ``received`` is the hub's aware receipt time."""
    if received.tzinfo is None:
        raise ValueError("the receipt time must carry a time zone")
    if device_time is None:
        return EffectiveTime(received, "receipt-no-device-time")
    stamped = corrected_stamp(device_time, correction, zone)
    if stamped > received + MAX_AHEAD or stamped < received - MAX_AGE:
        return EffectiveTime(received, "receipt-device-time-implausible")
    corrected = correction is not None and correction.offset is not None and correction.status != "in-sync"
    return EffectiveTime(stamped, "device-corrected" if corrected else "device")
