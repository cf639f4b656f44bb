"""The hub's reminders: says when a planned measurement is due, that a reading of it arrived, and that one
was missed, on the hub's loudspeaker (or into WAV files), never during the quiet hours.

:class:`Reminders` is one asyncio task of :class:`~edge_agent.service.HubService`. Each turn it asks
:func:`edge_agent.plan_schedule.plan_state` where the plan stands now and decides (:meth:`Reminders.decide`,
no I/O) what to say:

- ``due``: once per occurrence, at its due time; an occurrence already due when the plan arrives (or the
  hub starts) is announced at once. Due during the quiet hours, it is said when they end, if it is still
  due then (no reading came and the deadline has not passed);
- ``received``: once per occurrence, when a reading the hub stored counts for it (taken in its window,
  early readings included). Said only when the reading arrived while the reminders ran: readings that
  were already there when a plan arrived are taken as done without a word. In the quiet hours nothing is
  said, and nothing is said later either: a confirmation is only worth hearing at once;
- ``missed``: at most once per occurrence, just after its deadline, and only for deadlines that passed
  while this plan ran (a plan arriving at noon says nothing about its 08:00 measurement). A deadline that
  passes in the quiet hours is not announced.

The texts are :func:`edge_agent.voice.prompt`'s in the configured language, begun with the resident's
name on a hub of more than one resident (:func:`addressed`); speaking is the
:class:`~edge_agent.voice.Speaker`'s (it runs its engine as a subprocess and never raises), so the event
loop never waits for speech. The clock is injected (``now`` and ``sleep``), so tests run on a simulated
clock. The loop sleeps until the next change of the plan's state (or the end of the quiet hours) and at
most :data:`MAX_SLEEP_S`, so a wall clock set right after start (NTP) is noticed within a minute; a
reading or a new plan wakes it at once.

What was said is kept in memory only (:attr:`Reminders.said`, bounded): a hub restarted while a
measurement is due says its ``due`` prompt again, once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from edge_agent.config import HubConfig, VoiceConfig
from edge_agent.plan_schedule import LOOKBACK, PlanState, plan_state, taken
from edge_agent.voice import EspeakSpeaker, QuietHours, Speaker, ToneSpeaker, WavSpeaker, prompt
from fhir_contract.plan import EARLY, MAX_GRACE, Occurrence, PlanItem

log = logging.getLogger(__name__)

#: The longest the loop sleeps without looking at the clock again: a wall clock that jumps (NTP after
#: boot, a manual change) is noticed within this time, at the cost of one cheap turn a minute.
MAX_SLEEP_S: Final = 60.0
#: What was said, kept for tests and tools: a day of a full plan (5 measurements x 6 times x 3 events)
#: fits.
SAID_KEPT: Final = 100
# Readings and remembered occurrences older than this cannot matter to any state the loop computes.
_FORGET_AFTER: Final = LOOKBACK + MAX_GRACE + EARLY + timedelta(days=1)
#: Readings kept (the newest, up to twice this many): a home takes a few planned measurements a day, far
#: fewer than this in the days the loop looks at; it bounds memory and the matching's work when a device
#: sends a planned kind at a high rate (an emulated device every few seconds).
MAX_READINGS: Final = 500

Now = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ReminderSettings:
    """What the reminders follow: the plan, the home's zone, the language and the quiet hours."""

    items: tuple[PlanItem, ...]
    zone: ZoneInfo
    language: str
    quiet: QuietHours
    # Whose plan it is: another resident's readings never confirm it. None: anyone's (a hub of one).
    patient_id: str | None = None
    # What the voice calls them, on a hub of more than one resident (each prompt says whom it is for);
    # empty on a hub of one, where a name would only make the prompt longer.
    name: str = ""

    @classmethod
    def from_config(cls, config: HubConfig, patient_id: str | None = None) -> ReminderSettings:
        """The settings of ``patient_id``'s plan (by default the hub's enrolled patient's)."""
        voice = config.voice
        patient = patient_id or config.patient_id
        named = len(config.resident_ids) > 1
        name = next((r.name for r in config.residents if r.patient_id == patient), "") if named else ""
        return cls(
            config.plan_of(patient),
            ZoneInfo(config.timezone),
            voice.language,
            QuietHours(voice.quiet_hours_start, voice.quiet_hours_end),
            patient,
            name,
        )


