"""The daily symptom checks of the contract (``fhir/questionnaires/``): load them, build a patient's
answers as a FHIR R4 QuestionnaireResponse, and check one that arrives.

The Questionnaires are data. Each is written in Danish (``Questionnaire.language = da``) with the
English text in the standard ``translation`` extension on the element's primitive (``_text``,
``_title``, ``_display``): one resource carries both languages, and a FHIR tool that knows neither
extension still shows the Danish. Every item is a ``choice`` answered by one coding of the local
CodeSystem ``fhir/questionnaires/CodeSystem-symptom-answer.json`` (English displays, Danish
designations), so the hub can offer each answer as one large button; each option carries the
standard ``ordinalValue`` extension (0 = fine, 1 = in between, 2 = worse or present:
``WORSE_ORDINAL``), which orders the answers for the nurse's page and for the models.

A Questionnaire is named by its canonical ``url|version``. A new version is a new file beside the
old one (a hub may still send answers to the old one), never an edit of a published one.

Pure: no I/O but reading the contract's files once. The hub builds with ``build_response``; the
gateway checks with ``validate_response`` (fhir.resources R4B for the structure, then the contract's
rules on the dict), which raises ``fhir_contract.validate.ContractViolation`` with a stable code, as
Observations do. Who may send a response for which patient is left to the gateway
(``gateway.ingest.processing``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import ValidationError

from fhir_contract.limits import (
    EFFECTIVE_FLOOR,
    IDENTIFIER_VALUE,
    MAX_CLOCK_AHEAD,
    MAX_IDENTIFIER_CHARS,
    is_fhir_id,
)
from fhir_contract.terminology import contract_dir
from fhir_contract.validate import ContractViolation

FhirJson = dict[str, Any]

LANGUAGES = ("da", "en")
"""The languages every text of a Questionnaire has: its own (Danish) and the translations."""
TRANSLATION_EXTENSION = "http://hl7.org/fhir/StructureDefinition/translation"
ORDINAL_EXTENSION = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
ANSWER_SYSTEM = "http://homewatch.example/fhir/CodeSystem/symptom-answer"
RESPONSE_IDENTIFIER_SYSTEM = "urn:homewatch:questionnaire-response"
COMPLETED = "completed"
WORSE_ORDINAL = 2
"""An answer whose ordinalValue reaches this says the symptom is worse, or present: the nurse's page
marks it."""

# Rejection codes of this module beside the contract's own (invalid-fhir, missing-element,
# implausible-time, which mean here what they mean for an Observation).
UNKNOWN_QUESTIONNAIRE = "unknown-questionnaire"
INVALID_ANSWER = "invalid-answer"

_EPOCH_2000 = datetime(2000, 1, 1, tzinfo=UTC)
# SNOMED CT focus of a Questionnaire (its useContext) -> the patient condition it is meant for
# (``patients.conditions``, models.cohort.profiles.Condition).
_SNOMED = "http://snomed.info/sct"
_CONDITIONS = {"84114007": "heart-failure", "13645005": "copd"}


@dataclass(frozen=True, slots=True)
class Texts:
    """One text in every language of ``LANGUAGES``."""

    da: str
    en: str

    def in_language(self, language: str) -> str:
        """The text in ``language``; Danish (the Questionnaires' own) for any other."""
        return self.en if language == "en" else self.da


@dataclass(frozen=True, slots=True)
class AnswerOption:
    code: str
    text: Texts
    ordinal: int  # 0 fine .. WORSE_ORDINAL worse or present

    @property
    def worse(self) -> bool:
        return self.ordinal >= WORSE_ORDINAL


@dataclass(frozen=True, slots=True)
class Question:
    link_id: str
    text: Texts
    required: bool
    options: tuple[AnswerOption, ...]

    def option(self, code: str) -> AnswerOption | None:
        return next((o for o in self.options if o.code == code), None)


@dataclass(frozen=True, slots=True)
class Questionnaire:
    """A Questionnaire of the contract as both sides use it; ``resource`` is the FHIR JSON."""

    key: str  # Questionnaire.id, e.g. "heart-failure-daily"
    url: str
    version: str
    title: Texts
    condition: str | None  # the patient condition it is for ("heart-failure", "copd")
    questions: tuple[Question, ...]
    resource: FhirJson

    @property
    def canonical(self) -> str:
        """``url|version``: what ``QuestionnaireResponse.questionnaire`` names."""
        return f"{self.url}|{self.version}"

    def question(self, link_id: str) -> Question | None:
        return next((q for q in self.questions if q.link_id == link_id), None)


@dataclass(frozen=True, slots=True)
class ValidResponse:
    """A QuestionnaireResponse that passed the contract, with the fields the gateway authorises and
    stores. ``answers`` maps each answered item's linkId to its code, in the Questionnaire's order."""

    identifier: str
    questionnaire: Questionnaire
    patient_id: str
    source_patient_id: str | None  # who answered (``source`` = Patient/<id>), when sent
    hub_id: str | None  # from ``author`` = Device/<hub>, when sent
    authored: datetime
    answers: dict[str, str]
    resource: FhirJson


# --- loading ------------------------------------------------------------------------------------


def _translation(element: Any, language: str) -> str | None:
    """The ``translation`` extension's content for ``language`` in a primitive's ``_x`` element."""
    extensions = element.get("extension", []) if isinstance(element, dict) else []
    for ext in extensions:
        if ext.get("url") != TRANSLATION_EXTENSION:
            continue
        parts = {part.get("url"): part for part in ext.get("extension", [])}
        if parts.get("lang", {}).get("valueCode") == language:
            content = parts.get("content", {}).get("valueString")
            return content if isinstance(content, str) else None
    return None


def _texts(owner: Mapping[str, Any], name: str, where: str) -> Texts:
    """The Danish ``owner[name]`` and its English translation (both required)."""
    danish, english = owner.get(name), _translation(owner.get(f"_{name}"), "en")
    if not isinstance(danish, str) or english is None:
        raise ValueError(f"{where}: {name} needs Danish text and an English translation extension")
    return Texts(da=danish, en=english)


def _ordinal(coding: Mapping[str, Any], where: str) -> int:
    for ext in coding.get("extension", []):
        if ext.get("url") == ORDINAL_EXTENSION:
            return int(ext["valueDecimal"])
    raise ValueError(f"{where}: answer {coding.get('code')!r} has no ordinalValue extension")


def parse_questionnaire(resource: Mapping[str, Any]) -> Questionnaire:
    """A Questionnaire of the contract's shape (flat ``choice`` items, options of ``ANSWER_SYSTEM``, both
    languages); ValueError naming what is missing otherwise."""
    key = resource.get("id")
    if resource.get("resourceType") != "Questionnaire" or not isinstance(key, str):
        raise ValueError("not a Questionnaire with an id")
    if resource.get("language") != LANGUAGES[0]:
        raise ValueError(f"{key}: the Questionnaire's own language must be {LANGUAGES[0]}")
    questions: list[Question] = []
    for item in resource.get("item", []):
        link_id = item["linkId"]
        where = f"{key}/{link_id}"
        if item.get("type") != "choice" or item.get("repeats") or item.get("item"):
            raise ValueError(f"{where}: items are single-answer choices without sub-items")
        options = []
        for answer in item.get("answerOption", []):
            coding = answer["valueCoding"]
            if coding.get("system") != ANSWER_SYSTEM:
                raise ValueError(f"{where}: answers are codings of {ANSWER_SYSTEM}")
            options.append(
                AnswerOption(coding["code"], _texts(coding, "display", where), _ordinal(coding, where))
            )
        if not options or len({o.code for o in options}) != len(options):
            raise ValueError(f"{where}: an item needs distinct answer options")
        questions.append(
            Question(link_id, _texts(item, "text", where), bool(item.get("required")), tuple(options))
        )
    if not questions or len({q.link_id for q in questions}) != len(questions):
        raise ValueError(f"{key}: a Questionnaire needs items with distinct linkIds")
    condition = None
    for context in resource.get("useContext", []):
        for coding in context.get("valueCodeableConcept", {}).get("coding", []):
            if coding.get("system") == _SNOMED and coding.get("code") in _CONDITIONS:
                condition = _CONDITIONS[coding["code"]]
    return Questionnaire(
        key=key,
        url=resource["url"],
        version=resource["version"],
        title=_texts(resource, "title", key),
        condition=condition,
        questions=tuple(questions),
        resource=dict(resource),
    )


def questionnaires_dir() -> Path:
    return contract_dir() / "questionnaires"


@cache
def questionnaires() -> dict[str, Questionnaire]:
    """Every Questionnaire of the contract (every version), by canonical ``url|version``."""
    found: dict[str, Questionnaire] = {}
    for path in sorted(questionnaires_dir().glob("Questionnaire-*.json")):
        parsed = parse_questionnaire(json.loads(path.read_text(encoding="utf-8")))
        if parsed.canonical in found:
            raise ValueError(f"{path.name}: {parsed.canonical} is defined twice")
        found[parsed.canonical] = parsed
    return found


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (-1, version)


def current(key: str) -> Questionnaire:
    """The newest version of the Questionnaire ``key`` (what a hub asks today); KeyError if none."""
    versions = [q for q in questionnaires().values() if q.key == key]
    if not versions:
        known = sorted({q.key for q in questionnaires().values()})
        raise KeyError(f"no questionnaire {key!r}; known: {', '.join(known)}")
    return max(versions, key=lambda q: _version_order(q.version))


def for_conditions(conditions: Sequence[str]) -> Questionnaire | None:
    """The daily check a patient with ``conditions`` (main condition first) answers: the newest version
    of the first condition's that has one; None when none of them has one."""
    for condition in conditions:
        keys = sorted({q.key for q in questionnaires().values() if q.condition == condition})
        if keys:
            return current(keys[0])
    return None


def find_questionnaire(canonical: str) -> Questionnaire | None:
    """The Questionnaire a response names (``url|version``), or None."""
    return questionnaires().get(canonical)


@cache
def answer_codes() -> dict[str, Texts]:
    """The codes of the answers' CodeSystem with their English display and Danish designation."""
    return code_system_texts("CodeSystem-symptom-answer.json")


def code_system_texts(file_name: str) -> dict[str, Texts]:
    """The codes of a CodeSystem in ``questionnaires_dir()``: English display, Danish designation."""
    data = json.loads((questionnaires_dir() / file_name).read_text(encoding="utf-8"))
    codes: dict[str, Texts] = {}
    for concept in data["concept"]:
        danish = next(d["value"] for d in concept.get("designation", []) if d.get("language") == "da")
        codes[concept["code"]] = Texts(da=danish, en=concept["display"])
    return codes


# --- building (the hub) ---------------------------------------------------------------------------


def response_identifier(hub_id: str, questionnaire_key: str, authored: datetime) -> str:
    """``hub-questionnaire-seconds``: seconds since 2000-01-01 of ``authored`` (aware). One response per
    hub, questionnaire and second, so a response sent again is the same response to the gateway."""
    if authored.tzinfo is None:
        raise ValueError("authored must carry a time zone")
    seconds = int((authored - _EPOCH_2000).total_seconds())
    return f"{hub_id}-{questionnaire_key}-{seconds}"


def build_response(
    questionnaire: Questionnaire,
    answers: Mapping[str, str],
    *,
    patient_id: str,
    hub_id: str,
    authored: datetime,
) -> FhirJson:
    """The QuestionnaireResponse of ``answers`` (linkId -> answer code) given by the patient on the hub.

    ``subject`` and ``source`` are the patient (who answered), ``author`` the hub (which recorded it),
    ``authored`` (aware) the moment of the last answer, to the second. The answers are checked against
    the contract here as the gateway checks them (ContractViolation), so a hub never sends what the
    gateway would refuse.
    """
    if authored.tzinfo is None:
        raise ValueError("authored must carry a time zone")
    moment = authored.astimezone(UTC).replace(microsecond=0)
    items: list[FhirJson] = []
    for question in questionnaire.questions:
        if question.link_id not in answers:
            continue
        option = question.option(answers[question.link_id])
        coding: FhirJson = {"system": ANSWER_SYSTEM, "code": answers[question.link_id]}
        if option is not None:
            coding["display"] = option.text.da
        items.append(
            {"linkId": question.link_id, "text": question.text.da, "answer": [{"valueCoding": coding}]}
        )
    response: FhirJson = {
        "resourceType": "QuestionnaireResponse",
        "identifier": {
            "system": RESPONSE_IDENTIFIER_SYSTEM,
            "value": response_identifier(hub_id, questionnaire.key, moment),
        },
        "questionnaire": questionnaire.canonical,
        "status": COMPLETED,
        "subject": {"reference": f"Patient/{patient_id}"},
        "authored": moment.isoformat(),
        "author": {"reference": f"Device/{hub_id}"},
        "source": {"reference": f"Patient/{patient_id}"},
    }
    if items:
        response["item"] = items
    _check_answers(questionnaire, response.get("item"))
    return response


def bundle_entry(response: Mapping[str, Any]) -> FhirJson:
    """The entry of a batch Bundle that carries ``response`` beside the hub's Observations
    (``fhir_contract.observation.build_bundle`` makes the Observations' own)."""
    return {"resource": dict(response), "request": {"method": "POST", "url": "QuestionnaireResponse"}}


# --- checking (the gateway) -----------------------------------------------------------------------


def is_questionnaire_response(resource: Any) -> bool:
    return isinstance(resource, Mapping) and resource.get("resourceType") == "QuestionnaireResponse"


def _check_structure(resource: Mapping[str, Any]) -> None:
    """FHIR R4 structure and data types by fhir.resources (R4B, the same as R4 for this resource)."""
    try:
        QuestionnaireResponse.model_validate(dict(resource))
    except (ValidationError, ValueError, TypeError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) and exc.errors() else None
        where = ".".join(str(p) for p in first["loc"]) if first else ""
        detail = f"{where}: {first['msg']}" if first else str(exc)
        raise ContractViolation(
            "invalid-fhir", f"not a valid FHIR R4 QuestionnaireResponse ({detail})"
        ) from exc


def reference_id(ref: Any, resource_type: str, element: str) -> str:
    """The id of a ``{"reference": "<resource_type>/<id>"}``; ContractViolation naming ``element``."""
    value = ref.get("reference") if isinstance(ref, dict) else None
    kind, slash, ident = value.partition("/") if isinstance(value, str) else ("", "", "")
    if kind != resource_type or not slash or not ident:
        raise ContractViolation("missing-element", f"{element} must reference {resource_type}/<id>")
    if not is_fhir_id(ident):
        raise ContractViolation("invalid-fhir", f"{element} must reference {resource_type}/<a FHIR id>")
    return ident


def _identifier(resource: Mapping[str, Any]) -> str:
    identifier = resource.get("identifier")
    value = identifier.get("value") if isinstance(identifier, dict) else None
    if (
        not isinstance(identifier, dict)
        or identifier.get("system") != RESPONSE_IDENTIFIER_SYSTEM
        or not value
    ):
        raise ContractViolation(
            "missing-element",
            f"QuestionnaireResponse.identifier with system {RESPONSE_IDENTIFIER_SYSTEM} is required",
        )
    if not isinstance(value, str) or not IDENTIFIER_VALUE.fullmatch(value):
        raise ContractViolation(
            "invalid-fhir",
            f"the {RESPONSE_IDENTIFIER_SYSTEM} identifier must be 1-{MAX_IDENTIFIER_CHARS}"
            " printable ASCII characters",
        )
    return value


def check_authored(authored: datetime, now: datetime | None = None) -> None:
    """ContractViolation ``implausible-time`` unless ``authored`` (aware) lies in the contract's window
    (the one of an Observation's effective time: not before 2015, not after now + the clock skew)."""
    latest = (now or datetime.now(UTC)) + MAX_CLOCK_AHEAD
    try:
        plausible = EFFECTIVE_FLOOR <= authored <= latest
    except OverflowError:  # a zone offset that pushes the moment past the calendar's ends
        plausible = False
    if not plausible:
        raise ContractViolation(
            "implausible-time",
            f"authored {authored.isoformat()} is outside {EFFECTIVE_FLOOR.date().isoformat()}"
            f" .. now + {MAX_CLOCK_AHEAD.total_seconds() / 60:g} min (the hub's clock is wrong)",
        )


def authored_time(resource: Mapping[str, Any], now: datetime | None, element: str = "authored") -> datetime:
    """``resource[element]`` as an aware moment inside the contract's window (``check_authored``)."""
    raw = resource.get(element)
    try:
        authored = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        authored = None
    if authored is None or authored.tzinfo is None:
        raise ContractViolation("missing-element", f"{element} with a time zone is required")
    check_authored(authored, now)
    return authored


def _answer_code(item: Mapping[str, Any], question: Question) -> str:
    """The one coded answer of ``item``, which must be an option of ``question``."""
    answers = item.get("answer")
    if not isinstance(answers, list) or len(answers) != 1 or not isinstance(answers[0], dict):
        raise ContractViolation(INVALID_ANSWER, f"item {question.link_id} needs exactly one answer")
    answer = answers[0]
    if answer.get("item") is not None or set(answer) - {"valueCoding", "id", "extension"}:
        raise ContractViolation(INVALID_ANSWER, f"item {question.link_id} is answered by a coding only")
    coding = answer.get("valueCoding")
    code = coding.get("code") if isinstance(coding, dict) else None
    known = isinstance(code, str) and question.option(code) is not None
    if not isinstance(coding, dict) or coding.get("system") != ANSWER_SYSTEM or not known:
        codes = ", ".join(o.code for o in question.options)
        raise ContractViolation(
            INVALID_ANSWER,
            f"item {question.link_id} takes one of {codes} of {ANSWER_SYSTEM}, not {code!r:.80}",
        )
    return str(code)


def _check_answers(questionnaire: Questionnaire, items: Any) -> dict[str, str]:
    """linkId -> code of every answered item, in the Questionnaire's order; ContractViolation when an
    item is unknown, repeated, nested, answered with anything but one of its options, or a required
    item is missing."""
    if items is not None and not isinstance(items, list):
        raise ContractViolation("invalid-fhir", "QuestionnaireResponse.item is not a list")
    given: dict[str, str] = {}
    for item in items or []:
        link_id = item.get("linkId") if isinstance(item, dict) else None
        question = questionnaire.question(link_id) if isinstance(link_id, str) else None
        if question is None:
            raise ContractViolation(
                INVALID_ANSWER, f"item {str(link_id)[:80]!r} is not an item of {questionnaire.canonical}"
            )
        if link_id in given:
            raise ContractViolation(INVALID_ANSWER, f"item {link_id} is answered twice")
        if item.get("item") is not None:
            raise ContractViolation(
                INVALID_ANSWER, f"item {link_id} has sub-items; the questionnaire has none"
            )
        given[question.link_id] = _answer_code(item, question)
    missing = [q.link_id for q in questionnaire.questions if q.required and q.link_id not in given]
    if missing:
        raise ContractViolation("missing-element", f"required item(s) not answered: {', '.join(missing)}")
    return {q.link_id: given[q.link_id] for q in questionnaire.questions if q.link_id in given}


def validate_response(resource: Mapping[str, Any], *, now: datetime | None = None) -> ValidResponse:
    """Validate one QuestionnaireResponse (as parsed JSON): FHIR R4 by fhir.resources, then the
    contract: status ``completed``, the ``urn:homewatch:questionnaire-response`` identifier, a
    Questionnaire of the contract by ``url|version``, ``subject`` = Patient/<id>, ``authored`` with a
    zone inside the contract's window (``now``, aware, the clock when None), and the answers. ``source``
    (Patient/<id>: the patient answers for themselves) and ``author`` (Device/<hub>) are read when sent,
    not judged: who may answer for whom is the gateway's rule."""
    if not is_questionnaire_response(resource):
        raise ContractViolation("invalid-fhir", "entry is not a QuestionnaireResponse resource")
    _check_structure(resource)
    if resource.get("status") != COMPLETED:
        raise ContractViolation("invalid-fhir", f"status {resource.get('status')!r} is not {COMPLETED!r}")
    identifier = _identifier(resource)
    canonical = resource.get("questionnaire")
    questionnaire = find_questionnaire(canonical) if isinstance(canonical, str) else None
    if questionnaire is None:
        known = ", ".join(sorted(questionnaires()))
        shown = repr(canonical)[:300]
        raise ContractViolation(
            UNKNOWN_QUESTIONNAIRE, f"questionnaire {shown} is none of the contract's: {known}"
        )
    patient_id = reference_id(resource.get("subject"), "Patient", "QuestionnaireResponse.subject")
    source_patient_id = None
    if resource.get("source") is not None:
        source_patient_id = reference_id(resource.get("source"), "Patient", "QuestionnaireResponse.source")
    hub_id = None
    if resource.get("author") is not None:
        hub_id = reference_id(resource.get("author"), "Device", "QuestionnaireResponse.author")
    authored = authored_time(resource, now)
    answers = _check_answers(questionnaire, resource.get("item"))
    return ValidResponse(
        identifier=identifier,
        questionnaire=questionnaire,
        patient_id=patient_id,
        source_patient_id=source_patient_id,
        hub_id=hub_id,
        authored=authored,
        answers=answers,
        resource=dict(resource),
    )
