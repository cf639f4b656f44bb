"""``[voice] engine = "tone"``: a patient who hears a chime better than words gets the tone pattern of each
event, chosen in the hub's file like any engine, rendered non-silent into ``wav_dir``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge_agent.config import HubConfig, HubConfigError
from edge_agent.reminders import speaker_for
from edge_agent.voice import ToneSpeaker, measure_wav

BASE = {"municipality": "0101", "hub_id": "h1", "patient_id": "p1", "devices": [], "outbox_path": "o.db"}


def test_the_tone_engine_is_chosen_in_the_file_and_renders_each_events_pattern(tmp_path: Path) -> None:
    config = HubConfig.from_mapping(
        BASE | {"voice": {"engine": "tone", "wav_dir": "tones"}}, source="t", base=tmp_path
    )
    speaker = speaker_for(config.voice)
    assert isinstance(speaker, ToneSpeaker)
    speaker.player = ()  # render only: no sound card in a test

    async def say_all() -> None:
        await speaker.say("Det er tid til at måle blodtryk", "da", event="due")
        await speaker.say("Blodtryk modtaget, tak", "da", event="received")

    asyncio.run(say_all())
    files = sorted((tmp_path / "tones").glob("*.wav"))
    assert [f.name for f in files] == ["0001-tone-due.wav", "0002-tone-received.wav"]
    measures = [measure_wav(f) for f in files]
    assert all(m.duration_s > 0.1 and m.rms > 0.01 for m in measures)
    assert measures[0].duration_s != measures[1].duration_s  # two events, two patterns


def test_the_tone_engine_needs_its_folder() -> None:
    with pytest.raises(HubConfigError, match="wav_dir"):
        HubConfig.from_mapping(BASE | {"voice": {"engine": "tone"}}, source="t")
