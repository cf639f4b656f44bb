"""The care team's messages read aloud on the hub (``edge_agent.announcements``): each once, in the
resident's language and with their name on a hub of two, never in the quiet hours (said when they end),
and never again after a restart. espeak-ng renders the speech to WAV files checked with the wave module;
the clock is simulated."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
from sim_clock import SimClock

from edge_agent.announcements import Announcements, message_text
from edge_agent.config import HubConfig, NurseMessage
from edge_agent.voice import WavSpeaker, measure_wav

NOON = datetime(2026, 12, 7, 11, 0, tzinfo=UTC)  # 12:00 in Copenhagen
NIGHT = datetime(2026, 12, 7, 22, 30, tzinfo=UTC)  # 23:30 in Copenhagen: quiet


def _message(n: int, patient: str = "p-1", text: str = "Husk at veje dig i morgen.") -> dict[str, Any]:
    return {"id": f"m{n}", "patient_id": patient, "sent_at": "2026-12-07T09:00:00+00:00", "text": text}


def _config(tmp_path: Path, messages: list[dict[str, Any]], **changes: Any) -> HubConfig:
    data: dict[str, Any] = {
        "municipality": "0101",
        "hub_id": "hub-1",
        "patient_id": "p-1",
        "devices": [],
        "outbox_path": str(tmp_path / "outbox.sqlite3"),
        "messages": messages,
        "voice": {"engine": "wav", "wav_dir": str(tmp_path / "voice"), "quiet_hours_start": time(22),
                  "quiet_hours_end": time(7)},
    }  # fmt: skip
    return HubConfig.from_mapping(data | changes, source="test")


def _announcements(tmp_path: Path, config: HubConfig, clock: SimClock) -> tuple[Announcements, WavSpeaker]:
    assert config.voice.wav_dir is not None
    speaker = WavSpeaker(config.voice.wav_dir)
    path = Announcements.path_next_to(config.outbox_path)
    return Announcements(speaker, path, now=clock.now, sleep=clock.sleep), speaker


def test_what_is_said_names_the_nurse_and_on_a_hub_of_two_the_resident() -> None:
    message = NurseMessage.model_validate(_message(1))
    assert message_text(message, "da") == "Besked fra din sygeplejerske: Husk at veje dig i morgen."
    assert message_text(message, "en") == "A message from your nurse: Husk at veje dig i morgen."
    assert message_text(message, "da", "Bent").startswith("Bent, besked fra din sygeplejerske: ")


async def test_a_new_message_is_read_aloud_once_and_not_again_after_a_restart(
    tmp_path: Path, espeak: str
) -> None:
    clock = SimClock(NOON)
    config = _config(tmp_path, [_message(1)])
    announcements, speaker = _announcements(tmp_path, config, clock)
    announcements.follow(config)
    await announcements.idle()
    (wav,) = speaker.paths
    assert wav.name.endswith("-da-message.wav") and measure_wav(wav).rms > 0.01
    assert measure_wav(wav).duration_s > 1.5  # the whole message, not only the prefix
    announcements.follow(config)  # the same configuration again (a status tick, a plan change)
    await announcements.idle()
    assert len(speaker.paths) == 1
    await announcements.close()

    again, speaker_after = _announcements(tmp_path, config, clock)  # the hub restarted
    again.follow(_config(tmp_path, [_message(1), _message(2, text="Jeg kommer forbi torsdag.")]))
    await again.idle()
    assert [u.text for u in speaker_after.utterances] == [
        "Besked fra din sygeplejerske: Jeg kommer forbi torsdag."
    ]
    assert again.read == {"m1", "m2"}
    await again.close()


async def test_a_message_in_the_quiet_hours_is_said_when_they_end(tmp_path: Path, espeak: str) -> None:
    clock = SimClock(NIGHT)
    config = _config(tmp_path, [_message(1)])
    announcements, speaker = _announcements(tmp_path, config, clock)
    announcements.follow(config)
    await announcements.idle()
    assert speaker.paths == [] and clock.pending == 1  # waiting for 07:00
    # 07:00 in Copenhagen: the waiting reading wakes (it does not sleep again, so no clock.advance).
    clock.at = datetime(2026, 12, 8, 6, 0, tzinfo=UTC)
    for until, future in list(clock._sleepers):
        if until <= clock.at and not future.done():
            future.set_result(None)
    for _ in range(500):
        if speaker.paths:
            break
        await asyncio.sleep(0.01)
    assert len(speaker.paths) == 1
    await announcements.close()


async def test_on_a_hub_of_two_each_hears_their_own_name_and_a_voice_off_says_nothing(
    tmp_path: Path, espeak: str
) -> None:
    clock = SimClock(NOON)
    residents = [{"patient_id": "p-1", "name": "Karen"}, {"patient_id": "p-2", "name": "Bent"}]
    config = _config(tmp_path, [_message(1, "p-2", "Ring til lægen.")], residents=residents)
    announcements, speaker = _announcements(tmp_path, config, clock)
    announcements.follow(config)
    await announcements.idle()
    assert [u.text for u in speaker.utterances] == ["Bent, besked fra din sygeplejerske: Ring til lægen."]
    await announcements.close()

    quiet = _config(tmp_path / "off", [_message(3)])
    off = quiet.model_copy(update={"voice": quiet.voice.model_copy(update={"enabled": False})})
    silent, silent_speaker = _announcements(tmp_path / "off", off, clock)
    silent.follow(off)
    await silent.idle()
    assert silent_speaker.paths == [] and silent.read == frozenset()
    await silent.close()


@pytest.fixture(autouse=True)
def _folders(tmp_path: Path) -> None:
    (tmp_path / "off").mkdir()


async def test_contact_my_nurse_is_confirmed_out_loud_but_not_in_the_quiet_hours(
    tmp_path: Path, espeak: str
) -> None:
    clock = SimClock(NOON)
    config = _config(tmp_path, [])
    announcements, speaker = _announcements(tmp_path, config, clock)
    announcements.contact_requested(config, "p-1")
    await announcements.idle()
    assert [u.text for u in speaker.utterances] == [
        "Vi har givet besked. En sygeplejerske ringer til dig snart."
    ]
    (wav,) = speaker.paths
    assert wav.name.endswith("-da-contact.wav") and measure_wav(wav).rms > 0.01
    clock.at = NIGHT
    announcements.contact_requested(config, "p-1")
    await announcements.idle()
    assert len(speaker.paths) == 1
    await announcements.close()
