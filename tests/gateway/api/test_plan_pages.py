"""The nurse's measurement-plan form (``/patients/{id}/plan``, issue 21) on the real app, a real
PostgreSQL and a real broker: she opens it from the patient page, saves a plan, the hub's retained config
carries it and the page says so; a refused form shows each error beside its field with what she typed;
the GP sees the plan on the patient page but may not change it; another team's nurse finds no patient.
Every view and change is audited."""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from pydantic import SecretStr
from retained_config import retained_config
from seed import login

from edge_agent.remote_config import parse_remote
from fhir_contract.plan import parse_plan
from gateway.administration.homes import add_care_team, add_municipality, add_patient, enroll_hub
from gateway.api.app import create_app
from gateway.api.auth import create_user
from gateway.broker import BrokerEndpoint
from gateway.settings import GatewaySettings

PASSWORD = "a password of the test"
TOPIC = "homewatch/v1/0101/hub-1/config"
PLAN_FORM = {
    "blood-pressure-on": "yes",
    "blood-pressure-times": "8, 20.00",
    **{f"blood-pressure-day-{d}": "yes" for d in range(1, 8)},
    "blood-pressure-grace": "120",
    "weight-on": "yes",
    "weight-times": "07:30",
    **{f"weight-day-{d}": "yes" for d in (1, 3, 5)},
    "weight-grace": "240",
    "spo2-times": "not ticked, so never read",
}


@pytest.fixture
def settings(database_url: str, broker: BrokerEndpoint) -> GatewaySettings:
    return GatewaySettings(
        database_url=database_url,
        secret_key=SecretStr("test-secret-of-the-plan-pages"),
        default_language="en",
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        mqtt_v5=broker.mqtt5,
    )


@pytest.fixture
def app(settings: GatewaySettings, database_url: str) -> Iterator[FastAPI]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        add_municipality(conn, "0101", "København", by="ops")
        add_care_team(conn, "0101", "0101-nord", "Team Nord", by="ops")
        create_user(conn, "anna", "0101", "nurse", PASSWORD, ("0101-nord",))
        create_user(conn, "bo", "0101", "nurse", PASSWORD)  # the default team: not p-1's
        create_user(conn, "dr-lund", "0101", "gp", PASSWORD)
        add_patient(
            conn, "0101", "p-1", name="Ane Hansen", care_team="0101-nord", phone=None, conditions=[],
            birth_date=None, by="ops",
        )  # fmt: skip
        conn.execute("UPDATE patients SET gp_username = 'dr-lund' WHERE id = 'p-1'")
        enroll_hub(conn, settings, "0101", "hub-1", "p-1", by="ops", accounts=None)
    with ConnectionPool(database_url, min_size=1, max_size=4, open=True) as pool:
        yield create_app(settings, pool)


def _client(app: FastAPI, username: str) -> TestClient:
    client = TestClient(app)
    login(client, username, PASSWORD)
    return client


def _csrf(page: str) -> str:
    found = re.search(
        r'<form method="post" action="/patients/p-1/plan".*?name="csrf" value="([^"]+)"', page, re.S
    )
    assert found is not None, page
    return found[1]


def _audit(database_url: str) -> list[tuple[str, str, str | None]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT username, action, detail FROM audit_log"
            " WHERE action IN ('view-plan', 'set-plan') ORDER BY id"
        ).fetchall()
    return [(str(u), str(a), d) for u, a, d in rows]


