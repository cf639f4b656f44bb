"""bleak's public API on the Bumble backend against emulated peripherals: real ATT/GATT, no mocks."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakError, BleakGATTProtocolError
from bleak.uuids import normalize_uuid_str

from edge_agent.ble.bumble_backend import BumbleClient, to_bleak_uuid, to_bumble_uuid
from edge_agent.emulation.peripheral import PROFILES, EmulatedPeripheral, create_peripheral
from edge_agent.emulation.radio import HomeRadio

BPM = normalize_uuid_str("2a35")


def other_tasks() -> set[asyncio.Task[object]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


@pytest.fixture
async def radio() -> AsyncIterator[HomeRadio]:
    async with HomeRadio("backend-test") as radio:
        yield radio
    assert other_tasks() == set()


@pytest.fixture
async def cuff(radio: HomeRadio) -> EmulatedPeripheral:
    return await create_peripheral(radio, "blood-pressure-cuff")


async def test_scanner_finds_peripherals_by_16_bit_service_uuid_filter(radio: HomeRadio) -> None:
    cuff = await create_peripheral(radio, "blood-pressure-cuff")
    scale = await create_peripheral(radio, "scale")
    devices = await BleakScanner.discover(timeout=0.15, service_uuids=["1810"], backend=radio.backend.scanner)
    assert [device.address for device in devices] == [cuff.address]
    assert devices[0].name == cuff.name
    found = await BleakScanner.find_device_by_address(scale.address, timeout=1, backend=radio.backend.scanner)
    assert found is not None and found.name == scale.name


async def test_advertisement_carries_name_and_service_uuid(
    radio: HomeRadio, cuff: EmulatedPeripheral
) -> None:
    async with BleakScanner(backend=radio.backend.scanner) as scanner:
        async with asyncio.timeout(1):
            async for device, data in scanner.advertisement_data():
                if device.address == cuff.address:
                    advertisement = data
                    break
    assert advertisement.local_name == cuff.name
    assert advertisement.service_uuids == [normalize_uuid_str("1810")]


async def test_connect_discovers_health_service_and_characteristics(
    radio: HomeRadio, cuff: EmulatedPeripheral
) -> None:
    device = await BleakScanner.find_device_by_address(cuff.address, timeout=1, backend=radio.backend.scanner)
    assert device is not None
    async with BleakClient(device, backend=radio.backend.client, timeout=2) as client:
        assert client.mtu_size == 247
        service = client.services.get_service("1810")
        assert service is not None
        measurement = service.get_characteristic("2a35")
        assert measurement is not None and measurement.properties == ["indicate"]
        assert [d.uuid for d in measurement.descriptors] == [normalize_uuid_str("2902")]
        assert client.services.get_service("180a") is not None
        assert client.services.get_service("180f") is not None
        assert await client.read_gatt_char("2a49") == PROFILES["blood-pressure-cuff"].feature_value


async def test_client_resolves_an_address_string_with_its_own_scanner(
    radio: HomeRadio, cuff: EmulatedPeripheral
) -> None:
    async with BleakClient(cuff.address, backend=radio.backend.client, timeout=2) as client:
        assert client.is_connected
        assert client.name == cuff.name


async def test_services_filter_discovers_only_requested_services(
    radio: HomeRadio, cuff: EmulatedPeripheral
) -> None:
    async with BleakClient(cuff.address, services=["1810", "180F"], backend=radio.backend.client) as client:
        uuids = sorted(service.uuid for service in client.services)
    assert uuids == sorted([normalize_uuid_str("1810"), normalize_uuid_str("180f")])


async def test_indications_arrive_in_order_byte_exact_until_stop_notify(
    radio: HomeRadio, cuff: EmulatedPeripheral
) -> None:
    received: list[bytes] = []
    values = [bytes([n]) * (1 + n * 12) for n in range(20)]  # up to 229 bytes: needs the MTU of 247
    async with BleakClient(cuff.address, backend=radio.backend.client, timeout=2) as client:
        await client.start_notify(BPM, lambda _, data: received.append(bytes(data)))
        for value in values:
            assert await cuff.measure(value) is True
        await client.stop_notify(BPM)
        assert not cuff.subscribed
        assert await cuff.measure(b"after stop") is False
    assert received == values
    assert cuff.stored_count == 1


async def test_values_measured_while_disconnected_are_flushed_in_order(
    radio: HomeRadio, cuff: EmulatedPeripheral
) -> None:
    stored = [b"\x01first", b"\x02second", b"\x03third"]
    for value in stored:
        assert await cuff.measure(value) is False
    assert cuff.stored_count == 3
    received: list[bytes] = []
    all_received = asyncio.Event()

    def on_value(_: BleakGATTCharacteristic, data: bytearray) -> None:
        received.append(bytes(data))
        if len(received) == 4:
            all_received.set()

    async with BleakClient(cuff.address, backend=radio.backend.client, timeout=2) as client:
        await client.start_notify(BPM, on_value)
        assert await cuff.measure(b"\x04live") is True
        async with asyncio.timeout(1):
            await all_received.wait()
    assert received == [*stored, b"\x04live"]
    assert cuff.stored_count == 0


async def test_link_loss_calls_disconnected_callback_and_client_reconnects(
    radio: HomeRadio, cuff: EmulatedPeripheral
) -> None:
    lost = asyncio.Event()
    client = BleakClient(cuff.address, lambda _: lost.set(), backend=radio.backend.client, timeout=2)
    await client.connect()
    await cuff.drop_link()
    async with asyncio.timeout(1):
        await lost.wait()
    assert not client.is_connected
    with pytest.raises(BleakError):
        await client.read_gatt_char("2a19")
    assert await cuff.measure(b"\x05") is False
    await cuff.reappear()
    await client.connect()
    received: list[bytes] = []
    await client.start_notify(BPM, lambda _, data: received.append(bytes(data)))
    assert await cuff.measure(b"\x06") is True
    await client.disconnect()
    assert received == [b"\x05", b"\x06"]


async def test_connect_to_a_vanished_device_times_out_and_later_connects_work(
    radio: HomeRadio, cuff: EmulatedPeripheral
) -> None:
    device = await BleakScanner.find_device_by_address(cuff.address, timeout=1, backend=radio.backend.scanner)
    assert device is not None
    await cuff.drop_link()
    with pytest.raises(TimeoutError):
        await BleakClient(device, backend=radio.backend.client, timeout=0.2).connect()
    await cuff.reappear()
    async with BleakClient(device, backend=radio.backend.client, timeout=2) as client:
        assert client.is_connected


async def test_battery_and_device_information_are_readable(radio: HomeRadio) -> None:
    scale = await create_peripheral(radio, "scale", serial="SN-42", firmware="2.1.0", battery=77)
    async with BleakClient(scale.address, backend=radio.backend.client, timeout=2) as client:
        assert await client.read_gatt_char("2a19") == bytearray([77])
        assert await client.read_gatt_char("2a25") == b"SN-42"
        assert await client.read_gatt_char("2a26") == b"2.1.0"
        assert await client.read_gatt_char("2a24") == b"Scale"
        levels: list[int] = []
        await client.start_notify("2a19", lambda _, data: levels.append(data[0]))
        await scale.set_battery(55)
        await asyncio.sleep(0.01)
    assert levels == [55]


async def test_att_errors_map_to_bleak_gatt_protocol_error(
    radio: HomeRadio, cuff: EmulatedPeripheral
) -> None:
    async with BleakClient(cuff.address, backend=radio.backend.client, timeout=2) as client:
        service = client.services.get_service("1810")
        assert service is not None
        missing = BleakGATTCharacteristic(
            0x0FFF, 0x0FFF, normalize_uuid_str("2a35"), ["read"], lambda: 20, service
        )
        with pytest.raises(BleakGATTProtocolError) as raised:
            await client.read_gatt_char(missing)
    assert raised.value.args[0] == 0x01  # Invalid Handle


async def test_four_devices_connect_concurrently_on_one_radio(radio: HomeRadio) -> None:
    devices = [await create_peripheral(radio, kind) for kind in PROFILES]
    clients = [BleakClient(d.address, backend=radio.backend.client, timeout=2) for d in devices]
    async with asyncio.timeout(3):
        await asyncio.gather(*(client.connect() for client in clients))
    received: dict[str, list[bytes]] = {}  # by service UUID: the four kinds differ

    def on_value(sender: BleakGATTCharacteristic, data: bytearray) -> None:
        received.setdefault(sender.service_uuid, []).append(bytes(data))

    for device, client in zip(devices, clients, strict=True):
        await client.start_notify(normalize_uuid_str(f"{device.measurement_uuid:04x}"), on_value)
    await asyncio.gather(*(d.measure(d.address.encode()) for d in devices))
    await asyncio.gather(*(client.disconnect() for client in clients))
    assert received == {normalize_uuid_str(f"{d.service_uuid:04x}"): [d.address.encode()] for d in devices}


async def test_home_radios_are_isolated() -> None:
    async with HomeRadio("home-a") as home_a, HomeRadio("home-b") as home_b:
        in_a = await create_peripheral(home_a, "thermometer")
        in_b = await create_peripheral(home_b, "thermometer")
        seen_from_b = await BleakScanner.discover(timeout=0.15, backend=home_b.backend.scanner)
        assert [device.address for device in seen_from_b] == [in_b.address]
        with pytest.raises(BleakError):
            await BleakClient(in_a.address, backend=home_b.backend.client, timeout=0.2).connect()
    assert other_tasks() == set()


def peripheral_link_encrypted(peripheral: EmulatedPeripheral) -> bool:
    return any(connection.is_encrypted for connection in peripheral.device.connections.values())


async def test_pairing_bonds_and_reconnects_encrypt_until_unpaired(
    radio: HomeRadio, cuff: EmulatedPeripheral
) -> None:
    async with BleakClient(cuff.address, backend=radio.backend.client, timeout=2, pair=True):
        assert peripheral_link_encrypted(cuff)
    async with BleakClient(cuff.address, backend=radio.backend.client, timeout=2) as client:
        assert peripheral_link_encrypted(cuff)  # bonded: the backend encrypts on its own
        await client.unpair()
    async with BleakClient(cuff.address, backend=radio.backend.client, timeout=2):
        assert not peripheral_link_encrypted(cuff)


def test_connecting_by_address_string_never_loads_bluez() -> None:
    code = textwrap.dedent(
        """
        import asyncio, sys
        from bleak import BleakClient
        from edge_agent.emulation.peripheral import create_peripheral
        from edge_agent.emulation.radio import HomeRadio

        async def main() -> None:
            async with HomeRadio("h") as radio:
                cuff = await create_peripheral(radio, "thermometer")
                async with BleakClient(cuff.address, backend=radio.backend.client, timeout=2) as client:
                    assert client.is_connected

        asyncio.run(main())
        print(sorted(m for m in sys.modules if "bluezdbus" in m or "dbus_fast" in m))
        """
    )
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


async def test_unbound_backend_refuses_to_run() -> None:
    with pytest.raises(BleakError, match="not bound"):
        BleakClient("C0:00:00:00:00:01", backend=BumbleClient)


def test_uuid_conversion_uses_16_bit_form_for_sig_uuids() -> None:
    assert to_bumble_uuid("1810").to_hex_str() == "1810"
    assert to_bumble_uuid(normalize_uuid_str("2a35")).to_hex_str() == "2A35"
    assert to_bleak_uuid(to_bumble_uuid("1810")) == normalize_uuid_str("1810")
    custom = "12345678-1234-5678-1234-56789abcdef0"
    assert to_bleak_uuid(to_bumble_uuid(custom)) == custom
