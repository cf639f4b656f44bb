"""Reading and writing the hub's WAV files with Python's ``wave`` module (no sox).

:func:`measure_wav` says how long a WAV file is and how loud (the RMS of its samples, 1.0 = full
scale), which is how tests check that a prompt was spoken without listening to it, and how a hub could
check its own voice. :func:`write_samples` writes 16-bit mono PCM (the tone patterns of
:mod:`edge_agent.voice.tones`).
"""

from __future__ import annotations

import math
import sys
import wave
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_agent.voice.errors import VoiceError

FULL_SCALE = 32767


@dataclass(frozen=True, slots=True)
class WavMeasure:
    """How long a WAV file plays and how loud it is: ``rms`` of all samples, 0.0 silent, 1.0 full scale."""

    duration_s: float
    rms: float
    sample_rate: int
    channels: int


def measure_wav(path: Path) -> WavMeasure:
    """Duration and loudness of a 16-bit PCM WAV file; :class:`VoiceError` for anything else."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise VoiceError(f"{path}: {8 * wav.getsampwidth()}-bit samples, expected 16-bit")
            rate, channels, frames = wav.getframerate(), wav.getnchannels(), wav.getnframes()
            samples = array("h", wav.readframes(frames))
    except (OSError, EOFError, wave.Error) as exc:
        raise VoiceError(f"{path}: not a readable WAV file: {exc}") from exc
    if sys.byteorder == "big":  # WAV is little-endian
        samples.byteswap()
    rms = math.sqrt(sum(s * s for s in samples) / len(samples)) / FULL_SCALE if samples else 0.0
    return WavMeasure(duration_s=frames / rate if rate else 0.0, rms=rms, sample_rate=rate, channels=channels)


def write_samples(path: Path, samples: Sequence[float], sample_rate: int) -> Path:
    """Write ``samples`` (-1.0 to 1.0, clipped) as a 16-bit mono PCM WAV file."""
    pcm = array("h", (round(max(-1.0, min(1.0, s)) * FULL_SCALE) for s in samples))
    if sys.byteorder == "big":
        pcm.byteswap()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm.tobytes())
    return path
