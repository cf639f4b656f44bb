"""Tone patterns instead of words, and measuring WAV files with Python's wave module."""

from __future__ import annotations

import logging
import math
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.voice import EVENTS, PATTERNS, SoundPattern, Tone, ToneSpeaker, VoiceError, measure_wav
from edge_agent.voice.wav import write_samples

# An engine that starts and fails at once (exit code 1).
FALSE = shutil.which("false") or "/bin/false"
AUDIBLE_RMS = 0.02


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("event", EVENTS)
def test_every_event_has_an_audible_pattern_of_about_a_second(event: str, tmp_path: Path) -> None:
    pattern = PATTERNS[event]
    heard = measure_wav(pattern.render(tmp_path / f"{event}.wav"))
    assert heard.duration_s == pytest.approx(pattern.duration_s, abs=0.01)
    assert 0.4 < heard.duration_s < 2.0
    assert heard.rms > AUDIBLE_RMS


def test_the_events_sound_different() -> None:
    assert len({PATTERNS[event] for event in EVENTS}) == len(EVENTS)


def test_tones_fade_in_and_out_so_they_do_not_click() -> None:
    samples = SoundPattern((Tone(440.0, 0.2),)).samples()
    assert abs(samples[0]) < 0.01
    assert abs(samples[-1]) < 0.01
    assert max(abs(s) for s in samples) > 0.3


async def test_the_tone_speaker_plays_the_event_s_pattern(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    speaker = ToneSpeaker(tmp_path / "tones", player=())  # render only
    with caplog.at_level(logging.WARNING, logger="edge_agent.voice"):
        await speaker.say("Blodtryk modtaget, tak.", "da", event="received")
        await speaker.say("Hej.", "da")
    assert [u.path.name for u in speaker.utterances] == ["0001-tone-received.wav", "0002-tone-due.wav"]
    assert (
        speaker.utterances[0].path.read_bytes()
        == PATTERNS["received"].render(tmp_path / "r.wav").read_bytes()
    )
    assert _files(tmp_path / "tones") == ["0001-tone-received.wav", "0002-tone-due.wav"]
    assert [r.getMessage() for r in caplog.records] == [
        f"no aplay: tone patterns go to {tmp_path / 'tones'} but are not played"
    ]


async def test_a_failing_player_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    speaker = ToneSpeaker(tmp_path, player=(FALSE,))
    with caplog.at_level(logging.WARNING, logger="edge_agent.voice"):
        await speaker.say("Hej.", "da", event="contact")
    assert "exited with 1" in caplog.text
    assert len(speaker.utterances) == 1  # rendered, only the playing failed


async def test_a_player_gets_the_rendered_file(tmp_path: Path) -> None:
    copy = tmp_path / "played.wav"
    # A "player" that keeps what it was given (the file's path comes last).
    keep = f"import shutil, sys; shutil.copy(sys.argv[1], {str(copy)!r})"
    speaker = ToneSpeaker(tmp_path / "tones", player=(sys.executable, "-c", keep))
    await speaker.say("Hej.", "da", event="missed")
    assert copy.read_bytes() == speaker.utterances[0].path.read_bytes()


def test_silence_measures_zero_and_a_full_square_wave_one(tmp_path: Path) -> None:
    silence = measure_wav(write_samples(tmp_path / "s.wav", [0.0] * 22050, 22050))
    assert (silence.duration_s, silence.rms) == (1.0, 0.0)
    square = measure_wav(write_samples(tmp_path / "q.wav", [1.0, -1.0] * 4000, 8000))
    assert square.rms == pytest.approx(1.0, abs=1e-4)
    assert square.duration_s == 1.0


@settings(max_examples=50)
@given(samples=st.lists(st.floats(-1.0, 1.0), min_size=1, max_size=2000), rate=st.sampled_from([8000, 22050]))
def test_the_measured_rms_is_the_rms_of_what_was_written(
    samples: list[float], rate: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("wav") / "x.wav"
    heard = measure_wav(write_samples(path, samples, rate))
    expected = math.sqrt(sum(s * s for s in samples) / len(samples))
    assert heard.rms == pytest.approx(expected, abs=1e-4)  # 16-bit quantisation
    assert heard.duration_s == pytest.approx(len(samples) / rate)


def test_what_is_not_a_16_bit_wav_is_a_voice_error(tmp_path: Path) -> None:
    (tmp_path / "text.wav").write_text("not a wav")
    with pytest.raises(VoiceError, match="not a readable WAV"):
        measure_wav(tmp_path / "text.wav")
    with pytest.raises(VoiceError, match="not a readable WAV"):
        measure_wav(tmp_path / "missing.wav")
