"""A hub of two residents follows each one's own measurement plan from the retained config (issue 21): one
reminders loop per resident, each counting only its resident's readings, both speaking through the one
speaker, every prompt begun with the resident's name; the plans arrive without restarting the agent.

Real parts as in ``test_hub_service_reminders.py``: a broker process, Bumble-emulated devices (Karen's
cuff, Grete's own thermometer, a personal device with ``patient_id``), the agent's outbox and publisher,
espeak-ng behind the ``WavSpeaker``. Only the reminders' clock is simulated; it starts at the real time
because the emulated devices date their readings by the real clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from agent_helpers import FAST, eventually
from sim_clock import SimClock
from test_hub_service import Watcher

from edge_agent.config import (
    DeviceConfig,
    EmulationConfig,
    HubConfig,
    MqttConfig,
    ResidentConfig,
    VoiceConfig,
)
from edge_agent.service import HubService
from edge_agent.voice import WavSpeaker, measure_wav
from gateway.broker import BrokerEndpoint

CPH = ZoneInfo("Europe/Copenhagen")
KAREN, GRETE = "p-local", "p-grete"


@pytest.fixture
def watcher(broker: BrokerEndpoint) -> Iterator[Watcher]:
    w = Watcher(broker)
    yield w
    w.close()


def _config(tmp_path: Path, broker: BrokerEndpoint) -> HubConfig:
    return HubConfig(
        municipality="0101",
        hub_id="hub-s",
        patient_id=KAREN,
        devices=(
            DeviceConfig(id="cuff", address="00:00:00:00:00:01", kind="blood-pressure-cuff"),
            DeviceConfig(id="thermo", address="00:00:00:00:00:02", kind="thermometer", patient_id=GRETE),
        ),
        residents=(
            ResidentConfig(patient_id=KAREN, name="Karen"),
            ResidentConfig(patient_id=GRETE, name="Grete"),
        ),
        mqtt=MqttConfig(host=broker.host, port=broker.port, mqtt5=broker.mqtt5),
        outbox_path=tmp_path / "outbox.sqlite3",
        emulation=EmulationConfig(interval_s=0.2),
        status_interval_s=1.0,
        # Never quiet (start == end): the test runs at whatever time of day it is.
        voice=VoiceConfig(
            engine="wav", wav_dir=tmp_path / "voice", quiet_hours_start=time(0), quiet_hours_end=time(0)
        ),
    )


async def test_each_resident_is_reminded_of_their_own_plan_by_name(
    tmp_path: Path, broker: BrokerEndpoint, watcher: Watcher, espeak: str
) -> None:
    clock = SimClock(datetime.now(UTC))
    service = HubService(_config(tmp_path, broker), link_policy=FAST, now=clock.now, sleep=clock.sleep)
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    try:
        # Both devices measure before there is any plan; each reading reaches its resident's reminders only.
        grete = service.resident_reminders[GRETE]
        await eventually(lambda: any(m == "temperature" for m, _ in grete.readings), 15)
        await eventually(lambda: any(m == "blood-pressure" for m, _ in service.reminders.readings), 15)
        assert {m for m, _ in grete.readings} == {"temperature"}  # Karen's cuff is not Grete's
        assert {m for m, _ in service.reminders.readings} == {"blood-pressure"}
        agent = service.agent

        # The nurse's plans, due at the next whole minute of the home's clock: Karen is to take her
        # temperature (she has no thermometer of her own), Grete her blood pressure and temperature.
        due = (clock.now().astimezone(CPH) + timedelta(minutes=1)).replace(second=0, microsecond=0)
        at = [f"{due:%H:%M}"]
        temperature = {"measurement": "temperature", "times": at, "grace_minutes": 60}
        blood_pressure = {"measurement": "blood-pressure", "times": at, "grace_minutes": 60}
        residents: list[dict[str, Any]] = [
            {"patient_id": KAREN, "name": "Karen"},
            {"patient_id": GRETE, "name": "Grete", "plan": [blood_pressure, temperature]},
        ]
        mark = clock.sleeps
        watcher.push_config(orjson.dumps({"version": "v-two", "plan": [temperature], "residents": residents}))
        await eventually(lambda: bool(service.config.plan_of(GRETE)), 10)
        await clock.settled(mark, loops=2)  # both loops took their first turn
        assert service.agent is agent  # the plans restart nothing
        assert grete.settings.items == service.config.plan_of(GRETE) and grete.settings.name == "Grete"
        assert list(service.reminders.said) == [] and list(grete.said) == []

        # Grete's own thermometer did her temperature, and only hers; Karen's cuff did nobody's.
        state = grete.state(due.astimezone(UTC))
        assert [o.measurement for o in state.done] == ["temperature"]
        assert [o.measurement for o in service.reminders.state(due.astimezone(UTC)).done] == []

        await clock.advance(due.astimezone(UTC))
        await eventually(lambda: bool(grete.said) and bool(service.reminders.said), 20)
        assert [(s.event, s.occurrence.measurement, s.text) for s in grete.said] == [
            ("due", "blood-pressure", "Grete, det er tid til at måle blodtryk.")
        ]
        assert [(s.event, s.occurrence.measurement, s.text) for s in service.reminders.said] == [
            ("due", "temperature", "Karen, det er tid til at måle temperatur.")
        ]
        speaker = service.reminders.speaker
        assert isinstance(speaker, WavSpeaker) and grete.speaker is speaker  # one loudspeaker
        await eventually(lambda: len(speaker.utterances) == 2, 20)
        spoken = {u.text: u.path for u in speaker.utterances}
        wav = spoken["Grete, det er tid til at måle blodtryk."]
        assert wav.name.endswith("-da-due.wav") and measure_wav(wav).rms > 0.01
        # A name is spoken too: Grete's prompt is longer than the same prompt without it.
        bare = tmp_path / "bare"
        await WavSpeaker(bare).say("Det er tid til at måle blodtryk.", "da", event="due")
        (bare_wav,) = bare.glob("*.wav")
        assert measure_wav(wav).duration_s > measure_wav(bare_wav).duration_s + 0.2

        # Grete's plan taken away: her loop stops, Karen's goes on, the agent still runs.
        residents[1]["plan"] = []
        watcher.push_config(orjson.dumps({"version": "v-one", "plan": [temperature], "residents": residents}))
        await eventually(lambda: not service.config.plan_of(GRETE), 10)
        assert service.agent is agent
        await eventually(lambda: clock.pending == 1, 5)
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)
