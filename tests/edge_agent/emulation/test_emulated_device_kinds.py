"""Every emulated device kind serves its SIG services as declared, seen through bleak (real ATT/GATT)."""

from __future__ import annotations

import asyncio
import struct
from decimal import Decimal

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakGATTProtocolError
from bleak.uuids import normalize_uuid_str
from emulation_helpers import (
    ATT_HANDLE_VALUE_CONFIRMATION,
    ATT_HANDLE_VALUE_INDICATION,
    ATT_HANDLE_VALUE_NOTIFICATION,
    AttSnooper,
    Inbox,
    eventually,
)

from edge_agent.emulation.peripheral import create_peripheral
from edge_agent.emulation.profiles import (
    DEVICE_PROFILES,
    INDICATE,
    NOTIFY,
    READ,
    WRITE,
    CharacteristicSpec,
    Role,
    Security,
)
from edge_agent.emulation.radio import HomeRadio
from edge_agent.gatt.blood_pressure import encode_intermediate_cuff_pressure

CCCD = normalize_uuid_str("2902")
_BLEAK_NAMES = ((READ, "read"), (WRITE, "write"), (NOTIFY, "notify"), (INDICATE, "indicate"))


def uuid(value: int) -> str:
    return normalize_uuid_str(f"{value:04x}")


def expected_properties(spec: CharacteristicSpec) -> list[str]:
    return [name for flag, name in _BLEAK_NAMES if spec.properties & flag]


@pytest.mark.parametrize("kind", sorted(DEVICE_PROFILES))
async def test_each_kind_serves_its_characteristics_with_declared_properties(
    radio: HomeRadio, kind: str
) -> None:
    profile = DEVICE_PROFILES[kind]
    device = await create_peripheral(radio, kind)
    encrypted = any(spec.security is Security.ENCRYPTED for spec in profile.characteristics())
    async with BleakClient(device.address, backend=radio.backend.client, timeout=2, pair=encrypted) as client:
        for service_spec in profile.services:
            service = client.services.get_service(uuid(service_spec.uuid))
            assert service is not None, f"{kind}: service 0x{service_spec.uuid:04X} missing"
            for spec in service_spec.characteristics:
                characteristic = service.get_characteristic(uuid(spec.uuid))
                assert characteristic is not None, f"{kind}: 0x{spec.uuid:04X} missing"
                assert characteristic.properties == expected_properties(spec)
                has_cccd = CCCD in [d.uuid for d in characteristic.descriptors]
                assert has_cccd == bool(spec.properties & (NOTIFY | INDICATE))
                if spec.role is Role.VALUE and spec.value:
                    assert await client.read_gatt_char(characteristic) == spec.value
        current_time = client.services.get_characteristic("2a2b")
        assert current_time is not None
        assert current_time.properties == (
            ["read", "write", "notify"] if profile.clock_writable else ["read", "notify"]
        )
        assert await client.read_gatt_char("2a24") == profile.model.encode()
        assert await client.read_gatt_char("2a19") == bytes([100])


async def test_each_kind_advertises_its_name_and_service_uuids(radio: HomeRadio) -> None:
    devices = {kind: await create_peripheral(radio, kind) for kind in DEVICE_PROFILES}
    seen = await BleakScanner.discover(timeout=0.15, return_adv=True, backend=radio.backend.scanner)
    for kind, device in devices.items():
        _, advertisement = seen[device.address]
        assert advertisement.local_name == device.name
        assert advertisement.service_uuids == [uuid(u) for u in DEVICE_PROFILES[kind].advertised_uuids]


