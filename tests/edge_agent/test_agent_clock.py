"""Device clocks through the agent: a wrong or unset clock is measured at connection, its readings are
corrected by the offset, and the hub sets it where the device allows; a clock the hub may not set keeps
being corrected. The device's own stamp stays the basis of the Observation identifier."""

from __future__ import annotations

from datetime import datetime, timedelta

from agent_helpers import (
    PATIENT,
    ZONE,
    ObservationSink,
    StartAgent,
    add_glucose_history,
    blood_pressure,
    eventually,
    local_now,
    stamp,
    temperature,
    weight,
)

from edge_agent.emulation.clock import DeviceClock, UnsetReport
from edge_agent.emulation.peripheral import create_peripheral
from edge_agent.emulation.radio import HomeRadio
from fhir_contract.observation import observation_identifier

TOLERANCE = timedelta(seconds=2)  # a clock read over the emulated link takes about a millisecond


def true_time(device_stamp: datetime, device_offset: timedelta) -> datetime:
    """When a stamp on a clock that is ``device_offset`` ahead really was, in the hub's zone."""
    return (device_stamp - device_offset).replace(tzinfo=ZONE)


async def test_a_wrong_clock_has_its_readings_corrected_and_is_set(
    radio: HomeRadio, sink: ObservationSink, start_agent: StartAgent
) -> None:
    cuff = await create_peripheral(
        radio, "blood-pressure-cuff", clock=DeviceClock.wrong(timedelta(hours=1), local_now)
    )
    offset = cuff.clock_offset()
    taken = stamp(cuff, timedelta(minutes=20))  # on the device's clock, an hour ahead
    await cuff.measure(blood_pressure(133, 84, 66, taken))

    agent = await start_agent([("cuff", cuff, "blood-pressure-cuff")])
    await sink.wait_count("cuff", 2)
    (reading,) = sink.of("cuff", "blood-pressure")

    await eventually(lambda: agent.device_states()["cuff"].clock_set)  # once the stored readings are in
    assert abs(reading.effective - true_time(taken, offset)) < TOLERANCE
    assert reading.identifier == observation_identifier("cuff", PATIENT, "blood-pressure", taken)
    state = agent.device_states()["cuff"]
    assert state.clock_status == "wrong" and state.clock_set
    assert state.clock_offset is not None and abs(state.clock_offset + timedelta(hours=1)) < TOLERANCE
    assert abs(cuff.clock_offset()) < TOLERANCE
    later = stamp(cuff)  # a reading on the new clock is taken as it is
    assert await cuff.measure(blood_pressure(128, 82, 64, later))
    await sink.wait_count("cuff", 4)
    newest = max(sink.of("cuff", "blood-pressure"), key=lambda s: s.effective)
    assert newest.effective == later.replace(tzinfo=ZONE)


async def test_an_unset_clock_has_its_readings_corrected_and_is_set(
    radio: HomeRadio, sink: ObservationSink, start_agent: StartAgent
) -> None:
    clock = DeviceClock.unset(UnsetReport.RESET_DATE, local_now)  # counts from 2000-01-01 00:00
    scale = await create_peripheral(radio, "scale", clock=clock)
    offset = scale.clock_offset()
    taken = stamp(scale)
    assert taken.year == 2000
    await scale.measure(weight("77.05", taken))

    agent = await start_agent([("scale", scale, "scale")])
    (reading,) = await sink.wait_count("scale", 1)
    await eventually(lambda: agent.device_states()["scale"].clock_set)

    assert abs(reading.effective - true_time(taken, offset)) < TOLERANCE
    assert agent.device_states()["scale"].clock_status == "unset"
    assert abs(scale.clock_offset()) < TOLERANCE
    assert agent.stats.clock_corrected == 1


async def test_a_clock_that_reports_not_known_is_set_and_its_readings_take_the_receipt_time(
    radio: HomeRadio, sink: ObservationSink, start_agent: StartAgent
) -> None:
    scale = await create_peripheral(radio, "scale", clock=DeviceClock.unset(UnsetReport.UNKNOWN, local_now))
    await scale.measure(weight("77.10", stamp(scale)))  # stamped in 2000: no offset can correct it
    before = datetime.now(ZONE)

    agent = await start_agent([("scale", scale, "scale")])
    (reading,) = await sink.wait_count("scale", 1)
    await eventually(lambda: agent.device_states()["scale"].clock_set)

    assert before - TOLERANCE <= reading.effective <= datetime.now(ZONE)
    state = agent.device_states()["scale"]
    assert state.clock_status == "unknown" and state.clock_set and state.clock_offset is None
    assert abs(scale.clock_offset()) < TOLERANCE
    assert agent.stats.receipt_time_used == 1


async def test_a_clock_the_hub_may_not_set_is_corrected_but_left_alone(
    radio: HomeRadio, sink: ObservationSink, start_agent: StartAgent
) -> None:
    # Ear thermometers set their clock only from their own buttons: Current Time is not writable.
    thermometer = await create_peripheral(
        radio, "thermometer", clock=DeviceClock.wrong(timedelta(minutes=-40), local_now)
    )
    offset = thermometer.clock_offset()
    taken = stamp(thermometer, timedelta(minutes=5))
    await thermometer.measure(temperature("38.4", taken))

    agent = await start_agent([("thermometer", thermometer, "thermometer")])
    (reading,) = await sink.wait_count("thermometer", 1)

    assert abs(reading.effective - true_time(taken, offset)) < TOLERANCE
    state = agent.device_states()["thermometer"]
    assert state.clock_status == "wrong" and not state.clock_set
    assert abs(thermometer.clock_offset() - offset) < TOLERANCE  # untouched


async def test_a_glucose_meter_with_a_wrong_clock_is_set_only_after_its_history_was_stored(
    radio: HomeRadio, sink: ObservationSink, start_agent: StartAgent
) -> None:
    meter = await create_peripheral(
        radio, "glucose-meter", clock=DeviceClock.wrong(timedelta(hours=-3), local_now)
    )
    offset = meter.clock_offset()
    stamps = add_glucose_history(meter, [1, 2, 3], hours_ago=12)  # on the slow clock

    agent = await start_agent([("meter", meter, "glucose-meter")])
    readings = await sink.wait_count("meter", 3)
    await eventually(lambda: agent.device_states()["meter"].clock_set)

    effective = sorted(s.effective for s in readings)
    assert all(
        abs(got - true_time(at, offset)) < TOLERANCE for got, at in zip(effective, stamps, strict=True)
    )
    assert abs(meter.clock_offset()) < TOLERANCE
    assert agent.stats.clock_corrected == 3
