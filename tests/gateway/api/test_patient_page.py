"""The patient page: charts of every vital sign with the baseline band and the limits, each reading
triaged, the window switch, canonical units, risk history by method, devices and hub, reviews, the
readings table behind a link, scoping to the viewer's patients and auditing. Real PostgreSQL, the real
app through its TestClient."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb
from seed import World, audit_rows, device, login, observation, patient, score, user

from gateway.api.auth import User, create_user
from gateway.store.reviews import record_review

Conn = psycopg.Connection[Any]


def _section(html: str, section_id: str) -> str:
    """The HTML of ``<section id=section_id>``."""
    start = html.index(f'<section id="{section_id}"')
    return html[start : html.index("</section>", start)]


def _chart(html: str, vital: str) -> str:
    """The HTML of the figure of one vital sign's chart."""
    start = html.index(f'id="chart-{vital}"')
    return html[start : html.index("</figure>", start)]


def _marks(chart: str) -> list[tuple[str, str]]:
    """(shape, title) of every reading's mark in a chart."""
    return re.findall(r"<(circle|rect|path) [^>]*><title>([^<]*)</title>", chart)


def _daily_spo2(db: Conn, world: World, patient_id: str, days: int, value: float = 96) -> None:
    for day in range(days, 0, -1):
        observation(db, world.own, patient_id, "spo2", world.now - timedelta(days=day), value + day % 2)


def test_every_measured_vital_sign_is_plotted_and_the_page_is_audited(
    client: TestClient, world: World, db: Conn
) -> None:
    login(client, world.nurse)
    page = client.get("/patients/p-high")
    assert page.status_code == 200
    charts = re.findall(r'<figure class="vital-chart" id="chart-([a-z_0-9]+)"', page.text)
    assert charts == ["spo2", "pulse", "systolic", "diastolic", "temperature", "weight"]
    assert page.text.count('<svg xmlns="http://www.w3.org/2000/svg"') == len(charts)
    weights = [title for _, title in _marks(_chart(page.text, "weight"))]
    assert len(weights) == 2 and weights[0].startswith("79 kg") and weights[1].startswith("81.4 kg")
    assert audit_rows(db, "view-patient") == [(world.nurse, world.own, "view-patient", "p-high")]


def test_readings_are_triaged_against_the_news2_defaults_with_shape_and_words(
    client: TestClient, world: World
) -> None:
    login(client, world.nurse)
    page = client.get("/patients/p-high").text
    (spo2,) = _marks(_chart(page, "spo2"))
    assert spo2[0] == "path" and spo2[1].startswith("90 %") and spo2[1].endswith("Red: below 92 %")
    (pulse,) = _marks(_chart(page, "pulse"))
    assert pulse[0] == "rect" and pulse[1].endswith("Yellow: above 90 /min")
    (weight, _) = _marks(_chart(page, "weight"))
    assert weight[0] == "circle" and weight[1].endswith("Green: within the limits")
    # The limits are drawn and labelled: SpO2's NEWS2 edges 92 (red) and 96 (yellow).
    spo2_chart = _chart(page, "spo2")
    assert 'stroke="#b3261e" stroke-width="1" stroke-dasharray="4 3"' in spo2_chart
    assert ">92</text>" in spo2_chart and ">96</text>" in spo2_chart


def test_the_baseline_band_is_drawn_once_enough_readings_exist(
    client: TestClient, world: World, db: Conn
) -> None:
    patient(db, world.own, "p-band", "Bent Band")
    _daily_spo2(db, world, "p-band", 20)
    login(client, world.nurse)
    page = client.get("/patients/p-band").text
    chart = _chart(page, "spo2")
    assert chart.count('class="chart-band"') == 1 and chart.count('class="chart-baseline"') == 1
    assert "Usual value for this patient (personal baseline): 96" in chart
    # Too few readings for a baseline: no band, and the description does not claim one.
    pulse_chart = _chart(client.get("/patients/p-high").text, "pulse")
    assert "chart-band" not in pulse_chart and "personal baseline" not in pulse_chart


