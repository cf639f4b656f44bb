"""The nurses' web UI: the ranked worklist, the patient page, acknowledging alerts, auditing, the banner."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from seed import World, audit_rows, login, municipality, observation, patient, score, user

from gateway.api.app import create_app
from gateway.settings import GatewaySettings

BANNER = "Synthetic demo data — not for clinical use"


def _worklist_order(html: str) -> list[str]:
    return re.findall(r'data-patient="([^"]+)"', html)


def test_worklist_ranks_by_latest_news2_then_newest_open_alert(client: TestClient, world: World) -> None:
    login(client, world.nurse)
    response = client.get("/")
    assert response.status_code == 200
    assert _worklist_order(response.text) == list(world.ranked)


def test_worklist_shows_only_the_users_municipality(client: TestClient, world: World) -> None:
    login(client, world.nurse)
    page = client.get("/").text
    assert "Karen High" in page and "København" in page
    assert "Frede Other" not in page and world.other_patient not in page

    client.cookies.clear()
    login(client, world.other_nurse)
    other_page = client.get("/").text
    assert _worklist_order(other_page) == [world.other_patient]
    assert "Karen High" not in other_page


def test_worklist_shows_band_text_reasons_values_age_and_alert(client: TestClient, world: World) -> None:
    login(client, world.nurse)
    page = client.get("/").text
    first = page[page.index("p-high") : page.index("p-med-late")]
    assert "NEWS2 8" in first and "High" in first and "band-high" in first
    assert "SpO₂ 90 %: 3 points" in first and "Systolic BP 95 mmHg: 2 points" in first
    assert "Open alert (high)" in first and "NEWS2 8: emergency assessment" in first
    assert "2 hours ago" in first
    for shown in ("90 %", "125 /min", "95 mmHg", "38.6 °C", "81.4 kg"):
        assert shown in first
    assert "Heart failure, COPD" in first
    assert "Lower bound: 2 of 7 parameters not measured" in first
    unscored = page[page.index("p-none") :]
    assert "No score" in unscored and "none yet" in unscored


def test_worklist_view_is_audited_per_patient(
    client: TestClient, world: World, db: psycopg.Connection[Any]
) -> None:
    login(client, world.nurse)
    client.get("/")
    rows = audit_rows(db, "view-worklist")
    assert sorted(row[3] or "" for row in rows) == sorted(world.ranked)
    assert {(row[0], row[1]) for row in rows} == {(world.nurse, world.own)}


def test_no_banner_for_real_looking_data_outside_demo(client: TestClient, world: World) -> None:
    login(client, world.nurse)
    assert BANNER not in client.get("/").text


def test_demo_app_shows_the_synthetic_banner(
    settings: GatewaySettings, pool: ConnectionPool[Any], world: World
) -> None:
    with TestClient(create_app(settings, pool, demo=True)) as demo_client:
        login(demo_client, world.nurse)
        assert BANNER in demo_client.get("/").text
        assert BANNER in demo_client.get("/patients/p-high").text


def test_data_marked_as_test_data_shows_banner_and_label(
    client: TestClient, world: World, db: psycopg.Connection[Any]
) -> None:
    now = datetime.now(UTC)
    municipality(db, "0461", "Odense")
    user(db, "cleo", "0461", "demo password")
    patient(db, "0461", "syn-1", "Synthetic patient 1", ("copd",), synthetic=True)
    patient(db, "0461", "tagged", "Tagged Person", ())
    observation(db, "0461", "tagged", "spo2", now, 95, synthetic=True)
    score(db, "0461", "tagged", 0, "low", now, synthetic=True)
    login(client, "cleo", "demo password")
    page = client.get("/").text
    assert BANNER in page
    assert page.count("Score from synthetic demo data") == 2
    assert BANNER in client.get("/patients/tagged").text


def test_patient_page_shows_readings_scores_alerts_and_is_audited(
    client: TestClient, world: World, db: psycopg.Connection[Any]
) -> None:
    login(client, world.nurse)
    page = client.get("/patients/p-high")
    assert page.status_code == 200
    assert "Karen High" in page.text
    assert "81.4 kg" in page.text and "79 kg" in page.text  # the weight chart's readings
    assert "95/61 mmHg" in client.get("/patients/p-high/readings").text  # the table is behind a link
    assert "NEWS2 8" in page.text and "Pulse 125 /min: 2 points" in page.text
    assert "Acknowledge" in page.text
    assert audit_rows(db, "view-patient") == [(world.nurse, world.own, "view-patient", "p-high")]


def test_patient_page_shows_the_latest_news2_not_a_newer_score_of_another_method(
    client: TestClient, world: World, db: psycopg.Connection[Any]
) -> None:
    # Issue 16: scores[0] was shown as "Latest NEWS2" whatever its method, so a disease rule that fired
    # or a 30-day admission probability stored after the NEWS2 was shown as "NEWS2 1" or "NEWS2 0.1".
    score(db, world.own, "p-high", 1, "medium", world.now, method="hf-weight-gain-3d")
    score(db, world.own, "p-high", 0.1, "unbanded", world.now, method="admission-risk-30d")
    login(client, world.nurse)
    page = client.get("/patients/p-high").text
    latest = page[page.index('id="score-h"') : page.index('id="readings-h"')]
    assert "NEWS2 8" in latest and "High" in latest and "Pulse 125 /min: 2 points" in latest
    assert "NEWS2 0.1" not in latest and "NEWS2 1<" not in latest


def test_other_municipalitys_patient_page_is_not_found(
    client: TestClient, world: World, db: psycopg.Connection[Any]
) -> None:
    login(client, world.nurse)
    response = client.get(f"/patients/{world.other_patient}")
    assert response.status_code == 404
    assert "Frede Other" not in response.text
    assert client.get("/patients/nobody").status_code == 404
    assert audit_rows(db, "view-patient") == []


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None
    return match[1]


def test_acknowledgement_records_who_and_when_and_is_audited(
    client: TestClient, world: World, db: psycopg.Connection[Any]
) -> None:
    login(client, world.nurse)
    alert_id = world.alerts["p-high"]
    token = _csrf(client.get("/patients/p-high").text)
    data = {"csrf": token, "note": "Ringede.", "back": "patient"}
    response = client.post(f"/alerts/{alert_id}/acknowledge", data=data, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/patients/p-high?done=acknowledged#alert-{alert_id}"
    row = db.execute(
        "SELECT status, acknowledged_by, acknowledged_at, acknowledgement_note FROM alerts WHERE id = %s",
        (alert_id,),
    ).fetchone()
    assert row is not None
    assert row[0] == "acknowledged" and row[1] == world.nurse and row[3] == "Ringede."
    assert abs((row[2] - datetime.now(UTC)).total_seconds()) < 60
    assert audit_rows(db, "acknowledge-alert") == [(world.nurse, world.own, "acknowledge-alert", "p-high")]
    page = client.get("/patients/p-high").text
    assert f"acknowledged by {world.nurse}" in page and "Ringede." in page
    assert "Open alert" not in client.get("/").text.split("p-med-late")[0]


def test_acknowledgement_without_the_form_token_is_refused(
    client: TestClient, world: World, db: psycopg.Connection[Any]
) -> None:
    login(client, world.nurse)
    alert_id = world.alerts["p-high"]
    response = client.post(f"/alerts/{alert_id}/acknowledge", data={"csrf": "forged", "note": "Ringede."})
    assert response.status_code == 403
    status = db.execute("SELECT status FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert status == ("open",)


def test_other_municipalitys_alert_cannot_be_acknowledged(
    client: TestClient, world: World, db: psycopg.Connection[Any]
) -> None:
    login(client, world.nurse)
    token = _csrf(client.get("/patients/p-high").text)
    alert_id = world.alerts[world.other_patient]
    response = client.post(f"/alerts/{alert_id}/acknowledge", data={"csrf": token, "note": "Ringede."})
    assert response.status_code == 404
    assert db.execute("SELECT status FROM alerts WHERE id = %s", (alert_id,)).fetchone() == ("open",)
    assert audit_rows(db, "acknowledge-alert") == []


def test_acknowledge_requires_a_session(client: TestClient, world: World) -> None:
    response = client.post(f"/alerts/{world.alerts['p-high']}/acknowledge", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_healthz_reports_the_database(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": True, "stalled_workers": []}


def test_healthz_reports_a_closed_pool_as_database_down(settings: GatewaySettings, database_url: str) -> None:
    closed: ConnectionPool[Any] = ConnectionPool(database_url, min_size=1, open=False)
    with TestClient(create_app(settings, closed)) as unhealthy:
        response = unhealthy.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy", "database": False, "stalled_workers": []}
