"""An emulated health device's own clock, and the bytes of its Current Time characteristic (0x2A2B).

Real cuffs, scales and meters keep time with a cheap crystal that nobody sets: the clock may be right,
never set since the batteries went in (such devices report an unknown date, or count from a reset date
such as 2000-01-01), drifting by some parts per million, or off by a fixed amount (DST never applied,
set by hand to the wrong hour). A :class:`DeviceClock` models all four as one affine map from a reference
clock (the true local time, ``datetime.now`` unless a test passes its own) to device time:
``device = anchor_device + (reference - anchor_reference) * (1 + drift_ppm / 1e6)``. Setting the clock
re-anchors it; the drift carries on, as a crystal's would.

:func:`encode_current_time` / :func:`decode_current_time` write and read the 10-byte Current Time value
(Exact Time 256 + Adjust Reason) with ``struct``. The hub's own parser lives in :mod:`edge_agent.gatt`;
this module does not use it, so the emulation checks the parser instead of sharing its mistakes.
Serving the characteristic over GATT is left to :mod:`edge_agent.emulation.peripheral`.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from datetime import datetime, timedelta

# Current Time (0x2A2B): Date Time (year uint16, month, day, hours, minutes, seconds), Day of Week,
# Fractions256, Adjust Reason.
CURRENT_TIME = struct.Struct("<HBBBBBBBB")
CURRENT_TIME_SIZE = CURRENT_TIME.size  # 10
# What battery-reset clocks count from when they do not report "unknown".
RESET_DATE = datetime(2000, 1, 1)

Reference = Callable[[], datetime]


class AdjustReason(enum.IntFlag):
    """Adjust Reason bits of the Current Time characteristic."""

    MANUAL_TIME_UPDATE = 0x01
    EXTERNAL_REFERENCE_TIME_UPDATE = 0x02
    CHANGE_OF_TIME_ZONE = 0x04
    CHANGE_OF_DST = 0x08


class UnsetReport(enum.Enum):
    """What a clock that was never set reports."""

    UNKNOWN = "unknown"  # Date fields 0 ("not known"), day of week 0; the time of day still runs.
    RESET_DATE = "reset-date"  # Counts from 2000-01-01 00:00 as if that were the date.


class DeviceClock:
    """A device's clock: naive local device time as an affine map of a reference clock.

    Build one with :meth:`correct`, :meth:`wrong`, :meth:`drifting` or :meth:`unset`. ``reference`` is the
    true local time (naive); tests pass a controllable callable to make drift visible without waiting.
    """

    def __init__(
        self,
        reference: Reference = datetime.now,
        *,
        offset: timedelta = timedelta(0),
        drift_ppm: float = 0.0,
        unset: UnsetReport | None = None,
    ) -> None:
        self._reference = reference
        self.drift_ppm = drift_ppm
        self.unset_report = unset
        self.adjust_reason = AdjustReason(0)
        self._anchor_reference = reference()
        self._anchor_device = RESET_DATE if unset is not None else self._anchor_reference + offset

    @classmethod
    def correct(cls, reference: Reference = datetime.now) -> DeviceClock:
        """A clock that shows the reference time."""
        return cls(reference)

    @classmethod
    def wrong(cls, offset: timedelta, reference: Reference = datetime.now) -> DeviceClock:
        """A clock off by a fixed ``offset`` (device minus true time), e.g. DST never applied."""
        return cls(reference, offset=offset)

    @classmethod
    def drifting(
        cls, drift_ppm: float, reference: Reference = datetime.now, *, offset: timedelta = timedelta(0)
    ) -> DeviceClock:
        """A clock that gains ``drift_ppm`` parts per million (loses when negative); crystals: +-20 ppm."""
        return cls(reference, offset=offset, drift_ppm=drift_ppm)

    @classmethod
    def unset(
        cls, report: UnsetReport = UnsetReport.UNKNOWN, reference: Reference = datetime.now
    ) -> DeviceClock:
        """A clock never set since the batteries went in: it runs from 2000-01-01 00:00."""
        return cls(reference, unset=report)

    @property
    def is_set(self) -> bool:
        return self.unset_report is None

    def now(self) -> datetime:
        """The device's time (naive local), what it stamps its measurements with."""
        return self._device_time(self._reference())

    def offset(self) -> timedelta:
        """Device time minus true time, both read at the same instant."""
        reference = self._reference()
        return self._device_time(reference) - reference

    def set(self, value: datetime, reason: AdjustReason = AdjustReason.MANUAL_TIME_UPDATE) -> None:
        """Set the clock to ``value`` now (naive local); the drift carries on from here."""
        self._anchor_reference = self._reference()
        self._anchor_device = value.replace(tzinfo=None)
        self.unset_report = None
        self.adjust_reason = reason

    def current_time(self) -> bytes:
        """The Current Time characteristic value (10 bytes) for this clock's time now."""
        now = self.now()
        if self.unset_report is UnsetReport.UNKNOWN:
            return encode_current_time(now, self.adjust_reason, date_known=False)
        return encode_current_time(now, self.adjust_reason)

    def _device_time(self, reference: datetime) -> datetime:
        elapsed = reference - self._anchor_reference
        return self._anchor_device + elapsed * (1.0 + self.drift_ppm / 1_000_000.0)


def encode_current_time(value: datetime, adjust_reason: int = 0, *, date_known: bool = True) -> bytes:
    """Current Time bytes: Date Time, Day of Week (1 = Monday), Fractions256, Adjust Reason.

    With ``date_known=False`` year, month, day and day of week are 0, which the spec defines as unknown.
    """
    fractions256 = value.microsecond * 256 // 1_000_000
    if not date_known:
        return CURRENT_TIME.pack(
            0, 0, 0, value.hour, value.minute, value.second, 0, fractions256, adjust_reason & 0x0F
        )
    return CURRENT_TIME.pack(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.isoweekday(),
        fractions256,
        adjust_reason & 0x0F,
    )


def decode_current_time(data: bytes) -> tuple[datetime, AdjustReason]:
    """Read a written Current Time value; ValueError when it is not 10 bytes or not a real date.

    The Day of Week field is not checked against the date (the date wins), as most devices do.
    """
    if len(data) != CURRENT_TIME_SIZE:
        raise ValueError(f"Current Time is {CURRENT_TIME_SIZE} bytes, got {len(data)}")
    year, month, day, hour, minute, second, _weekday, fractions256, reason = CURRENT_TIME.unpack(data)
    if not 1582 <= year <= 9999:  # Date Time's valid years; 0 means unknown, which cannot set a clock
        raise ValueError(f"year {year} cannot set a clock")
    value = datetime(year, month, day, hour, minute, second, fractions256 * 1_000_000 // 256)
    return value, AdjustReason(reason & 0x0F)


__all__ = [
    "CURRENT_TIME_SIZE",
    "RESET_DATE",
    "AdjustReason",
    "DeviceClock",
    "Reference",
    "UnsetReport",
    "decode_current_time",
    "encode_current_time",
]
