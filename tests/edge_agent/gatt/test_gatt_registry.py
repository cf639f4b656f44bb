"""The registry: UUID normalisation, lookup, decode, and the contract every parser keeps."""

from __future__ import annotations

import json
import random
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from edge_agent.gatt import (
    BLOOD_PRESSURE_SERVICE,
    CHARACTERISTICS,
    HEALTH_THERMOMETER_SERVICE,
    PULSE_OXIMETER_SERVICE,
    WEIGHT_SCALE_SERVICE,
    ParseError,
    decode,
    lookup,
    normalize_uuid,
)
from edge_agent.readings import Component, Quantity, Reading

TERMINOLOGY = Path(__file__).resolve().parents[3] / "fhir" / "terminology.json"

# One value of each characteristic, every optional field present, built field by field.
FULL_VALUES = {
    "00002a35-0000-1000-8000-00805f9b34fb": bytes.fromhex("1e 7900 5100 29f4 e807030f081e05 4800 01 0d00"),
    "00002a36-0000-1000-8000-00805f9b34fb": bytes.fromhex("00 8c00 ff07 ff07"),
    "00002a5e-0000-1000-8000-00805f9b34fb": bytes.fromhex("0f 6100 4000 e807030f081e05 8040 202000 19f0"),
    "00002a9d-0000-1000-8000-00805f9b34fb": bytes.fromhex("0e 8638 e807030f081e05 03 ec00 d906"),
    "00002a1c-0000-1000-8000-00805f9b34fb": bytes.fromhex("06 4c0e00fe e807030f081e05 06"),
    "00002a1e-0000-1000-8000-00805f9b34fb": bytes.fromhex("00 6e0100ff"),
}


@pytest.mark.parametrize(
    "text",
    [
        "2a35",
        "2A35",
        "0x2A35",
        "0x2a35",
        " 2a35 ",
        "00002A35",
        "00002a35-0000-1000-8000-00805f9b34fb",
        "00002A35-0000-1000-8000-00805F9B34FB",
        "00002a3500001000800000805f9b34fb",
    ],
)
def test_normalize_uuid_gives_bleak_form(text: str) -> None:
    assert normalize_uuid(text) == "00002a35-0000-1000-8000-00805f9b34fb"


@pytest.mark.parametrize("text", ["", "2a3", "0x2a3g", "2a_5", "not-a-uuid", "00002a35-0000-1000-8000"])
def test_normalize_uuid_rejects_non_uuid(text: str) -> None:
    with pytest.raises(ParseError, match="not a Bluetooth UUID"):
        normalize_uuid(text)


def test_service_uuids() -> None:
    assert BLOOD_PRESSURE_SERVICE == "00001810-0000-1000-8000-00805f9b34fb"
    assert PULSE_OXIMETER_SERVICE == "00001822-0000-1000-8000-00805f9b34fb"
    assert WEIGHT_SCALE_SERVICE == "0000181d-0000-1000-8000-00805f9b34fb"
    assert HEALTH_THERMOMETER_SERVICE == "00001809-0000-1000-8000-00805f9b34fb"


def test_registry_knows_each_characteristic_and_its_service() -> None:
    names = {spec.uuid[4:8]: (spec.name, spec.service_uuid) for spec in CHARACTERISTICS.values()}
    assert names == {
        "2a35": ("0x2A35 Blood Pressure Measurement", BLOOD_PRESSURE_SERVICE),
        "2a36": ("0x2A36 Intermediate Cuff Pressure", BLOOD_PRESSURE_SERVICE),
        "2a5e": ("0x2A5E PLX Spot-Check Measurement", PULSE_OXIMETER_SERVICE),
        "2a9d": ("0x2A9D Weight Measurement", WEIGHT_SCALE_SERVICE),
        "2a1c": ("0x2A1C Temperature Measurement", HEALTH_THERMOMETER_SERVICE),
        "2a1e": ("0x2A1E Intermediate Temperature", HEALTH_THERMOMETER_SERVICE),
    }
    assert all(uuid == spec.uuid == normalize_uuid(uuid) for uuid, spec in CHARACTERISTICS.items())


def test_lookup_accepts_short_form() -> None:
    spec = lookup("0x2A35")
    assert spec.uuid == "00002a35-0000-1000-8000-00805f9b34fb"
    assert spec.name == "0x2A35 Blood Pressure Measurement"
    measurement = spec.parse(FULL_VALUES[spec.uuid])
    assert (measurement.systolic, measurement.diastolic) == (Decimal("121"), Decimal("81"))


def test_decode_unknown_uuid_is_parse_error() -> None:
    with pytest.raises(ParseError, match="no parser") as caught:
        decode("2a37", b"\x00\x48")  # Heart Rate Measurement: not handled here
    assert caught.value.characteristic == "00002a37-0000-1000-8000-00805f9b34fb"


def test_decode_blood_pressure() -> None:
    at = datetime(2024, 3, 15, 8, 30, 5)
    assert decode("2a35", FULL_VALUES["00002a35-0000-1000-8000-00805f9b34fb"]) == [
        Reading(
            kind="blood-pressure",
            components=(
                Component("systolic", Quantity(Decimal("121"), "mm[Hg]")),
                Component("diastolic", Quantity(Decimal("81"), "mm[Hg]")),
                Component("mean", Quantity(Decimal("106.5"), "mm[Hg]")),
            ),
            device_time=at,
        ),
        Reading(kind="pulse-rate-cuff", value=Quantity(Decimal("72"), "/min"), device_time=at),
    ]


def test_decode_passes_parse_error_through() -> None:
    with pytest.raises(ParseError) as caught:
        decode("2a9d", b"\x00")
    assert caught.value.characteristic == "0x2A9D Weight Measurement"


@pytest.mark.parametrize("uuid", ["2a36", "2a1e"])
def test_intermediate_values_give_no_readings(uuid: str) -> None:
    assert decode(uuid, FULL_VALUES[normalize_uuid(uuid)]) == []


def test_every_characteristic_has_a_full_test_value() -> None:
    assert set(FULL_VALUES) == set(CHARACTERISTICS)


@pytest.mark.parametrize("uuid", sorted(FULL_VALUES))
def test_readings_use_terminology_kinds_and_units(uuid: str) -> None:
    terminology: dict[str, Any] = json.loads(TERMINOLOGY.read_text())["readings"]
    for reading in decode(uuid, FULL_VALUES[uuid]):
        entry = terminology[reading.kind]
        if reading.components:
            for component in reading.components:
                assert isinstance(component.value, Quantity)
                assert component.value.unit in entry["components"][component.kind]["units"]
        else:
            assert isinstance(reading.value, Quantity)
            assert reading.value.unit in entry["units"]


@pytest.mark.parametrize("uuid", sorted(CHARACTERISTICS))
def test_parser_raises_only_parse_error_on_arbitrary_bytes(uuid: str) -> None:
    spec = CHARACTERISTICS[uuid]
    rng = random.Random(uuid)
    parsed = 0
    for _ in range(3000):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 24)))
        try:
            spec.to_readings(spec.parse(data))
        except ParseError:
            continue
        parsed += 1
    assert parsed > 0  # some random values are valid, so both paths ran


def test_decode_accepts_bytearray_as_bleak_delivers_it() -> None:
    uuid = "00002a1c-0000-1000-8000-00805f9b34fb"
    assert decode(uuid, bytearray(FULL_VALUES[uuid])) == decode(uuid, FULL_VALUES[uuid])
