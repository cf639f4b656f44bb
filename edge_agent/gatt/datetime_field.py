"""The Date Time field (org.bluetooth.characteristic.date_time, 0x2A08) as measurements embed it.

Seven bytes: uint16 year (1582..9999), uint8 month (1..12), day (1..31), hours (0..23), minutes (0..59),
seconds (0..59). A year, month or day of 0 means "not known"; such a stamp parses to None, as if no
stamp were sent. Device clocks carry no time zone, so the result is a naive ``datetime``; correcting it
to the gateway's time line is left to the caller.
"""

from __future__ import annotations

from datetime import datetime

from edge_agent.gatt.errors import ParseError

DATE_TIME = "0x2A08 Date Time"
DATE_TIME_LENGTH = 7

_MIN_YEAR = 1582
_MAX_YEAR = 9999


def parse_date_time(data: bytes, characteristic: str = DATE_TIME) -> datetime | None:
    """Parse seven Date Time bytes; None when the date is not known, ParseError for impossible values.

    ``characteristic`` names the characteristic that embeds the field, so errors point at it.
    """
    if len(data) != DATE_TIME_LENGTH:
        raise ParseError(characteristic, f"a date time needs {DATE_TIME_LENGTH} bytes, got {len(data)}")
    year = int.from_bytes(data[0:2], "little")  # Year, uint16
    month, day, hours, minutes, seconds = data[2:7]  # Month, Day, Hours, Minutes, Seconds: uint8 each
    # Only the upper bounds need checking: fields are unsigned, and a month or day of 0 means "not known".
    for field, value, lowest, highest in (
        ("month", month, 1, 12),
        ("day", day, 1, 31),
        ("hours", hours, 0, 23),
        ("minutes", minutes, 0, 59),
        ("seconds", seconds, 0, 59),
    ):
        if value > highest:
            raise ParseError(characteristic, f"date time {field} {value} is not in {lowest}..{highest}")
    if year != 0 and not _MIN_YEAR <= year <= _MAX_YEAR:
        raise ParseError(characteristic, f"date time year {year} is not in {_MIN_YEAR}..{_MAX_YEAR}")
    if 0 in (year, month, day):
        return None
    try:
        return datetime(year, month, day, hours, minutes, seconds)
    except ValueError as exc:  # a day the month does not have, e.g. 30 February
        raise ParseError(
            characteristic, f"date time {year:04d}-{month:02d}-{day:02d} does not exist"
        ) from exc


def encode_date_time(value: datetime | None) -> bytes:
    """Encode a naive datetime as seven Date Time bytes; None encodes as "not known" (all zeros).

    ValueError for a datetime the field cannot carry: aware, with microseconds, or outside 1582..9999.
    """
    if value is None:
        return bytes(DATE_TIME_LENGTH)
    if value.tzinfo is not None:
        raise ValueError(f"{value} has a time zone; the Date Time field carries local device time only")
    if value.microsecond:
        raise ValueError(f"{value} has microseconds; the Date Time field resolves whole seconds")
    if not _MIN_YEAR <= value.year <= _MAX_YEAR:
        raise ValueError(f"year {value.year} is not in {_MIN_YEAR}..{_MAX_YEAR}")
    return value.year.to_bytes(2, "little") + bytes(
        (value.month, value.day, value.hour, value.minute, value.second)
    )
