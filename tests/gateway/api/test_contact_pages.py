"""The care team's side of "contact my nurse" and of the nurse's messages, on the real app, a real
PostgreSQL and a real broker: open requests stand at the worklist's top (urgent first, then the longest
waiting), a nurse takes one and marks it done (each audited; a second nurse cannot take it again), the
patient page lists the requests and the messages; a nurse's message is stored, audited and handed to
the hub in its retained config; a GP may read but not write; another team's nurse finds nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import ConnectionPool
from pydantic import SecretStr
from retained_config import retained_config
from seed import login

from edge_agent.remote_config import parse_remote
from fhir_contract.contact import build_contact_request, validate_contact_request
from gateway.administration.homes import add_care_team, add_municipality, add_patient, enroll_hub
from gateway.api.app import create_app
from gateway.api.auth import create_user
from gateway.broker import BrokerEndpoint
from gateway.settings import GatewaySettings
from gateway.store.contact_requests import DeliveredRequest, insert_requests

PASSWORD = "a password of the test"
TOPIC = "homewatch/v1/0101/hub-1/config"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def gateway_settings(database_url: str, broker: BrokerEndpoint) -> GatewaySettings:
    return GatewaySettings(
        database_url=database_url,
        secret_key=SecretStr("test-secret-of-the-contact-pages"),
        default_language="en",
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        mqtt_v5=broker.mqtt5,
    )


def ask(database_url: str, patient_id: str, hub_id: str, at: datetime, reason: str | None) -> int:
    """Store a contact request as ingest would; its row id."""
    task = build_contact_request(patient_id=patient_id, hub_id=hub_id, authored=at, reason=reason)
    with psycopg.connect(database_url, autocommit=True) as conn:
        insert_requests(conn, [DeliveredRequest("0101", hub_id, validate_contact_request(task))])
        row = conn.execute(
            "SELECT id FROM contact_requests WHERE patient_id = %s AND authored = %s", (patient_id, at)
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def app(gateway_settings: GatewaySettings, database_url: str) -> Iterator[FastAPI]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        add_municipality(conn, "0101", "København", by="ops")
        add_care_team(conn, "0101", "0101-nord", "Team Nord", by="ops")
        create_user(conn, "anna", "0101", "nurse", PASSWORD, ("0101-nord",))
        create_user(conn, "berit", "0101", "nurse", PASSWORD, ("0101-nord",))
        create_user(conn, "bo", "0101", "nurse", PASSWORD)  # the default team: not these patients'
        create_user(conn, "dr-lund", "0101", "gp", PASSWORD)
        for pid, name in (("p-1", "Ane Hansen"), ("p-2", "Bent Jensen")):
            add_patient(
                conn, "0101", pid, name=name, care_team="0101-nord", phone=None, conditions=[],
                birth_date=None, by="ops",
            )  # fmt: skip
            enroll_hub(conn, gateway_settings, "0101", f"hub-{pid[-1]}", pid, by="ops", accounts=None)
        conn.execute("UPDATE patients SET gp_username = 'dr-lund' WHERE id = 'p-1'")
    with ConnectionPool(database_url, min_size=1, max_size=4, open=True) as pool:
        yield create_app(gateway_settings, pool)


def client_of(app: FastAPI, username: str) -> TestClient:
    client = TestClient(app)
    login(client, username, PASSWORD)
    return client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found[1]


def audit(database_url: str, *actions: str) -> list[tuple[str, str, str | None]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT username, action, patient_id FROM audit_log WHERE action = ANY(%s) ORDER BY id",
            (list(actions),),
        ).fetchall()
    return [(str(u), str(a), p) for u, a, p in rows]


def status_of(database_url: str, request_id: int) -> tuple[str, str | None, str | None]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT status, taken_by, done_by FROM contact_requests WHERE id = %s", (request_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def test_open_requests_top_the_worklist_urgent_first_and_a_nurse_takes_and_finishes_one(
    app: FastAPI, database_url: str
) -> None:
    question = ask(database_url, "p-1", "hub-1", NOW - timedelta(hours=3), "question")
    worse = ask(database_url, "p-2", "hub-2", NOW - timedelta(minutes=20), "feeling-worse")
    plain = ask(database_url, "p-1", "hub-1", NOW - timedelta(hours=1), None)
    with client_of(app, "anna") as anna, client_of(app, "berit") as berit:
        page = anna.get("/").text
        section = page.split('<section id="contact-requests"')[1].split("</section>")[0]
        assert "Patients asking to be contacted (3)" in section
        order = [int(i) for i in re.findall(r'data-request-id="(\d+)"', section)]
        assert order == [worse, question, plain]  # urgent first, then the one waiting longest
        assert "Feels worse" in section and "Has a question" in section and "No reason given" in section
        assert "Bent Jensen" in section and "Urgent" in section
        # Anna takes the urgent one; Berit, a moment later, cannot take it again.
        token = csrf_of(page)
        taken = anna.post(
            f"/patients/p-2/contact-requests/{worse}/take", data={"csrf": token}, follow_redirects=False
        )
        assert taken.status_code == 303 and taken.headers["location"] == "/?request=taken#contact-requests"
        late = berit.post(
            f"/patients/p-2/contact-requests/{worse}/take",
            data={"csrf": csrf_of(berit.get("/").text), "back": "patient"},
            follow_redirects=False,
        )
        assert late.headers["location"] == "/patients/p-2?request=already#contact-requests"
        assert status_of(database_url, worse) == ("in-progress", "anna", None)
        shown = anna.get(taken.headers["location"]).text
        assert "You took the request." in shown and "Taken by anna" in shown
        done = anna.post(
            f"/patients/p-2/contact-requests/{worse}/done", data={"csrf": token}, follow_redirects=False
        )
        assert done.headers["location"] == "/?request=done#contact-requests"
        assert status_of(database_url, worse) == ("done", "anna", "anna")
        after = anna.get("/").text.split('<section id="contact-requests"')[1].split("</section>")[0]
        assert f'data-request-id="{worse}"' not in after and "Patients asking to be contacted (2)" in after
        # Done from the patient page without taking it first.
        anna.post(
            f"/patients/p-1/contact-requests/{plain}/done",
            data={"csrf": token, "back": "patient"},
            follow_redirects=False,
        )
        history = anna.get("/patients/p-1").text.split('<section id="contact"')[1].split("</section>")[0]
        assert "Done by anna" in history and "Has a question" in history
    assert audit(database_url, "take-contact-request", "complete-contact-request") == [
        ("anna", "take-contact-request", "p-2"),
        ("anna", "complete-contact-request", "p-2"),
        ("anna", "complete-contact-request", "p-1"),
    ]
    listed = audit(database_url, "view-contact-requests")
    assert ("anna", "view-contact-requests", "p-2") in listed


def test_a_request_of_a_patient_outside_ones_teams_is_not_found_and_not_listed(
    app: FastAPI, database_url: str
) -> None:
    request_id = ask(database_url, "p-1", "hub-1", NOW - timedelta(hours=1), "equipment")
    with client_of(app, "bo") as bo:
        page = bo.get("/").text
        assert 'id="contact-requests"' not in page
        refused = bo.post(f"/patients/p-1/contact-requests/{request_id}/done", data={"csrf": csrf_of(page)})
        assert refused.status_code == 404
        # Someone else's request id under a patient one may see is not found either.
    with client_of(app, "anna") as anna:
        wrong = anna.post(
            f"/patients/p-2/contact-requests/{request_id}/take", data={"csrf": csrf_of(anna.get("/").text)}
        )
        assert wrong.status_code == 404
    assert status_of(database_url, request_id) == ("open", None, None)


def test_a_nurses_message_is_stored_audited_and_handed_to_the_hub_in_its_retained_config(
    app: FastAPI, broker: BrokerEndpoint, database_url: str
) -> None:
    with client_of(app, "anna") as anna:
        page = anna.get("/patients/p-1").text
        assert 'action="/patients/p-1/messages"' in page
        text = "Hej Ane.\r\nJeg ringer i morgen kl. 10."
        sent = anna.post(
            "/patients/p-1/messages", data={"csrf": csrf_of(page), "text": text}, follow_redirects=False
        )
        assert sent.status_code == 303 and sent.headers["location"] == "/patients/p-1?message=sent#contact"
        shown = anna.get(sent.headers["location"]).text
        assert "The message is saved and sent to the patient&#39;s hub." in shown
        assert "Jeg ringer i morgen kl. 10." in shown.split('<section id="contact"')[1]
    remote = parse_remote(retained_config(broker, TOPIC))  # what the hub is handed, and takes
    assert remote.messages is not None
    [message] = remote.messages
    assert (message.patient_id, message.text) == ("p-1", "Hej Ane.\nJeg ringer i morgen kl. 10.")
    assert message.sent_at.tzinfo is not None
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT public_id::text, author FROM patient_messages").fetchone()
        versions = conn.execute("SELECT id, config_version FROM hubs ORDER BY id").fetchall()
    assert row == (message.id, "anna")
    assert audit(database_url, "send-patient-message") == [("anna", "send-patient-message", "p-1")]
    version = {str(hub): int(v) for hub, v in versions}
    assert version["hub-1"] > version["hub-2"]  # only the patient's hub was changed


def test_the_gp_reads_the_messages_but_does_not_write_and_another_teams_nurse_finds_no_patient(
    app: FastAPI, database_url: str
) -> None:
    with client_of(app, "anna") as anna:
        anna.post("/patients/p-1/messages", data={"csrf": csrf_of(anna.get("/").text), "text": "Godt gået."})
    with client_of(app, "dr-lund") as gp:
        page = gp.get("/patients/p-1").text
        assert "Godt gået." in page and 'action="/patients/p-1/messages"' not in page
        refused = gp.post("/patients/p-1/messages", data={"csrf": csrf_of(page), "text": "Hej"})
        assert refused.status_code == 403
    with client_of(app, "bo") as bo:
        refused = bo.post("/patients/p-1/messages", data={"csrf": csrf_of(bo.get("/").text), "text": "Hej"})
        assert refused.status_code == 404
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM patient_messages").fetchone() == (1,)


@pytest.fixture
def anna(app: FastAPI) -> Iterator[TestClient]:
    with client_of(app, "anna") as client:
        yield client


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=st.text(max_size=1_200) | st.just("x" * 1_001) | st.just(" \t\r\n\x00 "))
def test_whatever_is_typed_the_message_is_sent_as_printable_text_or_refused_with_the_reason(
    anna: TestClient, database_url: str, text: str
) -> None:
    with psycopg.connect(database_url) as conn:
        before = conn.execute("SELECT count(*) FROM patient_messages").fetchone()
    token = csrf_of(anna.get("/patients/p-1").text)
    answer = anna.post("/patients/p-1/messages", data={"csrf": token, "text": text}, follow_redirects=False)
    kept = "".join(c for c in text.replace("\r\n", "\n") if c.isprintable() or c == "\n").strip()
    with psycopg.connect(database_url) as conn:
        after = conn.execute("SELECT count(*) FROM patient_messages").fetchone()
        newest = conn.execute("SELECT text FROM patient_messages ORDER BY id DESC LIMIT 1").fetchone()
    if kept and len(kept) <= 1000:
        assert answer.status_code == 303 and newest == (kept,)
    else:
        assert answer.status_code == 400 and after == before
        assert 'class="error-summary"' in answer.text and 'aria-invalid="true"' in answer.text
