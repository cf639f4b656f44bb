"""The care team's messages read aloud on the hub, once each: nothing may depend on the patient using a
screen, so a message the nurse writes is said on the loudspeaker as well as shown on the patient view.

:class:`Announcements` is told the hub's configuration whenever it changes (and at start). A message it
has not read aloud before is said ("Besked fra din sygeplejerske: ...", with the resident's name first
on a hub of more than one), outside the quiet hours: one that arrives in them is said when they end, if
it is still in the configuration then. The ids of the messages read are kept in a small file beside the
outbox, so a restart never reads a message twice; a message that arrived while the hub was off is read
at start. A press of "contact my nurse" on the patient view is confirmed out loud as well
(:meth:`Announcements.contact_requested`). The speaker is the reminders' (one utterance at a time),
so it never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from edge_agent.config import HubConfig, NurseMessage
from edge_agent.reminders import addressed, quiet_end
from edge_agent.voice import QuietHours, Speaker, prompt

log = logging.getLogger(__name__)

#: What is said before the message's own text, per language.
MESSAGE_PREFIX = {"da": "Besked fra din sygeplejerske: ", "en": "A message from your nurse: "}


def message_text(message: NurseMessage, language: str, name: str = "") -> str:
    """What is said for ``message`` (pure): the prefix, the text, and the resident's name first."""
    return addressed(MESSAGE_PREFIX.get(language, MESSAGE_PREFIX["da"]) + message.text, name)


class Announcements:
    """Reads each new message of the configuration aloud once (module docstring)."""

    def __init__(
        self,
        speaker: Speaker,
        path: Path,
        *,
        now: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._speaker = speaker
        self._path = path
        self._now = now
        self._sleep = sleep
        self._read: set[str] = self._load()
        self._config: HubConfig | None = None
        self._waiting: asyncio.Task[None] | None = None
        self._speaking: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()  # one reading at a time: a message is never said twice

    @staticmethod
    def path_next_to(outbox_path: Path) -> Path:
        return outbox_path.with_name(outbox_path.stem + ".messages-read.json")

    @property
    def read(self) -> frozenset[str]:
        """The ids of the messages read aloud."""
        return frozenset(self._read)

    def _load(self) -> set[str]:
        try:
            data = orjson.loads(self._path.read_bytes())
        except FileNotFoundError:
            return set()
        except (OSError, orjson.JSONDecodeError) as exc:
            log.warning("the list of messages read aloud is unreadable (%s); starting afresh", exc)
            return set()
        return {str(i) for i in data} if isinstance(data, list) else set()

    def _save(self, keep: set[str]) -> None:
        tmp = self._path.with_suffix(self._path.suffix + ".tmp")
        tmp.write_bytes(orjson.dumps(sorted(keep)))
        os.replace(tmp, self._path)

    def follow(self, config: HubConfig) -> None:
        """The configuration now: its new messages are read aloud in the background (at once, or when the
        quiet hours end), so the caller never waits for speech."""
        task = asyncio.create_task(self._follow(config), name="announcements")
        self._speaking.add(task)
        task.add_done_callback(self._speaking.discard)

    async def _follow(self, config: HubConfig) -> None:
        self._config = config
        if config.voice.enabled is False or not self._unread(config):
            return
        zone = ZoneInfo(config.timezone)
        quiet = QuietHours(config.voice.quiet_hours_start, config.voice.quiet_hours_end)
        now = self._now()
        if quiet.is_quiet(now, zone):
            if self._waiting is None or self._waiting.done():
                self._waiting = asyncio.create_task(self._after_quiet(quiet_end(quiet, now, zone)))
            return
        await self._say_unread(config)

    def _unread(self, config: HubConfig) -> list[NurseMessage]:
        return [m for m in config.messages if m.id not in self._read and m.patient_id in config.resident_ids]

    async def _after_quiet(self, until: datetime) -> None:
        await self._sleep(max(0.0, (until - self._now()).total_seconds()))
        if self._config is not None:
            await self._follow(self._config)

    async def _say_unread(self, config: HubConfig) -> None:
        async with self._lock:
            await self._say_unread_locked(config)

    async def _say_unread_locked(self, config: HubConfig) -> None:
        several = len(config.resident_ids) > 1
        names = {r.patient_id: r.name for r in config.residents}
        for message in self._unread(config):
            name = names.get(message.patient_id, "") if several else ""
            text = message_text(message, config.voice.language, name)
            await self._speaker.say(text, config.voice.language, event="message")
            self._read.add(message.id)
        # Only ids the configuration still holds are kept: the file stays as small as the message list.
        keep = self._read & {m.id for m in config.messages}
        try:
            await asyncio.to_thread(self._save, keep)
        except OSError as exc:
            log.warning("the list of messages read aloud was not saved (%s): a restart may repeat them", exc)
        self._read = keep

    def contact_requested(self, config: HubConfig, patient_id: str) -> None:
        """A resident pressed "contact my nurse": say that the care team is told (the prompt ``contact``),
        unless the voice is off or it is the quiet hours (the page says it as well)."""
        quiet = QuietHours(config.voice.quiet_hours_start, config.voice.quiet_hours_end)
        if config.voice.enabled is False or quiet.is_quiet(self._now(), ZoneInfo(config.timezone)):
            return
        language = config.voice.language
        name = next((r.name for r in config.residents if r.patient_id == patient_id), "")
        text = addressed(prompt("contact", None, language), name if len(config.resident_ids) > 1 else "")
        task = asyncio.create_task(self._speaker.say(text, language, event="contact"), name="contact")
        self._speaking.add(task)
        task.add_done_callback(self._speaking.discard)

    async def idle(self) -> None:
        """Wait until what is being read aloud now is said (not the quiet hours' wait)."""
        while self._speaking:
            await asyncio.gather(*self._speaking, return_exceptions=True)

    async def close(self) -> None:
        for task in [self._waiting, *self._speaking]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
