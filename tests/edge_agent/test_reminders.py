"""``edge_agent.reminders`` on a simulated clock: the plan's due prompt, the confirmation of a reading and
the missed prompt, rendered to WAV files by the voice's real ``WavSpeaker`` (espeak-ng) and checked with
the ``wave`` module; nothing in the quiet hours."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sim_clock import SimClock

from edge_agent.config import HubConfig, HubConfigError
from edge_agent.reminders import MAX_READINGS, Reminders, ReminderSettings, quiet_end
from edge_agent.remote_config import RemoteConfigError, merge, parse_remote
from edge_agent.voice import QuietHours, WavSpeaker, measure_wav
from fhir_contract.observation import build_observation
from fhir_contract.plan import parse_plan
from fhir_contract.readings import Component, Quantity, Reading

CPH = ZoneInfo("Europe/Copenhagen")
MONDAY = datetime(2026, 12, 7, tzinfo=CPH)
NIGHT = QuietHours(time(22), time(7))


def local(hhmm: str, day: int = 0) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return MONDAY + timedelta(days=day, hours=hours, minutes=minutes)


def blood_pressure(at: datetime) -> dict[str, Any]:
    """The Observation a cuff's reading taken at ``at`` becomes on the hub."""
    reading = Reading(
        "blood-pressure",
        components=(
            Component("systolic", Quantity(Decimal(128), "mm[Hg]")),
            Component("diastolic", Quantity(Decimal(82), "mm[Hg]")),
        ),
    )
    return build_observation(
        reading, patient_id="p1", device_id="cuff", hub_id="h1", effective=at, received=at
    )


def settings(plan: list[dict[str, Any]], language: str = "da", quiet: QuietHours = NIGHT) -> ReminderSettings:
    return ReminderSettings(parse_plan(plan), CPH, language, quiet)


class Home:
    """Reminders running on a simulated clock, speaking into WAV files."""

    def __init__(self, tmp_path: Path, plan: list[dict[str, Any]], start: datetime, **kw: Any) -> None:
        self.clock = SimClock(start)
        self.speaker = WavSpeaker(tmp_path / "voice")
        self.reminders = Reminders(
            self.speaker, settings(plan, **kw), now=self.clock.now, sleep=self.clock.sleep
        )
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        mark = self.clock.sleeps
        self.task = asyncio.create_task(self.reminders.run())
        await self.clock.settled(mark)

    async def at(self, when: datetime) -> list[tuple[str, str]]:
        """Move the clock to ``when``; what was said meanwhile, as (event, measurement)."""
        before = len(self.reminders.said)
        await self.clock.advance(when)
        return [(s.event, s.occurrence.measurement) for s in list(self.reminders.said)[before:]]

    async def stored(self, *observations: dict[str, Any], new: bool = True) -> list[tuple[str, str]]:
        """The hub stored ``observations`` now; what was said. A reading the reminders already know
        (``new=False``) does not even wake them."""
        before, mark = len(self.reminders.said), self.clock.sleeps
        self.reminders.stored(observations)
        if new:
            await self.clock.settled(mark)
        else:
            await asyncio.sleep(0.05)
            assert self.clock.sleeps == mark
        return [(s.event, s.occurrence.measurement) for s in list(self.reminders.said)[before:]]

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture
async def home(tmp_path: Path, espeak: str) -> AsyncIterator[Callable[..., Awaitable[Home]]]:
    homes: list[Home] = []

    async def make(plan: list[dict[str, Any]], start: datetime, **kw: Any) -> Home:
        made = Home(tmp_path / str(len(homes)), plan, start, **kw)
        homes.append(made)
        await made.start()
        return made

    yield make
    for made in homes:
        await made.close()


