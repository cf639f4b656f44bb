"""The emulated glucose meter: bonding, and the Record Access Control Point byte for byte (real GATT)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from bleak import BleakClient
from bleak.exc import BleakGATTProtocolError
from emulation_helpers import Inbox, eventually, glucose_context, glucose_measurement, sequence_of

from edge_agent.emulation.peripheral import EmulatedPeripheral, create_peripheral
from edge_agent.emulation.radio import HomeRadio

START = datetime(2024, 3, 5, 7, 0)
SUCCESS_REPORT = bytes.fromhex("06 00 01 01")
WITH_CONTEXT = {3, 7}


def add_history(meter: EmulatedPeripheral, count: int) -> None:
    """Records 1..count, one a day; records 3 and 7 carry a meal context."""
    for sequence in range(1, count + 1):
        has_context = sequence in WITH_CONTEXT
        measurement = glucose_measurement(sequence, START + timedelta(days=sequence), context=has_context)
        meter.add_record(sequence, measurement, glucose_context(sequence) if has_context else None)


@pytest.fixture
async def meter(radio: HomeRadio) -> EmulatedPeripheral:
    meter = await create_peripheral(radio, "glucose-meter")
    add_history(meter, 10)
    return meter


async def subscribe_all(client: BleakClient, inbox: Inbox) -> None:
    await client.start_notify("2a18", inbox.on("m"))
    await client.start_notify("2a34", inbox.on("c"))
    await client.start_notify("2a52", inbox.on("r"))


async def racp(client: BleakClient, inbox: Inbox, request: str, responses: int = 1) -> list[bytes]:
    """Write a RACP request (hex) and wait for the ``responses``-th indication."""
    expected = len(inbox.of("r")) + responses
    await client.write_gatt_char("2a52", bytes.fromhex(request), response=True)
    return (await inbox.wait_count("r", expected))[-responses:]


def peripheral_link_encrypted(peripheral: EmulatedPeripheral) -> bool:
    return any(connection.is_encrypted for connection in peripheral.device.connections.values())


async def test_glucose_characteristics_refuse_an_unbonded_central(
    radio: HomeRadio, meter: EmulatedPeripheral
) -> None:
    async with BleakClient(meter.address, backend=radio.backend.client, timeout=2) as client:
        refusals = []
        for operation in (
            client.read_gatt_char("2a51"),
            client.start_notify("2a18", lambda _, __: None),
            client.start_notify("2a52", lambda _, __: None),
            client.write_gatt_char("2a52", b"\x01\x01", response=True),
        ):
            with pytest.raises(BleakGATTProtocolError) as refused:
                await operation
            refusals.append(refused.value.args[0])
        assert await client.read_gatt_char("2a24") == b"Glucose"  # Device Information stays open
        assert len(await client.read_gatt_char("2a2b")) == 10  # and so does Current Time
    assert refusals == [0x0F] * 4  # Insufficient Encryption


async def test_pairing_opens_the_glucose_service_and_the_bond_survives_reconnection(
    radio: HomeRadio, meter: EmulatedPeripheral, inbox: Inbox
) -> None:
    async with BleakClient(meter.address, backend=radio.backend.client, timeout=2) as client:
        await client.pair()
        assert await client.read_gatt_char("2a51") == bytes.fromhex("2b02")
    async with BleakClient(meter.address, backend=radio.backend.client, timeout=2) as client:
        assert peripheral_link_encrypted(meter)  # the backend encrypted with the stored keys
        await subscribe_all(client, inbox)  # CCCDs do not survive a reconnection: subscribe again
        assert await racp(client, inbox, "04 01") == [bytes.fromhex("05 00 0a 00")]


async def test_report_all_sends_each_record_then_its_context_then_success(
    radio: HomeRadio, meter: EmulatedPeripheral, inbox: Inbox
) -> None:
    async with BleakClient(meter.address, backend=radio.backend.client, timeout=2, pair=True) as client:
        await subscribe_all(client, inbox)
        assert await racp(client, inbox, "01 01") == [SUCCESS_REPORT]
    expected: list[tuple[str, bytes]] = []
    for record in meter.records.records:
        expected.append(("m", record.measurement))
        if record.context is not None:
            expected.append(("c", record.context))
    assert inbox.values == [*expected, ("r", SUCCESS_REPORT)]
    assert meter.stored_count == 0  # all reported


@pytest.mark.parametrize(
    ("request_hex", "sequences"),
    [
        ("01 01", list(range(1, 11))),
        ("01 02 01 04 00", [1, 2, 3, 4]),  # <= 4
        ("01 03 01 08 00", [8, 9, 10]),  # >= 8
        ("01 04 01 03 00 05 00", [3, 4, 5]),  # within 3..5
        ("01 05", [1]),  # first
        ("01 06", [10]),  # last
    ],
    ids=["all", "less-or-equal", "greater-or-equal", "within-range", "first", "last"],
)
async def test_report_operators_select_records_by_sequence_number(
    radio: HomeRadio, meter: EmulatedPeripheral, inbox: Inbox, request_hex: str, sequences: list[int]
) -> None:
    async with BleakClient(meter.address, backend=radio.backend.client, timeout=2, pair=True) as client:
        await subscribe_all(client, inbox)
        assert await racp(client, inbox, request_hex) == [SUCCESS_REPORT]
    assert [sequence_of(m) for m in inbox.of("m")] == sequences
    assert [sequence_of(c) for c in inbox.of("c")] == [s for s in sequences if s in WITH_CONTEXT]


@pytest.mark.parametrize(
    ("request_hex", "response_hex"),
    [
        ("04 01", "05 00 0a 00"),  # all: 10
        ("04 03 01 08 00", "05 00 03 00"),  # >= 8: 3
        ("04 04 01 0b 00 14 00", "05 00 00 00"),  # within 11..20: none is a count of 0, not an error
        ("01 03 01 63 00", "06 00 01 06"),  # report >= 99: No records found
        ("01 00", "06 00 01 03"),  # operator Null: Invalid operator
        ("01 07", "06 00 01 04"),  # reserved operator: Operator not supported
        ("07 01", "06 00 07 02"),  # reserved op code: Op code not supported
        ("05 00", "06 00 05 02"),  # a response op code written by the central: Op code not supported
        ("01 03 01 08", "06 00 01 05"),  # operand one byte short: Invalid operand
        ("01 01 01", "06 00 01 05"),  # operand to "all": Invalid operand
        ("01 04 01 05 00 03 00", "06 00 01 05"),  # range upside down: Invalid operand
        ("01 03 02 e8 07 03 05 0e 1e 00", "06 00 01 09"),  # user facing time filter: Operand not supported
        ("03 01", "06 00 03 03"),  # abort with an operator: Invalid operator
        ("03 00", "06 00 03 07"),  # abort with nothing in progress: Abort unsuccessful
        ("02 00", "06 00 02 03"),  # delete with operator Null: Invalid operator
    ],
)
async def test_requests_are_answered_with_the_exact_response(
    radio: HomeRadio, meter: EmulatedPeripheral, inbox: Inbox, request_hex: str, response_hex: str
) -> None:
    async with BleakClient(meter.address, backend=radio.backend.client, timeout=2, pair=True) as client:
        await subscribe_all(client, inbox)
        assert await racp(client, inbox, request_hex) == [bytes.fromhex(response_hex)]
    assert inbox.of("m") == []
    assert len(meter.records) == 10


async def test_a_meter_without_records_finds_none(radio: HomeRadio, inbox: Inbox) -> None:
    meter = await create_peripheral(radio, "glucose-meter")
    async with BleakClient(meter.address, backend=radio.backend.client, timeout=2, pair=True) as client:
        await subscribe_all(client, inbox)
        assert await racp(client, inbox, "01 01") == [bytes.fromhex("06 00 01 06")]
        assert await racp(client, inbox, "04 01") == [bytes.fromhex("05 00 00 00")]


async def test_delete_all_records(radio: HomeRadio, meter: EmulatedPeripheral, inbox: Inbox) -> None:
    async with BleakClient(meter.address, backend=radio.backend.client, timeout=2, pair=True) as client:
        await subscribe_all(client, inbox)
        assert await racp(client, inbox, "02 03 01 06 00") == [bytes.fromhex("06 00 02 01")]  # delete >= 6
        assert [record.key for record in meter.records.records] == [1, 2, 3, 4, 5]
        assert await racp(client, inbox, "02 01") == [bytes.fromhex("06 00 02 01")]
        assert await racp(client, inbox, "04 01") == [bytes.fromhex("05 00 00 00")]


async def test_abort_stops_a_transfer_and_only_the_abort_is_answered(radio: HomeRadio, inbox: Inbox) -> None:
    meter = await create_peripheral(radio, "glucose-meter")
    add_history(meter, 300)
    async with BleakClient(meter.address, backend=radio.backend.client, timeout=2, pair=True) as client:
        await subscribe_all(client, inbox)
        await client.write_gatt_char("2a52", bytes.fromhex("01 01"), response=True)
        await inbox.wait_count("m", 1)
        assert await racp(client, inbox, "03 00") == [bytes.fromhex("06 00 03 01")]
        await asyncio.sleep(0.02)
        assert inbox.of("r") == [bytes.fromhex("06 00 03 01")]  # the report sent no response of its own
        assert 1 <= len(inbox.of("m")) < 300
        assert await racp(client, inbox, "04 01") == [bytes.fromhex("05 00 2c 01")]  # free again: 300


async def test_a_request_during_a_transfer_is_refused_as_procedure_already_in_progress(
    radio: HomeRadio, inbox: Inbox
) -> None:
    meter = await create_peripheral(radio, "glucose-meter")
    add_history(meter, 100)
    async with BleakClient(meter.address, backend=radio.backend.client, timeout=2, pair=True) as client:
        await subscribe_all(client, inbox)
        await client.write_gatt_char("2a52", bytes.fromhex("01 01"), response=True)
        with pytest.raises(BleakGATTProtocolError) as refused:
            await client.write_gatt_char("2a52", bytes.fromhex("04 01"), response=True)
        assert await inbox.wait_count("r", 1) == [SUCCESS_REPORT]
        assert len(inbox.of("m")) == 100
    assert refused.value.args[0] == 0x80  # GLS: Procedure Already In Progress


async def test_racp_needs_its_indications_and_a_report_needs_measurement_notifications(
    radio: HomeRadio, meter: EmulatedPeripheral, inbox: Inbox
) -> None:
    async with BleakClient(meter.address, backend=radio.backend.client, timeout=2, pair=True) as client:
        with pytest.raises(BleakGATTProtocolError) as no_racp_indications:
            await client.write_gatt_char("2a52", bytes.fromhex("04 01"), response=True)
        await client.start_notify("2a52", inbox.on("r"))
        with pytest.raises(BleakGATTProtocolError) as no_measurement_notifications:
            await client.write_gatt_char("2a52", bytes.fromhex("01 01"), response=True)
        assert await racp(client, inbox, "04 01") == [bytes.fromhex("05 00 0a 00")]  # needs no records
    assert no_racp_indications.value.args[0] == 0x81  # GLS: CCCD improperly configured
    assert no_measurement_notifications.value.args[0] == 0x81


async def test_a_transfer_dropped_midway_resumes_from_the_last_sequence_number_each_record_once(
    radio: HomeRadio, meter: EmulatedPeripheral, inbox: Inbox
) -> None:
    lost = asyncio.Event()
    client = BleakClient(
        meter.address, lambda _: lost.set(), backend=radio.backend.client, timeout=2, pair=True
    )
    await client.connect()
    await subscribe_all(client, inbox)
    meter.drop_link_after(4)
    await client.write_gatt_char("2a52", bytes.fromhex("01 01"), response=True)
    async with asyncio.timeout(1):
        await lost.wait()
    first = [sequence_of(m) for m in inbox.of("m")]
    assert first == [1, 2, 3, 4]
    assert inbox.of("r") == []  # the response never came
    await client.connect()  # bonded: encrypted again without pairing
    await subscribe_all(client, inbox)
    resume = f"01 03 01 {first[-1] + 1:02x} 00"
    assert await racp(client, inbox, resume) == [SUCCESS_REPORT]
    await client.disconnect()
    sequences = [sequence_of(m) for m in inbox.of("m")]
    assert sequences == list(range(1, 11))  # each exactly once, in order
    assert [sequence_of(c) for c in inbox.of("c")] == sorted(WITH_CONTEXT)
    await eventually(lambda: not meter.connected)


async def test_measure_appends_a_record_with_the_next_sequence_number(
    radio: HomeRadio, meter: EmulatedPeripheral, inbox: Inbox
) -> None:
    async with BleakClient(meter.address, backend=radio.backend.client, timeout=2, pair=True) as client:
        await subscribe_all(client, inbox)
        await racp(client, inbox, "01 01")
        assert meter.stored_count == 0
        sequence = meter.next_sequence_number
        assert sequence == 11
        # A glucose meter does not notify new readings: the central asks with RACP.
        reading = glucose_measurement(sequence, meter.device_now(), 142)
        assert await meter.measure(reading) is False
        assert meter.stored_count == 1
        assert await racp(client, inbox, "01 06") == [SUCCESS_REPORT]
    assert inbox.of("m")[-1] == reading
    assert meter.records.records[-1].key == 11
    assert meter.stored_count == 0
