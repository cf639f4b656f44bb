"""Saying a prompt aloud: the :class:`Speaker` interface and its engines on Debian's ``espeak-ng``.

- :class:`EspeakSpeaker` speaks through the hub's default audio device (``espeak-ng -v da``; ALSA or
  PulseAudio, whichever espeak-ng's audio library finds);
- :class:`WavSpeaker` renders each utterance to a WAV file in a folder instead (``espeak-ng -w``), for
  tests and for hubs without a loudspeaker, and records what it said and where;
- :func:`render_wav` renders one text to one file and raises :class:`VoiceError` when it cannot (for
  tests and tools, not for the hub's loop).

``espeak-ng`` runs as an asyncio subprocess, the text on its standard input (so no text can ever be
taken for an option), so the hub's event loop never waits for speech; one utterance at a time per
speaker, so two prompts never talk over each other. A speaker never raises into the hub: a missing
engine is said once in the log, a failing one is logged each time, and the hub carries on. Everything
behind one small interface so that another engine (a neural Danish voice) can replace espeak-ng later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from edge_agent.voice.errors import VoiceError

log = logging.getLogger(__name__)

ESPEAK: Final = "espeak-ng"
#: espeak-ng's voice for each language the hub speaks (``espeak-ng --voices=da`` lists ``da``).
VOICES: Final = {"da": "da", "en": "en"}
#: Words per minute. espeak-ng's default of 175 is brisk for old ears; 145 is calm but not dragging.
WORDS_PER_MINUTE: Final = 145
#: A prompt takes 2 to 5 s to say; an engine stuck on a hung audio device is killed after this long so
#: that the next prompt is not held up for ever.
SAY_TIMEOUT_S: Final = 30.0
INSTALL_HINT: Final = "Debian: apt-get install espeak-ng"


class Speaker(Protocol):
    """Says a text aloud, or whatever stands for that on this hub.

    ``await speaker.say(text, language, event=...)`` returns when the utterance is over. It never
    raises (a failure is logged); ``language`` is one of ``prompts.LANGUAGES``; ``event`` (one of
    ``prompts.EVENTS``, optional) says what the text is about, for engines that play a sound instead
    of words (:class:`~edge_agent.voice.tones.ToneSpeaker`); speech engines ignore it.
    """

    async def say(self, text: str, language: str, *, event: str | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class Utterance:
    """One thing a :class:`WavSpeaker` (or ``ToneSpeaker``) said, and the WAV file it is in."""

    text: str
    language: str
    event: str | None
    path: Path


def find_espeak() -> str | None:
    """The ``espeak-ng`` executable on the PATH, or None."""
    return shutil.which(ESPEAK)


def espeak_command(
    executable: str, language: str, *, words_per_minute: int = WORDS_PER_MINUTE, wav: Path | None = None
) -> list[str]:
    """The command line that says (or, with ``wav``, renders) the text read from standard input."""
    voice = VOICES.get(language)
    if voice is None:
        raise VoiceError(f"no voice for language {language!r}; one of {', '.join(VOICES)}")
    # -b 1: the input is UTF-8 whatever the locale ("måle"); --stdin: the text is never an argument.
    command = [executable, "-v", voice, "-s", str(words_per_minute), "-b", "1"]
    if wav is not None:
        command += ["-w", str(wav)]
    return [*command, "--stdin"]


def render_wav(
    text: str,
    language: str,
    path: Path,
    *,
    executable: str | None = None,
    words_per_minute: int = WORDS_PER_MINUTE,
) -> Path:
    """Render ``text`` spoken in ``language`` to the WAV file ``path``; :class:`VoiceError` when it
    cannot (no engine, unknown language, the engine failed or wrote nothing)."""
    engine = executable or find_espeak()
    if engine is None:
        raise VoiceError(f"{ESPEAK} is not installed ({INSTALL_HINT})")
    command = espeak_command(engine, language, words_per_minute=words_per_minute, wav=path)
    try:
        done = subprocess.run(
            command, input=text.encode(), capture_output=True, timeout=SAY_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VoiceError(f"{engine}: {exc}") from exc
    if done.returncode != 0 or not path.is_file() or path.stat().st_size == 0:
        raise VoiceError(f"{engine} exited with {done.returncode}: {_last_line(done.stderr)}")
    return path


async def run_engine(command: list[str], text: str, *, timeout_s: float = SAY_TIMEOUT_S) -> str | None:
    """Run a speech or sound command with ``text`` on its standard input, without blocking the loop.

    Returns None when it went well, else the reason (never raises, except ``CancelledError``; a
    command that outlives ``timeout_s`` or is cancelled is killed). A command that exits 0 but
    complains on standard error (espeak-ng does so when the hub has no audio device) returns the
    complaint.
    """
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        return f"cannot start {command[0]}: {exc.strerror or exc}"
    try:
        _, stderr = await asyncio.wait_for(process.communicate(text.encode()), timeout_s)
    except TimeoutError:
        await _kill(process)
        return f"{command[0]} took longer than {timeout_s:g} s and was stopped"
    except BaseException:
        await _kill(process)
        raise
    if process.returncode != 0:
        return f"{command[0]} exited with {process.returncode}: {_last_line(stderr)}"
    if stderr.strip():
        return f"{command[0]} complained (no audio device?): {_last_line(stderr)}"
    return None


async def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(process.wait())


def _last_line(stderr: bytes) -> str:
    lines = stderr.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "(nothing on standard error)"


class _EspeakEngine:
    """What both espeak-ng speakers share: finding the engine, one utterance at a time, logging."""

    def __init__(self, executable: str | None, words_per_minute: int, timeout_s: float) -> None:
        # An explicit path that is not an executable counts as missing, like no espeak-ng on the PATH.
        self.executable = shutil.which(executable) if executable is not None else find_espeak()
        self._wanted = executable or ESPEAK
        self.words_per_minute = words_per_minute
        self.timeout_s = timeout_s
        self._lock = asyncio.Lock()
        self._said_missing = False

    def _command(self, language: str, wav: Path | None = None) -> list[str] | None:
        """The command, or None (logged) when there is no engine or no voice for ``language``."""
        if self.executable is None:
            if not self._said_missing:
                log.warning("%s is not installed, prompts are not spoken (%s)", self._wanted, INSTALL_HINT)
                self._said_missing = True
            return None
        try:
            return espeak_command(self.executable, language, words_per_minute=self.words_per_minute, wav=wav)
        except VoiceError as exc:
            log.warning("voice prompt not spoken: %s", exc.reason)
            return None


class EspeakSpeaker(_EspeakEngine):
    """Speaks through the hub's default audio device with ``espeak-ng``."""

    def __init__(
        self,
        executable: str | None = None,
        *,
        words_per_minute: int = WORDS_PER_MINUTE,
        timeout_s: float = SAY_TIMEOUT_S,
    ) -> None:
        super().__init__(executable, words_per_minute, timeout_s)

    async def say(self, text: str, language: str, *, event: str | None = None) -> None:
        command = self._command(language)
        if command is None:
            return
        async with self._lock:
            problem = await run_engine(command, text, timeout_s=self.timeout_s)
        if problem is not None:
            log.warning("voice prompt %r: %s", text, problem)


