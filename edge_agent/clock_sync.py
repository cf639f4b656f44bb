"""How far off is a device's clock, and what time did a reading really happen? Pure functions.

Device clocks carry local wall time without a zone and are often unset (reset to 2000-01-01 after a
battery change) or wrong by minutes to hours. Once per connection the hub reads the device's Current
Time (0x2A2B) next to its own clock; the difference is the offset that corrects every stamp the device
made on that clock (the PHD IG's coincident time stamp). If the clock is unset or off by more than
``SET_CLOCK_THRESHOLD`` and the device lets us, the hub then sets it; stamps made after that are on the
new clock and need no correction.

A clock within ``IN_SYNC`` is trusted as it is: the difference is then mostly the time the read took, and
shifting stamps by it would give the same stored reading a different time at every connection (the
gateway keys a reading by its identifier and its effective time). For the same reason
``steady_correction`` keeps the offset of the previous connection while a new measurement differs from it
by no more than ``OFFSET_JITTER``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

# Devices reset their clock to a fixed date (2000-01-01 is common, 1970 on some); a clock before this
# has never been set by anyone.
UNSET_BEFORE = datetime(2015, 1, 1)
# Within this, a device clock counts as in sync (BLE connection set-up alone takes a second or two).
IN_SYNC = timedelta(minutes=2)
# Beyond this, the hub sets the device's clock (where the device allows it).
SET_CLOCK_THRESHOLD = timedelta(minutes=2)
# Two measurements of one clock's offset differ by the read's latency; within this they are the same offset.
OFFSET_JITTER = timedelta(seconds=2)
# Stamps up to this much after the synchronisation moment are still on the old clock (the device
# stamps stored readings when they were taken, always before the connection).
_SAME_CLOCK_MARGIN = timedelta(seconds=5)

ClockStatus = Literal["in-sync", "wrong", "unset", "unknown"]


@dataclass(frozen=True, slots=True)
class ClockCorrection:
    """The result of comparing a device clock with the hub's at one moment."""

    status: ClockStatus
    offset: timedelta | None  # hub local wall time minus device time; None when unknown
    device_time_at_sync: datetime | None  # naive, on the device's clock
    hub_time_at_sync: datetime  # aware
    clock_was_set: bool = False  # the hub set the device clock right after measuring it

    @property
    def needs_setting(self) -> bool:
        """Wrong, unset, or reporting "not known" (a clock nobody set since the batteries went in)."""
        return self.status in ("wrong", "unset", "unknown")


def assess_clock(device_now: datetime | None, hub_now: datetime, zone: ZoneInfo) -> ClockCorrection:
    """Compare a device's Current Time (naive local; None if it reports 'not known') with the hub's."""
    if hub_now.tzinfo is None:
        raise ValueError("the hub's time must carry a time zone")
    if device_now is None:
        return ClockCorrection("unknown", None, None, hub_now)
    hub_local = hub_now.astimezone(zone).replace(tzinfo=None)
    # To the second: the stamps it corrects have whole seconds, and the read's latency is noise.
    offset = timedelta(seconds=round((hub_local - device_now).total_seconds()))
    if device_now < UNSET_BEFORE:
        status: ClockStatus = "unset"
    elif abs(offset) <= IN_SYNC:
        status = "in-sync"
    else:
        status = "wrong"
    return ClockCorrection(status, offset, device_now, hub_now)


def corrected_stamp(stamp: datetime, correction: ClockCorrection | None, zone: ZoneInfo) -> datetime:
    """A device stamp (naive, device clock) as an aware time on the hub's clock.

    Stamps made on the clock that was measured get the offset, unless the clock was in sync. When the hub
    has set the clock since, a stamp later than the measurement is on the new clock and is taken as it is.
    """
    if stamp.tzinfo is not None:
        return stamp
    if (
        correction is not None
        and correction.status != "in-sync"
        and correction.offset is not None
        and correction.device_time_at_sync is not None
    ):
        on_new_clock = (
            correction.clock_was_set and stamp > correction.device_time_at_sync + _SAME_CLOCK_MARGIN
        )
        if not on_new_clock:
            stamp = stamp + correction.offset
    return stamp.replace(tzinfo=zone)


def steady_correction(previous: ClockCorrection | None, current: ClockCorrection) -> ClockCorrection:
    """``current``, keeping ``previous``'s offset when the clock has not moved beyond ``OFFSET_JITTER``.

    A clock the hub may not set is measured again at every connection; without this, each measurement's
    latency would give a re-sent stored reading a slightly different corrected time.
    """
    if (
        previous is None
        or previous.offset is None
        or current.offset is None
        or previous.clock_was_set
        or previous.status != current.status
        or abs(current.offset - previous.offset) > OFFSET_JITTER
    ):
        return current
    return ClockCorrection(
        current.status,
        previous.offset,
        current.device_time_at_sync,
        current.hub_time_at_sync,
        current.clock_was_set,
    )


def correction_after_setting(hub_now: datetime, zone: ZoneInfo) -> ClockCorrection:
    """The correction for stamps made after the hub set the device clock to ``hub_now``: none needed.

    The hub dates values by when they arrive relative to the setting (see ``edge_agent.session``):
    stamps made on a clock that was ahead overlap the new clock's first minutes, so the stamp alone
    cannot say which clock made it.
    """
    if hub_now.tzinfo is None:
        raise ValueError("the hub's time must carry a time zone")
    hub_local = hub_now.astimezone(zone).replace(tzinfo=None)
    return ClockCorrection("in-sync", timedelta(0), hub_local, hub_now, clock_was_set=True)
