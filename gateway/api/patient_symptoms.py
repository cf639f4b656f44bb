"""The patient page's "Symptoms reported by the patient": the newest answers to each daily symptom check.

Rows come from ``gateway.store.questionnaires.latest_responses`` (scoped to the viewer's patients); the
words of each question and answer come from the Questionnaire the response names
(``fhir_contract.questionnaire``), in the page's language (Danish or English: the Questionnaires carry
both), so the nurse reads what the patient was asked. An answer whose ``ordinalValue`` says the symptom
is worse or present (``WORSE_ORDINAL``) is marked. A stored code the Questionnaire does not know (it
cannot happen for what ingest accepted, but the database is not the contract) is shown as stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from fhir_contract.questionnaire import find_questionnaire
from gateway.api.auth import User
from gateway.api.i18n import current
from gateway.store.questionnaires import StoredResponse, latest_responses


@dataclass(frozen=True, slots=True)
class AnswerView:
    question: str
    answer: str
    worse: bool


@dataclass(frozen=True, slots=True)
class SymptomCheckView:
    """One questionnaire's newest response, in words."""

    title: str
    authored: datetime
    answers: tuple[AnswerView, ...]


def _view(row: StoredResponse, language: str) -> SymptomCheckView:
    questionnaire = find_questionnaire(f"{row.questionnaire}|{row.version}")
    if questionnaire is None:
        answers = tuple(AnswerView(link_id, code, False) for link_id, code in row.answers.items())
        return SymptomCheckView(row.questionnaire, row.authored, answers)
    views: list[AnswerView] = []
    for question in questionnaire.questions:
        code = row.answers.get(question.link_id)
        if code is None:
            continue
        option = question.option(code)
        text = question.text.in_language(language)
        if option is None:
            views.append(AnswerView(text, code, False))
        else:
            views.append(AnswerView(text, option.text.in_language(language), option.worse))
    return SymptomCheckView(questionnaire.title.in_language(language), row.authored, tuple(views))


def symptom_section(conn: psycopg.Connection[Any], user: User, patient_id: str) -> list[SymptomCheckView]:
    """The newest response to each questionnaire of the patient, newest first, in the page's language."""
    language = current().language
    return [_view(row, language) for row in latest_responses(conn, user, patient_id)]
