"""The hub's voice: spoken prompts for patients who use no screen.

``await speaker.say(prompt("due", "blood-pressure", "da"), "da", event="due")`` says "Det er tid til at
måle blodtryk." on the hub's loudspeaker (:class:`EspeakSpeaker`, Debian's ``espeak-ng``, no cloud), or
renders it to a WAV file (:class:`WavSpeaker`, for tests and hubs without audio), or plays a short tone
pattern for that event (:class:`ToneSpeaker`, for patients who prefer a sound). A speaker never raises
into the hub. :class:`QuietHours` says when the hub keeps quiet. When to say what (a measurement due,
received, missed) is ``edge_agent.reminders``'s business, not this package's.
"""

from edge_agent.voice.errors import VoiceError
from edge_agent.voice.prompts import DEFAULT_LANGUAGE, EVENTS, LANGUAGES, PromptError, prompt
from edge_agent.voice.quiet_hours import QuietHours
from edge_agent.voice.speaker import (
    ESPEAK,
    EspeakSpeaker,
    Speaker,
    Utterance,
    WavSpeaker,
    find_espeak,
    render_wav,
)
from edge_agent.voice.tones import PATTERNS, SoundPattern, Tone, ToneSpeaker
from edge_agent.voice.wav import WavMeasure, measure_wav

__all__ = [
    "DEFAULT_LANGUAGE",
    "ESPEAK",
    "EVENTS",
    "LANGUAGES",
    "PATTERNS",
    "EspeakSpeaker",
    "PromptError",
    "QuietHours",
    "SoundPattern",
    "Speaker",
    "Tone",
    "ToneSpeaker",
    "Utterance",
    "VoiceError",
    "WavMeasure",
    "WavSpeaker",
    "find_espeak",
    "measure_wav",
    "prompt",
    "render_wav",
]
