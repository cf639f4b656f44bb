"""Hostile and broken messages never stop ingest, and no hub reaches another's readings (issue 15).

Real Mosquitto (or amqtt), real PostgreSQL, the real ``IngestWorker``. Proves:

- the two poison messages of the issue (an effective time at the end of the calendar, an entry of 1,000
  nested arrays) are answered and quarantined, and the ten good readings sent after them are stored
  (before: 0 of 10, the worker retrying the batch for ever);
- a message whose storing fails in a way no retry mends is set aside whole in the quarantine, and if even
  that fails its bytes go to ``dead_letters``; either way it is acknowledged, answered on the hub's
  ``errors`` topic, counted in ``/metrics``' table, and the messages around it are stored;
- what a retry may mend (the connection, the schema) is told apart from what a message caused, on errors
  a real PostgreSQL raises;
- a worker that holds messages without committing any shows as stalled to ``/healthz``, and healthy
  again once it moves;
- a hub of another municipality that sends a reading under a hub's identifier first neither hides that
  hub's reading nor gets it told "stored"; a reading re-sent under its own key with other values is a
  conflict, quarantined and reported, never counted as stored.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from fastapi.testclient import TestClient
from injected_faults import refuse_quarantine
from observation_factory import BASE_TIME, Home, bundle, identifier
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from psycopg_pool import ConnectionPool

from fhir_contract.observation import build_bundle
from gateway.api.app import create_app
from gateway.broker import BrokerEndpoint
from gateway.ingest.mqtt_ingest import IngestWorker
from gateway.settings import GatewaySettings
from gateway.store.errors import is_transient
from gateway.store.repository import count_observations, quarantined

HOME = Home()
# Another municipality's home, whose hub tries to squat HOME's identifiers.
INTRUDER = Home(municipality_id="9101", patient_id="p9", hub_id="hub9", oximeter_id="OXI9", cuff_id="BPC9")


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


class TestHub:
    """A hub's MQTT client: publishes Bundles at QoS 1, collects its errors and receipts."""

    __test__ = False

    def __init__(self, endpoint: BrokerEndpoint, home: Home) -> None:
        protocol = MQTTProtocolVersion.MQTTv5 if endpoint.mqtt5 else MQTTProtocolVersion.MQTTv311
        self.home = home
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"hub-{uuid.uuid4().hex[:8]}", protocol=protocol
        )
        self.errors: list[dict[str, Any]] = []
        self.receipts: list[dict[str, Any]] = []
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()
        prefix = f"homewatch/v1/{home.municipality_id}/{home.hub_id}"
        self.client.subscribe([(f"{prefix}/errors", 1), (f"{prefix}/receipts", 1)])
        assert subscribed.wait(10)

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        target = self.errors if message.topic.endswith("/errors") else self.receipts
        target.append(orjson.loads(message.payload))

    def publish(self, payloads: list[bytes]) -> None:
        for payload in payloads:
            info = self.client.publish(self.home.topic, payload, qos=1)
            info.wait_for_publish(timeout=20)
            assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def enrolled(database_url: str) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        HOME.enroll(conn)
        INTRUDER.enroll(conn)
    return database_url


@pytest.fixture
def hub(any_broker: BrokerEndpoint) -> Iterator[TestHub]:
    client = TestHub(any_broker, HOME)
    yield client
    client.close()


def start_worker(database_url: str, endpoint: BrokerEndpoint, **settings: Any) -> IngestWorker:
    worker = IngestWorker(
        GatewaySettings(
            database_url=database_url, mqtt_host=endpoint.host, mqtt_port=endpoint.port, **settings
        ),
        endpoint=endpoint,
        client_id=f"ingest-{endpoint.port}",
    )
    worker.start()
    assert worker.wait_until_subscribed(10)
    return worker


def stored(database_url: str, home: Home = HOME) -> int:
    with psycopg.connect(database_url) as conn:
        return count_observations(conn, home.municipality_id)


def codes(report: dict[str, Any]) -> list[str]:
    return [issue["details"]["coding"][0]["code"] for issue in report["issue"]]


