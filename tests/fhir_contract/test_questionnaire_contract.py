"""``fhir_contract.questionnaire``: the daily symptom checks (``fhir/questionnaires/``), the
QuestionnaireResponse the hub builds, and the gateway's check of one that arrives.

Proves: the data is valid FHIR R4 (fhir.resources R4B) and says everything in Danish and English, each
answer an option of the local CodeSystem with the CodeSystem's own words; every combination of answers
builds a response that fhir.resources and the contract accept, with the answers read back as given;
every way a response can break the contract (an answer that is no option, a required item missing, an
unknown questionnaire or version, a time beyond the clock skew, ...) is refused with its code; and no
input whatever gets anything out of the validator but a ContractViolation or a ValidResponse.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.questionnaire import Questionnaire as FhirQuestionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_contract.limits import MAX_CLOCK_AHEAD
from fhir_contract.questionnaire import (
    ANSWER_SYSTEM,
    INVALID_ANSWER,
    UNKNOWN_QUESTIONNAIRE,
    Questionnaire,
    answer_codes,
    build_response,
    current,
    find_questionnaire,
    parse_questionnaire,
    questionnaires,
    questionnaires_dir,
    response_identifier,
    validate_response,
)
from fhir_contract.validate import ContractViolation

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
KEYS = ("heart-failure-daily", "copd-daily")
FHIR_IDS = st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)


def _answers(q: Questionnaire, pick: int = 0) -> dict[str, str]:
    return {question.link_id: question.options[pick % len(question.options)].code for question in q.questions}


def _valid(key: str = "heart-failure-daily", **changes: Any) -> dict[str, Any]:
    q = current(key)
    return build_response(q, _answers(q), patient_id="p1", hub_id="hub1", authored=NOW) | changes


def _refused(resource: Any) -> str:
    with pytest.raises(ContractViolation) as refused:
        validate_response(resource, now=NOW)
    return refused.value.code


# --- the data ----------------------------------------------------------------------------------------


def test_the_files_are_valid_r4_and_the_two_checks_are_short() -> None:
    for path in questionnaires_dir().glob("Questionnaire-*.json"):
        FhirQuestionnaire.model_validate(json.loads(path.read_text(encoding="utf-8")))
    CodeSystem.model_validate(
        json.loads((questionnaires_dir() / "CodeSystem-symptom-answer.json").read_text(encoding="utf-8"))
    )
    found = {q.key: q for q in questionnaires().values()}
    assert set(found) == set(KEYS)
    assert (found["heart-failure-daily"].condition, found["copd-daily"].condition) == (
        "heart-failure",
        "copd",
    )
    for q in found.values():
        assert 4 <= len(q.questions) <= 6, q.key
        assert q.url == f"http://homewatch.example/fhir/Questionnaire/{q.key}" and q.version == "1"
        # Large buttons: a few answers each.
        assert all(2 <= len(question.options) <= 3 for question in q.questions)
    assert {"breathlessness", "ankle-swelling", "weight-gain", "orthopnoea", "overall"} == {
        question.link_id for question in found["heart-failure-daily"].questions
    }
    assert {"breathlessness", "cough", "phlegm-amount", "phlegm-colour", "sleep", "overall"} == {
        question.link_id for question in found["copd-daily"].questions
    }


def test_every_answer_is_a_code_of_the_codesystem_in_its_own_words_in_both_languages() -> None:
    codes = answer_codes()
    for q in questionnaires().values():
        assert q.title.da != q.title.en
        for question in q.questions:
            assert question.text.da and question.text.en and question.text.da != question.text.en
            for option in question.options:
                assert option.text == codes[option.code], (q.key, question.link_id, option.code)
                assert 0 <= option.ordinal <= 2
            # Each item can say "worse" and "fine".
            assert {o.ordinal for o in question.options} >= {0, 2}


def test_the_english_is_a_translation_extension_on_the_danish_text() -> None:
    q = current("copd-daily")
    item = q.resource["item"][0]
    assert q.resource["language"] == "da"
    [extension] = item["_text"]["extension"]
    assert extension["url"] == "http://hl7.org/fhir/StructureDefinition/translation"
    assert {part["url"]: part for part in extension["extension"]}["lang"]["valueCode"] == "en"
    assert (
        q.questions[0].text.in_language("en") == "How is your breathlessness today compared with yesterday?"
    )
    assert q.questions[0].text.in_language("da") == "Hvordan er din åndenød i dag i forhold til i går?"


def test_a_questionnaire_without_english_or_with_free_text_items_is_not_the_contracts() -> None:
    resource = copy.deepcopy(current("heart-failure-daily").resource)
    del resource["item"][1]["_text"]
    with pytest.raises(ValueError, match="ankle-swelling: text needs"):
        parse_questionnaire(resource)
    resource = copy.deepcopy(current("heart-failure-daily").resource)
    resource["item"][0]["type"] = "string"
    with pytest.raises(ValueError, match="single-answer choices"):
        parse_questionnaire(resource)


# --- building and reading back -------------------------------------------------------------------------


@st.composite
def answered(draw: st.DrawFn) -> tuple[Questionnaire, dict[str, str]]:
    q = current(draw(st.sampled_from(KEYS)))
    return q, {
        question.link_id: draw(st.sampled_from([o.code for o in question.options]))
        for question in q.questions
    }


@settings(max_examples=300, deadline=None)
@given(
    answered(),
    FHIR_IDS,
    FHIR_IDS,
    st.datetimes(
        min_value=datetime(2015, 1, 2), max_value=datetime(2026, 12, 7, 9, 39), timezones=st.just(UTC)
    ),
)
def test_every_set_of_answers_builds_a_response_both_checks_accept(
    case: tuple[Questionnaire, dict[str, str]], patient_id: str, hub_id: str, authored: datetime
) -> None:
    q, answers = case
    resource = build_response(q, answers, patient_id=patient_id, hub_id=hub_id, authored=authored)
    QuestionnaireResponse.model_validate(resource)
    valid = validate_response(json.loads(json.dumps(resource)), now=NOW)
    assert valid.answers == answers and list(valid.answers) == [question.link_id for question in q.questions]
    assert (valid.patient_id, valid.source_patient_id, valid.hub_id) == (patient_id, patient_id, hub_id)
    assert valid.questionnaire == q and valid.authored == authored.replace(microsecond=0)
    assert valid.identifier == response_identifier(hub_id, q.key, authored)
    assert resource["questionnaire"] == f"{q.url}|{q.version}" and resource["status"] == "completed"


@settings(max_examples=200, deadline=None)
@given(answered(), st.data())
def test_answers_that_are_not_options_are_refused_when_built(
    case: tuple[Questionnaire, dict[str, str]], data: st.DataObject
) -> None:
    q, answers = case
    link_id = data.draw(st.sampled_from([question.link_id for question in q.questions]))
    options = {o.code for o in q.question(link_id).options}  # type: ignore[union-attr]
    answers[link_id] = data.draw(st.text(max_size=20).filter(lambda code: code not in options))
    with pytest.raises(ContractViolation) as refused:
        build_response(q, answers, patient_id="p1", hub_id="hub1", authored=NOW)
    assert refused.value.code == INVALID_ANSWER


def test_the_identifier_is_one_per_hub_questionnaire_and_second() -> None:
    at = NOW.replace(microsecond=123)
    same = response_identifier("hub1", "copd-daily", at)
    assert same == response_identifier("hub1", "copd-daily", NOW.replace(microsecond=999_999))
    assert same == "hub1-copd-daily-849951000"
    assert same != response_identifier("hub2", "copd-daily", at)
    assert same != response_identifier("hub1", "heart-failure-daily", at)
    assert same != response_identifier("hub1", "copd-daily", at + timedelta(seconds=1))


def test_the_danish_words_are_sent_with_the_codes() -> None:
    resource = _valid()
    first = resource["item"][0]
    assert first["text"] == "Hvordan er din åndenød i dag i forhold til i går?"
    assert first["answer"] == [
        {"valueCoding": {"system": ANSWER_SYSTEM, "code": "better", "display": "Bedre"}}
    ]
    assert resource["author"] == {"reference": "Device/hub1"}
    assert resource["source"] == resource["subject"] == {"reference": "Patient/p1"}


# --- refusals -------------------------------------------------------------------------------------------


def _item(resource: dict[str, Any], link_id: str) -> dict[str, Any]:
    return next(item for item in resource["item"] if item["linkId"] == link_id)


def _set_answer(resource: dict[str, Any], link_id: str, coding: dict[str, Any]) -> dict[str, Any]:
    _item(resource, link_id)["answer"] = [{"valueCoding": coding}]
    return resource


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda r: _set_answer(r, "overall", {"system": ANSWER_SYSTEM, "code": "worse"}), INVALID_ANSWER),
        (lambda r: _set_answer(r, "overall", {"system": "urn:other", "code": "good"}), INVALID_ANSWER),
        (lambda r: _set_answer(r, "overall", {"system": ANSWER_SYSTEM}), INVALID_ANSWER),
        (lambda r: _item(r, "overall").update(answer=[{"valueString": "godt"}]) or r, INVALID_ANSWER),
        (lambda r: _item(r, "overall").update(answer=_item(r, "overall")["answer"] * 2) or r, INVALID_ANSWER),
        (lambda r: _item(r, "overall").pop("answer") and r, INVALID_ANSWER),
        (lambda r: r.update(item=[*r["item"], r["item"][0]]) or r, INVALID_ANSWER),
        (
            lambda r: r["item"].append({"linkId": "pain", "answer": r["item"][0]["answer"]}) or r,
            INVALID_ANSWER,
        ),
        (lambda r: _item(r, "overall").update(item=[{"linkId": "x"}]) or r, INVALID_ANSWER),
        (lambda r: r.update(item=r["item"][:-1]) or r, "missing-element"),
        (lambda r: r.pop("item") and r, "missing-element"),
        (
            lambda r: r.update(questionnaire=r["questionnaire"].replace("|1", "|2")) or r,
            UNKNOWN_QUESTIONNAIRE,
        ),
        (lambda r: r.update(questionnaire=r["questionnaire"].split("|")[0]) or r, UNKNOWN_QUESTIONNAIRE),
        (
            lambda r: r.update(questionnaire="http://example.org/Questionnaire/phq9|1") or r,
            UNKNOWN_QUESTIONNAIRE,
        ),
        (lambda r: r.update(status="in-progress") or r, "invalid-fhir"),
        (lambda r: r.update(status="bogus") or r, "invalid-fhir"),
        (lambda r: r.pop("identifier") and r, "missing-element"),
        (lambda r: r["identifier"].update(system="urn:homewatch:observation") or r, "missing-element"),
        (lambda r: r["identifier"].update(value="a b") or r, "invalid-fhir"),
        (lambda r: r.update(subject={"reference": "Group/g1"}) or r, "missing-element"),
        (lambda r: r.pop("subject") and r, "missing-element"),
        (lambda r: r.update(source={"reference": "RelatedPerson/r1"}) or r, "missing-element"),
        (lambda r: r.update(author={"reference": "Practitioner/x"}) or r, "missing-element"),
        (
            lambda r: r.update(authored="2026-12-07T09:30:00") or r,
            "invalid-fhir",
        ),  # FHIR: a time needs a zone
        (lambda r: r.pop("authored") and r, "missing-element"),
        (lambda r: r.update(authored="2014-12-31T23:59:59+00:00") or r, "implausible-time"),
        (lambda r: r.update(authored="9999-12-31T23:59:59-14:00") or r, "implausible-time"),
        (lambda r: r.update(authored="tomorrow") or r, "invalid-fhir"),
        (lambda r: r.update(unknownElement=1) or r, "invalid-fhir"),
        (lambda r: {**r, "resourceType": "Observation"}, "invalid-fhir"),
    ],
)
def test_a_response_that_breaks_the_contract_is_refused_with_its_code(mutate: Any, code: str) -> None:
    assert _refused(mutate(_valid())) == code


def test_authored_may_be_ahead_of_the_gateway_by_the_clock_skew_and_no_more() -> None:
    q = current("copd-daily")

    def at(moment: datetime) -> dict[str, Any]:
        return build_response(q, _answers(q, 1), patient_id="p1", hub_id="hub1", authored=moment)

    assert validate_response(at(NOW + MAX_CLOCK_AHEAD), now=NOW).authored == NOW + MAX_CLOCK_AHEAD
    assert _refused(at(NOW + MAX_CLOCK_AHEAD + timedelta(seconds=1))) == "implausible-time"


def test_an_optional_item_may_be_left_out_but_not_answered_wrongly() -> None:
    resource = copy.deepcopy(current("copd-daily").resource)
    resource["item"][3]["required"] = False  # phlegm colour
    optional = parse_questionnaire(resource)
    answers = _answers(optional)
    del answers["phlegm-colour"]
    built = build_response(optional, answers, patient_id="p1", hub_id="hub1", authored=NOW)
    assert [item["linkId"] for item in built["item"]] == [
        "breathlessness",
        "cough",
        "phlegm-amount",
        "sleep",
        "overall",
    ]
    # Against the real questionnaire, the same response lacks a required item.
    assert _refused(built) == "missing-element"
    assert find_questionnaire(optional.canonical) is not None  # same canonical: the file's


# --- anything at all ------------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(KEYS), st.data())
def test_a_mutated_response_is_refused_or_accepted_and_nothing_else(key: str, data: st.DataObject) -> None:
    resource = _valid(key)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(resource)[1:]))
        parent = resource
        for step in path[:-1]:
            parent = parent[step]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(JSON)
    try:
        valid = validate_response(resource, now=NOW)
    except ContractViolation as refused:
        assert refused.code in {
            "invalid-fhir",
            "missing-element",
            "implausible-time",
            INVALID_ANSWER,
            UNKNOWN_QUESTIONNAIRE,
        }
        return
    # Accepted: then it is valid FHIR, and every answer is an option of its item.
    QuestionnaireResponse.model_validate(resource)
    for link_id, code in valid.answers.items():
        assert valid.questionnaire.question(link_id).option(code) is not None  # type: ignore[union-attr]


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_any_json_is_refused_with_a_code(value: Any) -> None:
    with pytest.raises(ContractViolation):
        validate_response(value, now=NOW)
    if isinstance(value, dict):
        with pytest.raises(ContractViolation):
            validate_response({**value, "resourceType": "QuestionnaireResponse"}, now=NOW)