def test_the_window_is_7_30_or_90_days_30_by_default(client: TestClient, world: World, db: Conn) -> None:
    patient(db, world.own, "p-window", "Vera Window")
    for day in (2, 20, 60):
        observation(db, world.own, "p-window", "spo2", world.now - timedelta(days=day), 95)
    login(client, world.nurse)

    def count(path: str) -> int:
        return len(_marks(_chart(client.get(path).text, "spo2")))

    assert count("/patients/p-window") == 2
    assert count("/patients/p-window?days=7") == 1
    assert count("/patients/p-window?days=90") == 3
    assert count("/patients/p-window?days=12") == 2  # not a window offered: the default
    observation(db, world.own, "p-window", "body-weight", world.now - timedelta(days=20), 70)
    weight = _chart(client.get("/patients/p-window?days=7").text, "weight")
    assert "No readings in the last 7 days." in weight and "<svg" not in weight
    switch = client.get("/patients/p-window?days=7").text
    assert re.search(r'href="/patients/p-window\?days=7#vitals" aria-current="page"', switch)


def test_a_scale_in_pounds_plots_in_kilograms(client: TestClient, world: World, db: Conn) -> None:
    patient(db, world.own, "p-pounds", "Poul Pounds")
    observation(db, world.own, "p-pounds", "body-weight", world.now - timedelta(hours=3), 180)
    # The device sent pounds; the row was written without the canonical columns (as an import may),
    # so the database's own conversion of migration 0006 supplies them.
    db.execute("UPDATE observations SET unit = '[lb_av]' WHERE patient_id = 'p-pounds'")
    login(client, world.nurse)
    (mark,) = _marks(_chart(client.get("/patients/p-pounds").text, "weight"))
    assert mark[1].startswith("81.6 kg")
    table = client.get("/patients/p-pounds/readings").text
    assert "81.6 kg" in table and "sent as 180 lb" in table


def test_risk_assessments_are_shown_by_method_with_reasons_and_trend(
    client: TestClient, world: World, db: Conn
) -> None:
    earlier = score(db, world.own, "p-med-early", 3, "low", world.now - timedelta(days=2))
    db.execute("UPDATE scores SET computed_at = now() - interval '2 days' WHERE id = %s", (earlier,))
    rule = {"rule": "hf-weight-gain-3d", "reason": "Weight 81.4 kg, 2.4 kg above the lowest of 3 days"}
    score(db, world.own, "p-med-early", 1, "medium", world.now, rule, method="hf-weight-gain-3d")
    risk = {"model": "v1", "reasons": ["Oxygen saturation falling over 7 days"]}
    score(db, world.own, "p-med-early", 0.23, "unbanded", world.now, risk, method="admission-risk-30d")
    login(client, world.nurse)
    history = _section(client.get("/patients/p-med-early").text, "risk")
    titles = re.findall(r'<h3 id="method-\d+">([^<]+)</h3>', history)
    assert titles == ["NEWS2", "30-day admission risk", "Heart-failure weight gain"]
    assert "trend: rising" in history and "Pulse 112 /min: 2 points" in history
    assert "Oxygen saturation falling over 7 days" in history and "23 %" in history
    assert "2.4 kg above the lowest of 3 days" in history


def test_devices_show_last_contact_and_battery_when_reported(
    client: TestClient, world: World, db: Conn
) -> None:
    patient(db, world.own, "p-dev", "Dorte Device")
    device(db, world.own, "p-dev", "dev-p-dev-spo2", "pulse-oximeter")
    device(db, world.own, "p-dev", "dev-p-dev-body-weight", "scale")
    observation(db, world.own, "p-dev", "spo2", world.now - timedelta(hours=5), 96)
    # The hub sends a device's Battery Level (0x2A19) as a "battery-level" reading (seed has no such kind).
    db.execute(
        "INSERT INTO observations (municipality_id, identifier, patient_id, hub_id, device_id, kind, loinc,"
        " effective, value, unit, resource) VALUES (%s, 'bat-1', 'p-dev', 'hub-p-dev', 'dev-p-dev-spo2',"
        " 'battery-level', '', %s, 80, '%%', %s)",
        (
            world.own,
            world.now - timedelta(hours=4),
            Jsonb({"resourceType": "Observation", "status": "final"}),
        ),
    )
    login(client, world.nurse)
    devices = _section(client.get("/patients/p-dev").text, "devices")
    oximeter = devices[devices.index("dev-p-dev-spo2") :].split("</tr>")[0]
    scale = devices[devices.index("dev-p-dev-body-weight") :].split("</tr>")[0]
    assert "Pulse oximeter" in oximeter and "80 %" in oximeter
    assert "Scale" in scale and "not reported" in scale and "none yet" in scale
    assert "Hub hub-p-dev: last contact" in devices


