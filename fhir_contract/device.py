"""Build the FHIR R4 Device resources a hub reports: its sensors (PhdDevice) and itself (PhgDevice).

Follows the HL7 Personal Health Device IG: a sensor is typed MDC_MOC_VMS_MDS_SIMP with its
specialization from DeviceTypes11073MDC, identified by its EUI-64 System ID (0x2A23) when it has one and
by its Bluetooth address, and carries manufacturer, model, serial number and versions from the Device
Information service; the hub is typed MDC_MOC_VMS_MDS_AHD with its system identifier and the protocol it
synchronises its clock with. The codes live in ``fhir/devices.json``; this module only applies them.
Reading Device Information from a device, and choosing the Device ids, is left to the hub.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir_contract.terminology import MDC, Coding, contract_dir

FhirJson = dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeviceKind:
    """A kind of health device: the primary service that tells it and its specialization codes."""

    key: str
    service: str  # the 16-bit service UUID, lower-case hex ("1810")
    specializations: tuple[Coding, ...]


@dataclass(frozen=True, slots=True)
class DeviceVersions:
    """Revision strings from the Device Information service (0x2A27, 0x2A28, 0x2A26); None if not read."""

    hardware: str | None = None
    software: str | None = None
    firmware: str | None = None


# The kinds a hub enrols devices as (``edge_agent.config.DeviceKind``) that the contract names otherwise
# (``fhir/devices.json``); the other kinds have the same name in both.
_CONTRACT_KINDS = {
    "blood-pressure-cuff": "blood-pressure-monitor",
    "scale": "weight-scale",
    "body-composition-scale": "body-composition-analyzer",
    "continuous-oximeter": "pulse-oximeter",
    "cgm": "continuous-glucose-monitor",
}


def contract_kind(kind: str) -> str:
    """The contract's name (``fhir/devices.json``) of a device kind enrolled under either vocabulary."""
    return _CONTRACT_KINDS.get(kind, kind)


@cache
def _devices() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((contract_dir() / "devices.json").read_text(encoding="utf-8"))
    return loaded


def _mdc(raw: dict[str, str]) -> Coding:
    return Coding(MDC, raw["code"], raw.get("display"))


@cache
def device_kinds() -> dict[str, DeviceKind]:
    """Every device kind of the contract (``fhir/devices.json``), by key."""
    return {
        key: DeviceKind(key, raw["service"].lower(), tuple(_mdc(s) for s in raw["specializations"]))
        for key, raw in _devices()["kinds"].items()
    }


def device_kind(key: str) -> DeviceKind:
    """The device kind ``key``; KeyError naming the known kinds if there is none."""
    try:
        return device_kinds()[key]
    except KeyError:
        raise KeyError(f"unknown device kind {key!r}; known: {', '.join(sorted(device_kinds()))}") from None


def device_kind_for_service(service: str) -> DeviceKind | None:
    """The device kind whose primary service is ``service`` ("1810", "0x1810" or the 128-bit UUID)."""
    text = service.strip().lower().removeprefix("0x")
    short = text[4:8] if len(text) == 36 else text[-4:]
    return next((kind for kind in device_kinds().values() if kind.service == short), None)


def format_eui(address: str, octets: int) -> str:
    """An EUI-48 or EUI-64 as the PHD IG writes it: upper-case hex octets joined by dashes.

    Accepts colons, dashes, dots or no separators ("00:e5:de:ad:77:c3" -> "00-E5-DE-AD-77-C3");
    ValueError unless it has exactly ``octets`` octets of hex digits.
    """
    digits = "".join(c for c in address if c not in ":-. ").upper()
    if len(digits) != 2 * octets or any(c not in string.hexdigits for c in digits):
        raise ValueError(f"{address!r} is not an EUI with {octets} octets")
    return "-".join(digits[i : i + 2] for i in range(0, len(digits), 2))


def device_key(address: str) -> str:
    """The device part of an Observation identifier: upper-case hex without dashes (PHD IG)."""
    return "".join(c for c in address if c not in ":-. ").upper()


def _identifier(code: str, system: str, value: str) -> FhirJson:
    systems = _devices()["systems"]
    return {
        "type": {"coding": [{"system": systems["device-identifiers"], "code": code}]},
        "system": system,
        "value": value,
    }


def _concept(coding: Coding) -> FhirJson:
    return {"coding": [coding.to_fhir()]}


