"""The hub service follows the measurement plan of its retained config: a plan that arrives while the hub
runs starts the reminders without restarting anything, the readings the agent stores reach them, and the
due prompt is spoken (a non-silent WAV) on the service's simulated clock.

Real parts: a broker process, Bumble-emulated devices (the service's ``[emulation]``), the agent's own
outbox and publisher, espeak-ng behind the voice's ``WavSpeaker``. Only the reminders' clock is simulated
(``HubService(now=..., sleep=...)``); it starts at the real time because the emulated devices date their
readings by the real clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from agent_helpers import FAST, eventually
from sim_clock import SimClock
from test_hub_service import Watcher

from edge_agent.config import DeviceConfig, EmulationConfig, HubConfig, MqttConfig, VoiceConfig
from edge_agent.service import HubService
from edge_agent.voice import measure_wav
from gateway.broker import BrokerEndpoint

CPH = ZoneInfo("Europe/Copenhagen")


@pytest.fixture
def watcher(broker: BrokerEndpoint) -> Iterator[Watcher]:
    w = Watcher(broker)
    yield w
    w.close()


def _config(tmp_path: Path, broker: BrokerEndpoint) -> HubConfig:
    return HubConfig(
        municipality="0101",
        hub_id="hub-s",
        patient_id="p-local",
        devices=(DeviceConfig(id="cuff", address="00:00:00:00:00:01", kind="blood-pressure-cuff"),),
        mqtt=MqttConfig(host=broker.host, port=broker.port, mqtt5=broker.mqtt5),
        outbox_path=tmp_path / "outbox.sqlite3",
        emulation=EmulationConfig(interval_s=0.2),
        status_interval_s=1.0,
        # Never quiet (start == end): the test runs at whatever time of day it is.
        voice=VoiceConfig(
            engine="wav", wav_dir=tmp_path / "voice", quiet_hours_start=time(0), quiet_hours_end=time(0)
        ),
    )


async def test_a_plan_in_the_retained_config_is_followed_without_a_restart(
    tmp_path: Path, broker: BrokerEndpoint, watcher: Watcher, espeak: str
) -> None:
    clock = SimClock(datetime.now(UTC))
    service = HubService(_config(tmp_path, broker), link_policy=FAST, now=clock.now, sleep=clock.sleep)
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    try:
        # The cuff measures; its readings reach the reminders before there is any plan.
        await eventually(lambda: any(m == "blood-pressure" for m, _ in service.reminders.readings), 15)
        agent = service.agent
        assert agent is not None and not (tmp_path / "voice").exists()

        # The nurse's plan: blood pressure and temperature at the next whole minute of the home's clock.
        due = (clock.now().astimezone(CPH) + timedelta(minutes=1)).replace(second=0, microsecond=0)
        plan = [
            {"measurement": "blood-pressure", "times": [f"{due:%H:%M}"], "grace_minutes": 60},
            {"measurement": "temperature", "times": [f"{due:%H:%M}"], "grace_minutes": 60},
        ]
        mark = clock.sleeps
        watcher.push_config(orjson.dumps({"version": "v-plan", "plan": plan}))
        await eventually(lambda: bool(service.config.plan), 10)
        await clock.settled(mark)
        assert service.agent is agent  # a new plan restarts nothing
        await eventually(lambda: any(s.get("configVersion") == "v-plan" for s in watcher.of("status")), 10)

        # The cuff's readings (taken within the early window) did the blood pressure already: no prompt
        # for it. The temperature falls due on the simulated clock and is spoken.
        assert list(service.reminders.said) == []
        await clock.advance(due.astimezone(UTC))
        said = [(s.event, s.occurrence.measurement) for s in service.reminders.said]
        assert said == [("due", "temperature")]
        (wav,) = sorted((tmp_path / "voice").glob("*.wav"))
        assert wav.name.endswith("-da-due.wav") and measure_wav(wav).rms > 0.01
        assert measure_wav(wav).duration_s > 0.5
        state = service.reminders.state()
        assert [o.measurement for o in state.done] == ["blood-pressure"]
        assert [o.measurement for o in state.due] == ["temperature"]

        # The plan taken away again: the reminders stop, the agent still runs.
        watcher.push_config(orjson.dumps({"version": "v-none", "plan": []}))
        await eventually(lambda: not service.config.plan, 10)
        assert service.agent is agent
        await eventually(lambda: clock.pending == 0, 5)  # the reminders' loop ended
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)


async def test_a_nurses_message_and_the_residents_names_change_nothing_else(
    tmp_path: Path, broker: BrokerEndpoint, watcher: Watcher
) -> None:
    """Messages come often; they (and a resident's name) must not close the hub's Bluetooth links."""
    service = HubService(_config(tmp_path, broker), link_policy=FAST)
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    try:
        await eventually(lambda: service.agent is not None and bool(service.agent.device_states()), 15)
        agent = service.agent
        message = {"id": "m1", "patient_id": "p-local", "sent_at": "2026-12-07T09:00:00+00:00", "text": "Hej"}
        residents = [{"patient_id": "p-local", "name": "Karen", "questionnaire": "heart-failure-daily"}]
        watcher.push_config(orjson.dumps({"version": "v-m", "messages": [message], "residents": residents}))
        await eventually(lambda: bool(service.config.messages), 10)
        assert service.agent is agent
        assert [m.text for m in service.config.messages] == ["Hej"]
        assert service.config.residents[0].name == "Karen"
        await eventually(lambda: any(s.get("configVersion") == "v-m" for s in watcher.of("status")), 10)
        # A device change still restarts the agent (its links depend on it).
        cuff = {"id": "cuff2", "address": "00:00:00:00:00:02", "kind": "blood-pressure-cuff"}
        watcher.push_config(orjson.dumps({"version": "v-d", "devices": [cuff]}))
        await eventually(lambda: service.agent is not None and service.agent is not agent, 15)
    finally:
        stop.set()
        await running
