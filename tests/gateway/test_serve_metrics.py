"""/metrics and the scorer's notifications: the exposition text, the optional bearer token, and NOTIFY
payloads that stay under PostgreSQL's limit and read back as they were written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from gateway.api.app import create_app
from gateway.api.metrics import WorkerMetrics, render_metrics
from gateway.settings import GatewaySettings
from gateway.store.new_data import (
    NOTIFY_PAYLOAD_MAX_BYTES,
    new_data_notifications,
    read_new_data_notification,
)


def test_metrics_text_has_every_series_per_worker_and_rejections_by_reason() -> None:
    text = render_metrics(
        [
            WorkerMetrics("ingest-2", 5, 40, 10, 2, 0.5, 5, 0.2),
            WorkerMetrics("ingest-1", 1, 9, 0, 1, 0.1, 1, 0.1),
        ],
        [("ingest-1", "impossible-value", 1), ("ingest-2", 'odd"reason', 3)],
    )
    lines = text.splitlines()
    assert 'homewatch_ingest_messages_received_total{worker="ingest-1"} 1' in lines
    assert 'homewatch_ingest_observations_stored_total{worker="ingest-2"} 40' in lines
    assert 'homewatch_ingest_duplicates_total{worker="ingest-2"} 10' in lines
    assert 'homewatch_ingest_lag_seconds_sum{worker="ingest-2"} 0.5' in lines
    assert 'homewatch_ingest_lag_seconds_count{worker="ingest-2"} 5' in lines
    assert 'homewatch_ingest_observations_rejected_total{worker="ingest-2",reason="odd\\"reason"} 3' in lines
    assert "# TYPE homewatch_ingest_lag_seconds summary" in lines
    assert text.endswith("\n")


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool[Any]]:
    with ConnectionPool(database_url, min_size=1, max_size=2) as opened:
        yield opened


def test_metrics_route_reads_the_workers_rows_and_asks_for_the_token_when_set(
    database_url: str, pool: ConnectionPool[Any]
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO ingest_metrics (worker, observations_stored) VALUES ('ingest-1', 7)")
        conn.execute(
            "INSERT INTO ingest_rejections (worker, reason, count) VALUES ('ingest-1', 'not-json', 2)"
        )
    open_app = TestClient(create_app(GatewaySettings(database_url=database_url), pool))
    text = open_app.get("/metrics").text
    assert 'homewatch_ingest_observations_stored_total{worker="ingest-1"} 7' in text
    assert 'homewatch_ingest_observations_rejected_total{worker="ingest-1",reason="not-json"} 2' in text
    guarded = TestClient(create_app(GatewaySettings(database_url=database_url, metrics_token="t0k"), pool))
    assert guarded.get("/metrics").status_code == 401
    assert guarded.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get("/metrics", headers={"Authorization": "Bearer t0k"}).status_code == 200


def test_notifications_stay_under_the_limit_and_name_every_patient_once() -> None:
    at = datetime(2026, 11, 20, 8, 0, 0, 123456, tzinfo=UTC)
    patients = {
        "0101": {f"patient-{i:05d}-{'x' * 40}": at + timedelta(seconds=i) for i in range(2_000)},
        "0147": {"p1": at},
    }
    payloads = list(new_data_notifications(patients))
    assert len(payloads) > 2
    assert all(len(p.encode()) < NOTIFY_PAYLOAD_MAX_BYTES <= 8_000 for p in payloads)
    read: dict[str, dict[str, datetime]] = {}
    for payload in payloads:
        announced = read_new_data_notification(payload)
        assert announced is not None
        read.setdefault(announced[0], {}).update(announced[1])
    assert read == patients  # every patient once, with its time to the microsecond
    assert list(new_data_notifications({})) == []
    for bad in (
        "not json",
        "[]",
        '{"m": 1, "p": {}}',
        '{"m": "0101", "p": ["p1"]}',
        '{"m": "0101", "p": {"p1": 1}}',
        '{"m": "0101", "p": {"p1": "yesterday"}}',
        '{"m": "0101", "p": {"p1": "2026-11-20T08:00:00"}}',  # no offset: which 08:00?
    ):
        assert read_new_data_notification(bad) is None
