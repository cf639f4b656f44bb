"""Battery Level (0x2A19): one byte 0..100 %, a "battery-level" reading."""

from __future__ import annotations

from decimal import Decimal

import pytest

from edge_agent.gatt.battery import encode_battery_level, parse_battery_level, to_readings
from edge_agent.gatt.errors import ParseError
from fhir_contract.readings import Quantity, Reading


def test_battery_level_full() -> None:
    assert parse_battery_level(b"\x64") == 100  # 100 %


def test_battery_level_minimal() -> None:
    assert parse_battery_level(b"\x00") == 0


def test_battery_level_above_100_is_parse_error() -> None:
    with pytest.raises(ParseError) as caught:
        parse_battery_level(b"\x65")
    assert (caught.value.characteristic, caught.value.reason) == (
        "0x2A19 Battery Level",
        "battery level 101 % is above 100 %",
    )


def test_battery_level_too_short() -> None:
    with pytest.raises(ParseError, match="needs exactly 1 byte"):
        parse_battery_level(b"")


def test_battery_level_trailing_bytes() -> None:
    with pytest.raises(ParseError, match=r"needs exactly 1 byte .*got 2"):
        parse_battery_level(b"\x50\x00")


@pytest.mark.parametrize("level", range(101))
def test_battery_level_round_trip(level: int) -> None:
    assert parse_battery_level(encode_battery_level(level)) == level


@pytest.mark.parametrize("level", [-1, 101, 255])
def test_battery_level_encoder_refuses_levels_outside_0_to_100(level: int) -> None:
    with pytest.raises(ValueError):
        encode_battery_level(level)


def test_battery_level_to_readings() -> None:
    assert to_readings(parse_battery_level(b"\x4b")) == [
        Reading(kind="battery-level", value=Quantity(Decimal(75), "%"))
    ]
