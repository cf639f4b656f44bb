"""The hub's prompts: one short text per measurement, event and language, Danish by default."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.voice import DEFAULT_LANGUAGE, EVENTS, LANGUAGES, PromptError, VoiceError, prompt
from fhir_contract.plan import MEASUREMENTS

PER_MEASUREMENT = [event for event in EVENTS if event != "contact"]
ALL_PROMPTS = [
    (event, measurement, language)
    for language in LANGUAGES
    for event in PER_MEASUREMENT
    for measurement in MEASUREMENTS
]


def test_the_issue_s_examples_are_said_word_for_word() -> None:
    assert prompt("due", "blood-pressure", "da") == "Det er tid til at måle blodtryk."
    assert prompt("received", "blood-pressure", "da") == "Blodtryk modtaget, tak."


def test_danish_is_the_default() -> None:
    assert DEFAULT_LANGUAGE == "da"
    assert prompt("due", "weight") == prompt("due", "weight", "da") == "Det er tid til at veje dig."


@pytest.mark.parametrize(("event", "measurement", "language"), ALL_PROMPTS)
def test_every_measurement_has_a_short_plain_prompt_for_every_event(
    event: str, measurement: str, language: str
) -> None:
    text = prompt(event, measurement, language)
    sentences = [s for s in re.split(r"[.!?]\s*", text) if s]
    assert 1 <= len(sentences) <= 2
    assert all(len(sentence.split()) <= 8 for sentence in sentences), text  # short sentences
    assert not re.search(r"[0-9]|\b[A-Z]{2,}\b", text), text  # no numbers or abbreviations to misread
    assert text.endswith(".")


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_prompt_names_its_own_measurement(language: str) -> None:
    for event in PER_MEASUREMENT:
        texts = {prompt(event, measurement, language) for measurement in MEASUREMENTS}
        assert len(texts) == len(MEASUREMENTS)
    for measurement in MEASUREMENTS:
        assert len({prompt(event, measurement, language) for event in PER_MEASUREMENT}) == len(
            PER_MEASUREMENT
        )


def test_the_languages_differ_and_contact_promises_a_call_without_a_measurement() -> None:
    assert prompt("due", "spo2", "da") != prompt("due", "spo2", "en")
    assert "ringer" in prompt("contact", None, "da")
    assert "call" in prompt("contact", language="en")
    assert prompt("contact", "weight", "da") == prompt("contact", None, "da")


@pytest.mark.parametrize(
    ("event", "measurement", "language"),
    [
        ("due", "blood-pressure", "fr"),
        ("shout", "weight", "da"),
        ("due", "heart-rate", "da"),
        ("missed", None, "en"),
    ],
)
def test_what_has_no_prompt_is_a_prompt_error(event: str, measurement: str | None, language: str) -> None:
    with pytest.raises(PromptError) as caught:
        prompt(event, measurement, language)
    assert isinstance(caught.value, VoiceError)
    assert isinstance(caught.value, ValueError)


@given(
    event=st.one_of(st.sampled_from(EVENTS), st.text()),
    measurement=st.one_of(st.none(), st.sampled_from(MEASUREMENTS), st.text()),
    language=st.one_of(st.sampled_from(LANGUAGES), st.text()),
)
def test_any_input_gives_a_text_or_a_prompt_error(event: str, measurement: str | None, language: str) -> None:
    try:
        text = prompt(event, measurement, language)
    except PromptError:
        return
    assert text.strip()
