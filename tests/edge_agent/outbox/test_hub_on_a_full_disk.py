"""A running hub whose disk fills up: the device keeps being read, nothing it sends is lost, and the
retained status says the outbox is full and how many readings wait in memory, then that it is not.

Real parts: a Bumble thermometer over the in-process radio, the hub service with its agent, outbox and
publisher, a broker process, and a disk that really fills (``small_disk``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from agent_helpers import FAST, ObservationSink, correct_clock, eventually, hub_config, stamp, temperature
from delivery.small_disk import MECHANISMS, SmallDisk, small_disk
from status_watch import OnlineStatuses

from edge_agent import service
from edge_agent.emulation.peripheral import create_peripheral
from edge_agent.emulation.radio import HomeRadio
from edge_agent.service import HubService
from gateway.broker import BrokerEndpoint

MiB = 1 << 20


@pytest.fixture(params=MECHANISMS)
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk(request.param, tmp_path, size=8 * MiB) as disk:
        yield disk


async def test_a_hub_whose_disk_fills_keeps_reading_loses_nothing_and_reports_it(
    radio: HomeRadio,
    broker: BrokerEndpoint,
    sink: ObservationSink,
    disk: SmallDisk,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "MIN_STATUS_GAP_S", 0.2)  # a change is reported at once, not 5 s later
    thermometer = await create_peripheral(radio, "thermometer", clock=correct_clock())
    config = hub_config(disk.path, broker, [("thermo", thermometer, "thermometer")])
    # No gateway sends receipts, so no row is ever deleted: no deletion frees room meanwhile.
    config = config.model_copy(update={"mqtt": config.mqtt.model_copy(update={"delete_after": "gateway"})})
    watcher = OnlineStatuses(broker)
    hub = HubService(config, backend=radio.backend, link_policy=FAST)
    stop = asyncio.Event()
    running = asyncio.create_task(hub.run(stop))
    try:
        await eventually(lambda: hub.agent is not None and hub.agent.device_states()["thermo"].connected, 10)
        agent = hub.agent
        assert agent is not None
        disk.attach(agent.outbox)
        taken = [stamp(thermometer, timedelta(minutes=30 - i)) for i in range(15)]  # distinct readings
        for when in taken[:5]:
            await thermometer.measure(temperature("37.1", when))
        await sink.wait_for(lambda s: len(s.seen) == 5)

        disk.fill(leave=0)
        for when in taken[5:]:
            await thermometer.measure(temperature("38.2", when))
        await eventually(lambda: agent.stats.observations_stored == 15, 5)  # every put returned
        assert agent.device_states()["thermo"].errors == 0  # no value refused by the outbox
        assert agent.device_states()["thermo"].connected  # the link goes on
        held = agent.outbox.held  # all ten on a full tmpfs; a page limit leaves room in the last page
        assert agent.outbox.full
        assert held == 10 if disk.mechanism == "tmpfs" else held > 0
        await eventually(
            lambda: watcher.any(lambda s: s.get("outboxFull") is True and s.get("heldInMemory", 0) > 0), 5
        )
        await sink.wait_for(lambda s: len(s.seen) == 15 - held)  # what reached the disk went out

        disk.free()
        await sink.wait_for(lambda s: len({x.identifier for x in s.seen}) == 15, within=10)
        await eventually(
            lambda: watcher.any(
                lambda s: (s.get("outboxFull"), s.get("heldInMemory"), s.get("queueDepth")) == (False, 0, 15)
            ),
            5,
        )
        assert agent.outbox.evicted == {}
    finally:
        stop.set()
        await running
        watcher.close()
