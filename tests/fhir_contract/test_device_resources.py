"""Sensor (PhdDevice) and hub (PhgDevice) Devices are valid R4 and carry what the PHD IG requires."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir.resources.R4B.device import Device

from fhir_contract.device import (
    DeviceVersions,
    build_gateway_device,
    build_sensor_device,
    device_key,
    device_kind_for_service,
    device_kinds,
    eui64_from_eui48,
    format_eui,
)
from fhir_contract.terminology import MDC, contract_dir

IDENTIFIER_TYPES = "http://terminology.hl7.org/CodeSystem/ContinuaDeviceIdentifiers"
EUI64_SYSTEM = "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680"
BLUETOOTH_SYSTEM = "http://hl7.org/fhir/sid/eui-48/bluetooth"

EXPECTED_SPECIALIZATIONS = {
    "blood-pressure-monitor": ["528391"],
    "pulse-oximeter": ["528388"],
    "weight-scale": ["528399"],
    "thermometer": ["528392"],
    "glucose-meter": ["528401"],
    "continuous-glucose-monitor": ["528409"],
    "body-composition-analyzer": ["528404"],
    "heart-rate-monitor": ["528425", "528525"],
}


def _codes(concept: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in concept["coding"]]


def _identifiers(device: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {i["type"]["coding"][0]["code"]: (i["system"], i["value"]) for i in device["identifier"]}


def _sensor(kind: str = "blood-pressure-monitor", **kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bluetooth_address": "00:e5:de:ad:77:c3",
        "system_id": "feedabeedead77c3",
        "manufacturer": "Example Medical",
        "model": "BP-100",
        "serial_number": "SN-1",
        "versions": DeviceVersions(hardware="1.0", software="2.3.1", firmware="2.3"),
        "patient_id": "p-1",
    } | kwargs
    return build_sensor_device("00E5DEAD77C3", kind, **options)


def test_device_kinds_in_the_data_carry_the_ig_specialization_codes() -> None:
    found = {key: [c.code for c in kind.specializations] for key, kind in device_kinds().items()}
    assert found == EXPECTED_SPECIALIZATIONS
    raw = json.loads((contract_dir() / "devices.json").read_text(encoding="utf-8"))
    assert set(raw["kinds"]) == set(EXPECTED_SPECIALIZATIONS)


@pytest.mark.parametrize("kind", sorted(EXPECTED_SPECIALIZATIONS))
def test_sensor_device_of_every_kind_is_valid_r4_with_phd_required_elements(kind: str) -> None:
    device = _sensor(kind)
    Device.model_validate(device)
    assert device["meta"]["profile"] == ["http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"]
    assert _codes(device["type"]) == [(MDC, "65573")]
    assert [_codes(s["systemType"])[0] for s in device["specialization"]] == [
        (MDC, code) for code in EXPECTED_SPECIALIZATIONS[kind]
    ]
    assert _identifiers(device) == {
        "SYSID": (EUI64_SYSTEM, "FE-ED-AB-EE-DE-AD-77-C3"),
        "BTMAC": (BLUETOOTH_SYSTEM, "00-E5-DE-AD-77-C3"),
    }
    assert all(i["type"]["coding"][0]["system"] == IDENTIFIER_TYPES for i in device["identifier"])
    assert (device["manufacturer"], device["modelNumber"], device["serialNumber"]) == (
        "Example Medical",
        "BP-100",
        "SN-1",
    )
    versions = {v["type"]["coding"][0]["code"]: v["value"] for v in device["version"]}
    assert versions == {"531974": "1.0", "531975": "2.3.1", "531976": "2.3"}
    assert device["patient"] == {"reference": "Patient/p-1"}


def test_sensor_device_with_only_a_bluetooth_address_is_valid_and_minimal() -> None:
    device = build_sensor_device("AA", "thermometer", bluetooth_address="00-E5-DE-AD-77-C3")
    Device.model_validate(device)
    assert set(_identifiers(device)) == {"BTMAC"}
    assert not {"manufacturer", "modelNumber", "serialNumber", "version", "patient"} & set(device)


def test_sensor_device_without_any_identifier_is_refused() -> None:
    with pytest.raises(ValueError, match="System ID or a Bluetooth address"):
        build_sensor_device("AA", "thermometer")


def test_unknown_device_kind_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="blood-pressure-monitor"):
        build_sensor_device("AA", "toaster", bluetooth_address="00-E5-DE-AD-77-C3")


def test_gateway_device_is_valid_r4_with_system_identifier_and_time_sync() -> None:
    device = build_gateway_device(
        "hub-1",
        eui64_from_eui48("00:1a:7d:da:71:13"),
        bluetooth_address="00:1a:7d:da:71:13",
        software_version="0.1.0",
    )
    Device.model_validate(device)
    assert device["meta"]["profile"] == ["http://hl7.org/fhir/uv/phd/StructureDefinition/PhgDevice"]
    assert _codes(device["type"]) == [(MDC, "531981")]
    assert _identifiers(device)["SYSID"] == (EUI64_SYSTEM, "00-1A-7D-FF-FE-DA-71-13")
    (prop,) = device["property"]
    assert _codes(prop["type"]) == [(MDC, "68220")]
    assert _codes(prop["valueCode"][0]) == [(MDC, "532226")]


def test_gateway_without_time_sync_declares_none_and_rejects_unknown_methods() -> None:
    device = build_gateway_device("hub-1", "FE-ED-AB-EE-DE-AD-77-C3", time_sync="none")
    assert _codes(device["property"][0]["valueCode"][0]) == [(MDC, "532224")]
    with pytest.raises(KeyError, match="ntpv4"):
        build_gateway_device("hub-1", "FE-ED-AB-EE-DE-AD-77-C3", time_sync="sundial")


@pytest.mark.parametrize(
    ("text", "octets", "expected"),
    [
        ("00:e5:de:ad:77:c3", 6, "00-E5-DE-AD-77-C3"),
        ("00E5DEAD77C3", 6, "00-E5-DE-AD-77-C3"),
        ("fe-ed-ab-ee-de-ad-77-c3", 8, "FE-ED-AB-EE-DE-AD-77-C3"),
    ],
)
def test_addresses_are_written_as_the_ig_writes_them(text: str, octets: int, expected: str) -> None:
    assert format_eui(text, octets) == expected


@pytest.mark.parametrize(("text", "octets"), [("00:e5:de:ad:77", 6), ("zz:e5:de:ad:77:c3", 6), ("00E5", 8)])
def test_malformed_addresses_are_refused(text: str, octets: int) -> None:
    with pytest.raises(ValueError, match="not an EUI"):
        format_eui(text, octets)


def test_device_key_is_upper_case_hex_without_separators() -> None:
    assert device_key("00:e5:de:ad:77:c3") == "00E5DEAD77C3"


@pytest.mark.parametrize(
    ("service", "kind"),
    [
        ("1810", "blood-pressure-monitor"),
        ("0x180D", "heart-rate-monitor"),
        ("0000181f-0000-1000-8000-00805f9b34fb", "continuous-glucose-monitor"),
        ("180f", None),
    ],
)
def test_device_kind_is_found_by_primary_service(service: str, kind: str | None) -> None:
    found = device_kind_for_service(service)
    assert (found.key if found else None) == kind
