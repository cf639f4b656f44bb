"""Device Information (0x180A): the UTF-8 strings and System ID (0x2A23) as an EUI-64."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from edge_agent.gatt.device_information import (
    SystemId,
    encode_system_id,
    encode_utf8_string,
    parse_firmware_revision,
    parse_hardware_revision,
    parse_manufacturer_name,
    parse_model_number,
    parse_serial_number,
    parse_software_revision,
    parse_system_id,
)
from edge_agent.gatt.errors import ParseError

STRING_PARSERS: list[tuple[Callable[[bytes], str], str]] = [
    (parse_manufacturer_name, "0x2A29 Manufacturer Name String"),
    (parse_model_number, "0x2A24 Model Number String"),
    (parse_serial_number, "0x2A25 Serial Number String"),
    (parse_hardware_revision, "0x2A27 Hardware Revision String"),
    (parse_firmware_revision, "0x2A26 Firmware Revision String"),
    (parse_software_revision, "0x2A28 Software Revision String"),
]


@pytest.mark.parametrize(("parse", "name"), STRING_PARSERS)
def test_device_information_string_full(parse: Callable[[bytes], str], name: str) -> None:
    assert parse("Nonin Medical 3230 · Ø".encode()) == "Nonin Medical 3230 · Ø"


@pytest.mark.parametrize(("parse", "name"), STRING_PARSERS)
def test_device_information_string_minimal(parse: Callable[[bytes], str], name: str) -> None:
    assert parse(b"") == ""


@pytest.mark.parametrize(("parse", "name"), STRING_PARSERS)
def test_device_information_string_trailing_nuls_stripped(parse: Callable[[bytes], str], name: str) -> None:
    assert parse(b"1.0.4\x00\x00\x00") == "1.0.4"
    assert parse(b"\x00\x00") == ""


@pytest.mark.parametrize(("parse", "name"), STRING_PARSERS)
def test_device_information_string_not_utf8(parse: Callable[[bytes], str], name: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(b"Omron \xff\xfe")
    assert caught.value.characteristic == name
    assert caught.value.reason.startswith("byte 6 is not valid UTF-8")


@pytest.mark.parametrize("text", ["", "A&D UA-651BLE", "ÆØÅ 血圧計"])
def test_device_information_string_round_trip(text: str) -> None:
    assert parse_model_number(encode_utf8_string(text)) == text


SYSTEM_ID = b"".join(
    [
        b"\xc3\x77\xad\xde\xee",  # manufacturer identifier: 0xEEDEAD77C3 (40 bits, little-endian)
        b"\xab\xed\xfe",  # OUI: 0xFEEDAB (24 bits, little-endian)
    ]
)


def test_system_id_full() -> None:
    system_id = parse_system_id(SYSTEM_ID)
    assert system_id == SystemId(
        manufacturer_identifier=0xEEDEAD77C3, organizationally_unique_identifier=0xFEEDAB
    )
    assert system_id.eui64 == "FE-ED-AB-EE-DE-AD-77-C3"  # the PHD IG's example identifier


def test_system_id_minimal() -> None:
    assert parse_system_id(bytes(8)).eui64 == "00-00-00-00-00-00-00-00"


@pytest.mark.parametrize("data", [SYSTEM_ID[:7], SYSTEM_ID + b"\x00", b""])
def test_system_id_needs_eight_bytes(data: bytes) -> None:
    with pytest.raises(ParseError, match="needs exactly 8 bytes") as caught:
        parse_system_id(data)
    assert caught.value.characteristic == "0x2A23 System ID"


def test_system_id_round_trip() -> None:
    assert encode_system_id(parse_system_id(SYSTEM_ID)) == SYSTEM_ID


@pytest.mark.parametrize(("manufacturer", "oui"), [(1 << 40, 0), (0, 1 << 24), (-1, 0)])
def test_system_id_refuses_identifiers_beyond_their_bits(manufacturer: int, oui: int) -> None:
    with pytest.raises(ValueError):
        SystemId(manufacturer, oui)
