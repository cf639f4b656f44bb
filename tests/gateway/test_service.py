"""``gateway.service.Gateway``, the one composition root of ``gateway serve`` and the demo, given a running
database and broker as the demo gives them: ingest in a thread announces new data by NOTIFY exactly as
worker processes do; the gateway counts ingest from the workers' own rows and waits for the scorer
behind a barrier; the 30-day admission risk runs on the readings that arrived, is served as FHIR
RiskAssessments, and runs on the short interval the demo's settings give it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from delivery.delivery_helpers import HUB, MUNICIPALITY, PATIENT, TEST_MUNICIPALITY, home, readings
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from fhir_contract.observation import build_bundle
from gateway.alerts.admission_risk import METHOD
from gateway.api.auth import create_user
from gateway.broker import BrokerEndpoint, free_port
from gateway.service import Gateway, GatewayError, GatewayOptions
from gateway.settings import GatewaySettings
from gateway.store.enrolment import enroll_homes
from gateway.store.repository import Patient

NURSE, PASSWORD = "nurse.test", "correct horse battery"


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def enroll_with_history(database_url: str) -> None:
    """The home of ``delivery_helpers`` with what the 30-day risk reads too (birth date, a condition),
    and a nurse who may read the FHIR API."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        patient = Patient(
            MUNICIPALITY, PATIENT, "Synthetic test patient", birth_date=date(1944, 5, 6), conditions=("copd",)
        )
        enroll_homes(conn, [TEST_MUNICIPALITY], [home(patient)])
        create_user(conn, NURSE, MUNICIPALITY, "nurse", PASSWORD)


def publish(endpoint: BrokerEndpoint, count: int) -> None:
    """``count`` oximeter readings of the last two days, 10 to a Bundle, as a hub sends them."""
    protocol = MQTTProtocolVersion.MQTTv5 if endpoint.mqtt5 else MQTTProtocolVersion.MQTTv311
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    try:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
        observations = readings(count, start, timedelta(minutes=30))
        for i in range(0, count, 10):
            topic = f"homewatch/v1/{MUNICIPALITY}/{HUB}/observations"
            payload = orjson.dumps(build_bundle(observations[i : i + 10]))
            client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def scores(database_url: str, method: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM scores WHERE patient_id = %s AND method = %s", (PATIENT, method)
        ).fetchone()
    return 0 if row is None else int(row[0])


@pytest.fixture
def gateway_in_a_thread(database_url: str, broker: BrokerEndpoint) -> Iterator[Gateway]:
    """The gateway as the demo starts it, given the database and broker, with ingest in a thread."""
    enroll_with_history(database_url)
    gateway = Gateway(GatewayOptions(database_url=database_url, broker=broker, workers=0, port=free_port()))
    try:
        gateway.start()
        yield gateway
    finally:
        gateway.stop()


def test_ingest_in_a_thread_reaches_the_scorer_by_notify_and_is_counted_from_its_rows(
    gateway_in_a_thread: Gateway, database_url: str, broker: BrokerEndpoint
) -> None:
    gateway = gateway_in_a_thread
    assert gateway.workers is not None and gateway.workers.in_thread
    assert set(gateway.workers.pids().values()) == {os.getpid()}
    publish(broker, 40)
    assert wait_for(lambda: gateway.ingest_counts().observations_stored == 40), gateway.ingest_counts()
    # The scorer only LISTENs: no call from ingest reaches it in any other way.
    assert gateway.wait_scored(timeout=30)
    assert scores(database_url, "news2") > 0
    counts = gateway.ingest_counts()
    assert (counts.duplicates, counts.rejected) == (0, 0)


def test_admission_risk_scored_on_arrived_readings_is_served_as_risk_assessments(
    gateway_in_a_thread: Gateway, database_url: str, broker: BrokerEndpoint
) -> None:
    gateway = gateway_in_a_thread
    # The run at start found no readings: nobody was scored.
    assert gateway.admission_risk is not None and wait_for(lambda: gateway.admission_risk.runs >= 1)
    assert scores(database_url, METHOD) == 0
    publish(broker, 40)
    assert wait_for(lambda: gateway.ingest_counts().observations_stored == 40)
    assert gateway.score_admission_risk_now(timeout=60)
    assert scores(database_url, METHOD) == 1
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        login = client.post("/login/access-token", data={"username": NURSE, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        bundle = client.get("/fhir/RiskAssessment", params={"patient": PATIENT}, headers=headers).json()
    risks = [
        e["resource"]
        for e in bundle.get("entry", [])
        if e["resource"]["code"]["text"] == "Risk of hospital admission within 30 days"
    ]
    assert len(risks) == 1 and 0 < risks[0]["prediction"][0]["probabilityDecimal"] < 1


def test_a_short_risk_interval_scores_again_by_itself(database_url: str, broker: BrokerEndpoint) -> None:
    enroll_with_history(database_url)
    # The demo's settings: one simulated day of real time between runs (here 2 s).
    settings = GatewaySettings(environment="development", risk_interval_hours=2 / 3600)
    options = GatewayOptions(database_url=database_url, broker=broker, workers=0, port=free_port())
    gateway = Gateway(options, settings)
    try:
        gateway.start()
        publish(broker, 20)
        assert wait_for(lambda: scores(database_url, METHOD) >= 2, timeout=60)
    finally:
        gateway.stop()


def test_a_broker_url_and_a_running_broker_together_are_refused(broker: BrokerEndpoint) -> None:
    with pytest.raises(GatewayError):
        Gateway(GatewayOptions(mqtt_url=broker.url, broker=broker))
