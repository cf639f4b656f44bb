"""The dispatcher's thread against a real SMTP server: stopped mid-way and started again, or two of them
at once, every delivery is sent exactly once; after a crash a claim runs out and its delivery is sent
then; a claim that ran out cannot overwrite the work of the claim after it; the gateway starts and stops
the dispatcher with its other parts."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import psycopg
import pytest
from delivery_world import (
    BASE_URL,
    GP_ADDRESS,
    PATIENT,
    T0,
    TEAM_ADDRESSES,
    Clock,
    Conn,
    M,
    SmtpSink,
    make_world,
    raise_alert,
    settings,
    smtp_server,
)

from gateway.alerts.dispatcher import DeliveryPolicy, Dispatcher
from gateway.alerts.lifecycle import Trigger, record_trigger
from gateway.broker import BrokerEndpoint, free_port
from gateway.service import Gateway, GatewayOptions
from gateway.store import alert_deliveries as outbox

VITALS = ("spo2", "pulse", "temperature", "respiration")  # one 'threshold' alert each: 4 x 3 deliveries


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as c:
        make_world(c)
        yield c


def _raise_many(conn: Conn) -> list[int]:
    alert_ids = []
    for vital in VITALS:
        outcome = raise_alert(conn, T0, "medium", kind="threshold", key=vital)
        assert outcome.alert_id is not None
        alert_ids.append(outcome.alert_id)
    return alert_ids


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _statuses(conn: Conn, alert_ids: list[int]) -> list[outbox.DeliveryRow]:
    return [row for alert_id in alert_ids for row in outbox.deliveries_of_alert(conn, alert_id)]


def _received_once_each(sink: SmtpSink, alert_ids: list[int]) -> None:
    """Every (address, alert) got exactly one message."""
    link = re.compile(re.escape(BASE_URL) + r"/alerts/(\d+)\s")
    told = sorted((m["To"], int(link.findall(m.get_content())[0])) for m in sink.received())
    expected = sorted((to, a) for a in alert_ids for to in TEAM_ADDRESSES | {GP_ADDRESS})
    assert told == expected


def test_stopped_mid_way_and_started_again_every_delivery_is_sent_exactly_once(conn: Conn) -> None:
    sink = SmtpSink(delay=0.2)  # a slow server: the stop comes while a batch is under way
    alert_ids = _raise_many(conn)
    with smtp_server(sink) as port:
        first = Dispatcher(conn.info.dsn, settings(port), clock=Clock())
        first.start()
        assert _wait_for(lambda: len(sink.received()) >= 3)
        first.stop()
        rows = _statuses(conn, alert_ids)
        sent = [r for r in rows if r.status == "sent"]
        pending = [r for r in rows if r.status == "pending"]
        assert 3 <= len(sent) < 12 and len(sent) + len(pending) == 12
        # What the first one claimed and did not send was handed back: due now, no attempt counted.
        assert all(r.attempts == 0 and r.next_attempt_at == T0 for r in pending)
        assert len(sink.received()) == len(sent)

        second = Dispatcher(conn.info.dsn, settings(port), clock=Clock())
        second.start()
        try:
            assert second.wait_delivered(timeout=30)
        finally:
            second.stop()
    assert {(r.status, r.attempts) for r in _statuses(conn, alert_ids)} == {("sent", 1)}
    _received_once_each(sink, alert_ids)


def test_two_dispatchers_at_once_send_every_delivery_exactly_once(conn: Conn) -> None:
    sink = SmtpSink(delay=0.02)
    alert_ids = _raise_many(conn)
    small_batches = DeliveryPolicy(claim_batch=2)  # both find work
    with smtp_server(sink) as port:
        pair = [
            Dispatcher(conn.info.dsn, settings(port), clock=Clock(), policy=small_batches) for _ in range(2)
        ]
        for d in pair:
            d.start()
        try:
            assert all(d.wait_delivered(timeout=30) for d in pair)
        finally:
            for d in pair:
                d.stop()
    assert pair[0].sent + pair[1].sent == 12
    assert {(r.status, r.attempts) for r in _statuses(conn, alert_ids)} == {("sent", 1)}
    _received_once_each(sink, alert_ids)


def test_after_a_crash_the_claim_runs_out_and_the_delivery_is_sent_then(conn: Conn) -> None:
    outcome = raise_alert(conn, T0)
    assert outcome.alert_id is not None
    policy = DeliveryPolicy()
    # A process claims everything due and dies before sending any of it.
    with conn.transaction():
        dead = outbox.claim_due(conn, T0, 10, lease=policy.claim_lease)
    assert len(dead) == 3
    sink = SmtpSink()
    clock = Clock()
    with smtp_server(sink) as port:
        survivor = Dispatcher(conn.info.dsn, settings(port), clock=clock, policy=policy)
        try:
            clock.now = T0 + policy.claim_lease - timedelta(seconds=1)
            assert survivor.run_once().claimed == 0  # still claimed by the dead process
            clock.now = T0 + policy.claim_lease
            assert survivor.run_once().sent == 3
        finally:
            survivor.stop()
    assert len(sink.received()) == 3
    rows = outbox.deliveries_of_alert(conn, outcome.alert_id)
    assert {(r.status, r.attempts) for r in rows} == {("sent", 2)}
    # The dead claim, were it to wake up, can change nothing any more.
    with conn.transaction():
        assert not outbox.mark_sent(conn, dead[0], at=T0)
        assert not outbox.mark_failed(conn, dead[0], at=T0, error="late")
        assert not outbox.release(conn, dead[0], now=T0)


def test_a_claim_that_ran_out_cannot_overwrite_the_claim_after_it(conn: Conn) -> None:
    raise_alert(conn, T0)
    lease = timedelta(minutes=5)
    with conn.transaction():
        stale = outbox.claim_due(conn, T0, 1, lease=lease)[0]
    with conn.transaction():
        assert outbox.claim_due(conn, T0 + timedelta(minutes=1), 10, lease=lease)[0].id != stale.id
        fresh = next(d for d in outbox.claim_due(conn, T0 + lease, 10, lease=lease) if d.id == stale.id)
    assert fresh.attempts == stale.attempts + 1
    with conn.transaction():
        assert not outbox.mark_retry(conn, stale, next_attempt_at=T0, error="late")
        assert outbox.mark_sent(conn, fresh, at=T0 + lease)


def test_the_backlog_says_what_is_due_and_since_when(conn: Conn) -> None:
    raise_alert(conn, T0)
    assert outbox.delivery_backlog(conn, T0 - timedelta(seconds=1)) == outbox.Backlog(0, None)
    assert outbox.delivery_backlog(conn, T0 + timedelta(minutes=1)) == outbox.Backlog(3, T0)


def test_the_retry_waits_double_and_are_capped() -> None:
    policy = DeliveryPolicy()
    waits = [policy.retry_after(n).total_seconds() for n in range(1, 9)]
    assert waits == [30, 60, 120, 240, 480, 600, 600, 600]
    assert sum(waits[: policy.max_attempts - 1]) == 15.5 * 60  # the escalation delay of a high alert


def test_the_gateway_runs_the_dispatcher_on_its_clock_and_stops_it(
    database_url: str, broker: BrokerEndpoint
) -> None:
    with psycopg.connect(database_url, autocommit=True) as c:
        make_world(c)
    sink = SmtpSink()
    clock = Clock()
    with smtp_server(sink) as smtp_port:
        options = GatewayOptions(
            database_url=database_url, broker=broker, workers=0, port=free_port(), clock=clock
        )
        gateway = Gateway(options, settings(smtp_port, alert_jobs_interval_s=0.2))
        try:
            gateway.start()
            assert gateway.dispatcher is not None
            with psycopg.connect(database_url, autocommit=True) as c, c.transaction():
                record_trigger(c, Trigger(M, PATIENT, "news2", "", "high", "NEWS2 7", T0), now=T0)
            assert gateway.wait_delivered(timeout=30)
            assert len(sink.received()) == 3
            clock.advance(minutes=15)  # nobody acknowledges: the gateway's clock says it is time
            assert _wait_for(lambda: len(sink.received()) == 6)
        finally:
            gateway.stop()
    assert gateway.dispatcher is None
    assert not gateway.wait_delivered(timeout=0.1)