def addressed(text: str, name: str) -> str:
    """``text`` said to ``name`` ("Bent, det er tid til at måle blodtryk."); ``text`` without a name.
    On a hub of two, the name tells the residents whose measurement is meant."""
    if not name:
        return text
    return f"{name}, {text[:1].lower()}{text[1:]}"


@dataclass(frozen=True, slots=True)
class Said:
    """One prompt: ``event`` about ``occurrence``, decided at ``at``; ``text`` is what was said."""

    event: str
    occurrence: Occurrence
    at: datetime
    text: str


@dataclass(slots=True)
class _Memory:
    """What the loop has dealt with (said, or let pass in silence), per occurrence."""

    since: datetime  # when the current plan began to run: deadlines before it are not announced
    fresh: bool = True  # no turn yet with this plan: what is already done is taken as confirmed
    prompted: set[Occurrence] = field(default_factory=set)
    confirmed: set[Occurrence] = field(default_factory=set)
    missed: set[Occurrence] = field(default_factory=set)

    def forget_before(self, limit: datetime) -> None:
        for seen in (self.prompted, self.confirmed, self.missed):
            seen.difference_update({o for o in seen if o.deadline < limit})


class _Silent:
    """The ``none`` engine: nothing is said (the reminders still decide and log what they would say)."""

    async def say(self, text: str, language: str, *, event: str | None = None) -> None:
        log.info("voice off (engine none): would say %r", text)


def speaker_for(voice: VoiceConfig) -> Speaker:
    """The speaker the ``[voice]`` settings name."""
    if voice.engine in ("wav", "tone"):
        assert voice.wav_dir is not None, "checked by VoiceConfig"
        return WavSpeaker(voice.wav_dir) if voice.engine == "wav" else ToneSpeaker(voice.wav_dir)
    if voice.engine == "espeak":
        return EspeakSpeaker()
    return _Silent()