def _versions(versions: DeviceVersions) -> list[FhirJson]:
    codes = _devices()["versions"]
    values = {"hardware": versions.hardware, "software": versions.software, "firmware": versions.firmware}
    return [
        {"type": _concept(_mdc(codes[name])), "value": value}
        for name, value in values.items()
        if value is not None
    ]


def build_sensor_device(
    device_id: str,
    kind: str,
    *,
    bluetooth_address: str | None = None,
    system_id: str | None = None,
    manufacturer: str | None = None,
    model: str | None = None,
    serial_number: str | None = None,
    versions: DeviceVersions | None = None,
    patient_id: str | None = None,
) -> FhirJson:
    """A PhdDevice for one sensor. ``device_id`` is the id Observations reference (``Device/<id>``).

    ``system_id`` is the EUI-64 of 0x2A23 (``SystemId.eui64``), ``bluetooth_address`` the EUI-48
    transport address; the IG needs at least one and recommends both. ``patient_id`` names the patient
    the device is assigned to.
    """
    if bluetooth_address is None and system_id is None:
        raise ValueError("a sensor Device needs a System ID or a Bluetooth address (PHD IG)")
    data = _devices()
    systems = data["systems"]
    identifiers = []
    if system_id is not None:
        identifiers.append(_identifier("SYSID", systems["eui-64"], format_eui(system_id, 8)))
    if bluetooth_address is not None:
        identifiers.append(_identifier("BTMAC", systems["bluetooth"], format_eui(bluetooth_address, 6)))
    device: FhirJson = {
        "resourceType": "Device",
        "id": device_id,
        "meta": {"profile": [data["profiles"]["sensor"]]},
        "identifier": identifiers,
        "type": _concept(_mdc(data["sensor_type"])),
        "specialization": [
            {"systemType": _concept(coding), "version": "1"} for coding in device_kind(kind).specializations
        ],
    }
    if manufacturer is not None:
        device["manufacturer"] = manufacturer
    if model is not None:
        device["modelNumber"] = model
    if serial_number is not None:
        device["serialNumber"] = serial_number
    version_list = _versions(versions or DeviceVersions())
    if version_list:
        device["version"] = version_list
    if patient_id is not None:
        device["patient"] = {"reference": f"Patient/{patient_id}"}
    return device


def time_sync_methods() -> dict[str, Coding]:
    """The time-synchronisation methods a hub may declare (MDCTimeSyncMethods), by key ("ntpv4")."""
    return {key: _mdc(raw) for key, raw in _devices()["time_sync_methods"].items()}


def build_gateway_device(
    hub_id: str,
    system_id: str,
    *,
    time_sync: str = "ntpv4",
    bluetooth_address: str | None = None,
    manufacturer: str | None = None,
    model: str | None = None,
    software_version: str | None = None,
) -> FhirJson:
    """A PhgDevice for the hub. ``hub_id`` is the id Observations' gatewayDevice extension references.

    ``system_id`` is the hub's EUI-64 (``eui64_from_eui48`` makes one from its Bluetooth address);
    ``time_sync`` names how the hub's clock is synchronised (a key of ``time_sync_methods``).
    """
    data = _devices()
    systems = data["systems"]
    methods = time_sync_methods()
    if time_sync not in methods:
        raise KeyError(f"unknown time-sync method {time_sync!r}; known: {', '.join(sorted(methods))}")
    identifiers = [_identifier("SYSID", systems["eui-64"], format_eui(system_id, 8))]
    if bluetooth_address is not None:
        identifiers.append(_identifier("BTMAC", systems["bluetooth"], format_eui(bluetooth_address, 6)))
    device: FhirJson = {
        "resourceType": "Device",
        "id": hub_id,
        "meta": {"profile": [data["profiles"]["gateway"]]},
        "identifier": identifiers,
        "type": _concept(_mdc(data["gateway_type"])),
        "specialization": [{"systemType": _concept(_mdc(data["gateway_specialization"]))}],
        "property": [
            {
                "type": _concept(_mdc(data["time_sync_property"])),
                "valueCode": [_concept(methods[time_sync])],
            }
        ],
    }
    if manufacturer is not None:
        device["manufacturer"] = manufacturer
    if model is not None:
        device["modelNumber"] = model
    if software_version is not None:
        device["version"] = _versions(DeviceVersions(software=software_version))
    return device


def eui64_from_eui48(address: str) -> str:
    """An EUI-64 derived from an EUI-48 by inserting FF-FE in the middle (IEEE's mapping)."""
    octets = format_eui(address, 6).split("-")
    return "-".join([*octets[:3], "FF", "FE", *octets[3:]])
