"""Fixtures for the hub agent's integration tests: a home radio, an MQTT sink, and agents that stop.

Real parts only: Bumble peripherals over a LocalLink reached through bleak, the agent's own outbox and
publisher, and a broker process per test (``broker`` in ``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from agent_helpers import FAST, Devices, ObservationSink, StartAgent, hub_config

from edge_agent.agent import HubAgent
from edge_agent.ble.connection import LinkPolicy
from edge_agent.emulation.radio import HomeRadio
from edge_agent.voice import find_espeak
from gateway.broker import BrokerEndpoint


@pytest.fixture
async def radio() -> AsyncIterator[HomeRadio]:
    async with HomeRadio("agent-test") as radio:
        yield radio
    await asyncio.sleep(0.01)  # cancelled helper tasks finish on the next turns of the loop
    assert {task for task in asyncio.all_tasks() if task is not asyncio.current_task()} == set()


@pytest.fixture
def sink(broker: BrokerEndpoint) -> Iterator[ObservationSink]:
    sink = ObservationSink(broker)
    yield sink
    sink.close()


@pytest.fixture
async def start_agent(radio: HomeRadio, broker: BrokerEndpoint, tmp_path: Path) -> AsyncIterator[StartAgent]:
    """``await start_agent(devices, max_connections=..., policy=..., send_intermediate_cuff_pressure=...)``:
    a started agent, stopped at the end.

    Agents started again with the same devices share one outbox file (a hub restart).
    """
    agents: list[HubAgent] = []

    async def start(
        devices: Devices,
        *,
        max_connections: int = 7,
        policy: LinkPolicy = FAST,
        send_intermediate_cuff_pressure: bool = False,
    ) -> HubAgent:
        config = hub_config(
            tmp_path,
            broker,
            devices,
            max_connections=max_connections,
            send_intermediate_cuff_pressure=send_intermediate_cuff_pressure,
        )
        agent = HubAgent(config, backend=radio.backend, link_policy=policy)
        agents.append(agent)
        await agent.start()
        return agent

    yield start
    for agent in agents:
        async with asyncio.timeout(30):  # a hub that cannot stop is a failure, not a hang
            await agent.stop()


# Speech: Debian's espeak-ng or a clear skip, except under CI (`CI` set), where that is a failure: `make test`
# installs espeak-ng as root (the Makefile's `espeak` target), so CI never passes without speech.
NO_ESPEAK = "no espeak-ng: install it (apt-get install -y espeak-ng, which `make test` does as root)"


@pytest.fixture
def espeak() -> str:
    executable = find_espeak()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail(f"{NO_ESPEAK}; CI must run the voice tests")
        pytest.skip(NO_ESPEAK)
    return executable
