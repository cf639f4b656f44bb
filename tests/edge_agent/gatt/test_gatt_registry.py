"""The registry: UUID normalisation, lookup, decode, and the contract every parser keeps."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from edge_agent.gatt import (
    BATTERY_SERVICE,
    BLOOD_PRESSURE_SERVICE,
    BODY_COMPOSITION_SERVICE,
    CGM_SERVICE,
    CHARACTERISTICS,
    CURRENT_TIME_SERVICE,
    DEVICE_INFORMATION_SERVICE,
    GLUCOSE_SERVICE,
    HEALTH_THERMOMETER_SERVICE,
    HEART_RATE_SERVICE,
    PULSE_OXIMETER_SERVICE,
    WEIGHT_SCALE_SERVICE,
    ParseError,
    decode,
    lookup,
    normalize_uuid,
)
from fhir_contract.readings import Component, Quantity, Reading

TERMINOLOGY = Path(__file__).resolve().parents[3] / "fhir" / "terminology.json"

# One value of each characteristic, every optional field present, built field by field (the per-service
# test modules explain each byte).
FULL_VALUES = {
    "00002a35-0000-1000-8000-00805f9b34fb": bytes.fromhex("1e 7900 5100 29f4 e807030f081e05 4800 01 0d00"),
    "00002a36-0000-1000-8000-00805f9b34fb": bytes.fromhex("00 8c00 ff07 ff07"),
    "00002a5e-0000-1000-8000-00805f9b34fb": bytes.fromhex("0f 6100 4000 e807030f081e05 8040 202000 19f0"),
    "00002a5f-0000-1000-8000-00805f9b34fb": bytes.fromhex(
        "1f 6100 4000 6000 4200 cff3 3f00 8000 200000 19f0"
    ),
    "00002a60-0000-1000-8000-00805f9b34fb": bytes.fromhex("ff00 e0ff ffff00"),
    "00002a9d-0000-1000-8000-00805f9b34fb": bytes.fromhex("0e 8638 e807030f081e05 03 ec00 d906"),
    "00002a9c-0000-1000-8000-00805f9b34fb": bytes.fromhex(
        "fe1f e100 e807030f081e05 02 6419 9101 d117 4c2c c427 101f 0314 8638 d906"
    ),
    "00002a1c-0000-1000-8000-00805f9b34fb": bytes.fromhex("06 4c0e00fe e807030f081e05 06"),
    "00002a1e-0000-1000-8000-00805f9b34fb": bytes.fromhex("00 6e0100ff"),
    "00002a1d-0000-1000-8000-00805f9b34fb": bytes.fromhex("09"),
    "00002a37-0000-1000-8000-00805f9b34fb": bytes.fromhex("1f 4800 d204 2003 0004"),
    "00002a38-0000-1000-8000-00805f9b34fb": bytes.fromhex("01"),
    "00002a18-0000-1000-8000-00805f9b34fb": bytes.fromhex("1b 0700 e807030f081e05 fbff 61b0 11 0100"),
    "00002a34-0000-1000-8000-00805f9b34fb": bytes.fromhex("df 0700 00 01 32d0 01 51 0807 32 01 04a0 41f0"),
    "00002a51-0000-1000-8000-00805f9b34fb": bytes.fromhex("0304"),
    "00002a52-0000-1000-8000-00805f9b34fb": bytes.fromhex("06 00 01 01"),
    "00002aa7-0000-1000-8000-00805f9b34fb": bytes.fromhex(
        "0d e3 7800 0500 02 14 01 02f0 e5f3 06 00 7d00 0b00"
    ),
    "00002aa8-0000-1000-8000-00805f9b34fb": bytes.fromhex("018001 59 ffff"),
    "00002aaa-0000-1000-8000-00805f9b34fb": bytes.fromhex("e807030f080000 04 04"),
    "00002a29-0000-1000-8000-00805f9b34fb": b"Homewatch Devices",
    "00002a24-0000-1000-8000-00805f9b34fb": b"HW-BP1",
    "00002a25-0000-1000-8000-00805f9b34fb": b"SN-000123\x00",
    "00002a27-0000-1000-8000-00805f9b34fb": b"rev C",
    "00002a26-0000-1000-8000-00805f9b34fb": b"2.3.4",
    "00002a28-0000-1000-8000-00805f9b34fb": b"5.6",
    "00002a23-0000-1000-8000-00805f9b34fb": bytes.fromhex("c377addeee abedfe"),
    "00002a19-0000-1000-8000-00805f9b34fb": bytes.fromhex("4b"),
    "00002a2b-0000-1000-8000-00805f9b34fb": bytes.fromhex("e807030f081e05 05 80 03"),
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
    assert HEART_RATE_SERVICE == "0000180d-0000-1000-8000-00805f9b34fb"
    assert BODY_COMPOSITION_SERVICE == "0000181b-0000-1000-8000-00805f9b34fb"
    assert GLUCOSE_SERVICE == "00001808-0000-1000-8000-00805f9b34fb"
    assert CGM_SERVICE == "0000181f-0000-1000-8000-00805f9b34fb"
    assert DEVICE_INFORMATION_SERVICE == "0000180a-0000-1000-8000-00805f9b34fb"
    assert BATTERY_SERVICE == "0000180f-0000-1000-8000-00805f9b34fb"
    assert CURRENT_TIME_SERVICE == "00001805-0000-1000-8000-00805f9b34fb"


def test_registry_knows_each_characteristic_and_its_service() -> None:
    names = {spec.uuid[4:8]: (spec.name, spec.service_uuid) for spec in CHARACTERISTICS.values()}
    assert names == {
        "2a35": ("0x2A35 Blood Pressure Measurement", BLOOD_PRESSURE_SERVICE),
        "2a36": ("0x2A36 Intermediate Cuff Pressure", BLOOD_PRESSURE_SERVICE),
        "2a5e": ("0x2A5E PLX Spot-Check Measurement", PULSE_OXIMETER_SERVICE),
        "2a9d": ("0x2A9D Weight Measurement", WEIGHT_SCALE_SERVICE),
        "2a1c": ("0x2A1C Temperature Measurement", HEALTH_THERMOMETER_SERVICE),
        "2a1e": ("0x2A1E Intermediate Temperature", HEALTH_THERMOMETER_SERVICE),
        "2a1d": ("0x2A1D Temperature Type", HEALTH_THERMOMETER_SERVICE),
        "2a5f": ("0x2A5F PLX Continuous Measurement", PULSE_OXIMETER_SERVICE),
        "2a60": ("0x2A60 PLX Features", PULSE_OXIMETER_SERVICE),
        "2a37": ("0x2A37 Heart Rate Measurement", HEART_RATE_SERVICE),
        "2a38": ("0x2A38 Body Sensor Location", HEART_RATE_SERVICE),
        "2a9c": ("0x2A9C Body Composition Measurement", BODY_COMPOSITION_SERVICE),
        "2a18": ("0x2A18 Glucose Measurement", GLUCOSE_SERVICE),
        "2a34": ("0x2A34 Glucose Measurement Context", GLUCOSE_SERVICE),
        "2a51": ("0x2A51 Glucose Feature", GLUCOSE_SERVICE),
        "2a52": ("0x2A52 Record Access Control Point", GLUCOSE_SERVICE),
        "2aa7": ("0x2AA7 CGM Measurement", CGM_SERVICE),
        "2aa8": ("0x2AA8 CGM Feature", CGM_SERVICE),
        "2aaa": ("0x2AAA CGM Session Start Time", CGM_SERVICE),
        "2a29": ("0x2A29 Manufacturer Name String", DEVICE_INFORMATION_SERVICE),
        "2a24": ("0x2A24 Model Number String", DEVICE_INFORMATION_SERVICE),
        "2a25": ("0x2A25 Serial Number String", DEVICE_INFORMATION_SERVICE),
        "2a27": ("0x2A27 Hardware Revision String", DEVICE_INFORMATION_SERVICE),
        "2a26": ("0x2A26 Firmware Revision String", DEVICE_INFORMATION_SERVICE),
        "2a28": ("0x2A28 Software Revision String", DEVICE_INFORMATION_SERVICE),
        "2a23": ("0x2A23 System ID", DEVICE_INFORMATION_SERVICE),
        "2a19": ("0x2A19 Battery Level", BATTERY_SERVICE),
        "2a2b": ("0x2A2B Current Time", CURRENT_TIME_SERVICE),
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
        decode("2a00", b"hub")  # Device Name: not handled here
    assert caught.value.characteristic == "00002a00-0000-1000-8000-00805f9b34fb"


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


@pytest.mark.parametrize(
    "uuid",
    [
        "2a1d",
        "2a60",
        "2a38",
        "2a34",
        "2a51",
        "2a52",
        "2aa8",
        "2aaa",
        "2a29",
        "2a24",
        "2a25",
        "2a27",
        "2a26",
        "2a28",
        "2a23",
        "2a2b",
    ],
)
def test_values_about_the_device_or_procedure_give_no_readings_but_are_validated(uuid: str) -> None:
    assert decode(uuid, FULL_VALUES[normalize_uuid(uuid)]) == []
    with pytest.raises(ParseError):
        decode(uuid, b"\xff" * 11)  # no value of these is eleven 0xFF bytes


@pytest.mark.parametrize(
    ("uuid", "kinds"),
    [
        ("2a37", ["heart-rate", "rr-interval", "rr-interval", "energy-expended"]),
        (
            "2a5f",
            [
                "spo2",
                "pulse-rate-oximeter",
                "spo2-fast",
                "pulse-rate-oximeter-fast",
                "spo2-slow",
                "pulse-rate-oximeter-slow",
            ],
        ),
        (
            "2a9c",
            [
                "body-fat-percentage",
                "basal-metabolism",
                "muscle-percentage",
                "muscle-mass",
                "fat-free-mass",
                "soft-lean-mass",
                "body-water-mass",
                "body-impedance",
                "body-weight",
                "body-height",
            ],
        ),
        ("2a18", ["glucose-capillary-whole-blood"]),
        ("2aa7", ["cgm-glucose", "cgm-glucose"]),
        ("2a19", ["battery-level"]),
        ("2a1c", ["body-temperature"]),
    ],
)
def test_decode_new_measurements(uuid: str, kinds: list[str]) -> None:
    assert [r.kind for r in decode(uuid, FULL_VALUES[normalize_uuid(uuid)])] == kinds


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
        if reading.body_site is not None:
            assert reading.body_site in entry["sites"]


@pytest.mark.parametrize("uuid", sorted(CHARACTERISTICS))
def test_parser_raises_only_parse_error_on_every_truncation_and_extension(uuid: str) -> None:
    full = FULL_VALUES[uuid]
    for data in [full[:n] for n in range(len(full))] + [full + b"\x00", full + b"\xff\xff"]:
        # Either a value or a ParseError; arbitrary bytes: the hypothesis fuzz test (test_gatt_properties.py).
        with contextlib.suppress(ParseError):
            decode(uuid, data)


def test_decode_accepts_bytearray_as_bleak_delivers_it() -> None:
    uuid = "00002a1c-0000-1000-8000-00805f9b34fb"
    assert decode(uuid, bytearray(FULL_VALUES[uuid])) == decode(uuid, FULL_VALUES[uuid])
