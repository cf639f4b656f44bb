"""Device clocks (correct, unset, drifting, wrong) and their Current Time characteristic over real GATT."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from bleak import BleakClient
from bleak.exc import BleakGATTProtocolError
from emulation_helpers import Inbox, ManualClock
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.emulation.clock import (
    RESET_DATE,
    AdjustReason,
    DeviceClock,
    UnsetReport,
    decode_current_time,
    encode_current_time,
)
from edge_agent.emulation.peripheral import create_peripheral
from edge_agent.emulation.radio import HomeRadio

# 2024-03-05 14:30:15.5, a Tuesday: year 0x07E8, month, day, h, m, s, day of week 2, 128/256 s, reason.
TUESDAY_FULL = bytes.fromhex("e80703050e1e0f028001")


def test_current_time_bytes_full() -> None:
    value = datetime(2024, 3, 5, 14, 30, 15, 500_000)
    assert encode_current_time(value, AdjustReason.MANUAL_TIME_UPDATE) == TUESDAY_FULL
    assert decode_current_time(TUESDAY_FULL) == (value, AdjustReason.MANUAL_TIME_UPDATE)


def test_current_time_bytes_unknown_date_keeps_the_time_of_day() -> None:
    value = datetime(2000, 1, 1, 1, 5, 0)
    assert encode_current_time(value, date_known=False) == bytes.fromhex("0000 00 00 01 05 00 00 00 00")


@pytest.mark.parametrize(
    "data",
    [
        TUESDAY_FULL[:9],  # too short
        TUESDAY_FULL + b"\x00",  # too long
        bytes.fromhex("0000 03 05 0e 1e 0f 02 00 00"),  # year 0: unknown cannot set a clock
        bytes.fromhex("e807 0d 05 0e 1e 0f 02 00 00"),  # month 13
        bytes.fromhex("e807 02 1e 0e 1e 0f 02 00 00"),  # 30 February
        bytes.fromhex("e807 03 05 18 1e 0f 02 00 00"),  # hour 24
    ],
)
def test_decode_current_time_refuses_what_cannot_set_a_clock(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_current_time(data)


@given(st.datetimes(min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
def test_current_time_round_trips_to_the_256th_of_a_second(value: datetime) -> None:
    decoded, _ = decode_current_time(encode_current_time(value))
    lost = value - decoded
    assert lost >= timedelta(0)
    assert lost.microseconds * 256 < 1_000_000  # less than 1/256 s, in exact integer arithmetic
    assert decoded.replace(microsecond=0) == value.replace(microsecond=0)


def test_correct_clock_shows_the_reference(reference: ManualClock) -> None:
    clock = DeviceClock.correct(reference)
    reference.advance(timedelta(days=3))
    assert clock.now() == reference()
    assert clock.offset() == timedelta(0)


def test_wrong_clock_keeps_its_fixed_offset(reference: ManualClock) -> None:
    clock = DeviceClock.wrong(timedelta(hours=-1), reference)  # DST never applied
    reference.advance(timedelta(days=30))
    assert clock.offset() == timedelta(hours=-1)
    assert clock.now() == reference() - timedelta(hours=1)


def test_drifting_clock_gains_its_parts_per_million(reference: ManualClock) -> None:
    clock = DeviceClock.drifting(20.0, reference)
    reference.advance(timedelta(days=1))
    assert clock.offset() == timedelta(seconds=1.728)
    reference.advance(timedelta(days=1))
    assert clock.offset() == timedelta(seconds=3.456)


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        (UnsetReport.UNKNOWN, bytes.fromhex("0000 00 00 01 05 00 00 00 00")),
        (UnsetReport.RESET_DATE, bytes.fromhex("d007 01 01 01 05 00 06 00 00")),  # 2000-01-01, a Saturday
    ],
)
def test_unset_clock_runs_from_the_reset_date(
    reference: ManualClock, report: UnsetReport, expected: bytes
) -> None:
    clock = DeviceClock.unset(report, reference)
    reference.advance(timedelta(hours=1, minutes=5))
    assert not clock.is_set
    assert clock.now() == RESET_DATE + timedelta(hours=1, minutes=5)
    assert clock.current_time() == expected


def test_setting_a_drifting_clock_zeroes_the_offset_and_drift_carries_on(reference: ManualClock) -> None:
    clock = DeviceClock.drifting(-50.0, reference, offset=timedelta(minutes=7))
    clock.set(reference(), AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE)
    assert clock.offset() == timedelta(0)
    reference.advance(timedelta(days=1))
    assert clock.offset() == timedelta(seconds=-4.32)
    assert clock.current_time()[-1] == AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE


async def test_reading_current_time_reports_the_device_clock(
    radio: HomeRadio, reference: ManualClock
) -> None:
    cuff = await create_peripheral(
        radio, "blood-pressure-cuff", clock=DeviceClock.wrong(timedelta(hours=1), reference)
    )
    assert cuff.device_now() == reference() + timedelta(hours=1)
    assert cuff.clock_offset() == timedelta(hours=1)
    async with BleakClient(cuff.address, backend=radio.backend.client, timeout=2) as client:
        data = await client.read_gatt_char("2a2b")
    assert data == encode_current_time(reference() + timedelta(hours=1))


@pytest.mark.parametrize(
    ("report", "date_bytes"),
    [(UnsetReport.UNKNOWN, bytes(4)), (UnsetReport.RESET_DATE, bytes.fromhex("d007 01 01"))],
)
async def test_unset_clock_reads_an_unknown_date_or_the_reset_date(
    radio: HomeRadio, reference: ManualClock, report: UnsetReport, date_bytes: bytes
) -> None:
    scale = await create_peripheral(radio, "scale", clock=DeviceClock.unset(report, reference))
    async with BleakClient(scale.address, backend=radio.backend.client, timeout=2) as client:
        data = await client.read_gatt_char("2a2b")
    assert data[:4] == date_bytes
    assert len(data) == 10


async def test_writing_current_time_sets_a_drifting_clock(radio: HomeRadio, reference: ManualClock) -> None:
    meter = await create_peripheral(
        radio, "scale", clock=DeviceClock.drifting(30.0, reference, offset=timedelta(minutes=-12))
    )
    reference.advance(timedelta(days=10))
    assert meter.clock_offset() == timedelta(minutes=-12, seconds=25.92)
    written = encode_current_time(reference(), AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE)
    async with BleakClient(meter.address, backend=radio.backend.client, timeout=2) as client:
        await client.write_gatt_char("2a2b", written, response=True)
        assert meter.clock_offset() == timedelta(0)
        assert await client.read_gatt_char("2a2b") == written


async def test_a_clock_the_device_does_not_let_centrals_set_refuses_the_write(
    radio: HomeRadio, reference: ManualClock
) -> None:
    thermometer = await create_peripheral(
        radio, "thermometer", clock=DeviceClock.wrong(timedelta(days=2), reference)
    )
    async with BleakClient(thermometer.address, backend=radio.backend.client, timeout=2) as client:
        with pytest.raises(BleakGATTProtocolError) as refused:
            await client.write_gatt_char("2a2b", encode_current_time(reference()), response=True)
    assert refused.value.args[0] == 0x03  # Write Not Permitted
    assert thermometer.clock_offset() == timedelta(days=2)


@pytest.mark.parametrize(
    "data",
    [
        TUESDAY_FULL[:9],
        bytes.fromhex("e807 0d 05 0e 1e 0f 02 00 00"),
        bytes.fromhex("0000 00 00 0e 1e 0f 00 00 00"),
    ],
    ids=["short", "month-13", "unknown-date"],
)
async def test_a_current_time_the_device_cannot_use_is_refused_with_data_field_ignored(
    radio: HomeRadio, reference: ManualClock, data: bytes
) -> None:
    cuff = await create_peripheral(radio, "blood-pressure-cuff", clock=DeviceClock.unset(reference=reference))
    async with BleakClient(cuff.address, backend=radio.backend.client, timeout=2) as client:
        with pytest.raises(BleakGATTProtocolError) as refused:
            await client.write_gatt_char("2a2b", data, response=True)
    assert refused.value.args[0] == 0x80  # CTS: Data field ignored
    assert not cuff.clock.is_set


async def test_setting_the_clock_on_the_device_notifies_a_subscribed_central(
    radio: HomeRadio, reference: ManualClock, inbox: Inbox
) -> None:
    cuff = await create_peripheral(radio, "blood-pressure-cuff", clock=DeviceClock.unset(reference=reference))
    async with BleakClient(cuff.address, backend=radio.backend.client, timeout=2) as client:
        await client.start_notify("2a2b", inbox.on("time"))
        await cuff.set_clock(datetime(2024, 3, 5, 14, 30, 15, 500_000))
        assert await inbox.wait_count("time", 1) == [TUESDAY_FULL]
    assert cuff.clock.is_set
