"""What patients send from home over FHIR (issue 21): ``/fhir/QuestionnaireResponse`` (search and read)
and the contact requests among ``/fhir/Task`` beside the alerts' Tasks. Every resource served is
validated with ``fhir.resources`` (R4B); a Task's status follows what the care team did; pages merge
alerts and requests newest first under one cursor; each viewer sees only her patients; reads are
audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.task import Task
from review_world import enrol, municipality
from seed import PASSWORD, bearer, news2_detail, score

from fhir_contract.contact import build_contact_request, validate_contact_request
from fhir_contract.questionnaire import build_response, current, validate_response
from gateway.alerts.lifecycle import Trigger, record_trigger
from gateway.api.auth import User, create_user
from gateway.store.contact_requests import DeliveredRequest, complete_request, insert_requests, take_request
from gateway.store.questionnaires import DeliveredResponse, insert_responses

NOW = datetime.now(UTC).replace(microsecond=0)
ANNA = User("anna", "0101", "nurse")


def _ask(conn: psycopg.Connection[Any], pid: str, at: datetime, reason: str | None) -> int:
    task = build_contact_request(patient_id=pid, hub_id=f"hub-{pid}", authored=at, reason=reason)
    insert_requests(conn, [DeliveredRequest("0101", f"hub-{pid}", validate_contact_request(task))])
    row = conn.execute("SELECT id FROM contact_requests WHERE authored = %s", (at,)).fetchone()
    assert row is not None
    return int(row[0])


def _answer(conn: psycopg.Connection[Any], pid: str, at: datetime) -> None:
    questionnaire = current("heart-failure-daily")
    answers = {q.link_id: q.options[-1].code for q in questionnaire.questions}
    response = build_response(questionnaire, answers, patient_id=pid, hub_id=f"hub-{pid}", authored=at)
    insert_responses(conn, [DeliveredResponse("0101", f"hub-{pid}", validate_response(response))])


@pytest.fixture
def world(database_url: str) -> dict[str, int]:
    """anna (default team) sees p-1 and p-2 (synthetic); nora (team nord) sees p-nord. Requests: p-1
    taken then done (5 h ago), p-1 open urgent (1 h), p-nord open (2 h); an alert of p-1 (3 h); answers
    of p-1 (4 h and 30 min ago) and p-nord (1 h)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        municipality(conn, "0101", "København")
        conn.execute("INSERT INTO care_teams (municipality_id, id, name) VALUES ('0101', 'nord', 'Nord')")
        create_user(conn, "anna", "0101", "nurse", PASSWORD)
        create_user(conn, "nora", "0101", "nurse", PASSWORD, care_teams=("nord",))
        conn.execute("UPDATE users SET full_name = 'Anna Andersen' WHERE username = 'anna'")
        enrol(conn, "0101", "p-1", "Karen Et")
        enrol(conn, "0101", "p-2", "Erik To", synthetic=True)
        enrol(conn, "0101", "p-nord", "Niels Nord", team="nord")
        done = _ask(conn, "p-1", NOW - timedelta(hours=5), "question")
        take_request(conn, ANNA, "p-1", done, at=NOW - timedelta(hours=4), client="test")
        complete_request(conn, ANNA, "p-1", done, at=NOW - timedelta(hours=4), client="test")
        urgent = _ask(conn, "p-1", NOW - timedelta(hours=1), "feeling-worse")
        _ask(conn, "p-nord", NOW - timedelta(hours=2), None)
        raised = NOW - timedelta(hours=3)
        score_id = score(conn, "0101", "p-1", 7, "high", raised, news2_detail({"spo2": (88, 3)}))
        with conn.transaction():
            trigger = Trigger("0101", "p-1", "news2", "", "high", "NEWS2 7", raised, score_id)
            record_trigger(conn, trigger, now=raised)
        _answer(conn, "p-1", NOW - timedelta(hours=4))
        _answer(conn, "p-1", NOW - timedelta(minutes=30))
        _answer(conn, "p-nord", NOW - timedelta(hours=1))
    return {"done": done, "urgent": urgent}