async def test_notify_measurement_is_an_unconfirmed_notification_and_indicate_is_confirmed(
    radio: HomeRadio, att_snooper: AttSnooper, inbox: Inbox
) -> None:
    strap = await create_peripheral(radio, "heart-rate-monitor")
    cuff = await create_peripheral(radio, "blood-pressure-cuff")
    async with BleakClient(strap.address, backend=radio.backend.client, timeout=2) as client:
        await client.start_notify("2a37", inbox.on("hr"))
        assert await client.read_gatt_descriptor(_cccd_of(client, "2a37")) == b"\x01\x00"
        att_snooper.received.clear()
        att_snooper.sent.clear()
        assert await strap.measure(b"\x00\x48") is True
        await inbox.wait_count("hr", 1)
    assert att_snooper.received.count(ATT_HANDLE_VALUE_NOTIFICATION) == 1
    assert ATT_HANDLE_VALUE_CONFIRMATION not in att_snooper.sent
    async with BleakClient(cuff.address, backend=radio.backend.client, timeout=2) as client:
        await client.start_notify("2a35", inbox.on("bp"))
        assert await client.read_gatt_descriptor(_cccd_of(client, "2a35")) == b"\x02\x00"
        att_snooper.received.clear()
        att_snooper.sent.clear()
        assert await cuff.measure(b"\x00\x78\x00\x50\x00\x5d\x00") is True  # returns once confirmed
    assert att_snooper.received.count(ATT_HANDLE_VALUE_INDICATION) == 1
    assert att_snooper.sent.count(ATT_HANDLE_VALUE_CONFIRMATION) == 1
    assert inbox.of("bp") == [b"\x00\x78\x00\x50\x00\x5d\x00"]


async def test_cuff_notifies_intermediate_cuff_pressure_while_inflating_only_when_subscribed(
    radio: HomeRadio, att_snooper: AttSnooper, inbox: Inbox
) -> None:
    cuff = await create_peripheral(radio, "blood-pressure-cuff")
    inflating = [encode_intermediate_cuff_pressure(Decimal(mmhg)) for mmhg in (60, 110, 150)]
    final = b"\x00\x78\x00\x50\x00\x5d\x00"  # 120/80, mean 93 mmHg
    async with BleakClient(cuff.address, backend=radio.backend.client, timeout=2) as client:
        await client.start_notify("2a35", inbox.on("bp"))
        assert await cuff.measure(final, intermediate=inflating) is True
        await client.start_notify("2a36", inbox.on("cuff"))
        assert await client.read_gatt_descriptor(_cccd_of(client, "2a36")) == b"\x01\x00"
        att_snooper.received.clear()
        assert await cuff.measure(final, intermediate=inflating) is True
        await inbox.wait_count("bp", 2)
    # Byte-exact to the BLS: the 0x2A35 layout, cuff pressure as systolic, diastolic and MAP NaN (0x07FF).
    assert inbox.of("cuff")[0] == b"\x00" + b"\x3c\x00" + b"\xff\x07" * 2
    assert inbox.of("cuff") == inflating  # the first measurement sent none: nobody had subscribed
    assert [label for label, _ in inbox.values] == [
        "bp",
        "cuff",
        "cuff",
        "cuff",
        "bp",
    ]  # inflate, then result
    assert att_snooper.received.count(ATT_HANDLE_VALUE_NOTIFICATION) == 3
    assert att_snooper.received.count(ATT_HANDLE_VALUE_INDICATION) == 1


async def test_intermediate_values_need_a_device_that_has_them(radio: HomeRadio) -> None:
    scale = await create_peripheral(radio, "scale")
    with pytest.raises(ValueError, match="sends no intermediate values"):
        await scale.measure(b"\x00\x00\x00", intermediate=[b"\x00"])


def _cccd_of(client: BleakClient, characteristic_uuid: str) -> int:
    characteristic = client.services.get_characteristic(characteristic_uuid)
    assert characteristic is not None
    descriptor = characteristic.get_descriptor(CCCD)
    assert descriptor is not None
    return descriptor.handle


