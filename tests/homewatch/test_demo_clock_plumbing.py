"""Mid-demo, the gateway and its web UI live in the demo's simulated present: a gateway handed a
simulated clock (``GatewayOptions.clock``, as the demo hands it its ``SimClock``) stamps scores, alerts
and 30-day risks with it, and its pages measure ages from it. Ten days behind the wall clock, a reading
taken twenty minutes ago in simulated time reads "20 min ago", never "10 days ago"."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from fhir_contract.observation import build_observation
from fhir_contract.readings import Component, Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.alerts.admission_risk import METHOD as ADMISSION_RISK
from gateway.api import presenters
from gateway.api.auth import create_user
from gateway.api.clock import ui_now
from gateway.broker import BrokerEndpoint, free_port
from gateway.service import Gateway, GatewayOptions
from gateway.settings import GatewaySettings
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.new_data import announce_new_data
from gateway.store.repository import Municipality, Patient, insert_observations
from homewatch.demo.clock import SimClock

BEHIND = timedelta(days=10)
PASSWORD = "a-nurse-password"


def test_a_page_takes_its_now_from_the_app_clock_and_the_wall_clock_without_one() -> None:
    app = FastAPI()

    @app.get("/now")
    def now(request: Request) -> str:
        return ui_now(request).isoformat()

    with TestClient(app) as client:
        assert abs(datetime.fromisoformat(client.get("/now").json()) - datetime.now(UTC)) < timedelta(
            seconds=5
        )
        app.state.clock = lambda: datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
        assert client.get("/now").json() == "2026-03-01T12:00:00+00:00"


def _store_sick_vitals(conn: psycopg.Connection[Any], at: datetime) -> None:
    """NEWS2 9 (SpO2 88, pulse 130, systolic 90, 39.4 °C): an alert's worth."""
    readings = [
        Reading("spo2", Quantity(Decimal(88), "%")),
        Reading("pulse-rate-oximeter", Quantity(Decimal(130), "/min")),
        Reading(
            "blood-pressure",
            components=(
                Component("systolic", Quantity(Decimal(90), "mm[Hg]")),
                Component("diastolic", Quantity(Decimal(55), "mm[Hg]")),
            ),
        ),
        Reading("body-temperature", Quantity(Decimal("39.4"), "Cel")),
    ]
    rows = [
        validate_observation(
            build_observation(r, patient_id="p-1", device_id="dev-1", hub_id="hub-1", effective=at)
        )
        for r in readings
    ]
    insert_observations(conn, "0101", "hub-1", rows)


@pytest.fixture
def behind_gateway(database_url: str, broker: BrokerEndpoint) -> Iterator[tuple[Gateway, SimClock]]:
    """A gateway on a simulated clock ten days behind the wall clock, at real speed: mid-demo."""
    clock = SimClock(datetime.now(UTC) - BEHIND, speed=1.0)
    with psycopg.connect(database_url, autocommit=True) as conn:
        patient = Patient("0101", "p-1", "Synthetic patient 1", conditions=("copd",), synthetic=True)
        enroll_homes(
            conn,
            [Municipality("0101", "København")],
            [Home(patient, "hub-1", (HomeDevice("dev-1", "pulse-oximeter"),))],
        )
        create_user(conn, "nurse.test", "0101", "nurse", PASSWORD)
    options = GatewayOptions(
        database_url=database_url, broker=broker, workers=0, port=free_port(), clock=clock.now
    )
    gateway = Gateway(options, GatewaySettings(environment="development"))
    gateway.start()
    try:
        yield gateway, clock
    finally:
        gateway.stop()


def _log_in(client: httpx.Client, username: str, password: str) -> None:
    """Log in through the form, as a browser does: its anti-forgery token and cookie first."""
    form = re.search(r'action="/login".*?name="csrf" value="([^"]+)"', client.get("/login").text, re.DOTALL)
    assert form is not None
    answer = client.post("/login", data={"username": username, "password": password, "csrf": form[1]})
    assert answer.status_code == 200 and "/login" not in str(answer.url)


def _between(value: datetime, low: datetime, high: datetime) -> bool:
    return low - timedelta(seconds=1) <= value <= high + timedelta(seconds=1)


def test_scores_alerts_and_pages_mid_demo_are_of_the_simulated_present(
    behind_gateway: tuple[Gateway, SimClock], database_url: str
) -> None:
    gateway, clock = behind_gateway
    taken = clock.now() - timedelta(minutes=20, seconds=30)  # 30 s from a minute's edge: no flaky rounding
    before = clock.now()
    with psycopg.connect(database_url, autocommit=True) as conn:
        _store_sick_vitals(conn, taken)
        announce_new_data(conn, "homewatch_new_data", {"0101": {"p-1": taken}})
    assert gateway.wait_scored(30.0)
    assert gateway.score_admission_risk_now(60.0)
    after = clock.now()

    with psycopg.connect(database_url) as conn:
        scores = dict(conn.execute("SELECT method, computed_at FROM scores").fetchall())
        (raised_at,) = conn.execute("SELECT raised_at FROM alerts WHERE patient_id = 'p-1'").fetchone() or (
            None,
        )
    # Stamped by the simulated clock, ten days before the wall clock's now.
    assert raised_at is not None and _between(raised_at, before, after)
    assert _between(scores["news2"], before, after)
    assert _between(scores[ADMISSION_RISK], before, after)

    # English, the language ``presenters.age`` speaks outside a request (the pages' default is Danish).
    english = {"Accept-Language": "en"}
    with httpx.Client(base_url=gateway.url, follow_redirects=True, timeout=10, headers=english) as client:
        _log_in(client, "nurse.test", PASSWORD)
        page = client.get("/").text
    shown_at = clock.now()
    assert presenters.age(taken, shown_at) in page  # "20 min ago"
    assert presenters.age(taken, datetime.now(UTC)) not in page  # "10 days ago": the wall clock's age
    assert presenters.age(raised_at, shown_at) in page  # the alert was raised when its data came in
