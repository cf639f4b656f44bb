"""Device behaviours the hub must survive: links dropped mid-transfer, devices that never answer, devices
that sleep until they hold data. Real ATT/GATT through bleak on the Bumble backend."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from bleak import BleakClient, BleakScanner
from emulation_helpers import Inbox, eventually, glucose_measurement, other_tasks

from edge_agent.ble.connection import DeviceLink, LinkPolicy
from edge_agent.ble.errors import ConnectAttemptError, ConnectError
from edge_agent.emulation.peripheral import EmulatedPeripheral, Unresponsive, create_peripheral
from edge_agent.emulation.radio import HomeRadio


async def visible(radio: HomeRadio, device: EmulatedPeripheral) -> bool:
    found = await BleakScanner.find_device_by_address(
        device.address, timeout=0.1, backend=radio.backend.scanner
    )
    return found is not None


async def test_a_link_dropped_during_a_flush_keeps_the_rest_for_the_next_connection(
    radio: HomeRadio, inbox: Inbox
) -> None:
    cuff = await create_peripheral(radio, "blood-pressure-cuff")
    readings = [bytes([0x00, n, 0x00, 0x50, 0x00, 0x5D, 0x00]) for n in range(120, 126)]
    for reading in readings:
        assert await cuff.measure(reading) is False
    cuff.drop_link_after(2)
    lost = asyncio.Event()
    client = BleakClient(cuff.address, lambda _: lost.set(), backend=radio.backend.client, timeout=2)
    await client.connect()
    await client.start_notify("2a35", inbox.on("bp"))
    async with asyncio.timeout(1):
        await lost.wait()
    assert inbox.of("bp") == readings[:2]
    assert cuff.stored_count == 4
    await client.connect()  # the device advertises again at once, as after a brief loss of range
    await client.start_notify("2a35", inbox.on("bp"))
    await inbox.wait_count("bp", 6)
    await client.disconnect()
    assert inbox.of("bp") == readings  # each exactly once, in order
    await eventually(lambda: cuff.stored_count == 0)  # the peripheral takes the last confirmation later


@pytest.mark.parametrize("mode", [True, "gatt"], ids=["ignores-connections", "silent-gatt"])
async def test_an_unresponsive_device_makes_connect_time_out_without_leftover_tasks(
    radio: HomeRadio, mode: Unresponsive
) -> None:
    scale = await create_peripheral(radio, "scale", unresponsive=mode)
    device = await BleakScanner.find_device_by_address(
        scale.address, timeout=0.5, backend=radio.backend.scanner
    )
    assert device is not None  # it advertises
    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        await BleakClient(device, backend=radio.backend.client, timeout=0.2).connect()
    assert time.perf_counter() - started < 1.0
    assert not radio.central.controller.le_connections  # the hub's half of the link is gone too
    await asyncio.sleep(0.01)
    assert other_tasks() == set()
    assert await visible(radio, scale)  # still advertising
    scale.unresponsive = False  # it recovers (batteries reseated)
    async with BleakClient(scale.address, backend=radio.backend.client, timeout=1) as client:
        assert await client.read_gatt_char("2a19") == bytes([100])


async def test_device_link_gives_up_on_an_unresponsive_device_and_closes_cleanly(radio: HomeRadio) -> None:
    scale = await create_peripheral(radio, "scale", unresponsive=True)
    policy = LinkPolicy(
        scan_timeout=0.3, connect_timeout=0.15, max_attempts=2, backoff_base=0.02, idle_retry=5
    )

    async def on_value(uuid: str, data: bytes) -> None:
        raise AssertionError("an unresponsive device sends nothing")

    link = DeviceLink(
        scale.address, "2a9d", on_value, backend=radio.backend, policy=policy, rng=random.Random(1)
    )
    async with link:
        async with asyncio.timeout(2):
            state = await link.wait_until(lambda s: isinstance(s.last_error, ConnectError))
    assert not state.connected
    assert isinstance(state.last_error, ConnectError)
    assert isinstance(state.last_error.__cause__, ConnectAttemptError)
    assert other_tasks() == set()


async def test_a_device_that_advertises_only_with_data_sleeps_until_a_reading_and_after_delivering_it(
    radio: HomeRadio, inbox: Inbox
) -> None:
    cuff = await create_peripheral(radio, "blood-pressure-cuff", advertise_only_with_data=True)
    assert not cuff.advertising
    assert not await visible(radio, cuff)
    reading = b"\x00\x78\x00\x50\x00\x5d\x00"
    assert await cuff.measure(reading) is False
    assert cuff.advertising
    async with BleakClient(cuff.address, backend=radio.backend.client, timeout=1) as client:
        await client.start_notify("2a35", inbox.on("bp"))
        assert await inbox.wait_count("bp", 1) == [reading]
        await eventually(lambda: cuff.stored_count == 0)
    await eventually(lambda: not cuff.connected)
    await asyncio.sleep(0.01)
    assert not cuff.advertising  # delivered everything: back to sleep
    assert not await visible(radio, cuff)


async def test_a_sleeping_device_disconnected_with_data_left_keeps_advertising(radio: HomeRadio) -> None:
    scale = await create_peripheral(radio, "scale", advertise_only_with_data=True)
    assert await scale.measure(b"\x00\x98\x3a") is False
    async with BleakClient(scale.address, backend=radio.backend.client, timeout=1):
        pass  # connected but never subscribed: the reading stays stored
    await eventually(lambda: not scale.connected)
    await eventually(lambda: scale.advertising)
    assert scale.stored_count == 1


async def test_a_sleeping_glucose_meter_wakes_for_a_new_record_and_sleeps_once_it_was_reported(
    radio: HomeRadio, inbox: Inbox
) -> None:
    meter = await create_peripheral(radio, "glucose-meter", advertise_only_with_data=True)
    assert not meter.advertising
    assert await meter.measure(glucose_measurement(meter.next_sequence_number, meter.device_now())) is False
    assert meter.advertising
    async with BleakClient(meter.address, backend=radio.backend.client, timeout=1, pair=True) as client:
        await client.start_notify("2a18", inbox.on("m"))
        await client.start_notify("2a52", inbox.on("r"))
        await client.write_gatt_char("2a52", bytes.fromhex("01 01"), response=True)
        assert await inbox.wait_count("r", 1) == [bytes.fromhex("06 00 01 01")]
    await eventually(lambda: not meter.connected)
    await asyncio.sleep(0.01)
    assert meter.stored_count == 0
    assert not meter.advertising
    meter.add_record(7, glucose_measurement(7, meter.device_now()))
    await eventually(lambda: meter.advertising)


async def test_drop_link_after_needs_at_least_one_value(radio: HomeRadio) -> None:
    cuff = await create_peripheral(radio, "blood-pressure-cuff")
    with pytest.raises(ValueError):
        cuff.drop_link_after(0)