def rejections(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT reason, sum(count) FROM ingest_rejections GROUP BY reason").fetchall()
    return {str(reason): int(count) for reason, count in rows}


# --- the issue's two poison messages -----------------------------------------------------------------


def test_the_issues_poison_messages_are_answered_and_the_good_readings_behind_them_stored(
    enrolled: str, any_broker: BrokerEndpoint, hub: TestHub
) -> None:
    end_of_time = HOME.spo2(95, BASE_TIME.replace(minute=1))
    end_of_time["effectiveDateTime"] = "9999-12-31T23:59:59-14:00"
    start_of_time = HOME.spo2(95, BASE_TIME.replace(minute=2))
    start_of_time["effectiveDateTime"] = "0001-01-01T00:00:00+14:00"
    # orjson writes no more than 254 levels, so the nested entry is written by hand (it reads 1,024).
    deep = orjson.dumps(build_bundle([HOME.spo2(95, BASE_TIME.replace(minute=3))]))
    deep = deep.replace(b'"resource":{', b'"resource":' + b"[" * 1000 + b"]" * 1000 + b',"was":{', 1)
    good = [bundle([reading]) for reading in HOME.readings(10, BASE_TIME.replace(hour=9))]
    worker = start_worker(enrolled, any_broker)
    try:
        hub.publish([bundle([end_of_time, start_of_time]), deep, *good])
        assert wait_for(lambda: worker.counters().messages_acked == 12 and len(hub.receipts) == 12)
    finally:
        worker.stop()
    assert stored(enrolled) == 10  # before the fix: 0, the worker stuck on the first message
    assert [codes(report) for report in hub.errors] == [
        ["implausible-time", "implausible-time"],
        ["invalid-fhir"],
    ]
    assert [r["rejected"] for r in hub.receipts[:2]] == [2, 1]
    with psycopg.connect(enrolled) as conn:
        rows = {r.reason.split(":")[0]: r for r in quarantined(conn, HOME.municipality_id)}
    # The nested entry could not be written as JSON again: the whole message is kept in its place.
    assert rows["invalid-fhir"].payload.startswith('{"resourceType":"Bundle"')
    assert "[" * 1000 + "]" * 1000 in rows["invalid-fhir"].payload
    assert rejections(enrolled) == {"implausible-time": 2, "invalid-fhir": 1}


# --- failures no retry mends: set aside, dead-lettered --------------------------------------------------


def test_a_message_that_cannot_be_stored_is_set_aside_whole_and_the_others_stored(
    enrolled: str, any_broker: BrokerEndpoint, hub: TestHub
) -> None:
    # Quarantining the bad entry fails, quarantining the whole message works.
    refuse_quarantine(enrolled, "NEW.reason LIKE 'impossible-value%'")
    bad = HOME.spo2(96, BASE_TIME.replace(minute=5))
    bad["valueQuantity"]["value"] = 140
    before, after = HOME.readings(3, BASE_TIME.replace(hour=1)), HOME.readings(3, BASE_TIME.replace(hour=2))
    worker = start_worker(enrolled, any_broker)
    try:
        hub.publish(
            [bundle(before), bundle([HOME.spo2(94, BASE_TIME.replace(minute=6)), bad]), bundle(after)]
        )
        assert wait_for(lambda: worker.counters().messages_acked == 3 and len(hub.receipts) == 3)
    finally:
        worker.stop()
    assert stored(enrolled) == 6  # the set-aside message's good reading is in the quarantine with it
    assert [codes(report) for report in hub.errors] == [["unstorable"]]
    receipts = {r["bundle"]: (r["accepted"], r["rejected"]) for r in hub.receipts}
    assert sorted(receipts.values()) == [(0, 2), (3, 0), (3, 0)]
    with psycopg.connect(enrolled) as conn:
        [row] = quarantined(conn, HOME.municipality_id)
    assert row.reason.startswith("unstorable: the message could not be stored: ")
    assert identifier(bad) in row.payload  # the whole message, as received
    assert worker.counters().messages_set_aside == 1
    assert rejections(enrolled) == {"unstorable": 1}


def test_a_message_that_cannot_even_be_quarantined_is_dead_lettered_with_its_bytes(
    enrolled: str, any_broker: BrokerEndpoint, hub: TestHub
) -> None:
    refuse_quarantine(enrolled, "NEW.payload LIKE '%poison-marker%'")
    poison = b'{"resourceType": "Bundle", "type": "batch", "poison-marker": [' + b"1," * 10 + b"1"
    good = HOME.readings(4, BASE_TIME.replace(hour=4))
    worker = start_worker(enrolled, any_broker)
    try:
        hub.publish([bundle(good[:2]), poison, bundle(good[2:])])
        assert wait_for(lambda: worker.counters().messages_acked == 3 and len(hub.errors) == 1)
    finally:
        worker.stop()
    assert stored(enrolled) == 4
    assert codes(hub.errors[0]) == ["dead-lettered"]
    with psycopg.connect(enrolled) as conn:
        [(topic, reason, payload)] = conn.execute(
            "SELECT topic, reason, payload FROM dead_letters"
        ).fetchall()
    assert (bytes(topic).decode(), bytes(payload)) == (HOME.topic, poison)
    assert "could be neither stored nor quarantined" in reason
    assert rejections(enrolled) == {"dead-lettered": 1}


def test_what_a_retry_may_mend_is_told_from_what_a_message_caused(database_url: str) -> None:
    def error_of(statement: str) -> psycopg.Error:
        with psycopg.connect(database_url, autocommit=True) as conn, pytest.raises(psycopg.Error) as caught:
            conn.execute(statement)
        return caught.value

    assert not is_transient(error_of("SELECT 1 / 0"))  # 22012: the data
    assert not is_transient(error_of("SELECT '\\u0000'::jsonb"))  # 22P05: jsonb cannot hold NUL
    assert not is_transient(error_of("INSERT INTO municipalities (id, name) VALUES (NULL, 'x')"))  # 23502
    too_long = "SELECT string_agg(md5(i::text), '') FROM generate_series(1, 300) i"  # incompressible
    assert not is_transient(
        error_of(f"CREATE TEMPORARY TABLE k (x text PRIMARY KEY); INSERT INTO k {too_long}")
    )
    assert not is_transient(OverflowError("date value out of range"))
    assert is_transient(error_of("SELECT * FROM a_table_a_migration_has_not_made_yet"))  # 42P01
    with psycopg.connect(database_url, autocommit=True) as conn, pytest.raises(psycopg.Error) as lost:
        conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")  # the server goes away
    assert is_transient(lost.value)
    assert not is_transient(RecursionError("maximum recursion depth exceeded"))
    assert is_transient(ConnectionResetError())


# --- a stalled worker is unhealthy ---------------------------------------------------------------------


def test_healthz_turns_unhealthy_while_a_worker_holds_messages_without_progress(
    enrolled: str, broker: BrokerEndpoint, hub_for_broker: TestHub
) -> None:
    settings = GatewaySettings(database_url=enrolled, ingest_stall_after_s=1.0)
    worker = start_worker(enrolled, broker)
    with (
        ConnectionPool(enrolled, min_size=1, max_size=2) as pool,
        TestClient(create_app(settings, pool)) as app,
    ):
        with psycopg.connect(enrolled) as blocker:
            blocker.execute("LOCK TABLE observation_keys IN ACCESS EXCLUSIVE MODE")  # storing now waits
            hub_for_broker.publish([bundle(HOME.readings(3))])
            assert wait_for(lambda: worker.counters().messages_received == 1)
            assert wait_for(lambda: app.get("/healthz").status_code == 503, timeout=15)
            health = app.get("/healthz").json()
            assert health["database"] is True and health["status"] == "unhealthy"
            [stalled] = health["stalled_workers"]
            assert stalled["worker"] == f"ingest-{broker.port}" and stalled["in_hand"] == 1
            assert stalled["stalled_for_s"] >= 1.0
        # The lock is gone with its transaction: the batch commits, the next heartbeat clears the stall.
        assert wait_for(lambda: stored(enrolled) == 3)
        assert wait_for(lambda: app.get("/healthz").status_code == 200, timeout=15)
    worker.stop()


@pytest.fixture
def hub_for_broker(broker: BrokerEndpoint) -> Iterator[TestHub]:
    client = TestHub(broker, HOME)
    yield client
    client.close()


# --- no hub reaches another's readings -------------------------------------------------------------------


def test_a_hub_of_another_municipality_cannot_make_a_reading_vanish_by_sending_its_identifier_first(
    enrolled: str, any_broker: BrokerEndpoint, hub: TestHub
) -> None:
    genuine = HOME.spo2(93, BASE_TIME.replace(minute=30))
    squatter = INTRUDER.spo2(60, BASE_TIME.replace(minute=30))
    squatter["identifier"] = genuine["identifier"]  # predictable: device-patient-kind-seconds
    intruder = TestHub(any_broker, INTRUDER)
    worker = start_worker(enrolled, any_broker)
    try:
        intruder.publish([bundle([squatter])])
        assert wait_for(lambda: len(intruder.receipts) == 1)
        hub.publish([bundle([genuine])])
        assert wait_for(lambda: len(hub.receipts) == 1)
    finally:
        worker.stop()
        intruder.close()
    assert hub.receipts[0]["accepted"] == 1 and hub.errors == []
    with psycopg.connect(enrolled) as conn:
        rows = conn.execute(
            "SELECT municipality_id, value FROM observations WHERE identifier = %s ORDER BY 1",
            (identifier(genuine),),
        ).fetchall()
    assert rows == [("0101", 93.0), ("9101", 60.0)]  # before the fix: only 9101's, 0101's dropped


def test_a_reading_resent_under_its_key_with_other_values_is_a_conflict_never_stored(
    enrolled: str, any_broker: BrokerEndpoint, hub: TestHub
) -> None:
    first = HOME.spo2(95, BASE_TIME.replace(minute=40))
    changed = HOME.spo2(70, BASE_TIME.replace(minute=40))
    worker = start_worker(enrolled, any_broker)
    try:
        hub.publish([bundle([first]), bundle([first]), bundle([changed, HOME.pulse(71)])])
        assert wait_for(lambda: len(hub.receipts) == 3 and len(hub.errors) == 1)
    finally:
        worker.stop()
    assert [(r["accepted"], r["rejected"]) for r in hub.receipts] == [(1, 0), (1, 0), (1, 1)]
    assert codes(hub.errors[0]) == ["conflict"]
    assert hub.errors[0]["issue"][0]["expression"] == ["Bundle.entry[0].resource"]
    assert (worker.counters().observations_stored, worker.counters().duplicates) == (2, 1)
    with psycopg.connect(enrolled) as conn:
        [row] = quarantined(conn, HOME.municipality_id)
        value = conn.execute(
            "SELECT value FROM observations WHERE identifier = %s", (identifier(first),)
        ).fetchone()
    assert row.reason.startswith("conflict: ") and '"value":70' in row.payload
    assert value == (95.0,)
    assert rejections(enrolled) == {"conflict": 1}
