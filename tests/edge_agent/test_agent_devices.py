"""The hub agent collects from many emulated devices at once, every kind, with the right values, units and
times, and keeps each device's state. Real ATT/GATT over Bumble, a real broker, the agent's own outbox."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from agent_helpers import (
    ZONE,
    ObservationSink,
    StartAgent,
    add_glucose_history,
    blood_pressure,
    cgm_reading,
    correct_clock,
    duplicates,
    eventually,
    local_now,
    spo2,
    stamp,
    temperature,
    weight,
)

from edge_agent.emulation.clock import DeviceClock
from edge_agent.emulation.peripheral import create_peripheral
from edge_agent.emulation.radio import HomeRadio


async def test_agent_collects_from_five_devices_at_once_with_values_and_units(
    radio: HomeRadio, sink: ObservationSink, start_agent: StartAgent
) -> None:
    cuff = await create_peripheral(radio, "blood-pressure-cuff", serial="CUFF-1", clock=correct_clock())
    oximeter = await create_peripheral(radio, "pulse-oximeter", clock=correct_clock(), battery=64)
    scale = await create_peripheral(radio, "scale", clock=correct_clock())
    thermometer = await create_peripheral(radio, "thermometer", clock=correct_clock())
    meter = await create_peripheral(radio, "glucose-meter", firmware="2.4.0", clock=correct_clock())
    taken = stamp(cuff, timedelta(minutes=3))
    await cuff.measure(blood_pressure(141, 88, 72, taken))  # stored until the hub confirms it
    await oximeter.measure(spo2(95, 68, taken))
    await scale.measure(weight("81.35", taken))
    await thermometer.measure(temperature("37.8", taken))
    add_glucose_history(meter, [1, 2, 3])

    agent = await start_agent(
        [
            ("cuff", cuff, "blood-pressure-cuff"),
            ("oximeter", oximeter, "pulse-oximeter"),
            ("scale", scale, "scale"),
            ("thermometer", thermometer, "thermometer"),
            ("meter", meter, "glucose-meter"),
        ]
    )
    await sink.wait_for(lambda s: len(s.seen) == 2 + 2 + 1 + 1 + 3)

    at = taken.replace(tzinfo=ZONE)
    (bp,) = sink.of("cuff", "blood-pressure")
    assert bp.components == {"8480-6": 141, "8462-4": 88, "8478-0": 106} and bp.effective == at
    assert [s.value for s in sink.of("cuff", "pulse-rate-cuff")] == [(72, "/min")]
    assert [(s.value, s.effective) for s in sink.of("oximeter", "spo2")] == [((95, "%"), at)]
    assert [s.value for s in sink.of("oximeter", "pulse-rate-oximeter")] == [(68, "/min")]
    assert [s.value for s in sink.of("scale")] == [(81.35, "kg")]
    assert [s.value for s in sink.of("thermometer")] == [(37.8, "Cel")]
    glucose = sink.of("meter", "glucose-capillary-whole-blood")
    assert sorted(s.value for s in glucose) == [(81, "mg/dL"), (82, "mg/dL"), (83, "mg/dL")]
    assert duplicates(sink.seen) == []

    # A link counts its connection once set-up ends, and a device's stored readings may be indicated, and
    # reach the broker, before that (on a busy machine): wait for the count rather than race it.
    await eventually(lambda: all(s.connections >= 1 for s in agent.device_states().values()), 2.0)
    states = agent.device_states()
    assert set(states) == {"cuff", "oximeter", "scale", "thermometer", "meter"}
    assert (states["cuff"].serial, states["cuff"].model) == ("CUFF-1", "BP-Cuff")
    assert states["oximeter"].battery == 64
    assert states["meter"].firmware == "2.4.0" and states["meter"].history_last == 3
    assert all(s.clock_status == "in-sync" and s.connections >= 1 for s in states.values())
    assert all(s.last_seen is not None and s.errors == 0 for s in states.values())
    assert agent.stats.history_records == 3 and agent.stats.parse_errors == 0


class SessionClock:
    """A reference clock that started the CGM's session two hours ago, then shows the true time."""

    def __init__(self) -> None:
        self.behind = timedelta(hours=2)

    def __call__(self) -> datetime:
        return local_now() - self.behind


async def test_agent_reads_the_live_and_multi_service_kinds(
    radio: HomeRadio, sink: ObservationSink, start_agent: StartAgent
) -> None:
    reference = SessionClock()
    cgm = await create_peripheral(radio, "cgm", clock=DeviceClock.correct(reference))
    reference.behind = timedelta(0)  # the session started two hours ago; the clock is right now
    for offset in (0, 5, 10):
        cgm.add_record(offset, cgm_reading(offset, 100 + offset))
    strap = await create_peripheral(radio, "heart-rate-monitor", clock=correct_clock())
    oximeter = await create_peripheral(radio, "continuous-oximeter", clock=correct_clock())
    body = await create_peripheral(radio, "body-composition-scale", clock=correct_clock())

    agent = await start_agent(
        [
            ("cgm", cgm, "cgm"),
            ("strap", strap, "heart-rate-monitor"),
            ("spo2live", oximeter, "continuous-oximeter"),
            ("body", body, "body-composition-scale"),
        ]
    )
    await agent.wait_connected()
    await sink.wait_count("cgm", 3)
    assert await strap.measure(bytes([0x00, 64]))  # flags: uint8 heart rate; 64 /min
    assert await oximeter.measure(bytes.fromhex("00 6000 4800"))  # SpO2 96 %, pulse 72 /min (SFLOAT)
    assert await body.measure(bytes.fromhex("0000 2c01"))  # body fat 30.0 %
    assert await cgm.measure(cgm_reading(15, 131))  # live, and kept as a record

    await sink.wait_for(lambda s: len(s.of("cgm")) == 4 and len(s.seen) == 4 + 1 + 2 + 1)
    assert [s.value for s in sink.of("strap")] == [(64, "/min")]
    assert sorted(s.value for s in sink.of("spo2live")) == [(72, "/min"), (96, "%")]
    assert [s.value for s in sink.of("body")] == [(30.0, "%")]
    readings = sorted((s.effective, s.value) for s in sink.of("cgm"))
    assert [value for _, value in readings] == [
        (100, "mg/dL"),
        (105, "mg/dL"),
        (110, "mg/dL"),
        (131, "mg/dL"),
    ]
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(readings)]
    assert gaps == [timedelta(minutes=5)] * 3
    assert abs(readings[0][0] - (local_now() - timedelta(hours=2)).replace(tzinfo=ZONE)) < timedelta(
        seconds=5
    )
    assert duplicates(sink.seen) == []
    assert agent.device_states()["cgm"].history_last == 15
