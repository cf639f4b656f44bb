"""Alerts by e-mail: the message says no more than it must (pure), and the dispatcher hands it to a real
SMTP server (aiosmtpd on a free port), retries with back-off when the server is down, and records the
failure where the administrator reads it."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import psycopg
import pytest
from delivery_world import (
    BASE_URL,
    GP_ADDRESS,
    PATIENT_NAME,
    T0,
    TEAM_ADDRESSES,
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

from gateway.alerts import routing
from gateway.alerts.dispatcher import Dispatcher
from gateway.alerts.email import TEXTS, EmailFailed, SmtpServer, body, build_email, send_email, subject
from gateway.broker import free_port
from gateway.store import alert_deliveries as outbox
from gateway.store.alert_deliveries import MessageFacts

FACTS = MessageFacts(
    alert_id=42,
    public_id="8c6f2b0e-0000-4000-8000-000000000042",
    municipality_id="0101",
    kind="news2",
    severity="high",
    escalation_level=0,
    event_action="raised",
    event_at=T0,
    initials="K.J.",
)


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as c:
        make_world(c)
        yield c


# --- the message ------------------------------------------------------------------------------------------


def test_the_danish_message_has_kind_severity_initials_and_the_link() -> None:
    message = build_email(
        FACTS, to="anna@kommune.example", sender="alarm@x.example", base_url=BASE_URL, at=T0
    )
    assert message["Subject"] == "[homewatch] Ny alarm (høj): NEWS2 - K.J."
    assert message["To"] == "anna@kommune.example"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Content-Language"] == "da"
    text = message.get_content()
    assert f"{BASE_URL}/alerts/42" in text
    assert "Borger: K.J." in text
    assert "Alvorlighed: høj" in text
    assert "Eskaleringsniveau" not in text


def test_an_escalated_message_says_so_and_english_is_there_on_request() -> None:
    escalated = replace(FACTS, event_action="escalated", escalation_level=2)
    assert subject(escalated).startswith("[homewatch] Eskaleret alarm (høj)")
    assert "Eskaleringsniveau: 2" in body(escalated, BASE_URL)
    assert subject(escalated, "en") == "[homewatch] Escalated alert (high): NEWS2 - K.J."
    assert "Nobody acknowledged this alert" in body(escalated, BASE_URL, "en")


def test_without_initials_the_message_names_nobody() -> None:
    anonymous = replace(FACTS, initials=None)
    assert "K.J." not in subject(anonymous) + body(anonymous, BASE_URL)
    assert "Borger" not in body(anonymous, BASE_URL)


def test_both_languages_have_the_same_texts_and_placeholders() -> None:
    def placeholders(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    assert TEXTS["da"].keys() == TEXTS["en"].keys()
    for key in TEXTS["da"]:
        assert placeholders(TEXTS["da"][key]) == placeholders(TEXTS["en"][key]), key


def test_initials_come_from_the_database_only_when_the_municipality_allows_them(conn: Conn) -> None:
    outcome = raise_alert(conn, T0)
    assert outcome.alert_id is not None and outcome.event_id is not None
    facts = outbox.message_facts(conn, outcome.alert_id, outcome.event_id)
    assert facts is not None and facts.initials == "K.J."  # the first and the last name
    set_alert_settings(conn, message_detail="none")
    facts = outbox.message_facts(conn, outcome.alert_id, outcome.event_id)
    assert facts is not None and facts.initials is None


# --- a real SMTP server ---------------------------------------------------------------------------------


def test_every_recipient_gets_one_message_with_the_link_and_initials_and_never_the_name(conn: Conn) -> None:
    sink = SmtpSink()
    clock = Clock()
    with smtp_server(sink) as port:
        outcome = raise_alert(conn, T0)
        dispatcher = Dispatcher(conn.info.dsn, settings(port), clock=clock)
        try:
            done = dispatcher.run_once()
        finally:
            dispatcher.stop()
    assert (done.claimed, done.sent) == (3, 3)
    received = sink.received()
    assert sorted(m["To"] for m in received) == sorted(TEAM_ADDRESSES | {GP_ADDRESS})
    assert {rcpt for _, rcpts in sink.envelopes for rcpt in rcpts} == TEAM_ADDRESSES | {GP_ADDRESS}
    for message in received:
        text = message.get_content()
        assert message["From"] == "alarm@homewatch.example"
        assert message["Subject"] == "[homewatch] Ny alarm (høj): NEWS2 - K.J."
        assert f"{BASE_URL}/alerts/{outcome.alert_id}" in text
        assert "K.J." in text
        # Every header a person reads (not the random Message-ID) and the decoded text.
        shown = text + "".join(str(v) for k, v in message.items() if k not in ("Message-ID", "Date"))
        for secret in (*PATIENT_NAME.split(), "SpO2", "88 %", "pulse", "131", "p-karen"):
            assert secret not in shown, secret
    assert outcome.alert_id is not None
    rows = outbox.deliveries_of_alert(conn, outcome.alert_id)
    assert {(r.status, r.attempts, r.sent_at) for r in rows} == {("sent", 1, T0)}
    delivered = [detail for action, detail in events(conn, outcome.alert_id) if action == "delivered"]
    assert sorted(d["username"] for d in delivered) == ["gp.hansen", "nurse.anna", "nurse.bo"]
    assert all("@" not in str(d) for d in delivered)  # the username, never the address


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_server_that_wants_a_login_gets_it(conn: Conn) -> None:
    sink = SmtpSink()
    with smtp_server(sink, login=("homewatch", "pa55word")) as port:
        raise_alert(conn, T0)
        good = Dispatcher(
            conn.info.dsn, settings(port, smtp_username="homewatch", smtp_password="pa55word"), clock=Clock()
        )
        try:
            assert good.run_once().sent == 3
        finally:
            good.stop()
        facts = FACTS
        message = build_email(facts, to="a@x.example", sender="alarm@x.example", base_url=BASE_URL, at=T0)
        wrong = SmtpServer(
            "127.0.0.1", port, username="homewatch", password="wrong", sender="alarm@x.example"
        )
        with pytest.raises(EmailFailed) as failed:
            send_email(wrong, message)
        assert not failed.value.permanent  # a setting to mend, tried again meanwhile
    assert len(sink.received()) == 3


def test_a_server_that_is_down_is_tried_again_with_back_off_then_given_up_and_shown(conn: Conn) -> None:
    port = free_port()  # nothing listens here
    clock = Clock()
    set_alert_settings(conn, escalate_high_minutes=60)  # no escalation by time while this runs
    outcome = raise_alert(conn, T0)
    assert outcome.alert_id is not None
    dispatcher = Dispatcher(conn.info.dsn, settings(port), clock=clock)
    tried_at = []
    try:
        # Every ten seconds, and the second before and the second of each retry.
        due = [0, 30, 90, 210, 450, 930]
        for second in sorted({*range(0, 16 * 60, 10), *due, *(d - 1 for d in due[1:])}):
            clock.now = T0 + timedelta(seconds=second)
            if dispatcher.run_once().claimed:
                tried_at.append(second)
    finally:
        dispatcher.stop()
    # 30 s, 1, 2, 4, 8 min between the six attempts of each delivery (all three fail together).
    assert tried_at == due
    rows = outbox.deliveries_of_alert(conn, outcome.alert_id)
    first_three = [r for r in rows if r.event_id == outcome.event_id]
    assert {(r.status, r.attempts) for r in first_three} == {("failed", 6)}
    assert all("Connection refused" in (r.last_error or "") for r in first_three)
    # The administrator's read: newest first, with the error and when it failed.
    failed = outbox.failed_deliveries(conn, "0101")
    assert [f.id for f in failed] == sorted((f.id for f in failed), reverse=True)
    assert {f.recipient for f in failed} >= TEAM_ADDRESSES | {GP_ADDRESS}
    assert all(f.failed_at == T0 + timedelta(seconds=930) for f in failed if f.event_id == outcome.event_id)
    page = outbox.failed_deliveries(conn, "0101", limit=2)
    rest = outbox.failed_deliveries(conn, "0101", before_id=page[-1].id)
    assert [f.id for f in page + rest] == [f.id for f in failed]
    assert outbox.count_failed(conn, "0101") == len(failed)
    assert outbox.failed_deliveries(conn, "0999") == []
    counts = {(c.channel, c.status): c.count for c in outbox.delivery_counts(conn)}
    assert counts[("email", "failed")] == len(failed) and counts[("email", "sent")] == 0
    assert counts[("webhook", "sent")] == 0  # every pair is there, zero or not
    # Nobody was reached: one 'delivery-failed' per delivery, then 'undeliverable', and it escalated at
    # once (its on-call-less level 1 deliveries went out in the same round, and failed too).
    history = actions(conn, outcome.alert_id)
    assert history == ["raised", *["delivery-failed"] * 3, "undeliverable", "escalated"]
    assert alert_state(conn, outcome.alert_id)["escalation_level"] == 1
    escalation = [r for r in rows if r.event_id != outcome.event_id]
    assert len(escalation) == 3 and {(r.status, r.attempts) for r in escalation} == {("pending", 1)}


def test_without_an_smtp_server_configured_an_email_fails_at_once(conn: Conn) -> None:
    outcome = raise_alert(conn, T0)
    assert outcome.alert_id is not None
    dispatcher = Dispatcher(conn.info.dsn, settings(None), clock=Clock())
    try:
        done = dispatcher.run_once()
    finally:
        dispatcher.stop()
    assert done.failed >= 3 and done.retried == 0
    first = [r for r in outbox.deliveries_of_alert(conn, outcome.alert_id) if r.event_id == outcome.event_id]
    assert {(r.status, r.attempts) for r in first} == {("failed", 1)}
    assert all("HOMEWATCH_SMTP_HOST" in (r.last_error or "") for r in first)


def test_an_address_the_server_refuses_fails_at_once_and_the_others_are_sent(conn: Conn) -> None:
    sink = SmtpSink(refuse={"bo@kommune.example"})
    with smtp_server(sink) as port:
        outcome = raise_alert(conn, T0)
        dispatcher = Dispatcher(conn.info.dsn, settings(port), clock=Clock())
        try:
            done = dispatcher.run_once()
        finally:
            dispatcher.stop()
    assert (done.sent, done.failed, done.retried) == (2, 1, 0)
    assert outcome.alert_id is not None
    bo = [r for r in outbox.deliveries_of_alert(conn, outcome.alert_id) if r.username == "nurse.bo"]
    assert bo[0].status == "failed" and re.search(r"550", bo[0].last_error or "")
    # Others were reached: not undeliverable, no escalation.
    assert "undeliverable" not in actions(conn, outcome.alert_id)


def test_a_message_tells_the_level_and_severity_of_its_event_not_of_the_alert_when_it_leaves(
    conn: Conn,
) -> None:
    outcome = raise_alert(conn, T0, "medium")
    assert outcome.alert_id is not None and outcome.event_id is not None
    with conn.transaction():
        assert routing.escalate(conn, outcome.alert_id, now=T0, reason="not-acknowledged")
    conn.execute("UPDATE alerts SET severity = 'high' WHERE id = %s", (outcome.alert_id,))
    facts = outbox.message_facts(conn, outcome.alert_id, outcome.event_id)  # the "new alert" message
    assert facts is not None and (facts.escalation_level, facts.severity) == (0, "medium")
