"""Current Time (0x2A2B): parse what a device reports, encode what the hub writes to set its clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from edge_agent.gatt.current_time import (
    NO_ADJUSTMENT,
    AdjustReason,
    CurrentTime,
    DayOfWeek,
    current_time_for,
    encode_current_time,
    parse_current_time,
)
from edge_agent.gatt.errors import ParseError

FULL = b"".join(
    [
        b"\xe8\x07\x03\x0f\x08\x1e\x05",  # date time: 2024-03-15 08:30:05
        b"\x05",  # day of week: 5 Friday
        b"\x80",  # fractions256: 128/256 s
        b"\x03",  # adjust reason: manual time update, external reference time update
    ]
)
MINIMAL = b"".join(
    [
        bytes(7),  # date time: not known
        b"\x00",  # day of week: unknown
        b"\x00",  # fractions256: 0
        b"\x00",  # adjust reason: none
    ]
)


def test_current_time_full() -> None:
    value = parse_current_time(FULL)
    assert value == CurrentTime(
        date_time=datetime(2024, 3, 15, 8, 30, 5),
        day_of_week=DayOfWeek.FRIDAY,
        fractions256=128,
        adjust_reason=AdjustReason.MANUAL_TIME_UPDATE | AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE,
    )
    assert value.exact == datetime(2024, 3, 15, 8, 30, 5, 500000)


def test_current_time_minimal() -> None:
    value = parse_current_time(MINIMAL)
    assert value == CurrentTime(date_time=None)
    assert (value.exact, value.adjust_reason) == (None, NO_ADJUSTMENT)


@pytest.mark.parametrize("data", [FULL[:9], FULL + b"\x00"])
def test_current_time_needs_ten_bytes(data: bytes) -> None:
    with pytest.raises(ParseError, match="needs exactly 10 bytes") as caught:
        parse_current_time(data)
    assert caught.value.characteristic == "0x2A2B Current Time"


def test_current_time_too_short() -> None:
    with pytest.raises(ParseError, match="got 0"):
        parse_current_time(b"")


def test_current_time_trailing_bytes() -> None:
    with pytest.raises(ParseError, match="got 11"):
        parse_current_time(FULL + b"\x00")


def test_current_time_reserved_day_of_week_is_parse_error() -> None:
    with pytest.raises(ParseError, match="day of week 8 is reserved"):
        parse_current_time(FULL[:7] + b"\x08" + FULL[8:])


def test_current_time_reserved_adjust_bits_ignored() -> None:
    assert parse_current_time(FULL[:9] + b"\xf1").adjust_reason == AdjustReason.MANUAL_TIME_UPDATE


def test_current_time_impossible_date_is_parse_error() -> None:
    with pytest.raises(ParseError, match="2024-02-30 does not exist"):
        parse_current_time(b"\xe8\x07\x02\x1e\x00\x00\x00" + FULL[7:])


def test_current_time_encodes_full_vector() -> None:
    assert encode_current_time(parse_current_time(FULL)) == FULL
    assert encode_current_time(parse_current_time(MINIMAL)) == MINIMAL


@pytest.mark.parametrize(
    ("day", "reason"), list(itertools.product(list(DayOfWeek), [NO_ADJUSTMENT, AdjustReason(0x0F)]))
)
def test_current_time_round_trip(day: DayOfWeek, reason: AdjustReason) -> None:
    original = CurrentTime(datetime(2031, 12, 31, 23, 59, 59), day, 255, reason)
    assert parse_current_time(encode_current_time(original)) == original


def test_current_time_for_sets_a_device_clock() -> None:
    value = current_time_for(datetime(2026, 11, 2, 7, 30, 15, 999_999, tzinfo=UTC))
    assert value == CurrentTime(
        date_time=datetime(2026, 11, 2, 7, 30, 15),  # zone dropped: device clocks are wall clocks
        day_of_week=DayOfWeek.MONDAY,
        fractions256=255,  # rounded down: the device is never set ahead
        adjust_reason=AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE,
    )
    assert encode_current_time(value) == b"\xea\x07\x0b\x02\x07\x1e\x0f\x01\xff\x02"
