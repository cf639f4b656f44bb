"""The Date Time field: valid stamps, "not known" dates, impossible dates, and the encoder."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge_agent.gatt.datetime_field import encode_date_time, parse_date_time
from edge_agent.gatt.errors import ParseError


def date_time_bytes(
    year: int, month: int, day: int, hours: int = 0, minutes: int = 0, seconds: int = 0
) -> bytes:
    return year.to_bytes(2, "little") + bytes([month, day, hours, minutes, seconds])


def test_date_time_parses_every_field() -> None:
    data = b"\xe8\x07\x03\x0f\x08\x1e\x05"  # 2024 (0x07E8), March, 15, 08:30:05
    assert parse_date_time(data) == datetime(2024, 3, 15, 8, 30, 5)


def test_date_time_accepts_leap_day_and_limits() -> None:
    assert parse_date_time(date_time_bytes(2024, 2, 29, 23, 59, 59)) == datetime(2024, 2, 29, 23, 59, 59)
    assert parse_date_time(date_time_bytes(1582, 1, 1)) == datetime(1582, 1, 1)
    assert parse_date_time(date_time_bytes(9999, 12, 31)) == datetime(9999, 12, 31)


@pytest.mark.parametrize(
    ("year", "month", "day"),
    [(0, 0, 0), (0, 3, 15), (2024, 0, 15), (2024, 3, 0)],
)
def test_date_time_not_known_is_none(year: int, month: int, day: int) -> None:
    assert parse_date_time(date_time_bytes(year, month, day, 8, 30, 5)) is None


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ((2024, 13, 1), "month 13"),
        ((2024, 1, 32), "day 32"),
        ((2024, 2, 30), "2024-02-30 does not exist"),
        ((2023, 2, 29), "2023-02-29 does not exist"),
        ((2024, 4, 31), "2024-04-31 does not exist"),
        ((2024, 1, 1, 25), "hours 25"),
        ((2024, 1, 1, 24), "hours 24"),
        ((2024, 1, 1, 0, 60), "minutes 60"),
        ((2024, 1, 1, 0, 0, 60), "seconds 60"),
        ((1581, 12, 31), "year 1581"),
        ((10000, 1, 1), "year 10000"),
        ((0, 13, 0), "month 13"),  # an unknown year does not excuse an impossible month
    ],
)
def test_date_time_impossible_value_is_parse_error(fields: tuple[int, ...], problem: str) -> None:
    with pytest.raises(ParseError, match=problem) as caught:
        parse_date_time(date_time_bytes(*fields), "0x2A35 Blood Pressure Measurement")
    assert caught.value.characteristic == "0x2A35 Blood Pressure Measurement"


@pytest.mark.parametrize("length", [0, 6, 8])
def test_date_time_wrong_length_is_parse_error(length: int) -> None:
    with pytest.raises(ParseError, match=f"got {length}") as caught:
        parse_date_time(bytes(length))
    assert caught.value.characteristic == "0x2A08 Date Time"


def test_date_time_encodes_field_by_field() -> None:
    assert encode_date_time(datetime(2024, 3, 15, 8, 30, 5)) == b"\xe8\x07\x03\x0f\x08\x1e\x05"


def test_date_time_none_encodes_as_not_known() -> None:
    assert encode_date_time(None) == bytes(7)
    assert parse_date_time(encode_date_time(None)) is None


@pytest.mark.parametrize(
    "value",
    [
        datetime(2024, 3, 15, 8, 30, 5, tzinfo=UTC),
        datetime(2024, 3, 15, 8, 30, 5, 250000),
        datetime(1581, 12, 31),
    ],
)
def test_date_time_encoder_refuses_what_the_field_cannot_carry(value: datetime) -> None:
    with pytest.raises(ValueError):
        encode_date_time(value)
