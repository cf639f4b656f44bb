"""The emulated SIG health devices, seen through bleak on the Bumble backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from bleak import BleakClient, BleakScanner
from bleak.uuids import normalize_uuid_str

from edge_agent.emulation.peripheral import PROFILES, EmulatedPeripheral, create_peripheral
from edge_agent.emulation.radio import HomeRadio


@pytest.fixture
async def radio() -> AsyncIterator[HomeRadio]:
    async with HomeRadio("peripheral-test") as radio:
        yield radio
    assert {task for task in asyncio.all_tasks() if task is not asyncio.current_task()} == set()


@pytest.mark.parametrize("kind", sorted(PROFILES))
async def test_each_device_kind_serves_its_sig_service(radio: HomeRadio, kind: str) -> None:
    profile = PROFILES[kind]
    device = await create_peripheral(radio, kind)
    service_uuid = f"{profile.service_uuid:04x}"
    found = await BleakScanner.discover(
        timeout=0.1, service_uuids=[service_uuid], backend=radio.backend.scanner
    )
    assert [d.address for d in found] == [device.address]
    async with BleakClient(found[0], backend=radio.backend.client, timeout=2) as client:
        service = client.services.get_service(service_uuid)
        assert service is not None
        measurement = service.get_characteristic(f"{profile.measurement_uuid:04x}")
        assert measurement is not None and measurement.properties == ["indicate"]
        feature = service.get_characteristic(f"{profile.feature_uuid:04x}")
        assert feature is not None and feature.properties == ["read"]
        assert await client.read_gatt_char(feature) == profile.feature_value
        battery = client.services.get_characteristic("2a19")
        assert battery is not None and battery.properties == ["read", "notify"]
        assert await client.read_gatt_char("2a24") == profile.model.encode()


async def test_readings_are_stored_until_a_central_subscribes(radio: HomeRadio) -> None:
    device = await create_peripheral(radio, "thermometer")
    assert not device.connected
    assert [await device.measure(bytes([n])) for n in range(3)] == [False, False, False]
    assert device.stored_count == 3
    async with BleakClient(device.address, backend=radio.backend.client, timeout=2):
        assert device.connected and not device.subscribed
        assert await device.measure(b"\x03") is False  # connected but not subscribed: still stored
    assert device.stored_count == 4


async def test_addresses_are_unique_across_homes() -> None:
    async with HomeRadio("a") as home_a, HomeRadio("b") as home_b:
        devices = [await create_peripheral(radio, kind) for radio in (home_a, home_b) for kind in PROFILES]
        assert len({device.address for device in devices}) == len(devices)
        assert home_a.hub_address != home_b.hub_address


async def test_invalid_settings_are_refused(radio: HomeRadio) -> None:
    with pytest.raises(ValueError, match="too long"):
        EmulatedPeripheral(radio, name="x" * 30, service_uuid=0x1810, measurement_uuid=0x2A35)
    device = await create_peripheral(radio, "scale")
    with pytest.raises(ValueError, match="outside 0-100"):
        await device.set_battery(101)


async def test_custom_peripheral_advertises_and_serves_given_characteristics(radio: HomeRadio) -> None:
    device = await EmulatedPeripheral(
        radio, name="HR", service_uuid=0x180D, measurement_uuid=0x2A37, readable={0x2A38: b"\x01"}
    ).start()
    async with BleakClient(device.address, backend=radio.backend.client, timeout=2) as client:
        assert await client.read_gatt_char(normalize_uuid_str("2a38")) == b"\x01"
        assert client.name == "HR"
