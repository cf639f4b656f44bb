"""Who is told of an alert (``gateway.alerts.routing``) on a real PostgreSQL: the care team and the GP at
once, in the transaction that raises the alert; the webhook too; the on-call from the first escalation;
each recipient once per event."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from delivery_world import (
    GP_ADDRESS,
    PATIENT,
    T0,
    TEAM_ADDRESSES,
    Conn,
    M,
    actions,
    make_world,
    raise_alert,
    set_alert_settings,
)

from gateway.alerts import routing
from gateway.alerts.lifecycle import Trigger, record_trigger
from gateway.store import alert_deliveries as outbox
from gateway.store.alert_deliveries import Audience, Recipient
from gateway.store.alerts import UnknownAlert


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as c:
        make_world(c)
        yield c


def _queued(conn: Conn, alert_id: int) -> list[outbox.DeliveryRow]:
    return outbox.deliveries_of_alert(conn, alert_id)


def test_one_event_reaches_every_nurse_of_the_team_with_an_address_and_the_gp_in_one_transaction(
    conn: Conn, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as other, conn.transaction():
        outcome = record_trigger(conn, Trigger(M, PATIENT, "news2", "", "high", "NEWS2 7", T0), now=T0)
        assert outcome.alert_id is not None
        # Not committed yet: nobody else sees the alert, its event or its deliveries.
        assert other.execute("SELECT count(*) FROM alert_deliveries").fetchone() == (0,)
    assert outcome.event_id is not None
    rows = _queued(conn, outcome.alert_id)
    assert {r.event_id for r in rows} == {outcome.event_id}  # all for the one 'raised' event
    assert {(r.recipient, r.audience) for r in rows} == {
        ("anna@kommune.example", "care-team"),
        ("bo@kommune.example", "care-team"),
        (GP_ADDRESS, "gp"),
    }
    # Cille has no address; Ditte is in another team.
    assert {r.username for r in rows} == {"nurse.anna", "nurse.bo", "gp.hansen"}
    assert all(r.status == "pending" and r.attempts == 0 and r.next_attempt_at == T0 for r in rows)
    assert {r.channel for r in rows} == {"email"}


def test_the_municipalitys_webhook_is_called_for_every_event_besides_the_people(conn: Conn) -> None:
    set_alert_settings(conn, webhook_url="https://sos.kommune.example/hook", webhook_secret="s3cret")
    outcome = raise_alert(conn, T0)
    assert outcome.alert_id is not None
    rows = _queued(conn, outcome.alert_id)
    webhooks = [r for r in rows if r.channel == "webhook"]
    assert [(w.recipient, w.audience, w.username) for w in webhooks] == [
        ("https://sos.kommune.example/hook", "municipality", None)
    ]
    assert {r.recipient for r in rows if r.channel == "email"} == TEAM_ADDRESSES | {GP_ADDRESS}


def test_a_worse_severity_tells_everyone_again_for_its_own_event(conn: Conn) -> None:
    first = raise_alert(conn, T0, "medium")
    worse = raise_alert(conn, T0.replace(minute=5), "high")
    assert worse.action == "worse" and worse.alert_id == first.alert_id
    assert first.alert_id is not None and worse.event_id is not None and first.event_id is not None
    rows = _queued(conn, first.alert_id)
    assert [r.event_id for r in rows].count(worse.event_id) == 3
    assert [r.event_id for r in rows].count(first.event_id) == 3


def test_a_counted_trigger_tells_nobody(conn: Conn) -> None:
    first = raise_alert(conn, T0)
    again = raise_alert(conn, T0.replace(minute=5))
    assert again.action == "count"
    assert first.alert_id is not None
    assert len(_queued(conn, first.alert_id)) == 3


def test_the_same_event_is_never_queued_twice(conn: Conn) -> None:
    outcome = raise_alert(conn, T0)
    assert outcome.alert_id is not None and outcome.event_id is not None
    with conn.transaction():
        again = routing.enqueue_deliveries(conn, outcome.alert_id, outcome.event_id, level=0, now=T0)
    assert again == 0
    assert len(_queued(conn, outcome.alert_id)) == 3


def test_an_escalation_adds_the_on_call_first_and_tells_the_team_and_gp_again(conn: Conn) -> None:
    set_alert_settings(conn, on_call_email="vagt@kommune.example")
    outcome = raise_alert(conn, T0)
    assert outcome.alert_id is not None
    assert "vagt@kommune.example" not in {r.recipient for r in _queued(conn, outcome.alert_id)}
    with conn.transaction():
        assert routing.escalate(conn, outcome.alert_id, now=T0.replace(minute=15), reason="not-acknowledged")
    escalated = [r for r in _queued(conn, outcome.alert_id) if r.event_id != outcome.event_id]
    assert escalated[0].recipient == "vagt@kommune.example"
    assert escalated[0].audience == "on-call" and escalated[0].username is None
    assert {r.recipient for r in escalated[1:]} == TEAM_ADDRESSES | {GP_ADDRESS}
    assert actions(conn, outcome.alert_id) == ["raised", "escalated"]


def test_an_escalated_alert_that_gets_worse_still_reaches_the_on_call(conn: Conn) -> None:
    set_alert_settings(conn, on_call_email="vagt@kommune.example")
    outcome = raise_alert(conn, T0, "medium")
    assert outcome.alert_id is not None
    with conn.transaction():
        routing.escalate(conn, outcome.alert_id, now=T0.replace(minute=30), reason="not-acknowledged")
    worse = raise_alert(conn, T0.replace(minute=40), "high")
    told = {r.recipient for r in _queued(conn, outcome.alert_id) if r.event_id == worse.event_id}
    assert "vagt@kommune.example" in told


def test_an_address_shared_by_the_on_call_and_a_nurse_is_written_to_once_as_the_on_call() -> None:
    shared = Recipient("email", "Vagt@kommune.example", None, "on-call")
    audience = Audience(
        municipality_id=M,
        escalation_level=1,
        care_team=(
            Recipient("email", "vagt@kommune.example", "nurse.anna", "care-team"),
            Recipient("email", "bo@kommune.example", "nurse.bo", "care-team"),
        ),
        gp=Recipient("email", GP_ADDRESS, "gp.hansen", "gp"),
        on_call=shared,
        webhook=Recipient("webhook", "https://x.example/h", None, "municipality"),
    )
    at_one = routing.recipients_at(audience, 1)
    assert at_one[0] == shared
    assert [r.recipient for r in at_one] == [
        "Vagt@kommune.example",
        "bo@kommune.example",
        GP_ADDRESS,
        "https://x.example/h",
    ]
    assert shared not in routing.recipients_at(audience, 0)
    assert len(routing.recipients_at(audience, 0)) == 4


def test_an_unknown_alert_is_an_error(conn: Conn) -> None:
    with pytest.raises(UnknownAlert):
        routing.enqueue_deliveries(conn, 999_999, 1, level=0, now=T0)


def test_nobody_to_tell_is_undeliverable_and_escalates_at_once_to_the_on_call(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as c:
        make_world(c, with_addresses=False)
        set_alert_settings(c, on_call_email="vagt@kommune.example")
        outcome = raise_alert(c, T0)
        assert outcome.alert_id is not None
        assert actions(c, outcome.alert_id) == ["raised", "undeliverable", "escalated"]
        rows = _queued(c, outcome.alert_id)
        assert [(r.recipient, r.audience) for r in rows] == [("vagt@kommune.example", "on-call")]
        level: Any = c.execute("SELECT escalation_level FROM alerts WHERE id = %s", (outcome.alert_id,))
        assert level.fetchone() == (1,)
