"""Current Time service (0x1805): Current Time (0x2A2B), read to learn a device's clock and written to
set it.

Format (GATT Specification Supplement, "Current Time"), ten bytes:

    exact time 256   Day Date Time: Date Time (7 bytes) and day of week (uint8, 1 Monday .. 7 Sunday,
                     0 unknown); fractions256 (uint8, 1/256 s)
    adjust reason    uint8   bit 0 manual time update, bit 1 external reference time update,
                             bit 2 change of time zone, bit 3 change of DST; bits 4-7 reserved

The hub reads it once per connection to measure the device's clock offset (the coincident time stamp of
the PHD IG) and writes it to set a clock that is wrong; ``current_time_for`` builds the value to write.
Device clocks are local and zone-less, so times here are naive. A reserved day of week is a ParseError;
reserved adjust-reason bits are ignored when parsing and written as zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, IntFlag

from edge_agent.gatt._fields import FieldReader, FieldWriter, check_exact_length, enum_value

CURRENT_TIME = "0x2A2B Current Time"

_LENGTH = 10  # date time (7) + day of week (1) + fractions256 (1) + adjust reason (1)
_ADJUST_REASON_BITS = 0x0F
_FRACTIONS_PER_SECOND = 256


class DayOfWeek(IntEnum):
    UNKNOWN = 0
    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7


class AdjustReason(IntFlag):
    """Why the clock was last changed; bits 4-7 are reserved."""

    MANUAL_TIME_UPDATE = 1 << 0
    EXTERNAL_REFERENCE_TIME_UPDATE = 1 << 1
    CHANGE_OF_TIME_ZONE = 1 << 2
    CHANGE_OF_DST = 1 << 3


NO_ADJUSTMENT = AdjustReason(0)
"""An adjust reason with no bit set: the clock has not been changed."""


@dataclass(frozen=True, slots=True)
class CurrentTime:
    """The value of 0x2A2B. ``date_time`` is None when the device's date is "not known" (zeros)."""

    date_time: datetime | None
    day_of_week: DayOfWeek = DayOfWeek.UNKNOWN
    fractions256: int = 0
    adjust_reason: AdjustReason = NO_ADJUSTMENT

    @property
    def exact(self) -> datetime | None:
        """``date_time`` with the fractions of a second added (1/256 s, to the microsecond)."""
        if self.date_time is None:
            return None
        return self.date_time + timedelta(microseconds=(self.fractions256 * 1_000_000 + 128) // 256)


def parse_current_time(data: bytes) -> CurrentTime:
    """Parse a Current Time (0x2A2B) value; ParseError if the bytes are not one."""
    characteristic = CURRENT_TIME
    check_exact_length(data, characteristic, _LENGTH, "exact time 256 and adjust reason")
    reader = FieldReader(data, characteristic)
    date_time = reader.date_time()  # Date Time
    day_code = reader.uint8()  # Day of Week, uint8
    fractions256 = reader.uint8()  # Fractions256, uint8
    adjust_reason = AdjustReason(reader.uint8() & _ADJUST_REASON_BITS)  # Adjust Reason, uint8
    return CurrentTime(
        date_time=date_time,
        day_of_week=enum_value(DayOfWeek, day_code, characteristic, "day of week"),
        fractions256=fractions256,
        adjust_reason=adjust_reason,
    )


def encode_current_time(value: CurrentTime) -> bytes:
    """Encode a Current Time value; ValueError if a field cannot carry its value."""
    writer = FieldWriter()
    writer.date_time(value.date_time)
    writer.uint8(int(value.day_of_week), "day of week")
    writer.uint8(value.fractions256, "fractions256")
    writer.uint8(int(value.adjust_reason) & _ADJUST_REASON_BITS, "adjust reason")
    return writer.to_bytes()


def current_time_for(
    local: datetime, adjust_reason: AdjustReason = AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE
) -> CurrentTime:
    """The value that sets a device clock to ``local`` (the device's wall-clock time; any zone dropped).

    Whole seconds go in the Date Time and the rest in 1/256 s, rounded down so the device is never ahead.
    The default reason says the time came from an external reference (the hub's NTP-synchronised clock).
    """
    wall = local.replace(tzinfo=None)
    return CurrentTime(
        date_time=wall.replace(microsecond=0),
        day_of_week=DayOfWeek(wall.isoweekday()),
        fractions256=wall.microsecond * _FRACTIONS_PER_SECOND // 1_000_000,
        adjust_reason=adjust_reason,
    )
