"""Alerts by webhook: signed as Standard Webhooks says (the specification's own test vector), verified by
``verify`` (a wrong secret, a changed body, an old call are refused), and sent by the dispatcher to a
real HTTP server that answers 500 twice and then 200: delivered on the third attempt, at the back-off
times."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import orjson
import psycopg
import pytest
from delivery_world import (
    BASE_URL,
    T0,
    Clock,
    Conn,
    Receiver,
    events,
    make_world,
    raise_alert,
    set_alert_settings,
    settings,
)

from gateway.alerts.dispatcher import Dispatcher
from gateway.alerts.webhook import sign, signed_headers, signing_key, verify
from gateway.store import alert_deliveries as outbox

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the specification's test secret
NOW = 1_614_265_330


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as c:
        make_world(c, with_addresses=False)  # only the webhook is told
        yield c


# --- the signature (pure) -----------------------------------------------------------------------------------


def test_the_signature_matches_the_standard_webhooks_test_vector() -> None:
    body = b'{"test": 2432232314}'
    signature = sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", NOW, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_verify_accepts_the_call_as_signed_and_refuses_any_change() -> None:
    body = b'{"type":"alert.raised"}'
    headers = signed_headers(SECRET, "hw_1", NOW, body)
    assert verify(SECRET, headers, body, now=NOW + 10)
    assert verify(SECRET, {k.upper(): v for k, v in headers.items()}, body, now=NOW)  # any case
    assert not verify("whsec_" + "A" * 32, headers, body, now=NOW)  # a wrong secret
    assert not verify("another secret", headers, body, now=NOW)
    assert not verify(SECRET, headers, body + b" ", now=NOW)  # a changed body
    assert not verify(SECRET, {**headers, "webhook-id": "hw_2"}, body, now=NOW)  # another id
    assert not verify(SECRET, {**headers, "webhook-timestamp": str(NOW + 1)}, body, now=NOW)
    assert not verify(SECRET, headers, body, now=NOW + 301)  # too old: a replay
    assert not verify(SECRET, headers, body, now=NOW - 301)
    missing = {k: v for k, v in headers.items() if k != "webhook-signature"}
    assert not verify(SECRET, missing, body, now=NOW)
    assert not verify(SECRET, {**headers, "webhook-timestamp": "soon"}, body, now=NOW)


def test_one_of_several_signatures_is_enough() -> None:
    body = b"{}"
    good = sign(SECRET, "hw_1", NOW, body)
    other = sign("old secret", "hw_1", NOW, body)
    headers = {"webhook-id": "hw_1", "webhook-timestamp": str(NOW), "webhook-signature": f"{other} {good}"}
    assert verify(SECRET, headers, body, now=NOW)


def test_a_whsec_secret_is_base64_and_any_other_secret_its_own_bytes() -> None:
    assert signing_key("whsec_aGVsbG8=") == b"hello"
    assert signing_key("plain secret") == b"plain secret"
    assert signing_key("whsec_not base64!") == b"whsec_not base64!"


# --- a real HTTP receiver --------------------------------------------------------------------------------


def test_a_receiver_that_fails_twice_gets_the_call_on_the_third_attempt_at_the_back_off_times(
    conn: Conn,
) -> None:
    secret = "municipality-webhook-secret-0101"

    def check(headers: dict[str, str], body: bytes) -> bool:
        return verify(secret, headers, body, now=time.time())

    with Receiver([500, 500], check) as receiver:
        set_alert_settings(conn, webhook_url=receiver.url, webhook_secret=secret, escalate_high_minutes=60)
        outcome = raise_alert(conn, T0)
        assert outcome.alert_id is not None
        clock = Clock()
        dispatcher = Dispatcher(conn.info.dsn, settings(None), clock=clock)
        called_at = []
        try:
            for second in (0, 1, 29, 30, 31, 89, 90, 91, 300):
                clock.now = T0 + timedelta(seconds=second)
                if dispatcher.run_once().claimed:
                    called_at.append(second)
        finally:
            dispatcher.stop()
    assert called_at == [0, 30, 90]  # then 30 s and 1 min of back-off
    assert [c.answered for c in receiver.calls] == [500, 500, 200]
    assert receiver.checked == [True, True, True]  # every attempt signed, verified by the receiver
    ids = {c.headers["webhook-id"] for c in receiver.calls}
    assert len(ids) == 1  # the same id on every attempt: the receiver drops repeats by it
    payload = orjson.loads(receiver.calls[-1].body)
    assert payload["type"] == "alert.raised"
    assert payload["timestamp"] == "2026-12-01T08:00:00Z"
    assert payload["data"] == {
        "alert_id": outcome.alert_id,
        "alert_public_id": payload["data"]["alert_public_id"],
        "event_id": outcome.event_id,
        "municipality_id": "0101",
        "kind": "news2",
        "severity": "high",
        "escalation_level": 0,
        "url": f"{BASE_URL}/alerts/{outcome.alert_id}",
        "patient_initials": "K.J.",
    }
    body = receiver.calls[-1].body.decode()
    for secret_word in ("Karen", "Jensen", "SpO2", "p-karen"):
        assert secret_word not in body
    (row,) = outbox.deliveries_of_alert(conn, outcome.alert_id)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 3, T0 + timedelta(seconds=90))
    assert row.last_error is None
    delivered = [d for a, d in events(conn, outcome.alert_id) if a == "delivered"]
    assert delivered == [
        {
            "delivery": row.id,
            "event": outcome.event_id,
            "channel": "webhook",
            "audience": "municipality",
            "attempts": 3,
        }
    ]


def test_a_receiver_with_the_wrong_secret_detects_the_call_as_forged(conn: Conn) -> None:
    def check(headers: dict[str, str], body: bytes) -> bool:
        return verify("the receiver's idea of the secret", headers, body, now=time.time())

    with Receiver([], check) as receiver:
        set_alert_settings(conn, webhook_url=receiver.url, webhook_secret="the gateway's secret")
        raise_alert(conn, T0)
        dispatcher = Dispatcher(conn.info.dsn, settings(None), clock=Clock())
        try:
            dispatcher.run_once()
        finally:
            dispatcher.stop()
    assert receiver.checked == [False]


def test_a_receiver_that_keeps_failing_is_given_up_with_the_status_it_answered(conn: Conn) -> None:
    with Receiver([503] * 10, lambda headers, body: True) as receiver:
        set_alert_settings(conn, webhook_url=receiver.url, webhook_secret="s", escalate_high_minutes=600)
        outcome = raise_alert(conn, T0)
        assert outcome.alert_id is not None
        clock = Clock()
        dispatcher = Dispatcher(conn.info.dsn, settings(None), clock=clock)
        try:
            for minute in range(0, 20):
                clock.now = T0 + timedelta(minutes=minute)
                dispatcher.run_once()
        finally:
            dispatcher.stop()
    first = outbox.deliveries_of_alert(conn, outcome.alert_id)[0]
    assert (first.status, first.attempts) == ("failed", 6)
    assert first.last_error is not None and "503" in first.last_error
    (failed,) = [f for f in outbox.failed_deliveries(conn, "0101") if f.event_id == outcome.event_id]
    assert failed.channel == "webhook" and failed.audience == "municipality"