def test_reviews_of_the_patient_are_listed(client: TestClient, world: World, db: Conn) -> None:
    record_review(db, User(world.nurse, world.own, "nurse"), "p-low", "phone-call", "Felt fine", "green")
    login(client, world.nurse)
    reviews = _section(client.get("/patients/p-low").text, "reviews")
    assert "Felt fine" in reviews and "Phone call" in reviews and world.nurse in reviews
    assert "Not reviewed yet." in _section(client.get("/patients/p-high").text, "reviews")


def test_the_readings_table_is_behind_a_link_paged_and_triaged(
    client: TestClient, world: World, db: Conn
) -> None:
    patient(db, world.own, "p-many", "Mads Many")
    for minute in range(60):
        observation(db, world.own, "p-many", "spo2", world.now - timedelta(minutes=minute), 91 + minute % 6)
    login(client, world.nurse)
    overview = client.get("/patients/p-many").text
    assert 'href="/patients/p-many/readings"' in overview and '<table class="readings"' not in overview
    first = client.get("/patients/p-many/readings")
    assert first.status_code == 200
    assert first.text.count("<tr>") == 1 + 50 and 'href="?page=2" rel="next"' in first.text
    assert "Red: below 92 %" in first.text and "Yellow: below 96 %" in first.text
    second = client.get("/patients/p-many/readings?page=2").text
    assert second.count("<tr>") == 1 + 10 and 'rel="next"' not in second and 'href="?page=1"' in second
    assert audit_rows(db, "view-readings") == [(world.nurse, world.own, "view-readings", "p-many")] * 2
    high = client.get("/patients/p-high/readings").text  # a panel: its worst component, its own unit
    assert "95/61 mmHg</td>" in high and "Yellow: below 111 mmHg" in high


def test_a_patient_outside_the_viewers_assignment_is_not_found_on_every_page(
    client: TestClient, world: World, db: Conn
) -> None:
    db.execute(
        "INSERT INTO care_teams (municipality_id, id, name) VALUES (%s, 'team-b', 'Team B')", (world.own,)
    )
    patient(db, world.own, "p-team-b", "Tove Team")
    db.execute("UPDATE patients SET care_team_id = 'team-b' WHERE id = 'p-team-b'")
    login(client, world.nurse)
    paths = ["/patients/p-team-b", "/patients/p-team-b/readings", "/patients/p-team-b/thresholds"]
    paths += [f"/patients/{world.other_patient}", "/patients/nobody", "/patients/bad%00id"]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 404, path
        assert "There is no such patient among yours." in response.text
        assert "Tove Team" not in response.text and "Frede Other" not in response.text
    assert audit_rows(db, "view-patient") == [] and audit_rows(db, "view-readings") == []


def test_the_patients_gp_sees_the_page_and_an_administrator_does_not(
    client: TestClient, world: World, db: Conn
) -> None:
    create_user(db, "dr-gp", world.other, "gp", "gp password")
    db.execute("UPDATE patients SET gp_username = 'dr-gp' WHERE id = 'p-high'")
    create_user(db, "admin", world.own, "municipality_admin", "admin password")
    login(client, "dr-gp", "gp password")
    assert client.get("/patients/p-high").status_code == 200
    assert client.get("/patients/p-low").status_code == 404
    client.cookies.clear()
    login(client, "admin", "admin password")
    assert client.get("/patients/p-high").status_code == 403


def test_the_header_shows_phone_gp_and_care_team(client: TestClient, world: World, db: Conn) -> None:
    user(db, "gp-user", world.own, "some password")
    db.execute("UPDATE users SET role = 'gp', full_name = 'Dr. Grete Hansen' WHERE username = 'gp-user'")
    db.execute("UPDATE patients SET phone = '+45 12 34 56 78', gp_username = 'gp-user' WHERE id = 'p-low'")
    login(client, world.nurse)
    page = client.get("/patients/p-low").text
    assert 'href="tel:+4512345678"' in page and "Dr. Grete Hansen" in page and "Hjemmesygeplejen" in page


def test_patient_page_shows_the_time_of_a_reading_in_copenhagen(
    client: TestClient, world: World, db: Conn
) -> None:
    patient(db, world.own, "p-time", "Tid Time")
    winter = datetime.fromisoformat("2026-01-15T11:30:00+00:00")
    observation(db, world.own, "p-time", "spo2", winter, 97)
    login(client, world.nurse)
    table = client.get("/patients/p-time/readings").text
    assert "12:30" in table and "11:30" not in table