class Reminders:
    """Follows one resident's plan; :meth:`run` until cancelled. Feed it readings with :meth:`stored`."""

    def __init__(
        self,
        speaker: Speaker,
        settings: ReminderSettings,
        *,
        now: Now = _utc_now,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.speaker = speaker
        self.settings = settings
        self._now = now
        self._sleep = sleep
        self._readings: set[tuple[str, datetime]] = set()
        self._memory = _Memory(since=now())
        self._wake = asyncio.Event()
        self.said: deque[Said] = deque(maxlen=SAID_KEPT)

    # -- input ------------------------------------------------------------------------------------

    def update(self, settings: ReminderSettings) -> None:
        """Follow new settings (a new plan, zone, language or quiet hours) from now on. What was said
        stays said; a deadline that passed before now is not announced."""
        if settings == self.settings:
            return
        self.settings = settings
        self._memory.since = self._now()
        self._memory.fresh = True
        self._wake.set()

    def stored(self, observations: Iterable[Mapping[str, Any]]) -> None:
        """Observations the hub just stored in its outbox; those the plan counts are remembered (only the
        plan's patient's: a second resident's blood pressure is not the first's)."""
        patient = self.settings.patient_id
        for observation in observations:
            if patient is not None and observation.get("subject") != {"reference": f"Patient/{patient}"}:
                continue
            reading = taken(observation)
            if reading is not None:
                self.reading(*reading)

    def reading(self, measurement: str, at: datetime) -> None:
        """A reading of plan measurement ``measurement`` taken at ``at`` (aware) was stored."""
        if (measurement, at) in self._readings or at < self._now() - _FORGET_AFTER:
            return  # known, or too old to count for anything (a device's history)
        self._readings.add((measurement, at))
        if len(self._readings) > 2 * MAX_READINGS:
            self._readings = set(sorted(self._readings, key=lambda r: r[1])[-MAX_READINGS:])
        self._wake.set()

    @property
    def readings(self) -> frozenset[tuple[str, datetime]]:
        """The readings of plan measurements the hub stored lately ``(measurement key, taken at)``."""
        return frozenset(self._readings)

    # -- deciding ---------------------------------------------------------------------------------

    def state(self, at: datetime | None = None) -> PlanState:
        """Where the plan stands at ``at`` (now by default) with the readings the hub stored."""
        s = self.settings
        return plan_state(s.items, s.zone, self._readings, at or self._now())

    def decide(self, at: datetime) -> list[tuple[str, Occurrence]]:
        """What to say at ``at``, in order (received, missed, due), marking it as dealt with. What the
        quiet hours silence is marked too, except a due prompt, which waits for their end."""
        state = self.state(at)
        memory = self._memory
        quiet = self.settings.quiet.is_quiet(at, self.settings.zone)
        say: list[tuple[str, Occurrence]] = []
        for occurrence in state.done:
            if occurrence not in memory.confirmed:
                memory.confirmed.add(occurrence)
                if not (quiet or memory.fresh):
                    say.append(("received", occurrence))
        for occurrence in state.missed:
            if occurrence not in memory.missed:
                memory.missed.add(occurrence)
                if not quiet and occurrence.deadline >= memory.since:
                    say.append(("missed", occurrence))
        if not quiet:
            for occurrence in state.due:
                if occurrence not in memory.prompted:
                    memory.prompted.add(occurrence)
                    say.append(("due", occurrence))
        memory.fresh = False
        return say

    def next_turn(self, at: datetime) -> datetime | None:
        """When the state changes next without a reading: an occurrence falls due, a deadline passes, or
        the quiet hours end while a due prompt waits for them."""
        state = self.state(at)
        times = [t for t in (state.next_change(),) if t is not None]
        waiting = [o for o in state.due if o not in self._memory.prompted]
        if waiting and self.settings.quiet.is_quiet(at, self.settings.zone):
            times.append(quiet_end(self.settings.quiet, at, self.settings.zone))
        return min(times) if times else None

    # -- the loop ---------------------------------------------------------------------------------

    async def turn(self, at: datetime | None = None) -> list[Said]:
        """Decide and say what is due at ``at`` (now); returns what was said."""
        self._wake.clear()  # before reading anything: a reading stored while speaking wakes the next turn
        at = at or self._now()
        self._forget(at)
        said: list[Said] = []
        for event, occurrence in self.decide(at):
            plain = prompt(event, occurrence.measurement, self.settings.language)
            text = addressed(plain, self.settings.name)
            log.info(
                "reminder: %s %s (due %s): %r",
                event,
                occurrence.measurement,
                occurrence.due_at.isoformat(),
                text,
            )
            try:
                await self.speaker.say(text, self.settings.language, event=event)
            except Exception:  # a speaker never raises; if one does, the reminders go on
                log.exception("reminder: the speaker failed on %r", text)
            said.append(Said(event, occurrence, at, text))
            self.said.append(said[-1])
        return said

    async def run(self) -> None:
        """Turn whenever something may have to be said, until cancelled."""
        while True:
            at = self._now()
            try:
                await self.turn(at)
                # From the turn's time, not after speaking: what fell due meanwhile gets a turn at once.
                until = self.next_turn(at)
            except Exception:  # a bug here must not silence the hub for good: try again shortly
                log.exception("reminders: a turn failed; trying again within a minute")
                until = None
            await self._wait(until)

    async def _wait(self, until: datetime | None) -> None:
        delay = MAX_SLEEP_S if until is None else (until - self._now()).total_seconds()
        sleeping = asyncio.ensure_future(self._sleep(min(max(delay, 0.0), MAX_SLEEP_S)))
        waking = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeping, waking}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeping, waking):
                task.cancel()
            await asyncio.gather(sleeping, waking, return_exceptions=True)

    def _forget(self, at: datetime) -> None:
        limit = at - _FORGET_AFTER
        self._readings = {r for r in self._readings if r[1] >= limit}
        self._memory.forget_before(limit)


def quiet_end(quiet: QuietHours, at: datetime, zone: ZoneInfo) -> datetime:
    """The first instant after ``at`` at which the quiet hours are over: their end on the home's wall
    clock, today or tomorrow, either pass of an hour the clocks repeat. A wall time the clocks skip is
    taken as shifted by the gap (as :func:`fhir_contract.plan.occurrences` does), so on that one night
    the end may come up to the gap's length late."""
    local = at.astimezone(zone)
    ends = []
    for days in (0, 1):
        for fold in (0, 1):
            wall = datetime.combine(local.date() + timedelta(days=days), quiet.end, tzinfo=zone).replace(
                fold=fold
            )
            end = wall.astimezone(UTC)
            if end > at and not quiet.is_quiet(end, zone):
                ends.append(end)
    return min(ends) if ends else at + timedelta(days=1)  # none: quiet all day, look again tomorrow