async def test_live_measurement_without_a_listener_is_dropped_not_stored(
    radio: HomeRadio, inbox: Inbox
) -> None:
    oximeter = await create_peripheral(radio, "continuous-oximeter")
    assert await oximeter.measure(b"\x00\x61\x00\x48\x00") is False
    assert oximeter.stored_count == 0
    async with BleakClient(oximeter.address, backend=radio.backend.client, timeout=2) as client:
        assert await oximeter.measure(b"\x00\x62\x00\x48\x00") is False  # connected, not subscribed
        await client.start_notify("2a5f", inbox.on("spo2"))
        assert await oximeter.measure(b"\x00\x63\x00\x48\x00") is True
        assert await inbox.wait_count("spo2", 1) == [b"\x00\x63\x00\x48\x00"]


async def test_body_composition_scale_stores_both_measurements_until_each_is_subscribed(
    radio: HomeRadio, inbox: Inbox
) -> None:
    scale = await create_peripheral(radio, "body-composition-scale")
    body = b"\x00\x00\x2c\x01"  # flags, body fat 30.0 %
    weight = b"\x00" + struct.pack("<H", 15000)  # 75.00 kg
    assert await scale.measure(body) is False
    assert await scale.measure(weight, 0x2A9D) is False
    assert scale.stored_count == 2
    async with BleakClient(scale.address, backend=radio.backend.client, timeout=2) as client:
        await client.start_notify("2a9c", inbox.on("body"))
        assert await inbox.wait_count("body", 1) == [body]
        await eventually(lambda: scale.stored_count == 1)  # the weight waits for its own subscription
        await client.start_notify("2a9d", inbox.on("weight"))
        assert await inbox.wait_count("weight", 1) == [weight]
        await eventually(lambda: scale.stored_count == 0)


async def test_values_refuse_what_their_properties_do_not_allow(radio: HomeRadio) -> None:
    cuff = await create_peripheral(radio, "blood-pressure-cuff")
    async with BleakClient(cuff.address, backend=radio.backend.client, timeout=2) as client:
        with pytest.raises(BleakGATTProtocolError) as write_refused:
            await client.write_gatt_char("2a49", b"\xff\xff", response=True)
        with pytest.raises(BleakGATTProtocolError) as read_refused:
            await client.read_gatt_char("2a35")
        assert (
            await client.read_gatt_char("2a49")
            == DEVICE_PROFILES["blood-pressure-cuff"].services[0].characteristics[1].value
        )
    assert write_refused.value.args[0] == 0x03  # Write Not Permitted
    assert read_refused.value.args[0] == 0x02  # Read Not Permitted


async def test_require_bonding_protects_the_health_service_of_any_kind(radio: HomeRadio) -> None:
    cuff = await create_peripheral(radio, "blood-pressure-cuff", require_bonding=True)
    async with BleakClient(cuff.address, backend=radio.backend.client, timeout=2) as client:
        assert await client.read_gatt_char("2a19") == bytes([100])  # Battery stays open
        with pytest.raises(BleakGATTProtocolError) as refused:
            await client.start_notify("2a35", lambda _, __: None)
        assert refused.value.args[0] == 0x0F
        await client.pair()
        await client.start_notify("2a35", lambda _, __: None)
        assert cuff.subscribed


async def test_set_battery_notifies_and_set_value_changes_a_feature(radio: HomeRadio, inbox: Inbox) -> None:
    strap = await create_peripheral(radio, "heart-rate-monitor", battery=80)
    async with BleakClient(strap.address, backend=radio.backend.client, timeout=2) as client:
        await client.start_notify("2a19", inbox.on("battery"))
        await strap.set_battery(79)
        strap.set_value(0x2A38, b"\x02")  # Body Sensor Location: wrist
        assert await inbox.wait_count("battery", 1) == [b"\x4f"]
        assert await client.read_gatt_char("2a38") == b"\x02"
    with pytest.raises(KeyError):
        strap.set_value(0x2A37, b"\x00")
    await asyncio.sleep(0)
