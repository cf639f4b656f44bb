"""Record histories through the agent: a glucose meter's records by sequence number and a CGM's by time
offset, each stored exactly once across reconnections and a hub restart; RACP answers that are not
Success are recorded on the device's state and store nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from datetime import datetime, timedelta

from agent_helpers import (
    ObservationSink,
    StartAgent,
    add_glucose_history,
    cgm_reading,
    correct_clock,
    duplicates,
    eventually,
    local_now,
)

from edge_agent.ble.errors import RecordTransferError
from edge_agent.emulation.clock import DeviceClock
from edge_agent.emulation.peripheral import DEVICE_PROFILES, EmulatedPeripheral, create_peripheral
from edge_agent.emulation.racp import GLUCOSE, Operator
from edge_agent.emulation.radio import HomeRadio


async def test_glucose_history_is_stored_exactly_once_across_reconnections_and_a_restart(
    radio: HomeRadio, sink: ObservationSink, start_agent: StartAgent
) -> None:
    meter = await create_peripheral(radio, "glucose-meter", clock=correct_clock())
    add_glucose_history(meter, range(1, 6))
    devices = [("meter", meter, "glucose-meter")]

    first = await start_agent(devices)
    await sink.wait_count("meter", 5)
    add_glucose_history(meter, range(6, 9))  # measured while the hub is around: fetched at its next visit
    await sink.wait_count("meter", 8)
    await first.stop()
    add_glucose_history(meter, range(9, 12))  # measured while the hub is down

    second = await start_agent(devices)  # the same outbox file: progress survived on disk
    await sink.wait_count("meter", 11)
    await eventually(lambda: second.device_states()["meter"].connections >= 2)  # one more visit: nothing new

    assert sorted(s.value for s in sink.of("meter")) == [(80 + n, "mg/dL") for n in range(1, 12)]
    assert duplicates(sink.seen) == [] and len(sink.seen) == 11
    assert second.outbox.progress("meter") == 11
    assert second.stats.history_records == 3  # the restarted hub asked only for what was new
    assert meter.stored_count == 0


async def test_a_meter_with_nothing_new_finds_no_records_and_reports_no_error(
    radio: HomeRadio, sink: ObservationSink, start_agent: StartAgent
) -> None:
    meter = await create_peripheral(radio, "glucose-meter", clock=correct_clock())
    agent = await start_agent([("meter", meter, "glucose-meter")])
    await eventually(lambda: agent.device_states()["meter"].connections >= 2)

    state = agent.device_states()["meter"]
    assert state.errors == 0 and state.last_error is None and state.history_last is None
    assert agent.outbox.progress("meter") is None and sink.seen == []


async def test_a_racp_error_response_is_recorded_and_stores_nothing(
    radio: HomeRadio, sink: ObservationSink, start_agent: StartAgent
) -> None:
    # A meter that knows only "report all": asking for records after the last one is refused.
    only_all = dataclasses.replace(GLUCOSE, operators=frozenset({Operator.ALL}))
    profile = dataclasses.replace(DEVICE_PROFILES["glucose-meter"], racp=only_all)
    meter = await EmulatedPeripheral(
        radio, name="Glucose-old", profile=profile, clock=correct_clock()
    ).start()
    add_glucose_history(meter, [1, 2])
    agent = await start_agent([("meter", meter, "glucose-meter")])
    await sink.wait_count("meter", 2)
    add_glucose_history(meter, [3])

    link = agent.manager.links["meter"]
    async with asyncio.timeout(2):
        state = await link.wait_until(lambda s: isinstance(s.last_error, RecordTransferError))
    assert isinstance(state.last_error, RecordTransferError)
    assert state.last_error.response_code == 0x04  # Operator Not Supported
    assert agent.outbox.progress("meter") == 2 and len(sink.of("meter")) == 2


class Reference:
    """True local time, or as long ago as ``behind`` says (to start a CGM session in the past)."""

    def __init__(self, behind: timedelta) -> None:
        self.behind = behind

    def __call__(self) -> datetime:
        return local_now() - self.behind


async def test_cgm_back_fill_and_live_readings_are_stored_once_across_a_restart(
    radio: HomeRadio, sink: ObservationSink, start_agent: StartAgent
) -> None:
    reference = Reference(timedelta(hours=1))
    cgm = await create_peripheral(radio, "cgm", clock=DeviceClock.correct(reference))
    reference.behind = timedelta(0)  # the session started an hour ago
    for offset in range(0, 30, 5):
        cgm.add_record(offset, cgm_reading(offset, 110 + offset))
    devices = [("cgm", cgm, "cgm")]

    first = await start_agent(devices)
    await sink.wait_count("cgm", 6)
    assert await cgm.measure(cgm_reading(30, 150))  # live
    await sink.wait_count("cgm", 7)
    session = first.sessions["cgm"].progress_key
    assert first.outbox.progress(session) == 30  # after the back-fill, live readings move progress on
    await first.stop()
    for offset in (35, 40):
        await cgm.measure(cgm_reading(offset, 150 + offset))  # kept while nobody listens

    second = await start_agent(devices)
    await sink.wait_count("cgm", 9)
    await eventually(lambda: second.device_states()["cgm"].history_last == 40)

    assert duplicates(sink.seen) == [] and len(sink.of("cgm")) == 9
    assert second.stats.history_records == 2
    times = sorted(s.effective for s in sink.of("cgm"))
    assert all(later - earlier == timedelta(minutes=5) for earlier, later in itertools.pairwise(times))
    assert session.startswith("cgm#session-")
