"""The patient page's "Symptoms reported by the patient": the newest answers to each daily symptom
check, the questions and answers in the page's language from the Questionnaire, a worse answer marked,
and nobody else's answers. Real PostgreSQL (answers stored as ingest stores them), the real app."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from seed import World, login, patient

from fhir_contract.questionnaire import build_response, current, validate_response
from gateway.api.auth import User
from gateway.store.questionnaires import DeliveredResponse, insert_responses, latest_responses

Conn = psycopg.Connection[Any]


def _section(html: str, section_id: str) -> str:
    start = html.index(f'<section id="{section_id}"')
    return html[start : html.index("</section>", start)]


def answer(db: Conn, world: World, patient_id: str, key: str, at: datetime, **answers: str) -> None:
    """Store the patient's answers to ``key`` (the first option of every item not named) as ingest does."""
    q = current(key)
    given = {item.link_id: item.options[0].code for item in q.questions}
    given.update({link_id.replace("_", "-"): code for link_id, code in answers.items()})
    hub_id = f"hub-{patient_id}"
    db.execute(
        "INSERT INTO hubs (municipality_id, id, patient_id) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (world.own, hub_id, patient_id),
    )
    resource = build_response(q, given, patient_id=patient_id, hub_id=hub_id, authored=at)
    with db.transaction():
        insert_responses(db, [DeliveredResponse(world.own, hub_id, validate_response(resource))])


def test_the_newest_answers_of_each_check_are_shown_with_a_worse_one_marked(
    client: TestClient, world: World, db: Conn
) -> None:
    answer(db, world, "p-high", "heart-failure-daily", world.now - timedelta(days=1), overall="poor")
    answer(db, world, "p-high", "heart-failure-daily", world.now - timedelta(hours=3), ankle_swelling="no")
    answer(db, world, "p-high", "copd-daily", world.now - timedelta(hours=5), phlegm_colour="yellow-green")
    login(client, world.nurse)
    section = _section(client.get("/patients/p-high").text, "symptoms")
    assert "Symptoms reported by the patient" in section
    captions = [line for line in section.splitlines() if "<caption>" in line]
    # Newest first, one table per questionnaire: the newer heart-failure answers only.
    assert len(captions) == 2
    assert "Daily symptom check for heart failure" in captions[0] and "3 hours ago" in captions[0]
    assert "Daily symptom check for COPD" in captions[1]
    assert (
        '<th scope="row">Are your ankles or legs more swollen than yesterday?</th>\n        <td>No</td>'
        in section
    )
    assert "<td>Good</td>" in section and "Poor" not in section  # the older response is not shown
    assert '<span class="triage triage-yellow">Yellow or green</span>' in section
    assert '<span class="triage triage-yellow">Yes</span>' in section  # orthopnoea: "yes" is worse


def test_the_questions_and_answers_are_in_danish_on_a_danish_page(
    client: TestClient, world: World, db: Conn
) -> None:
    answer(db, world, "p-high", "copd-daily", world.now - timedelta(hours=1), cough="worse")
    login(client, world.nurse)
    page = client.get("/patients/p-high", headers={"Accept-Language": "da"}).text
    section = _section(page, "symptoms")
    assert "Dagligt symptomtjek ved KOL" in section
    assert "Hvordan er din hoste i dag i forhold til i går?" in section
    assert '<span class="triage triage-yellow">Værre</span>' in section
    assert "How is your cough" not in section


def test_no_answers_yet_and_no_other_patients_answers(client: TestClient, world: World, db: Conn) -> None:
    patient(db, world.own, "p-quiet", "Quinn Quiet", ("copd",))
    answer(db, world, "p-high", "copd-daily", world.now - timedelta(hours=1))
    login(client, world.nurse)
    section = _section(client.get("/patients/p-quiet").text, "symptoms")
    assert "The patient has not answered a symptom check yet." in section and "<table" not in section
    assert 'href="#symptoms"' in client.get("/patients/p-quiet").text
    # The store reads through the viewer's scope: another municipality's nurse gets nothing.
    assert len(latest_responses(db, User(world.nurse, world.own, "nurse"), "p-high")) == 1
    assert latest_responses(db, User(world.other_nurse, world.other, "nurse"), "p-high") == []
