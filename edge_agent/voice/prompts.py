"""What the hub says to the patient, in Danish (the default) and English.

One short sentence or two per measurement of the plan (:data:`fhir_contract.plan.MEASUREMENTS`) and event:

- ``due``: a measurement of the plan is due ("Det er tid til at måle blodtryk.");
- ``received``: a reading of it arrived ("Blodtryk modtaget, tak.");
- ``missed``: its grace passed without one, said gently, never as a reproach;
- ``contact``: the patient asked to reach a person; someone will call (no measurement).

The texts are for old people who hear them from a small loudspeaker: short sentences, everyday words,
the measurement named the way they would name it ("vægt", not "kropsvægt"), no numbers or abbreviations
that a speech engine reads oddly. Pure data and one function; who says it, when, and whether the quiet
hours allow it is decided elsewhere (``edge_agent.reminders``).
"""

from __future__ import annotations

from typing import Final

from edge_agent.voice.errors import VoiceError
from fhir_contract.plan import MEASUREMENTS

#: The languages the hub speaks; the first is the default.
LANGUAGES: Final = ("da", "en")
DEFAULT_LANGUAGE: Final = "da"
#: The events that have a prompt. ``contact`` names no measurement.
EVENTS: Final = ("due", "received", "missed", "contact")

# (language, event, measurement) -> text. Danish gender decides "dit"/"din": et blodtryk, et
# blodsukker; en iltmætning, en vægt, en temperatur. Weight is "veje sig", not "måle vægt".
_MEASUREMENT_PROMPTS: Final[dict[tuple[str, str, str], str]] = {
    ("da", "due", "blood-pressure"): "Det er tid til at måle blodtryk.",
    ("da", "due", "spo2"): "Det er tid til at måle iltmætning.",
    ("da", "due", "weight"): "Det er tid til at veje dig.",
    ("da", "due", "temperature"): "Det er tid til at måle temperatur.",
    ("da", "due", "glucose"): "Det er tid til at måle blodsukker.",
    ("da", "received", "blood-pressure"): "Blodtryk modtaget, tak.",
    ("da", "received", "spo2"): "Iltmætning modtaget, tak.",
    ("da", "received", "weight"): "Vægt modtaget, tak.",
    ("da", "received", "temperature"): "Temperatur modtaget, tak.",
    ("da", "received", "glucose"): "Blodsukker modtaget, tak.",
    ("da", "missed", "blood-pressure"): "Vi mangler stadig dit blodtryk. Mål det gerne, når du kan.",
    ("da", "missed", "spo2"): "Vi mangler stadig din iltmætning. Mål den gerne, når du kan.",
    ("da", "missed", "weight"): "Vi mangler stadig din vægt. Vej dig gerne, når du kan.",
    ("da", "missed", "temperature"): "Vi mangler stadig din temperatur. Mål den gerne, når du kan.",
    ("da", "missed", "glucose"): "Vi mangler stadig dit blodsukker. Mål det gerne, når du kan.",
    ("en", "due", "blood-pressure"): "It is time to measure your blood pressure.",
    ("en", "due", "spo2"): "It is time to measure your oxygen level.",
    ("en", "due", "weight"): "It is time to weigh yourself.",
    ("en", "due", "temperature"): "It is time to take your temperature.",
    ("en", "due", "glucose"): "It is time to measure your blood sugar.",
    ("en", "received", "blood-pressure"): "Blood pressure received. Thank you.",
    ("en", "received", "spo2"): "Oxygen level received. Thank you.",
    ("en", "received", "weight"): "Weight received. Thank you.",
    ("en", "received", "temperature"): "Temperature received. Thank you.",
    ("en", "received", "glucose"): "Blood sugar received. Thank you.",
    ("en", "missed", "blood-pressure"): "We still need your blood pressure. Please measure it when you can.",
    ("en", "missed", "spo2"): "We still need your oxygen level. Please measure it when you can.",
    ("en", "missed", "weight"): "We still need your weight. Please weigh yourself when you can.",
    ("en", "missed", "temperature"): "We still need your temperature. Please take it when you can.",
    ("en", "missed", "glucose"): "We still need your blood sugar. Please measure it when you can.",
}

_CONTACT_PROMPTS: Final[dict[str, str]] = {
    "da": "Vi har givet besked. En sygeplejerske ringer til dig snart.",
    "en": "We have passed on your message. A nurse will call you soon.",
}


class PromptError(VoiceError, ValueError):
    """No prompt for this event, measurement or language (a programming or configuration error)."""


def prompt(event: str, measurement: str | None = None, language: str = DEFAULT_LANGUAGE) -> str:
    """The text to say for ``event`` (one of :data:`EVENTS`) about ``measurement`` (one of
    ``MEASUREMENTS``; ``None`` for ``contact``) in ``language`` (one of :data:`LANGUAGES`)."""
    if language not in LANGUAGES:
        raise PromptError(f"no prompts in language {language!r}; one of {', '.join(LANGUAGES)}")
    if event not in EVENTS:
        raise PromptError(f"no prompt for event {event!r}; one of {', '.join(EVENTS)}")
    if event == "contact":
        return _CONTACT_PROMPTS[language]
    if measurement not in MEASUREMENTS:
        raise PromptError(f"no {event!r} prompt for measurement {measurement!r}")
    return _MEASUREMENT_PROMPTS[(language, event, measurement)]