def test_the_nurse_sets_the_plan_from_the_patient_page_and_the_hub_gets_it(
    app: FastAPI, broker: BrokerEndpoint, database_url: str
) -> None:
    with _client(app, "anna") as client:
        patient = client.get("/patients/p-1").text
        assert 'href="#plan"' in patient and "No measurement plan" in patient
        assert 'href="/patients/p-1/plan">Set a measurement plan</a>' in patient
        form = client.get("/patients/p-1/plan")
        assert form.status_code == 200 and "No plan has been set for this patient yet." in form.text
        assert 'id="blood-pressure-on"' in form.text and 'id="glucose-day-7"' in form.text
        saved = client.post(
            "/patients/p-1/plan", data={**PLAN_FORM, "csrf": _csrf(form.text)}, follow_redirects=False
        )
        assert saved.status_code == 303 and saved.headers["location"] == "/patients/p-1/plan?done=sent"
        remote = parse_remote(retained_config(broker, TOPIC))  # what the hub is handed, and takes
        assert remote.plan is not None
        assert parse_plan(list(remote.plan)) == parse_plan(
            [
                {"measurement": "blood-pressure", "times": ["08:00", "20:00"], "grace_minutes": 120},
                {"measurement": "weight", "times": ["07:30"], "days": [1, 3, 5], "grace_minutes": 240},
            ]
        )
        shown = client.get(saved.headers["location"]).text
        assert "The plan is saved and sent to the patient&#39;s hub." in shown
        assert (
            'value="08:00, 20:00"' in shown and 'id="weight-day-2" name="weight-day-2" value="yes">' in shown
        )
        assert "Blood pressure: 08:00, 20:00 (every day; grace 2 hours)" in shown  # the history
        page = client.get("/patients/p-1").text
        section = page.split('<section id="plan"')[1].split("</section>")[0]
        for words in (
            "Blood pressure",
            "08:00, 20:00",
            "every day",
            "2 hours",
            "Weight",
            "Mon, Wed, Fri",
            "4 hours",
        ):
            assert words in section, words
        assert "Change the plan" in section and "Set by anna" in section
        # Saving it unchanged stores nothing and says so.
        again = client.post(
            "/patients/p-1/plan", data={**PLAN_FORM, "csrf": _csrf(shown)}, follow_redirects=False
        )
        assert again.headers["location"] == "/patients/p-1/plan?done=unchanged"
    actions = [(u, a) for u, a, _d in _audit(database_url)]
    assert actions == [("anna", "view-plan"), ("anna", "set-plan"), ("anna", "view-plan")]  # unchanged: none


def test_a_refused_form_shows_each_error_beside_its_field_and_keeps_what_was_typed(
    app: FastAPI, database_url: str
) -> None:
    wrong = {**PLAN_FORM, "blood-pressure-times": "08:00, 25:00", "weight-grace": "5"}
    for day in (1, 3, 5):
        del wrong[f"weight-day-{day}"]
    with _client(app, "anna") as client:
        form = client.get("/patients/p-1/plan").text
        refused = client.post("/patients/p-1/plan", data={**wrong, "csrf": _csrf(form)})
    assert refused.status_code == 400
    summary = refused.text.split('class="error-summary"')[1].split("</div>")[0]
    assert re.findall(r'href="#([\w-]+)"', summary) == [
        "blood-pressure-times",
        "weight-day-1",
        "weight-grace",
    ]
    assert "Blood pressure: “25:00” is not a time of day" in summary
    assert 'value="08:00, 25:00"' in refused.text and 'aria-invalid="true"' in refused.text
    assert 'id="weight-grace-error"' in refused.text and 'value="5"' in refused.text
    assert 'id="blood-pressure-day-4" name="blood-pressure-day-4" value="yes" checked' in refused.text
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM measurement_plans").fetchone() == (0,)
    assert [(a, d) for _u, a, d in _audit(database_url)] == [
        ("view-plan", None),
        ("view-plan", "plan refused"),
    ]


def test_the_gp_sees_the_plan_but_does_not_change_it_another_teams_nurse_finds_no_patient(
    app: FastAPI,
) -> None:
    with _client(app, "anna") as client:
        form = client.get("/patients/p-1/plan").text
        client.post("/patients/p-1/plan", data={**PLAN_FORM, "csrf": _csrf(form)})
    with _client(app, "dr-lund") as client:
        section = client.get("/patients/p-1").text.split('<section id="plan"')[1].split("</section>")[0]
        assert "08:00, 20:00" in section and "/patients/p-1/plan" not in section
        assert client.get("/patients/p-1/plan").status_code == 403
    with _client(app, "bo") as client:
        assert client.get("/patients/p-1/plan").status_code == 404
