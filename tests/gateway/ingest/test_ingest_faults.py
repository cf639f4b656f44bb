"""Ingest under faults, as ``homewatch gateway serve`` runs it: worker processes (``IngestWorkers``) over
a real Mosquitto and a real PostgreSQL, with a publisher sending valid Observations the whole time.

Proves: a worker process SIGKILLed mid-stream is restarted and nothing is lost or stored twice; a
PostgreSQL restart mid-stream (every database connection dropped) pauses ingest, which resumes by itself
and loses nothing; two workers on one shared subscription store everything once, both take part, and the
scorer in another process hears of the new data through NOTIFY; poison messages in the middle of the
stream are each answered and kept, and hold back none of the readings around them. Each ends with a
reconciliation from PostgreSQL (``tests/reconciliation.py``).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from delivery.delivery_helpers import (
    HUB,
    MUNICIPALITY,
    PATIENT,
    enroll,
    identifiers,
    needs_mosquitto,
    readings,
    stored_count,
    stored_identifiers,
    wait_for,
)
from injected_faults import refuse_quarantine
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from reconciliation import reconcile

from fhir_contract.observation import build_bundle
from gateway.alerts.scorer import Scorer
from gateway.broker import BrokerEndpoint
from gateway.settings import GatewaySettings
from gateway.store.embedded import EmbeddedPostgres
from gateway.store.migrate import migrate
from gateway.workers import IngestWorkers

pytestmark = [needs_mosquitto, pytest.mark.faults]

TOPIC = f"homewatch/v1/{MUNICIPALITY}/{HUB}/observations"
PER_BUNDLE = 10
BUNDLES = 600  # 6,000 Observations
# The stream lasts a few seconds (a pause of PACE_S every PACE_EVERY Bundles), so faults land inside it.
PACE_EVERY, PACE_S = 10, 0.05


class Publisher(threading.Thread):
    """Publishes ``bundles`` at QoS 1 (MQTT 5) at a steady pace, then waits for every PUBACK."""

    def __init__(self, endpoint: BrokerEndpoint, bundles: list[list[dict[str, Any]]]) -> None:
        super().__init__(name="publisher", daemon=True)
        self.bundles = bundles
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-publisher-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.max_inflight_messages_set(100)
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()
        self.published = 0

    def run(self) -> None:
        infos = []
        for i, observations in enumerate(self.bundles):
            infos.append(self.client.publish(TOPIC, orjson.dumps(build_bundle(observations)), qos=1))
            if i % PACE_EVERY == PACE_EVERY - 1:
                time.sleep(PACE_S)
        for info in infos:
            info.wait_for_publish(timeout=60)
        self.published = sum(info.is_published() for info in infos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def stream(bundles: int = BUNDLES) -> list[list[dict[str, Any]]]:
    observations = readings(bundles * PER_BUNDLE, step=timedelta(seconds=1))
    return [observations[i : i + PER_BUNDLE] for i in range(0, len(observations), PER_BUNDLE)]


def settings_for(database_url: str, endpoint: BrokerEndpoint) -> GatewaySettings:
    return GatewaySettings(
        database_url=database_url,
        mqtt_host=endpoint.host,
        mqtt_port=endpoint.port,
        ingest_client_prefix=f"ingest-{endpoint.port}",
    )


def sent_of(bundles: list[list[dict[str, Any]]]) -> set[str]:
    return identifiers([o for b in bundles for o in b])


def stored_per_worker(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT worker, observations_stored FROM ingest_metrics").fetchall()
    return {str(worker): int(stored) for worker, stored in rows}


def run_stream(database_url: str, endpoint: BrokerEndpoint, bundles: list[list[dict[str, Any]]]) -> Publisher:
    enroll(database_url)
    publisher = Publisher(endpoint, bundles)
    publisher.start()
    return publisher


def test_worker_process_killed_mid_stream_is_restarted_and_nothing_is_lost_or_doubled(
    database_url: str, broker: BrokerEndpoint
) -> None:
    bundles = stream()
    total = len(bundles) * PER_BUNDLE
    workers = IngestWorkers(settings_for(database_url, broker), broker, 1)
    workers.start()
    [client_id] = workers.pids()
    publisher = run_stream(database_url, broker, bundles)
    try:
        assert wait_for(lambda: stored_count(database_url) >= total // 5, timeout=60)
        victim = workers.pids()[client_id]
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        killed_at = stored_count(database_url)
        assert wait_for(lambda: workers.restarts()[client_id] == 1, timeout=15), "not restarted"
        assert workers.wait_ready(60)
        publisher.join(90)
        assert publisher.published == len(bundles)
        assert wait_for(lambda: stored_count(database_url) == total, timeout=90), stored_count(database_url)
    finally:
        workers.stop()
        publisher.close()
    assert killed_at < total, "the kill came after the stream: it proved nothing"
    assert stored_identifiers(database_url) == identifiers([o for b in bundles for o in b])
    figures = reconcile(database_url, "ingest worker SIGKILLed mid-stream", sent_of(bundles))
    assert (figures.sent, figures.lost, figures.duplicated, figures.quarantined) == (total, 0, 0, 0)
    # Each reading counted as new exactly once, across the killed worker and its successor.
    assert sum(stored_per_worker(database_url).values()) == total


@pytest.fixture
def restartable_postgres() -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A PostgreSQL of the test's own in a kept folder, so it can be stopped and started again."""
    base = Path(tempfile.mkdtemp(prefix="homewatch-pg-restart-"))
    server = EmbeddedPostgres(base / "pgdata")
    try:
        admin_url = server.start()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE faults")
        url = admin_url.replace("/postgres?", "/faults?")
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
        yield server, url
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_postgres_restarted_mid_stream_ingest_resumes_by_itself_and_loses_nothing(
    restartable_postgres: tuple[EmbeddedPostgres, str], broker: BrokerEndpoint
) -> None:
    server, database_url = restartable_postgres
    bundles = stream()
    total = len(bundles) * PER_BUNDLE
    workers = IngestWorkers(settings_for(database_url, broker), broker, 1)
    workers.start()
    publisher = run_stream(database_url, broker, bundles)
    try:
        assert wait_for(lambda: stored_count(database_url) >= total // 5, timeout=60)
        server.stop()  # pg_ctl stop: every connection of the worker is cut
        time.sleep(2.0)  # the stream goes on meanwhile; the broker holds what is unacknowledged
        assert server.start() is not None
        stopped_at = stored_count(database_url)
        publisher.join(90)
        assert publisher.published == len(bundles)
        assert wait_for(lambda: stored_count(database_url) == total, timeout=90), stored_count(database_url)
    finally:
        workers.stop()
        publisher.close()
    assert stopped_at < total, "the restart came after the stream: it proved nothing"
    assert workers.restarts() == dict.fromkeys(workers.restarts(), 0), "the worker had to be restarted"
    assert stored_identifiers(database_url) == identifiers([o for b in bundles for o in b])
    figures = reconcile(database_url, "PostgreSQL restarted: connections dropped", sent_of(bundles))
    assert (figures.sent, figures.lost, figures.duplicated, figures.quarantined) == (total, 0, 0, 0)
    assert sum(stored_per_worker(database_url).values()) == total


def test_two_workers_on_a_shared_subscription_store_everything_once_and_both_take_part(
    database_url: str, broker: BrokerEndpoint
) -> None:
    bundles = stream(400)
    total = len(bundles) * PER_BUNDLE
    settings = settings_for(database_url, broker)
    scorer = Scorer(database_url)
    scorer.start()
    scorer.listen(settings.scorer_channel)
    assert scorer.wait_listening(10)
    workers = IngestWorkers(settings, broker, 2)
    workers.start()
    publisher = run_stream(database_url, broker, bundles)
    try:
        publisher.join(90)
        assert wait_for(lambda: stored_count(database_url) == total, timeout=90), stored_count(database_url)
        # The scorer heard of the patient over NOTIFY, from the workers' processes.
        assert wait_for(lambda: scorer.scored > 0 and scorer.wait_idle(0.1), timeout=30)
    finally:
        workers.stop()
        publisher.close()
        scorer.stop()
    assert stored_identifiers(database_url) == identifiers([o for b in bundles for o in b])
    figures = reconcile(database_url, "two workers on one shared subscription", sent_of(bundles))
    assert (figures.sent, figures.lost, figures.duplicated, figures.quarantined) == (total, 0, 0, 0)
    per_worker = stored_per_worker(database_url)
    assert len(per_worker) == 2 and all(n > 0 for n in per_worker.values()), per_worker
    assert sum(per_worker.values()) == total
    with psycopg.connect(database_url) as conn:
        scored = conn.execute("SELECT count(*) FROM scores WHERE patient_id = %s", (PATIENT,)).fetchone()
    assert scored is not None and scored[0] > 0


def poison(bundles: list[list[dict[str, Any]]]) -> list[tuple[bytes, str]]:
    """Poison messages for the middle of the stream, each with the code it must end quarantined under:
    the issue's two, garbage, too many entries, a reading re-sent with another value, and two that the
    database refuses (the test's trigger, below) so that they must be set aside or dead-lettered."""
    end_of_time = dict(bundles[0][0], effectiveDateTime="9999-12-31T23:59:59-14:00")
    deep = orjson.dumps(build_bundle([bundles[0][1]])).replace(
        b'"resource":{', b'"resource":' + b"[" * 1000 + b"]" * 1000 + b',"was":{', 1
    )
    changed = dict(bundles[1][0], valueQuantity={**bundles[1][0]["valueQuantity"], "value": 50})
    refused = dict(bundles[2][0], effectiveDateTime=bundles[2][0]["effectiveDateTime"])
    refused["valueQuantity"] = {**refused["valueQuantity"], "value": 31}  # impossible: its quarantine fails
    return [
        (orjson.dumps(build_bundle([end_of_time])), "implausible-time"),
        (deep, "invalid-fhir"),
        (b"\x00\xff not a bundle", "not-json"),
        (orjson.dumps({"resourceType": "Bundle", "type": "batch", "entry": [{}] * 501}), "too-many-entries"),
        (orjson.dumps(build_bundle([changed])), "conflict"),
        (orjson.dumps(build_bundle([refused])), "unstorable"),
        (b'{"resourceType": "Bundle", "type": "transaction", "dead-letter-me": 1}', "dead-lettered"),
    ]


def test_poison_in_the_middle_of_a_steady_load_holds_back_nothing(
    database_url: str, broker: BrokerEndpoint
) -> None:
    bundles = stream()
    total = len(bundles) * PER_BUNDLE
    messages = poison(bundles)
    # The database refuses to quarantine the impossible SpO2 entry and anything marked for the dead
    # letters: the next unforeseen poison, as far as ingest can tell.
    refuse_quarantine(
        database_url, "NEW.reason LIKE 'impossible-value%' OR NEW.payload LIKE '%dead-letter-me%'"
    )
    workers = IngestWorkers(settings_for(database_url, broker), broker, 2)
    workers.start()
    publisher = run_stream(database_url, broker, bundles)
    try:
        assert wait_for(lambda: stored_count(database_url) >= total // 3, timeout=60)
        poisoner = Publisher(broker, [])
        for payload, _ in messages:  # the same hub's topic, in the middle of its stream
            poisoner.client.publish(TOPIC, payload, qos=1).wait_for_publish(10)
        poisoned_at = stored_count(database_url)
        poisoner.close()
        publisher.join(90)
        assert publisher.published == len(bundles)
        assert wait_for(lambda: stored_count(database_url) == total, timeout=90), stored_count(database_url)
        assert wait_for(lambda: set_aside_count(database_url) == len(messages), timeout=30)
    finally:
        workers.stop()
        publisher.close()
    assert poisoned_at < total, "the poison came after the stream: it proved nothing"
    assert workers.restarts() == dict.fromkeys(workers.restarts(), 0), "a worker had to be restarted"
    figures = reconcile(database_url, "poison messages mid-stream (2 workers)", sent_of(bundles))
    assert (figures.sent, figures.stored, figures.lost, figures.duplicated) == (total, total, 0, 0)
    assert figures.quarantined == len(messages)
    with psycopg.connect(database_url) as conn:
        kept = [str(r[0]).split(":")[0] for r in conn.execute("SELECT reason FROM quarantine")]
        dead = [str(r[0]) for r in conn.execute("SELECT reason FROM dead_letters")]
        counted = dict(
            conn.execute("SELECT reason, sum(count)::int FROM ingest_rejections GROUP BY 1").fetchall()
        )
    assert sorted(kept + ["dead-lettered"] * len(dead)) == sorted(code for _, code in messages)
    assert counted == dict.fromkeys((code for _, code in messages), 1)


def set_aside_count(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM quarantine) + (SELECT count(*) FROM dead_letters)"
        ).fetchone()
    return int(row[0]) if row else 0
