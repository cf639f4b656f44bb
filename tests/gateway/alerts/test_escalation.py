"""Escalation and snooze on a clock the test moves: an alert nobody acknowledges escalates after the
municipality's minutes for its severity (to the on-call), again after the same delay, and then no more;
an acknowledged one does not; a snooze ends on time and the alert is open again; an alert nobody can be
told of escalates at once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from delivery_world import (
    NURSE,
    T0,
    Clock,
    Conn,
    SmtpSink,
    actions,
    alert_state,
    events,
    make_world,
    raise_alert,
    set_alert_settings,
    settings,
    smtp_server,
)

from gateway.alerts.dispatcher import Dispatcher
from gateway.alerts.routing import MAX_ESCALATION_LEVEL
from gateway.store import alert_deliveries as outbox
from gateway.store.alert_actions import acknowledge, snooze

ON_CALL = "vagt@kommune.example"


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as c:
        make_world(c)
        set_alert_settings(c, on_call_email=ON_CALL)
        yield c


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sink() -> SmtpSink:
    return SmtpSink()


@pytest.fixture
def dispatcher(conn: Conn, clock: Clock, sink: SmtpSink) -> Iterator[Dispatcher]:
    with smtp_server(sink) as port:
        d = Dispatcher(conn.info.dsn, settings(port), clock=clock)
        yield d
        d.stop()


def _at(dispatcher: Dispatcher, clock: Clock, minutes: float) -> None:
    clock.now = T0 + timedelta(minutes=minutes)
    dispatcher.run_once()


def _escalations(conn: Conn, alert_id: int) -> list[dict[str, object]]:
    return [detail for action, detail in events(conn, alert_id) if action == "escalated"]


def test_an_unacknowledged_high_alert_escalates_after_15_minutes_then_once_more_then_stops(
    conn: Conn, clock: Clock, dispatcher: Dispatcher, sink: SmtpSink
) -> None:
    outcome = raise_alert(conn, T0, "high")
    assert outcome.alert_id is not None
    assert alert_state(conn, outcome.alert_id)["escalate_at"] == T0 + timedelta(minutes=15)
    _at(dispatcher, clock, 14.99)
    assert alert_state(conn, outcome.alert_id)["escalation_level"] == 0
    _at(dispatcher, clock, 15)
    state = alert_state(conn, outcome.alert_id)
    assert (state["escalation_level"], state["escalate_at"]) == (1, T0 + timedelta(minutes=30))
    assert _escalations(conn, outcome.alert_id) == [{"level": 1, "reason": "not-acknowledged"}]
    on_call = [r for r in outbox.deliveries_of_alert(conn, outcome.alert_id) if r.recipient == ON_CALL]
    assert [(r.audience, r.status) for r in on_call] == [("on-call", "sent")]
    to_on_call = [m for m in sink.received() if m["To"] == ON_CALL]
    assert [m["Subject"] for m in to_on_call] == ["[homewatch] Eskaleret alarm (høj): NEWS2 - K.J."]
    assert "Eskaleringsniveau: 1" in to_on_call[0].get_content()
    _at(dispatcher, clock, 29.99)
    assert alert_state(conn, outcome.alert_id)["escalation_level"] == 1
    _at(dispatcher, clock, 30)
    state = alert_state(conn, outcome.alert_id)
    assert (state["escalation_level"], state["escalate_at"]) == (MAX_ESCALATION_LEVEL, None)
    for minutes in (45, 60, 240):
        _at(dispatcher, clock, minutes)
    assert len(_escalations(conn, outcome.alert_id)) == 2
    # Raised: the team and the GP (3); each escalation: the on-call, the team and the GP again (4).
    assert len(sink.received()) == 3 + 4 + 4


def test_a_medium_alert_escalates_after_the_municipalitys_own_minutes(
    conn: Conn, clock: Clock, dispatcher: Dispatcher
) -> None:
    set_alert_settings(conn, escalate_medium_minutes=20)
    outcome = raise_alert(conn, T0, "medium")
    assert outcome.alert_id is not None
    _at(dispatcher, clock, 19)
    assert alert_state(conn, outcome.alert_id)["escalation_level"] == 0
    _at(dispatcher, clock, 20)
    assert alert_state(conn, outcome.alert_id)["escalation_level"] == 1


def test_an_acknowledged_alert_does_not_escalate(conn: Conn, clock: Clock, dispatcher: Dispatcher) -> None:
    outcome = raise_alert(conn, T0, "high")
    assert outcome.alert_id is not None
    acknowledge(conn, NURSE, outcome.alert_id, "Called her; fine.", at=T0 + timedelta(minutes=5), client=None)
    for minutes in (15, 30, 120):
        _at(dispatcher, clock, minutes)
    assert alert_state(conn, outcome.alert_id)["escalation_level"] == 0
    assert "escalated" not in actions(conn, outcome.alert_id)


def test_a_snooze_ends_on_time_the_alert_opens_and_its_escalation_clock_starts_again(
    conn: Conn, clock: Clock, dispatcher: Dispatcher
) -> None:
    outcome = raise_alert(conn, T0, "high")
    assert outcome.alert_id is not None
    until = T0 + timedelta(hours=1)
    snooze(
        conn,
        NURSE,
        outcome.alert_id,
        "Measure again after lunch",
        until,
        at=T0 + timedelta(minutes=2),
        client=None,
    )
    _at(dispatcher, clock, 30)  # past the escalation time, but snoozed: no escalation
    _at(dispatcher, clock, 59.99)
    state = alert_state(conn, outcome.alert_id)
    assert (state["status"], state["escalation_level"]) == ("snoozed", 0)
    _at(dispatcher, clock, 60)
    state = alert_state(conn, outcome.alert_id)
    assert (state["status"], state["snoozed_until"]) == ("open", None)
    assert state["escalate_at"] == until + timedelta(minutes=15)
    assert actions(conn, outcome.alert_id)[-1] == "woke"
    _at(dispatcher, clock, 75)
    assert alert_state(conn, outcome.alert_id)["escalation_level"] == 1  # nobody looked after it woke


def test_an_alert_nobody_can_be_told_of_escalates_at_once_then_on_time(database_url: str) -> None:
    clock = Clock()
    with psycopg.connect(database_url, autocommit=True) as c:
        make_world(c, with_addresses=False)  # no addresses, no on-call, no webhook
        outcome = raise_alert(c, T0, "medium")
        assert outcome.alert_id is not None
        # At once to level 1 (the on-call's level); nobody there either.
        assert actions(c, outcome.alert_id) == ["raised", "undeliverable", "escalated", "undeliverable"]
        undeliverable = [d for a, d in events(c, outcome.alert_id) if a == "undeliverable"]
        assert undeliverable[0] == {"event": outcome.event_id, "level": 0, "reason": "no-recipients"}
        assert undeliverable[1]["level"] == 1
        state = alert_state(c, outcome.alert_id)
        assert (state["escalation_level"], state["escalate_at"]) == (1, T0 + timedelta(minutes=60))
        # The next step comes on time, not at once; then it stops.
        dispatcher = Dispatcher(c.info.dsn, settings(None), clock=clock)
        try:
            for minutes in (59, 60, 120, 180):
                clock.now = T0 + timedelta(minutes=minutes)
                dispatcher.run_once()
                if minutes == 59:
                    assert alert_state(c, outcome.alert_id)["escalation_level"] == 1
        finally:
            dispatcher.stop()
        state = alert_state(c, outcome.alert_id)
        assert (state["escalation_level"], state["escalate_at"]) == (MAX_ESCALATION_LEVEL, None)
        assert actions(c, outcome.alert_id)[4:] == ["escalated", "undeliverable"]
        assert outbox.deliveries_of_alert(c, outcome.alert_id) == []


def test_escalations_and_wakes_fall_due_across_a_restart(conn: Conn, clock: Clock, sink: SmtpSink) -> None:
    escalating = raise_alert(conn, T0, "high")
    snoozed = raise_alert(conn, T0, "medium", kind="threshold", key="spo2")
    assert escalating.alert_id is not None and snoozed.alert_id is not None
    snooze(conn, NURSE, snoozed.alert_id, "Asleep", T0 + timedelta(minutes=30), at=T0, client=None)
    # No dispatcher runs for two hours; the one started then finds both due.
    clock.now = T0 + timedelta(hours=2)
    with smtp_server(sink) as port:
        later = Dispatcher(conn.info.dsn, settings(port), clock=clock)
        try:
            done = later.run_once()
        finally:
            later.stop()
    assert (done.woke, done.escalated) == (1, 1)
    assert alert_state(conn, escalating.alert_id)["escalation_level"] == 1
    assert alert_state(conn, snoozed.alert_id)["status"] == "open"
