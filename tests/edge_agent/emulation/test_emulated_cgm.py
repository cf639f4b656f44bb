"""The emulated CGM: live measurements, RACP by time offset and the Specific Ops Control Point (real GATT)."""

from __future__ import annotations

import struct

import pytest
from bleak import BleakClient
from bleak.exc import BleakGATTProtocolError
from emulation_helpers import Inbox, ManualClock, cgm_measurement

from edge_agent.emulation.cgm import session_start_time
from edge_agent.emulation.clock import DeviceClock
from edge_agent.emulation.peripheral import EmulatedPeripheral, create_peripheral
from edge_agent.emulation.radio import HomeRadio


@pytest.fixture
async def cgm(radio: HomeRadio, reference: ManualClock) -> EmulatedPeripheral:
    cgm = await create_peripheral(radio, "cgm", clock=DeviceClock.correct(reference))
    for offset in range(0, 50, 5):  # a reading every 5 minutes since the session started
        cgm.add_record(offset, cgm_measurement(offset, 100 + offset))
    return cgm


def offset_of(measurement: bytes) -> int:
    return int(struct.unpack_from("<H", measurement, 4)[0])


async def control(client: BleakClient, inbox: Inbox, characteristic: str, label: str, request: str) -> bytes:
    expected = len(inbox.of(label)) + 1
    await client.write_gatt_char(characteristic, bytes.fromhex(request), response=True)
    return (await inbox.wait_count(label, expected))[-1]


async def test_a_new_measurement_is_notified_live_and_kept_by_time_offset(
    radio: HomeRadio, cgm: EmulatedPeripheral, inbox: Inbox
) -> None:
    async with BleakClient(cgm.address, backend=radio.backend.client, timeout=2) as client:
        await client.start_notify("2aa7", inbox.on("m"))
        assert await cgm.measure(cgm_measurement(50, 163)) is True
        assert await inbox.wait_count("m", 1) == [cgm_measurement(50, 163)]
        status = await client.read_gatt_char("2aa9")
    assert cgm.records.records[-1].key == 50
    assert status == struct.pack("<H", 50) + bytes(3)  # CGM Status: time offset of the latest reading
    assert cgm.stored_count == 10  # the history was never reported


@pytest.mark.parametrize(
    ("request_hex", "offsets"),
    [("01 01", list(range(0, 50, 5))), ("01 03 01 19 00", [25, 30, 35, 40, 45])],
    ids=["all", "from-time-offset-25"],
)
async def test_racp_reports_all_or_from_a_time_offset(
    radio: HomeRadio, cgm: EmulatedPeripheral, inbox: Inbox, request_hex: str, offsets: list[int]
) -> None:
    async with BleakClient(cgm.address, backend=radio.backend.client, timeout=2) as client:
        await client.start_notify("2aa7", inbox.on("m"))
        await client.start_notify("2a52", inbox.on("r"))
        assert await control(client, inbox, "2a52", "r", request_hex) == bytes.fromhex("06 00 01 01")
        assert await control(client, inbox, "2a52", "r", "04 03 01 19 00") == bytes.fromhex("05 00 05 00")
    assert [offset_of(m) for m in inbox.of("m")] == offsets


@pytest.mark.parametrize("request_hex", ["01 02 01 19 00", "01 04 01 00 00 19 00", "01 05", "01 06"])
async def test_racp_supports_only_all_and_greater_or_equal(
    radio: HomeRadio, cgm: EmulatedPeripheral, inbox: Inbox, request_hex: str
) -> None:
    async with BleakClient(cgm.address, backend=radio.backend.client, timeout=2) as client:
        await client.start_notify("2aa7", inbox.on("m"))
        await client.start_notify("2a52", inbox.on("r"))
        assert await control(client, inbox, "2a52", "r", request_hex) == bytes.fromhex("06 00 01 04")
    assert inbox.of("m") == []


async def test_racp_refusals_use_the_common_error_codes(
    radio: HomeRadio, cgm: EmulatedPeripheral, inbox: Inbox
) -> None:
    for offset in range(50, 500, 5):
        cgm.add_record(offset, cgm_measurement(offset))
    async with BleakClient(cgm.address, backend=radio.backend.client, timeout=2) as client:
        with pytest.raises(BleakGATTProtocolError) as no_indications:
            await client.write_gatt_char("2a52", bytes.fromhex("04 01"), response=True)
        await client.start_notify("2aa7", inbox.on("m"))
        await client.start_notify("2a52", inbox.on("r"))
        await client.write_gatt_char("2a52", bytes.fromhex("01 01"), response=True)
        with pytest.raises(BleakGATTProtocolError) as in_progress:
            await client.write_gatt_char("2a52", bytes.fromhex("04 01"), response=True)
        assert await inbox.wait_count("r", 1) == [bytes.fromhex("06 00 01 01")]
    assert no_indications.value.args[0] == 0xFD  # CCCD Improperly Configured
    assert in_progress.value.args[0] == 0xFE  # Procedure Already In Progress
    assert len(inbox.of("m")) == 100


async def test_specific_ops_control_point_answers_byte_for_byte(
    radio: HomeRadio, cgm: EmulatedPeripheral, inbox: Inbox, reference: ManualClock
) -> None:
    async with BleakClient(cgm.address, backend=radio.backend.client, timeout=2) as client:
        with pytest.raises(BleakGATTProtocolError) as no_indications:
            await client.write_gatt_char("2aac", bytes.fromhex("02"), response=True)
        await client.start_notify("2aac", inbox.on("socp"))
        await client.start_notify("2aa7", inbox.on("m"))
        assert await control(client, inbox, "2aac", "socp", "02") == bytes.fromhex("03 05")  # every 5 min
        assert await control(client, inbox, "2aac", "socp", "01 0a") == bytes.fromhex("1c 01 01")
        assert await control(client, inbox, "2aac", "socp", "02") == bytes.fromhex("03 0a")
        assert await control(client, inbox, "2aac", "socp", "1b") == bytes.fromhex("1c 1b 01")  # stop
        assert await cgm.measure(cgm_measurement(50)) is False  # no session: kept, not notified
        assert await control(client, inbox, "2aac", "socp", "1a") == bytes.fromhex("1c 1a 01")  # start
        assert await control(client, inbox, "2aac", "socp", "1a") == bytes.fromhex("1c 1a 04")  # running
        assert await control(client, inbox, "2aac", "socp", "04 00 00") == bytes.fromhex("1c 04 02")
        assert await client.read_gatt_char("2aaa") == session_start_time(reference())
    assert no_indications.value.args[0] == 0xFD
    assert inbox.of("m") == []


async def test_session_start_time_is_writable_at_its_size_only(
    radio: HomeRadio, cgm: EmulatedPeripheral, reference: ManualClock
) -> None:
    written = session_start_time(reference(), time_zone=4, dst_offset=4)  # UTC+1, DST +1 h
    async with BleakClient(cgm.address, backend=radio.backend.client, timeout=2) as client:
        await client.write_gatt_char("2aaa", written, response=True)
        with pytest.raises(BleakGATTProtocolError) as refused:
            await client.write_gatt_char("2aaa", written[:8], response=True)
        assert await client.read_gatt_char("2aaa") == written
    assert refused.value.args[0] == 0x0D  # Invalid Attribute Value Length
