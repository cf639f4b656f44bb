"""A sound instead of words, for patients who prefer one: a short tone pattern per event.

Each event of ``prompts.EVENTS`` has its own :class:`SoundPattern` (:data:`PATTERNS`), easy to tell
apart: ``due`` three equal chimes (attention), ``received`` two rising notes (done), ``missed`` two soft
falling notes (a gentle reminder, not an alarm), ``contact`` a rising four-note phrase (someone will call).
Patterns are rendered with Python's ``wave`` module (soft sine tones with short fades, so they do not
click). :class:`ToneSpeaker` is a :class:`~edge_agent.voice.speaker.Speaker` that renders the event's
pattern to a WAV file in a folder and plays it with ALSA's ``aplay`` when the hub has it (Debian's
``alsa-utils``); without ``aplay`` it only renders, and says so once in the log.
"""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from edge_agent.voice.speaker import SAY_TIMEOUT_S, Utterance, run_engine
from edge_agent.voice.wav import write_samples

log = logging.getLogger(__name__)

SAMPLE_RATE: Final = 22050
#: Loudness of a tone (full scale is 1.0): clearly audible, never harsh.
AMPLITUDE: Final = 0.4
#: Fade in and out of every tone; a tone that starts or stops at full amplitude clicks.
FADE_S: Final = 0.015
APLAY: Final = ("aplay", "-q")


@dataclass(frozen=True, slots=True)
class Tone:
    """One note: ``frequency_hz`` for ``duration_s``; a frequency of 0 is a pause."""

    frequency_hz: float
    duration_s: float


@dataclass(frozen=True, slots=True)
class SoundPattern:
    """A short sequence of notes and pauses."""

    tones: tuple[Tone, ...]

    @property
    def duration_s(self) -> float:
        return sum(tone.duration_s for tone in self.tones)

    def samples(self, sample_rate: int = SAMPLE_RATE, amplitude: float = AMPLITUDE) -> list[float]:
        """The pattern as samples from -1.0 to 1.0."""
        out: list[float] = []
        fade = max(1, int(FADE_S * sample_rate))
        for tone in self.tones:
            count = int(tone.duration_s * sample_rate)
            if tone.frequency_hz <= 0:
                out.extend([0.0] * count)
                continue
            step = 2 * math.pi * tone.frequency_hz / sample_rate
            for i in range(count):
                envelope = min(1.0, i / fade, (count - 1 - i) / fade)
                out.append(amplitude * envelope * math.sin(step * i))
        return out

    def render(self, path: Path, sample_rate: int = SAMPLE_RATE) -> Path:
        """Write the pattern to the WAV file ``path``."""
        return write_samples(path, self.samples(sample_rate), sample_rate)


def _notes(*notes: tuple[float, float], gap_s: float = 0.12) -> SoundPattern:
    tones: list[Tone] = []
    for frequency, duration in notes:
        tones += [Tone(frequency, duration), Tone(0.0, gap_s)]
    return SoundPattern(tuple(tones[:-1]))


# Notes (Hz): C4 262, F4 349, A4 440, C5 523, E5 659, G5 784, C6 1047.
PATTERNS: Final[dict[str, SoundPattern]] = {
    "due": _notes((659.0, 0.25), (659.0, 0.25), (659.0, 0.25), gap_s=0.2),
    "received": _notes((523.0, 0.2), (784.0, 0.35)),
    "missed": _notes((440.0, 0.35), (349.0, 0.45), gap_s=0.15),
    "contact": _notes((523.0, 0.18), (659.0, 0.18), (784.0, 0.18), (1047.0, 0.4)),
}


class ToneSpeaker:
    """Plays the tone pattern of the event instead of speaking the text (a ``Speaker``).

    An utterance without an event, or with one that has no pattern, plays the ``due`` pattern (a
    neutral chime). Every pattern played is rendered to ``folder`` (``0001-tone-due.wav``, ...) and
    recorded in :attr:`utterances`, the text kept for the log. ``player`` is the command that plays a
    WAV file (the file's path is appended): ``aplay -q`` when found on the PATH; ``()`` renders only.
    """

    def __init__(self, folder: Path, player: Sequence[str] | None = None) -> None:
        self.folder = folder
        if player is None:
            player = APLAY if shutil.which(APLAY[0]) else ()
        self.player = tuple(player)
        self.utterances: list[Utterance] = []
        self._count = 0
        self._lock = asyncio.Lock()
        self._said_no_player = False

    async def say(self, text: str, language: str, *, event: str | None = None) -> None:
        pattern = PATTERNS.get(event or "due", PATTERNS["due"])
        async with self._lock:
            self._count += 1
            path = self.folder / f"{self._count:04d}-tone-{event or 'due'}.wav"
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                await asyncio.to_thread(pattern.render, path)
            except OSError as exc:
                log.warning("tone for %r not rendered: %s: %s", text, path, exc.strerror or exc)
                return
            self.utterances.append(Utterance(text, language, event, path))
            if not self.player:
                if not self._said_no_player:
                    log.warning("no %s: tone patterns go to %s but are not played", APLAY[0], self.folder)
                    self._said_no_player = True
                return
            problem = await run_engine([*self.player, str(path)], "", timeout_s=SAY_TIMEOUT_S)
        if problem is not None:
            log.warning("tone for %r: %s", text, problem)
