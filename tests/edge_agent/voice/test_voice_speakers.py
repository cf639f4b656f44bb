"""Speaking the prompts with Debian's espeak-ng, checked on the WAV files it renders (not by listening).

A spoken prompt must exist, last a sensible time and not be silent; the hub's loop must go on while it
is spoken; a missing or failing engine is logged, never raised into the hub.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path

import pytest

from edge_agent.voice import (
    EVENTS,
    LANGUAGES,
    EspeakSpeaker,
    VoiceError,
    WavSpeaker,
    measure_wav,
    prompt,
    render_wav,
)
from fhir_contract.plan import MEASUREMENTS

# espeak-ng's prompts measured 0.068 to 0.098 RMS (full scale 1.0) and 1.8 to 4.5 s; silence is 0 and a hiss
# stays far below this.
# An engine that starts and fails at once (exit code 1).
FALSE = shutil.which("false") or "/bin/false"
AUDIBLE_RMS = 0.02
# The shortest prompt ("Vægt modtaget, tak.") takes well over a second at the hub's calm pace.
MIN_SPEECH_S = 0.5


def _files(folder: Path) -> list[str]:
    """The names of the files in ``folder`` (none when it does not exist), sorted."""
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


ALL_PROMPTS = [
    (event, measurement, language)
    for language in LANGUAGES
    for event in EVENTS
    for measurement in (MEASUREMENTS if event != "contact" else (None,))
]


@pytest.mark.parametrize("measurement", MEASUREMENTS)
def test_the_danish_due_prompt_of_every_measurement_is_spoken(
    espeak: str, measurement: str, tmp_path: Path
) -> None:
    wav = render_wav(prompt("due", measurement, "da"), "da", tmp_path / "due.wav", executable=espeak)
    heard = measure_wav(wav)
    assert heard.duration_s > MIN_SPEECH_S
    assert heard.rms > AUDIBLE_RMS


@pytest.mark.parametrize(("event", "measurement", "language"), ALL_PROMPTS)
def test_every_prompt_in_both_languages_renders_to_audible_speech(
    espeak: str, event: str, measurement: str | None, language: str, tmp_path: Path
) -> None:
    wav = render_wav(prompt(event, measurement, language), language, tmp_path / "p.wav", executable=espeak)
    heard = measure_wav(wav)
    assert MIN_SPEECH_S < heard.duration_s < 15.0
    assert heard.rms > AUDIBLE_RMS


def test_the_danish_voice_is_not_the_english_one(espeak: str, tmp_path: Path) -> None:
    text = prompt("due", "blood-pressure", "da")
    danish = render_wav(text, "da", tmp_path / "da.wav", executable=espeak).read_bytes()
    english = render_wav(text, "en", tmp_path / "en.wav", executable=espeak).read_bytes()
    assert danish != english


def test_a_text_that_looks_like_an_option_is_spoken_not_obeyed(espeak: str, tmp_path: Path) -> None:
    wav = render_wav("-w /tmp/elsewhere.wav --help", "en", tmp_path / "odd.wav", executable=espeak)
    assert measure_wav(wav).rms > AUDIBLE_RMS


async def test_the_wav_speaker_records_each_utterance_in_order(espeak: str, tmp_path: Path) -> None:
    speaker = WavSpeaker(tmp_path / "voice", executable=espeak)
    await speaker.say(prompt("due", "glucose", "da"), "da", event="due")
    await speaker.say(prompt("received", "glucose", "en"), "en", event="received")
    await speaker.say("Hej.", "da")

    assert [(u.text, u.language, u.event) for u in speaker.utterances] == [
        ("Det er tid til at måle blodsukker.", "da", "due"),
        ("Blood sugar received. Thank you.", "en", "received"),
        ("Hej.", "da", None),
    ]
    assert [p.name for p in speaker.paths] == [
        "0001-da-due.wav",
        "0002-en-received.wav",
        "0003-da-speech.wav",
    ]
    assert _files(tmp_path / "voice") == [p.name for p in speaker.paths]
    assert all(measure_wav(p).rms > AUDIBLE_RMS for p in speaker.paths)


async def test_utterances_said_at_once_never_overlap_and_all_arrive(espeak: str, tmp_path: Path) -> None:
    speaker = WavSpeaker(tmp_path, executable=espeak)
    texts = [prompt("due", m, "da") for m in MEASUREMENTS]
    await asyncio.gather(*(speaker.say(text, "da", event="due") for text in texts))
    assert sorted(u.text for u in speaker.utterances) == sorted(texts)
    assert len({u.path for u in speaker.utterances}) == len(texts)


async def test_the_hub_s_loop_runs_on_while_a_prompt_is_spoken(espeak: str, tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    ticks: list[float] = []
    speaking = True

    async def ticker() -> None:
        while speaking:
            ticks.append(loop.time())
            await asyncio.sleep(0.005)

    running = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    speaker = WavSpeaker(tmp_path, executable=espeak)
    long_text = " ".join([prompt("missed", "blood-pressure", "da")] * 40)  # a few tenths of a second
    started = loop.time()
    await speaker.say(long_text, "da")
    ended = loop.time()
    speaking = False
    await running

    assert speaker.paths, "the long text was rendered"
    assert sum(started < tick < ended for tick in ticks) >= 2


async def test_a_missing_engine_is_said_once_in_the_log_and_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = str(tmp_path / "no-such" / "espeak-ng")
    speaker = EspeakSpeaker(missing)
    wav_speaker = WavSpeaker(tmp_path / "voice", executable=missing)
    with caplog.at_level(logging.WARNING, logger="edge_agent.voice"):
        for _ in range(3):
            await speaker.say(prompt("due", "weight", "da"), "da", event="due")
            await wav_speaker.say(prompt("due", "weight", "da"), "da", event="due")

    complaints = [r.getMessage() for r in caplog.records if "not installed" in r.getMessage()]
    assert (
        complaints
        == [f"{missing} is not installed, prompts are not spoken (Debian: apt-get install espeak-ng)"] * 2
    )
    assert wav_speaker.utterances == []
    assert _files(tmp_path / "voice") == []


async def test_a_failing_engine_is_logged_each_time_and_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failing = FALSE  # starts, then exits 1 like an engine that cannot speak
    speaker = EspeakSpeaker(failing)
    wav_speaker = WavSpeaker(tmp_path, executable=failing)
    with caplog.at_level(logging.WARNING, logger="edge_agent.voice"):
        await speaker.say("Hej.", "da")
        await wav_speaker.say("Hej.", "da")
        await speaker.say("Hej.", "da")
    failures = [r.getMessage() for r in caplog.records]
    assert len(failures) == 3
    assert all("exited with 1" in message for message in failures)
    assert wav_speaker.utterances == []
    assert _files(tmp_path) == []  # no half-written file left behind


async def test_an_engine_that_hangs_is_stopped_after_the_timeout(
    espeak: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    speaker = WavSpeaker(tmp_path, executable=espeak, timeout_s=0.001)
    with caplog.at_level(logging.WARNING, logger="edge_agent.voice"):
        await speaker.say(" ".join([prompt("due", "spo2", "da")] * 200), "da")
    assert speaker.utterances == []
    assert any("longer than 0.001 s" in r.getMessage() for r in caplog.records)
    assert _files(tmp_path) == []


async def test_a_language_without_a_voice_is_logged_not_raised(
    espeak: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    speaker = WavSpeaker(tmp_path, executable=espeak)
    with caplog.at_level(logging.WARNING, logger="edge_agent.voice"):
        await speaker.say("Bonjour.", "fr")
    assert speaker.utterances == []
    assert "no voice for language 'fr'" in caplog.text


def test_render_wav_raises_what_went_wrong(tmp_path: Path) -> None:
    with pytest.raises(VoiceError, match="exited with 1"):
        render_wav("Hej.", "da", tmp_path / "x.wav", executable=FALSE)
    with pytest.raises(VoiceError, match="no voice"):
        render_wav("Hej.", "xx", tmp_path / "x.wav", executable=FALSE)
    with pytest.raises(VoiceError, match="No such file"):
        render_wav("Hej.", "da", tmp_path / "x.wav", executable=str(tmp_path / "missing"))


def _children_named(name: str) -> list[int]:
    """This process's child processes called ``name`` (from /proc; Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        command, rest = text.split("(", 1)[1].rsplit(")", 1)  # "pid (comm) state ppid ..."
        if int(rest.split()[1]) == os.getpid() and command == name[:15]:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="looks for espeak-ng in /proc (Linux)")
async def test_a_prompt_cancelled_mid_speech_stops_the_engine_and_leaves_no_file(
    espeak: str, tmp_path: Path
) -> None:
    speaker = WavSpeaker(tmp_path, executable=espeak)
    saying = asyncio.create_task(speaker.say(" ".join([prompt("due", "weight", "da")] * 2000), "da"))
    for _ in range(200):  # until espeak-ng runs
        if _children_named("espeak-ng"):
            break
        await asyncio.sleep(0.01)
    assert _children_named("espeak-ng"), "espeak-ng started"
    saying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await saying
    assert _children_named("espeak-ng") == []
    assert speaker.utterances == []
    assert _files(tmp_path) == []
