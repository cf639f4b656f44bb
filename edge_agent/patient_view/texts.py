"""Every word the patient view shows, in Danish (the default) and English: the view's own small table.

The hub has no gettext catalogue (the staff's pages do, on the gateway); the patient view says few
things, and they are kept here as plain data so a translator reads them side by side. The words are for
old people on a tablet or a TV: short sentences, everyday words ("blodtryk", "vægt"), no abbreviations.
The questionnaires' own questions and answers come from the contract (``fhir_contract.questionnaire``),
the reasons for "contact my nurse" from ``fhir_contract.contact.REASONS``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

#: The languages of the view; the first is the default.
LANGUAGES: Final = ("da", "en")

_TEXTS: Final[dict[str, tuple[str, str]]] = {
    # key: (Danish, English)
    "title": ("Min måling", "My measurements"),
    "pin.heading": ("Skriv husstandens kode", "Enter the household code"),
    "pin.label": ("Kode", "Code"),
    "pin.submit": ("Log ind", "Log in"),
    "pin.wrong": ("Koden var forkert. Prøv igen.", "That code was wrong. Please try again."),
    "pin.locked": (
        "For mange forkerte forsøg. Vent {minutes} minutter, og prøv så igen.",
        "Too many wrong tries. Please wait {minutes} minutes and try again.",
    ),
    "who.heading": ("Hvem er du?", "Who are you?"),
    "nav.today": ("I dag", "Today"),
    "nav.trends": ("Mine målinger", "My readings"),
    "nav.messages": ("Beskeder", "Messages"),
    "nav.questionnaire": ("Hvordan har du det?", "How are you feeling?"),
    "nav.contact": ("Kontakt min sygeplejerske", "Contact my nurse"),
    "nav.who_measured": ("Hvem målte?", "Who measured?"),
    "nav.switch": ("Skift person", "Switch person"),
    "nav.logout": ("Log ud", "Log out"),
    "language.switch": ("English", "Dansk"),
    "today.hello": ("Hej {name}", "Hello {name}"),
    "today.hello_anonymous": ("Hej", "Hello"),
    "today.plan": ("Dagens målinger", "Today's measurements"),
    "today.no_plan": ("Du har ingen faste målinger i dag.", "You have no planned measurements today."),
    "today.arrived": ("Modtaget i dag", "Received today"),
    "today.nothing_arrived": ("Ingen målinger modtaget i dag endnu.", "No readings received today yet."),
    "today.received_at": ("{what} modtaget {time}", "{what} received {time}"),
    "state.due": ("Mål nu", "Measure now"),
    "state.done": ("Målt {time}", "Measured {time}"),
    "state.missed": ("Ikke målt", "Not measured"),
    "state.upcoming": ("Senere i dag", "Later today"),
    "today.answered": ("Du har svaret i dag kl. {time}. Tak.", "You answered today at {time}. Thank you."),
    "today.not_answered": ("Du har ikke svaret i dag.", "You have not answered today."),
    "today.one_message": ("Du har en besked fra sygeplejersken.", "You have a message from the nurse."),
    "today.new_messages": (
        "Du har {count} beskeder fra sygeplejersken.",
        "You have {count} messages from the nurse.",
    ),
    "today.pending_readings": (
        "Der er målinger, som vi ikke ved, hvem tog.",
        "There are readings we do not know who took.",
    ),
    "trends.heading": ("Mine målinger de sidste 30 dage", "My readings of the last 30 days"),
    "trends.none": ("Ingen målinger de sidste 30 dage.", "No readings in the last 30 days."),
    "trends.latest": ("Seneste: {value} ({when})", "Latest: {value} ({when})"),
    "trends.range": ("Laveste {low}, højeste {high}", "Lowest {low}, highest {high}"),
    "messages.heading": ("Beskeder fra din sygeplejerske", "Messages from your nurse"),
    "messages.none": ("Du har ingen beskeder.", "You have no messages."),
    "questionnaire.none": (
        "Der er ikke noget spørgeskema til dig.",
        "There is no questionnaire for you.",
    ),
    "questionnaire.start": ("Start", "Start"),
    "questionnaire.intro": (
        "{count} korte spørgsmål. Tryk på det svar, der passer bedst.",
        "{count} short questions. Press the answer that fits best.",
    ),
    "questionnaire.progress": ("Spørgsmål {number} af {count}", "Question {number} of {count}"),
    "questionnaire.back": ("Tilbage", "Back"),
    "questionnaire.sent": (
        "Tak for dine svar. De er sendt til din sygeplejerske.",
        "Thank you for your answers. They have been sent to your nurse.",
    ),
    "contact.heading": ("Kontakt min sygeplejerske", "Contact my nurse"),
    "contact.intro": (
        "Tryk på den store knap. Du kan også sige hvorfor.",
        "Press the big button. You may also say why.",
    ),
    "contact.button": ("Ring mig op", "Please call me"),
    "contact.sent": ("Din sygeplejerske har fået besked.", "Your nurse has been told."),
    "contact.sent_more": (
        "En sygeplejerske ringer til dig. Ring 112, hvis det haster meget.",
        "A nurse will call you. Call 112 in an emergency.",
    ),
    "who_measured.heading": ("Hvem målte?", "Who measured?"),
    "who_measured.intro": (
        "Disse målinger kom fra et fælles apparat, og vi ved ikke, hvem der målte. Var det dig?",
        "These readings came from a shared device, and we do not know who measured. Was it you?",
    ),
    "who_measured.none": ("Der er ingen målinger at sortere.", "There are no readings to sort."),
    "who_measured.mine": ("Det var mig", "It was me"),
    "who_measured.claimed": ("Tak. Målingen er gemt som din.", "Thank you. The reading is saved as yours."),
    "error.busy": (
        "Det lykkedes ikke lige nu. Prøv igen om lidt.",
        "That did not work just now. Please try again in a moment.",
    ),
    "back_home": ("Til forsiden", "Back to the start"),
    # What arrived, as the patient names it.
    "m.blood-pressure": ("Blodtryk", "Blood pressure"),
    "m.pulse": ("Puls", "Pulse"),
    "m.spo2": ("Iltmætning", "Oxygen level"),
    "m.weight": ("Vægt", "Weight"),
    "m.temperature": ("Temperatur", "Temperature"),
    "m.glucose": ("Blodsukker", "Blood sugar"),
}

_WEEKDAYS: Final = {
    "da": ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_MONTHS: Final = {
    "da": ("jan.", "feb.", "mar.", "apr.", "maj", "jun.", "jul.", "aug.", "sep.", "okt.", "nov.", "dec."),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}


def text(key: str, language: str, **values: object) -> str:
    """The text ``key`` in ``language`` (Danish for any other), with ``{name}`` fields filled in."""
    danish, english = _TEXTS[key]
    chosen = english if language == "en" else danish
    return chosen.format(**values) if values else chosen


def keys() -> frozenset[str]:
    return frozenset(_TEXTS)


def number(value: float, language: str) -> str:
    """A measured number as people read it: ``78,4`` in Danish (decimal comma), ``78.4`` in English."""
    shown = f"{value:g}"
    return shown if language == "en" else shown.replace(".", ",")


def clock(at: datetime, language: str) -> str:
    """A time of day as people read it: ``08.14`` in Danish, ``08:14`` in English."""
    return at.strftime("%H.%M" if language != "en" else "%H:%M")


def day(at: datetime, language: str) -> str:
    """A date with its weekday: ``torsdag 3. dec.`` / ``Thursday 3 Dec``."""
    lang = "en" if language == "en" else "da"
    weekday, month = _WEEKDAYS[lang][at.weekday()], _MONTHS[lang][at.month - 1]
    return f"{weekday} {at.day}. {month}" if lang == "da" else f"{weekday} {at.day} {month}"


def short_day(at: datetime, language: str) -> str:
    """A date without weekday: ``3. dec.`` / ``3 Dec``."""
    lang = "en" if language == "en" else "da"
    month = _MONTHS[lang][at.month - 1]
    return f"{at.day}. {month}" if lang == "da" else f"{at.day} {month}"
