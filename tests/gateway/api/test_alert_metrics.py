"""Issue 18: ``/metrics`` counts open alerts and the outbox of deliveries, and shows a stopped dispatcher.

Alerts are raised through ``gateway.alerts.lifecycle.record_trigger`` and deliveries made by the outbox's
own functions, as the scorer and the dispatcher make them; the numbers are read from ``/metrics`` as a
Prometheus scrape reads them, at the app's clock.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from seed import World

from gateway.alerts.lifecycle import Trigger, record_trigger
from gateway.api.metrics import render_alert_metrics
from gateway.store import alert_deliveries as outbox
from gateway.store.alert_admin import AlertMetrics, OpenAlerts
from gateway.store.alerts import add_event

Series = dict[str, float]


def _scrape(client: TestClient, now: datetime) -> Series:
    client.app.state.clock = lambda: now  # type: ignore[attr-defined]
    response = client.get("/metrics")
    assert response.status_code == 200
    found: Series = {}
    for line in response.text.splitlines():
        if line.startswith("homewatch_alert"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def _open(municipality: str, kind: str, severity: str) -> str:
    return f'homewatch_alerts_open{{municipality="{municipality}",kind="{kind}",severity="{severity}"}}'


def _deliveries(channel: str, status: str) -> str:
    return f'homewatch_alert_deliveries{{channel="{channel}",status="{status}"}}'


def test_open_alerts_are_counted_by_municipality_kind_and_severity(
    client: TestClient, world: World, db: psycopg.Connection[Any]
) -> None:
    before = _scrape(client, world.now)
    assert before[_open("0101", "news2", "high")] == 1  # the world's p-high
    assert before[_open("0101", "news2", "medium")] == 2
    assert before[_open("0147", "news2", "high")] == 1
    assert _open("0101", "threshold", "high") not in before

    with db.transaction():
        trigger = Trigger("0101", "p-low", "threshold", "spo2", "high", "SpO2 84 % below 85", world.now)
        assert record_trigger(db, trigger, now=world.now).action == "raise"
    db.execute("UPDATE alerts SET status = 'acknowledged' WHERE id = %s", (world.alerts["p-med-late"],))
    after = _scrape(client, world.now)
    assert after[_open("0101", "threshold", "high")] == 1
    assert after[_open("0101", "news2", "medium")] == 1  # an acknowledged alert is no longer open
    text = client.get("/metrics").text
    assert "p-low" not in text and "p-high" not in text and "SpO2" not in text


def _queue(db: psycopg.Connection[Any], alert_id: int, address: str, at: datetime) -> None:
    event = add_event(db, alert_id, "raised", at=at)
    recipient = outbox.Recipient("email", address, None, "care-team")
    assert outbox.enqueue(db, "0101", alert_id, event, [recipient], now=at) == 1


def test_deliveries_failing_and_waiting_move_the_numbers(
    client: TestClient, world: World, db: psycopg.Connection[Any]
) -> None:
    now = world.now
    empty = _scrape(client, now)
    assert empty[_deliveries("email", "failed")] == 0 and empty[_deliveries("webhook", "pending")] == 0
    assert empty["homewatch_alert_deliveries_failed_total"] == 0
    assert empty["homewatch_alert_delivery_oldest_pending_seconds"] == 0
    assert empty["homewatch_alert_delivery_overdue_seconds"] == 0

    alert = world.alerts["p-high"]
    _queue(db, alert, "anna@kbh.example", now - timedelta(minutes=30))
    _queue(db, alert, "nora@kbh.example", now - timedelta(minutes=30))
    first, second = outbox.claim_due(db, now - timedelta(minutes=30), 10)
    assert outbox.mark_failed(db, first, at=now - timedelta(minutes=29), error="550 no such mailbox")
    assert outbox.mark_sent(db, second, at=now - timedelta(minutes=29))
    failed = _scrape(client, now)
    assert failed[_deliveries("email", "failed")] == 1 and failed[_deliveries("email", "sent")] == 1
    assert failed["homewatch_alert_deliveries_failed_total"] == 1
    assert failed["homewatch_alert_delivery_oldest_pending_seconds"] == 0

    # A dispatcher that stopped: two deliveries queued 10 and 3 minutes ago, never taken.
    _queue(db, alert, "ole@kbh.example", now - timedelta(minutes=10))
    _queue(db, alert, "eva@kbh.example", now - timedelta(minutes=3))
    stuck = _scrape(client, now)
    assert stuck[_deliveries("email", "pending")] == 2
    assert stuck["homewatch_alert_delivery_oldest_pending_seconds"] == 600
    assert stuck["homewatch_alert_delivery_overdue_seconds"] == 600
    later = _scrape(client, now + timedelta(minutes=5))
    assert later["homewatch_alert_delivery_overdue_seconds"] == 900

    # Retried in 20 minutes: still pending (and old), but not overdue.
    for delivery in outbox.claim_due(db, now, 10):
        assert outbox.mark_retry(db, delivery, next_attempt_at=now + timedelta(minutes=20), error="421")
    retrying = _scrape(client, now)
    assert retrying["homewatch_alert_delivery_oldest_pending_seconds"] == 600
    assert retrying["homewatch_alert_delivery_overdue_seconds"] == 0


def test_the_alert_series_are_prometheus_text() -> None:
    text = render_alert_metrics(
        AlertMetrics(
            open_alerts=(OpenAlerts("0101", "news2", "high", 3), OpenAlerts('0"1', "missing", "medium", 1)),
            deliveries=(outbox.DeliveryCount("email", "failed", 2),),
            failed=2,
            oldest_pending_s=12.5,
            most_overdue_s=0.0,
        )
    )
    lines = text.splitlines()
    assert "# TYPE homewatch_alerts_open gauge" in lines
    assert 'homewatch_alerts_open{municipality="0101",kind="news2",severity="high"} 3' in lines
    assert 'homewatch_alerts_open{municipality="0\\"1",kind="missing",severity="medium"} 1' in lines
    assert 'homewatch_alert_deliveries{channel="email",status="failed"} 2' in lines
    assert "# TYPE homewatch_alert_deliveries_failed_total counter" in lines
    assert "homewatch_alert_deliveries_failed_total 2" in lines
    assert "homewatch_alert_delivery_oldest_pending_seconds 12.5" in lines
    assert "homewatch_alert_delivery_overdue_seconds 0.0" in lines
    assert text.endswith("\n")
    # Every sample's name was declared by a TYPE line before it.
    declared: set[str] = set()
    for line in lines:
        if line.startswith("# TYPE "):
            declared.add(line.split()[2])
        elif not line.startswith("#"):
            assert re.match(r"[a-z_]+", line)[0] in declared  # type: ignore[index]