def _get(client: TestClient, headers: dict[str, str], url: str) -> dict[str, Any]:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_tasks_merge_alerts_and_contact_requests_newest_first_across_pages(
    client: TestClient, world: dict[str, int]
) -> None:
    headers = bearer(client, "anna")
    seen: list[dict[str, Any]] = []
    url = "/fhir/Task?_count=1"
    while url:
        page = _get(client, headers, url)
        Bundle.model_validate(page)
        assert page["total"] == 3
        seen += [entry["resource"] for entry in page.get("entry", [])]
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        url = following[0].split("/fhir", 1)[1] if following else ""
        url = f"/fhir{url}" if url else ""
    for resource in seen:
        Task.model_validate(resource)
    kinds = [("contact" if r["code"]["coding"][0]["code"] == "contact-me" else "alert") for r in seen]
    assert kinds == ["contact", "alert", "contact"]  # 1 h, 3 h, 5 h ago
    urgent, _alert, done = seen
    assert (urgent["status"], urgent["priority"], urgent["for"]) == (
        "requested",
        "asap",
        {"reference": "Patient/p-1"},
    )
    assert (done["status"], done["owner"], done["reasonCode"]["coding"][0]["code"]) == (
        "completed",
        {"display": "Anna Andersen"},
        "question",
    )
    assert done["lastModified"] > done["authoredOn"]
    # Read by id; searched by status: the alert's status words and the requests' are one vocabulary.
    read = _get(client, headers, f"/fhir/Task/{urgent['id']}")
    assert read == urgent
    completed = _get(client, headers, "/fhir/Task?status=completed")
    assert [e["resource"]["id"] for e in completed.get("entry", [])] == [done["id"]]


def test_questionnaire_responses_are_searched_and_read_only_for_ones_own_patients(
    client: TestClient, world: dict[str, int], database_url: str
) -> None:
    anna, nora = bearer(client, "anna"), bearer(client, "nora")
    page = _get(client, anna, "/fhir/QuestionnaireResponse?patient=p-1")
    Bundle.model_validate(page)
    resources = [entry["resource"] for entry in page["entry"]]
    for resource in resources:
        QuestionnaireResponse.model_validate(resource)
    assert [r["authored"] for r in resources] == sorted((r["authored"] for r in resources), reverse=True)
    assert len(resources) == 2 and all(r["subject"] == {"reference": "Patient/p-1"} for r in resources)
    oldest = _get(client, anna, "/fhir/QuestionnaireResponse?_sort=authored&_count=1")["entry"][0]["resource"]
    assert oldest["id"] == resources[-1]["id"]
    assert _get(client, anna, f"/fhir/QuestionnaireResponse/{resources[0]['id']}") == resources[0]
    # Nora's patient's answers are not Anna's, and Anna's are not found for Nora.
    assert client.get(f"/fhir/QuestionnaireResponse/{resources[0]['id']}", headers=nora).status_code == 404
    nord = _get(client, nora, "/fhir/QuestionnaireResponse")
    assert [e["resource"]["subject"]["reference"] for e in nord["entry"]] == ["Patient/p-nord"]
    tasks = _get(client, nora, "/fhir/Task")
    assert [e["resource"]["for"]["reference"] for e in tasks["entry"]] == ["Patient/p-nord"]
    assert client.get("/fhir/QuestionnaireResponse?authored=lt2026-13", headers=anna).status_code == 400
    with psycopg.connect(database_url) as conn:
        audited = conn.execute(
            "SELECT username, patient_id FROM audit_log WHERE action = 'fhir-read' AND detail LIKE"
            " 'GET /fhir/QuestionnaireResponse%%' ORDER BY id"
        ).fetchall()
    assert ("anna", "p-1") in audited and ("nora", "p-nord") in audited
    assert ("nora", "p-1") not in audited