class WavSpeaker(_EspeakEngine):
    """Renders each utterance to a WAV file in ``folder`` (``0001-da-due.wav``, ...) with ``espeak-ng
    -w`` instead of playing it; :attr:`utterances` lists what was rendered, in order.

    A file appears complete or not at all (rendered under a temporary name, then renamed), so whoever
    watches the folder never reads half an utterance. A failed rendering is logged and not recorded.
    """

    def __init__(
        self,
        folder: Path,
        executable: str | None = None,
        *,
        words_per_minute: int = WORDS_PER_MINUTE,
        timeout_s: float = SAY_TIMEOUT_S,
    ) -> None:
        super().__init__(executable, words_per_minute, timeout_s)
        self.folder = folder
        self.utterances: list[Utterance] = []
        self._count = 0

    @property
    def paths(self) -> list[Path]:
        """The WAV files rendered so far, in order."""
        return [utterance.path for utterance in self.utterances]

    async def say(self, text: str, language: str, *, event: str | None = None) -> None:
        async with self._lock:
            self._count += 1
            path = self.folder / f"{self._count:04d}-{language}-{event or 'speech'}.wav"
            partial = path.with_suffix(".wav.part")
            command = self._command(language, wav=partial)
            if command is None:
                return
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                log.warning("voice prompt %r not rendered: %s: %s", text, self.folder, exc.strerror)
                return
            try:
                problem = await run_engine(command, text, timeout_s=self.timeout_s)
                if problem is None and partial.is_file() and partial.stat().st_size > 0:
                    os.replace(partial, path)
                    self.utterances.append(Utterance(text, language, event, path))
                    return
            finally:  # failed, timed out or cancelled: no half-written file stays behind
                partial.unlink(missing_ok=True)
        log.warning("voice prompt %r not rendered: %s", text, problem or f"{ESPEAK} wrote nothing")
