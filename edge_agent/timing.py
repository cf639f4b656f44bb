"""When was a reading taken? The device's stamp if it is believable, else the hub's receipt time.

Device clocks have no time zone and are often unset or wrong. This first version reads the device's
stamp in the hub's zone and falls back to the receipt time when the stamp is in the future or
implausibly old; measuring each device's clock offset and correcting by it is the connection
manager's job (it reads Current Time once per connection).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

# A device clock may run a little ahead of the hub's; more than this is a wrong clock, not drift.
MAX_AHEAD = timedelta(minutes=5)
# Devices hold stored readings for days, rarely weeks; a stamp older than this is a clock fault.
MAX_AGE = timedelta(days=90)

TimeSource = Literal["device", "receipt-no-device-time", "receipt-device-time-implausible"]


@dataclass(frozen=True, slots=True)
class EffectiveTime:
    at: datetime  # time-zone aware
    source: TimeSource


def effective_time(device_time: datetime | None, received: datetime, zone: ZoneInfo) -> EffectiveTime:
    """The measurement time to report. ``received`` is the hub's aware receipt time."""
    if received.tzinfo is None:
        raise ValueError("the receipt time must carry a time zone")
    if device_time is None:
        return EffectiveTime(received, "receipt-no-device-time")
    stamped = device_time.replace(tzinfo=zone) if device_time.tzinfo is None else device_time
    if stamped > received + MAX_AHEAD or stamped < received - MAX_AGE:
        return EffectiveTime(received, "receipt-device-time-implausible")
    return EffectiveTime(stamped, "device")
