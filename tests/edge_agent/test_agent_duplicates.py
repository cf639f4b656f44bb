"""Duplicates through the agent: a stored reading a device sends again after a reconnection is one
Observation (same identifier and time: the outbox and the gateway's upsert keep one), while the same
values measured a minute apart are two."""

from __future__ import annotations

from datetime import timedelta

from agent_helpers import ObservationSink, StartAgent, blood_pressure, correct_clock, eventually, stamp

from edge_agent.emulation.peripheral import create_peripheral
from edge_agent.emulation.radio import HomeRadio


async def test_a_stored_reading_sent_again_after_a_reconnection_is_one_observation(
    radio: HomeRadio, sink: ObservationSink, start_agent: StartAgent
) -> None:
    cuff = await create_peripheral(radio, "blood-pressure-cuff", clock=correct_clock())
    reading = blood_pressure(150, 95, 80, stamp(cuff, timedelta(minutes=10)))
    await cuff.measure(reading)
    agent = await start_agent([("cuff", cuff, "blood-pressure-cuff")])
    await sink.wait_count("cuff", 2)

    await cuff.drop_link()  # out of range ...
    await cuff.reappear()  # ... and back: it sends its memory again, as many cuffs do
    link = agent.manager.links["cuff"]
    await eventually(lambda: link.state.connected and link.state.reconnects == 1)
    assert await cuff.measure(reading)
    await eventually(lambda: agent.stats.values_received == 2)
    await eventually(lambda: agent.outbox.depth() == 0)

    published = {(s.identifier, s.effective) for s in sink.of("cuff")}
    assert len(published) == 2  # the panel and the pulse rate, each one Observation however often sent
    assert {s.kind for s in sink.of("cuff")} == {"blood-pressure", "pulse-rate-cuff"}


async def test_the_same_values_measured_a_minute_apart_are_two_observations(
    radio: HomeRadio, sink: ObservationSink, start_agent: StartAgent
) -> None:
    cuff = await create_peripheral(radio, "blood-pressure-cuff", clock=correct_clock())
    first = stamp(cuff, timedelta(minutes=2))
    await cuff.measure(blood_pressure(150, 95, 80, first))
    await cuff.measure(blood_pressure(150, 95, 80, first + timedelta(minutes=1)))

    await start_agent([("cuff", cuff, "blood-pressure-cuff")])
    await sink.wait_for(lambda s: len(s.of("cuff", "blood-pressure")) == 2)
    panels = sorted(sink.of("cuff", "blood-pressure"), key=lambda s: s.effective)

    assert len({s.identifier for s in panels}) == 2
    assert panels[1].effective - panels[0].effective == timedelta(minutes=1)
    assert all(s.components["8480-6"] == 150 for s in panels)