def assert_spoken(path: Path) -> None:
    """A WAV file of speech: 16-bit PCM of at least half a second, and not silence."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2 and wav.getnframes() / wav.getframerate() > 0.5
    assert measure_wav(path).rms > 0.01


BP_AT_8 = [{"measurement": "blood-pressure", "times": ["08:00"], "grace_minutes": 120}]


async def test_at_eight_the_due_prompt_is_spoken_and_a_reading_at_ten_past_is_confirmed(
    home: Callable[..., Awaitable[Home]],
) -> None:
    h = await home(BP_AT_8, local("07:30"))
    assert await h.at(local("07:59")) == []
    assert await h.at(local("08:00")) == [("due", "blood-pressure")]
    (due,) = h.speaker.utterances
    assert due.text == "Det er tid til at måle blodtryk." and due.language == "da" and due.event == "due"
    assert_spoken(due.path)
    await h.at(local("08:10"))
    assert await h.stored(blood_pressure(local("08:10"))) == [("received", "blood-pressure")]
    received = h.speaker.utterances[1]
    assert received.text == "Blodtryk modtaget, tak." and received.event == "received"
    assert_spoken(received.path)
    # Done: nothing more today, not at the deadline, not when the cuff sends the same reading again.
    assert await h.stored(blood_pressure(local("08:10")), new=False) == []
    assert await h.at(local("10:00")) == [] and await h.at(local("12:00")) == []
    assert len(h.speaker.paths) == 2


async def test_missed_is_said_once_just_after_the_deadline(home: Callable[..., Awaitable[Home]]) -> None:
    h = await home(BP_AT_8, local("07:30"), language="en")
    assert await h.at(local("08:00")) == [("due", "blood-pressure")]
    assert await h.at(local("10:00")) == []  # a reading taken at the deadline would still count
    assert await h.at(local("10:00") + timedelta(seconds=1)) == [("missed", "blood-pressure")]
    assert (
        h.speaker.utterances[-1].text == "We still need your blood pressure. Please measure it when you can."
    )
    assert_spoken(h.speaker.paths[-1])
    for later in ("10:01", "11:00", "20:00"):
        assert await h.at(local(later)) == []
    # Tomorrow is another occurrence.
    assert await h.at(local("08:00", day=1)) == [("due", "blood-pressure")]


async def test_a_reading_taken_early_is_confirmed_and_no_due_prompt_follows(
    home: Callable[..., Awaitable[Home]],
) -> None:
    h = await home(BP_AT_8, local("07:30"))
    assert await h.stored(blood_pressure(local("07:30"))) == [("received", "blood-pressure")]
    assert await h.at(local("08:00")) == [] and await h.at(local("10:30")) == []


async def test_nothing_is_said_in_the_quiet_hours_and_a_due_prompt_waits_for_their_end(
    home: Callable[..., Awaitable[Home]],
) -> None:
    plan = [
        {"measurement": "blood-pressure", "times": ["06:00"], "grace_minutes": 120},
        {"measurement": "temperature", "times": ["22:30"], "grace_minutes": 60},
        {"measurement": "weight", "times": ["05:00"], "grace_minutes": 90},
    ]
    h = await home(plan, local("21:00"))
    assert await h.at(local("22:30")) == []  # due in the quiet hours
    assert await h.stored(_temperature(local("22:40"))) == []  # received in the quiet hours: not said
    assert await h.at(local("05:00", day=1)) == []
    assert await h.at(local("06:00", day=1)) == []  # weight's deadline (06:30) passes quietly too
    assert await h.at(local("06:31", day=1)) == []
    # At 07:00 the quiet hours end: blood pressure is still due (until 08:00), weight is not.
    assert await h.at(local("07:00", day=1)) == [("due", "blood-pressure")]
    assert_spoken(h.speaker.paths[-1])
    assert len(h.speaker.paths) == 1


async def test_a_due_prompt_in_the_quiet_hours_is_dropped_when_the_reading_comes_first(
    home: Callable[..., Awaitable[Home]],
) -> None:
    h = await home(BP_AT_8, local("05:00"), quiet=QuietHours(time(22), time(8, 30)))
    assert await h.at(local("08:00")) == []
    assert await h.stored(blood_pressure(local("08:20"))) == []
    assert await h.at(local("08:30")) == [] and h.speaker.paths == []


async def test_a_new_plan_speaks_about_what_is_due_now_and_not_about_the_past(
    home: Callable[..., Awaitable[Home]],
) -> None:
    h = await home([], local("07:00"))
    # A weight taken before there was any plan counts: no prompt for it, no confirmation out of the blue.
    await h.stored(_weight(local("07:10")))
    mark = h.clock.sleeps
    await h.at(local("09:00"))
    plan = [
        {"measurement": "blood-pressure", "times": ["06:00", "08:30"], "grace_minutes": 60},
        {"measurement": "weight", "times": ["08:00"], "grace_minutes": 120},
    ]
    h.reminders.update(settings(plan))
    await h.clock.settled(mark + 1)
    said = [(s.event, s.occurrence.measurement, s.occurrence.due_at) for s in h.reminders.said]
    # 06:00 was missed before the plan existed: not said; 08:30 is due now: said at once.
    assert said == [("due", "blood-pressure", local("08:30"))]
    h.reminders.update(settings(plan))  # the same settings again (another config change): nothing
    assert await h.at(local("09:31")) == [("missed", "blood-pressure")]


def _temperature(at: datetime) -> dict[str, Any]:
    reading = Reading("body-temperature", Quantity(Decimal("36.9"), "Cel"))
    return build_observation(reading, patient_id="p1", device_id="th", hub_id="h1", effective=at, received=at)


def _weight(at: datetime) -> dict[str, Any]:
    reading = Reading("body-weight", Quantity(Decimal("81.2"), "kg"))
    return build_observation(reading, patient_id="p1", device_id="sc", hub_id="h1", effective=at, received=at)


def test_settings_follow_the_hubs_voice_config(tmp_path: Path) -> None:
    config = HubConfig.from_mapping(
        {
            "municipality": "0101",
            "hub_id": "h1",
            "patient_id": "p1",
            "devices": [],
            "outbox_path": "outbox.sqlite3",
            "timezone": "Europe/Copenhagen",
            "plan": BP_AT_8,
            "voice": {"language": "en", "quiet_hours_start": "21:30", "quiet_hours_end": "06:45"},
        },
        source="test",
        base=tmp_path,
    )
    assert config.speaks and config.voice.engine == "espeak"
    made = ReminderSettings.from_config(config)
    assert made == ReminderSettings(
        parse_plan(BP_AT_8), CPH, "en", QuietHours(time(21, 30), time(6, 45)), patient_id="p1"
    )
    assert not config.model_copy(update={"plan": ()}).speaks
    off = config.model_copy(update={"voice": config.voice.model_copy(update={"enabled": False})})
    assert not off.speaks


def test_readings_kept_are_bounded_and_old_history_is_not_kept(tmp_path: Path) -> None:
    clock = SimClock(local("12:00"))
    reminders = Reminders(WavSpeaker(tmp_path), settings(BP_AT_8), now=clock.now, sleep=clock.sleep)
    reminders.reading("weight", local("12:00", day=-5))  # a scale's history from last week
    assert reminders.readings == frozenset()
    for second in range(3 * MAX_READINGS):
        reminders.reading("spo2", local("11:00") + timedelta(seconds=second))
    kept = sorted(at for _, at in reminders.readings)
    assert MAX_READINGS <= len(kept) <= 2 * MAX_READINGS
    assert kept[-1] == local("11:00") + timedelta(seconds=3 * MAX_READINGS - 1)


def test_voice_settings_are_checked_local_only_and_a_bad_zone_is_refused(tmp_path: Path) -> None:
    base = {"municipality": "0101", "hub_id": "h1", "patient_id": "p1", "devices": [], "outbox_path": "o.db"}
    with pytest.raises(HubConfigError) as no_folder:
        HubConfig.from_mapping(base | {"voice": {"engine": "wav"}}, source="t")
    assert no_folder.value.field == "voice"
    with pytest.raises(HubConfigError) as loud:
        HubConfig.from_mapping(base | {"voice": {"language": "de"}}, source="t")
    assert loud.value.field == "voice.language"
    wav = HubConfig.from_mapping(
        base | {"voice": {"engine": "wav", "wav_dir": "voice"}}, source="t", base=tmp_path
    )
    assert wav.voice.wav_dir == tmp_path / "voice"
    with pytest.raises(HubConfigError) as zone:
        HubConfig.from_mapping(base | {"timezone": "Europe/Atlantis"}, source="t")
    assert zone.value.field == "timezone"
    local = HubConfig.from_mapping(base, source="t")
    with pytest.raises(RemoteConfigError):
        parse_remote(b'{"voice": {"engine": "none"}}')
    with pytest.raises(RemoteConfigError) as remote_zone:
        merge(local, parse_remote(b'{"timezone": "Europe"}'))
    assert remote_zone.value.field == "timezone"


@given(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    st.times(),
    st.times(),
)
def test_quiet_end_is_the_first_instant_after_the_quiet_hours(at: datetime, start: time, end: time) -> None:
    quiet = QuietHours(start.replace(microsecond=0), end.replace(microsecond=0))
    if not quiet.is_quiet(at, CPH):
        return
    over = quiet_end(quiet, at, CPH)
    assert at < over <= at + timedelta(days=1, hours=1)
    assert not quiet.is_quiet(over, CPH)
    # Quiet until then, but for the hour the clocks skip (an end in it comes as late as the gap is long).
    skipped = (over - timedelta(hours=1)).astimezone(CPH).utcoffset() != over.astimezone(CPH).utcoffset()
    assert quiet.is_quiet(over - timedelta(microseconds=1), CPH) or skipped


def test_quiet_end_in_the_morning_after_the_clocks_go_forward() -> None:
    quiet = QuietHours(time(22), time(7))
    at = datetime(2026, 3, 28, 23, 0, tzinfo=CPH)  # winter time; 07:00 on the 29th is summer time
    assert quiet_end(quiet, at, CPH) == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)
    # The night the clocks go back (25 October 2026): 01:00-02:30 is quiet on both passes of 02:00-03:00.
    twice = QuietHours(time(1), time(2, 30))
    second_pass = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 02:10 local, the second time (UTC+1)
    assert twice.is_quiet(second_pass, CPH)
    assert quiet_end(twice, second_pass, CPH) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


def test_only_the_plan_patients_readings_confirm_the_plan(tmp_path: Path) -> None:
    """Two residents on one hub: the second resident's blood pressure is not the plan patient's."""
    plan = ReminderSettings(parse_plan(BP_AT_8), CPH, "da", NIGHT, patient_id="p1")
    reminders = Reminders(WavSpeaker(tmp_path), plan, now=lambda: local("08:30"))
    other = blood_pressure(local("08:10")) | {"subject": {"reference": "Patient/p2"}}
    reminders.stored([other])
    assert reminders.readings == frozenset()
    reminders.stored([blood_pressure(local("08:10"))])
    assert reminders.readings == {("blood-pressure", local("08:10"))}
