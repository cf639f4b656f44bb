"""The outbox of alert deliveries (table ``alert_deliveries``, migration 0013): who can be told, what is
queued, what is due, and what became of it.

Rows are written in the transaction of the event they tell (``enqueue``: raised, severity raised,
escalated), so a committed event has its deliveries committed with it. The dispatcher takes due rows
with ``claim_due``: ``FOR UPDATE SKIP LOCKED`` lets several gateway processes share the work, and a
claim moves the row's ``next_attempt_at`` a lease ahead and counts the attempt, then commits, so no
transaction stays open while a message is on its way. The attempt count is the claim's token:
``mark_sent``, ``mark_retry``, ``mark_failed`` and ``release`` change the row only while it still holds
the count the claim returned, so a dispatcher whose lease ran out cannot overwrite the work of the one
that took the row over. A process that dies mid-send leaves its claims to expire: delivery is at least
once, and ``UNIQUE (event_id, channel, recipient)`` keeps an event from being queued twice.

For the admin page and ``/metrics`` (gateway.api): ``failed_deliveries`` (newest first, paged by id),
``count_failed``, ``delivery_counts`` (per channel and status, zeros included) and ``delivery_backlog``
(what is due now and since when). None of them returns clinical data: an alert's id, never its patient.

Who is told at which level is ``gateway.alerts.routing``'s; sending, back-off and events are
``gateway.alerts.dispatcher``'s. Callers own transactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

CHANNELS = ("email", "webhook")
STATUSES = ("pending", "sent", "failed")
AUDIENCES = ("care-team", "gp", "on-call", "municipality")
# last_error is for a person to read on the admin page; a whole traceback or server banner is not.
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Recipient:
    """Someone (or something) a delivery goes to: an e-mail address or a webhook URL."""

    channel: str  # 'email' | 'webhook'
    recipient: str  # the address or the URL
    username: str | None  # the person behind an address; None for the on-call address and the webhook
    audience: str  # 'care-team' | 'gp' | 'on-call' | 'municipality'


@dataclass(frozen=True, slots=True)
class Audience:
    """Everyone who could be told of one alert, before routing chooses by escalation level."""

    municipality_id: str
    escalation_level: int
    care_team: tuple[Recipient, ...]  # the nurses of the patient's care team who have an address
    gp: Recipient | None  # the patient's GP, when she has an address
    on_call: Recipient | None  # the municipality's on-call address (alert_settings.on_call_email)
    webhook: Recipient | None  # the municipality's webhook (alert_settings.webhook_url)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A claimed delivery: what to send where; ``attempts`` counts this attempt (the claim's token)."""

    id: int
    municipality_id: str
    alert_id: int
    event_id: int
    channel: str
    recipient: str
    username: str | None
    audience: str
    attempts: int


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What a message about an alert may say (docs/alerts.md): never the name, CPR, values or reason."""

    alert_id: int
    public_id: str  # the alert's uuid (its FHIR id)
    municipality_id: str
    kind: str
    severity: str
    escalation_level: int
    event_action: str  # 'raised' | 'severity-raised' | 'escalated'
    event_at: datetime
    initials: str | None  # only when the municipality's message_detail is 'initials'


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    """A delivery that gave up, for the administrator: where it went and why it failed."""

    id: int
    alert_id: int
    event_id: int
    channel: str
    recipient: str
    username: str | None
    audience: str
    attempts: int
    created_at: datetime
    failed_at: datetime  # when the last attempt failed
    last_error: str | None


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """A delivery as stored, whatever its status (an alert's deliveries, for its history and tests)."""

    id: int
    event_id: int
    channel: str
    recipient: str
    username: str | None
    audience: str
    status: str
    attempts: int
    next_attempt_at: datetime  # pending: when due; failed: when it failed
    sent_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class DeliveryCount:
    channel: str
    status: str
    count: int


@dataclass(frozen=True, slots=True)
class Backlog:
    """Pending deliveries due at ``now``, and the oldest due time among them (None when none is due)."""

    due: int
    oldest_due_at: datetime | None


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """How the deliveries of one event stand."""

    pending: int
    sent: int
    failed: int

    @property
    def nobody_reached(self) -> bool:
        """Every delivery of the event has failed (and it had some)."""
        return self.failed > 0 and self.pending == 0 and self.sent == 0


# --- who can be told ----------------------------------------------------------------------------------


def audience_of(conn: psycopg.Connection[Any], alert_id: int) -> Audience | None:
    """Everyone who could be told of alert ``alert_id`` (None for an unknown alert): the nurses of the
    patient's care team and the patient's GP with an e-mail address, and the municipality's on-call
    address and webhook."""
    head = conn.execute(
        "SELECT a.municipality_id, a.escalation_level, s.on_call_email, s.webhook_url,"
        " gp.username, gp.email"
        " FROM alerts a JOIN patients p ON p.id = a.patient_id AND p.municipality_id = a.municipality_id"
        " LEFT JOIN alert_settings s ON s.municipality_id = a.municipality_id"
        " LEFT JOIN users gp ON gp.username = p.gp_username AND gp.role = 'gp' AND gp.email IS NOT NULL"
        " WHERE a.id = %s",
        (alert_id,),
    ).fetchone()
    if head is None:
        return None
    municipality_id, level, on_call, webhook_url, gp_username, gp_email = head
    nurses = conn.execute(
        "SELECT u.username, u.email FROM alerts a"
        " JOIN patients p ON p.id = a.patient_id AND p.municipality_id = a.municipality_id"
        " JOIN care_team_members m"
        "   ON m.care_team_id = p.care_team_id AND m.municipality_id = p.municipality_id"
        " JOIN users u ON u.username = m.username AND u.municipality_id = m.municipality_id"
        " WHERE a.id = %s AND u.role = 'nurse' AND u.email IS NOT NULL ORDER BY u.username",
        (alert_id,),
    ).fetchall()
    return Audience(
        municipality_id=municipality_id,
        escalation_level=int(level),
        care_team=tuple(Recipient("email", email, username, "care-team") for username, email in nurses),
        gp=None if gp_email is None else Recipient("email", gp_email, gp_username, "gp"),
        on_call=None if on_call is None else Recipient("email", on_call, None, "on-call"),
        webhook=None if webhook_url is None else Recipient("webhook", webhook_url, None, "municipality"),
    )


# --- the outbox -----------------------------------------------------------------------------------------


def enqueue(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    alert_id: int,
    event_id: int,
    recipients: Sequence[Recipient],
    *,
    now: datetime,
) -> int:
    """Queue one delivery per recipient of event ``event_id``, due at ``now``; how many were new (a
    recipient already queued for the event, by the same channel, is not queued again)."""
    queued = 0
    for r in recipients:
        row = conn.execute(
            "INSERT INTO alert_deliveries (municipality_id, alert_id, event_id, channel, recipient, username,"
            " audience, next_attempt_at, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (event_id, channel, recipient) DO NOTHING RETURNING id",
            (municipality_id, alert_id, event_id, r.channel, r.recipient, r.username, r.audience, now, now),
        ).fetchone()
        queued += row is not None
    return queued


def claim_due(
    conn: psycopg.Connection[Any], now: datetime, limit: int, *, lease: timedelta = timedelta(minutes=5)
) -> list[Delivery]:
    """Take up to ``limit`` pending deliveries due at ``now`` (oldest first) for this process: each is
    pushed ``lease`` ahead (nobody else takes it meanwhile; after a crash it is due again then) and its
    attempt counted. Rows another transaction is claiming are skipped, not waited for."""
    rows = conn.execute(
        "UPDATE alert_deliveries d SET attempts = d.attempts + 1, next_attempt_at = %s"
        " FROM (SELECT id FROM alert_deliveries WHERE status = 'pending' AND next_attempt_at <= %s"
        "       ORDER BY next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED) due"
        " WHERE d.id = due.id"
        " RETURNING d.id, d.municipality_id, d.alert_id, d.event_id, d.channel, d.recipient, d.username,"
        " d.audience, d.attempts",
        (now + lease, now, limit),
    ).fetchall()
    return sorted((Delivery(*row) for row in rows), key=lambda d: d.id)


def _claimed(conn: psycopg.Connection[Any], statement: str, params: tuple[Any, ...]) -> bool:
    return conn.execute(statement, params).rowcount == 1


def mark_sent(conn: psycopg.Connection[Any], delivery: Delivery, *, at: datetime) -> bool:
    """Record that ``delivery`` went out at ``at``; False when the claim was lost (changes nothing)."""
    return _claimed(
        conn,
        "UPDATE alert_deliveries SET status = 'sent', sent_at = %s, last_error = NULL"
        " WHERE id = %s AND status = 'pending' AND attempts = %s",
        (at, delivery.id, delivery.attempts),
    )


def mark_retry(
    conn: psycopg.Connection[Any], delivery: Delivery, *, next_attempt_at: datetime, error: str
) -> bool:
    """Record a failed attempt to be tried again at ``next_attempt_at``; False when the claim was lost."""
    return _claimed(
        conn,
        "UPDATE alert_deliveries SET next_attempt_at = %s, last_error = %s"
        " WHERE id = %s AND status = 'pending' AND attempts = %s",
        (next_attempt_at, error[:MAX_ERROR_CHARS], delivery.id, delivery.attempts),
    )


def mark_failed(conn: psycopg.Connection[Any], delivery: Delivery, *, at: datetime, error: str) -> bool:
    """Give ``delivery`` up after its last attempt failed at ``at``; False when the claim was lost.
    (``next_attempt_at`` of a failed row is when it failed: ``FailedDelivery.failed_at``.)"""
    return _claimed(
        conn,
        "UPDATE alert_deliveries SET status = 'failed', next_attempt_at = %s, last_error = %s"
        " WHERE id = %s AND status = 'pending' AND attempts = %s",
        (at, error[:MAX_ERROR_CHARS], delivery.id, delivery.attempts),
    )


def release(conn: psycopg.Connection[Any], delivery: Delivery, *, now: datetime) -> bool:
    """Hand back a claimed delivery that was not attempted (the dispatcher is stopping): due at ``now``
    again, its attempt not counted; False when the claim was lost."""
    return _claimed(
        conn,
        "UPDATE alert_deliveries SET attempts = attempts - 1, next_attempt_at = %s"
        " WHERE id = %s AND status = 'pending' AND attempts = %s",
        (now, delivery.id, delivery.attempts),
    )


def event_outcome(conn: psycopg.Connection[Any], event_id: int) -> EventOutcome:
    """How the deliveries of event ``event_id`` stand."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'sent'),"
        " count(*) FILTER (WHERE status = 'failed') FROM alert_deliveries WHERE event_id = %s",
        (event_id,),
    ).fetchone()
    assert row is not None  # an aggregate always returns a row
    return EventOutcome(int(row[0]), int(row[1]), int(row[2]))


# --- what a message says ------------------------------------------------------------------------------


def message_facts(conn: psycopg.Connection[Any], alert_id: int, event_id: int) -> MessageFacts | None:
    """What a message about event ``event_id`` of alert ``alert_id`` may say; None when either is gone.

    The patient's initials (first letters of the first and the last word of the name) are made here,
    so the name never leaves the database, and only when the municipality's ``message_detail`` is
    'initials' (the default)."""
    row = conn.execute(
        # The severity and level the event told of, not the alert's as it is when the message leaves
        # (a "new alert" message sent after the alert escalated still says level 0).
        "SELECT a.id, a.public_id::text, a.municipality_id, a.kind,"
        " coalesce(e.detail->>'severity', a.severity),"
        " coalesce((e.detail->>'level')::int,"
        "  CASE WHEN e.action = 'raised' THEN 0 ELSE a.escalation_level END),"
        " e.action, e.at,"
        " CASE WHEN coalesce(s.message_detail, 'initials') = 'initials' AND btrim(p.name) <> '' THEN"
        "   upper(substring(btrim(p.name) FROM '^\\S')) || '.' ||"
        "   CASE WHEN btrim(p.name) ~ '\\s' THEN upper(substring(btrim(p.name) FROM '(\\S)\\S*$')) || '.'"
        "   ELSE '' END"
        " END"
        " FROM alerts a JOIN alert_events e ON e.alert_id = a.id AND e.id = %s"
        " JOIN patients p ON p.id = a.patient_id AND p.municipality_id = a.municipality_id"
        " LEFT JOIN alert_settings s ON s.municipality_id = a.municipality_id"
        " WHERE a.id = %s",
        (event_id, alert_id),
    ).fetchone()
    return None if row is None else MessageFacts(*row)


def webhook_secret(conn: psycopg.Connection[Any], municipality_id: str) -> str | None:
    """The secret the municipality's webhook calls are signed with; None without a webhook."""
    row = conn.execute(
        "SELECT webhook_secret FROM alert_settings WHERE municipality_id = %s", (municipality_id,)
    ).fetchone()
    return None if row is None else row[0]


# --- reads for the admin page and /metrics ------------------------------------------------------------


def failed_deliveries(
    conn: psycopg.Connection[Any],
    municipality_id: str | None,
    *,
    limit: int = 50,
    before_id: int | None = None,
) -> list[FailedDelivery]:
    """The failed deliveries of ``municipality_id`` (None: of every municipality, for the system
    administrator), newest first; the next page starts ``before_id`` = the last id of this one."""
    rows = conn.execute(
        "SELECT id, alert_id, event_id, channel, recipient, username, audience, attempts, created_at,"
        " next_attempt_at, last_error FROM alert_deliveries"
        " WHERE status = 'failed' AND (%s::text IS NULL OR municipality_id = %s)"
        " AND (%s::bigint IS NULL OR id < %s) ORDER BY id DESC LIMIT %s",
        (municipality_id, municipality_id, before_id, before_id, limit),
    ).fetchall()
    return [FailedDelivery(*row) for row in rows]


def count_failed(conn: psycopg.Connection[Any], municipality_id: str | None) -> int:
    """How many deliveries of ``municipality_id`` (None: of every municipality) failed."""
    row = conn.execute(
        "SELECT count(*) FROM alert_deliveries WHERE status = 'failed'"
        " AND (%s::text IS NULL OR municipality_id = %s)",
        (municipality_id, municipality_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


def delivery_counts(conn: psycopg.Connection[Any], municipality_id: str | None = None) -> list[DeliveryCount]:
    """Deliveries per channel and status (every pair, zeros included, in CHANNELS x STATUSES order), of
    ``municipality_id`` or (None) of every municipality."""
    rows = conn.execute(
        "SELECT channel, status, count(*) FROM alert_deliveries"
        " WHERE %s::text IS NULL OR municipality_id = %s GROUP BY channel, status",
        (municipality_id, municipality_id),
    ).fetchall()
    counted = {(channel, status): int(n) for channel, status, n in rows}
    return [DeliveryCount(c, s, counted.get((c, s), 0)) for c in CHANNELS for s in STATUSES]


def delivery_backlog(conn: psycopg.Connection[Any], now: datetime) -> Backlog:
    """The pending deliveries due at ``now`` (claimed ones are due when their lease ends)."""
    row = conn.execute(
        "SELECT count(*), min(next_attempt_at) FROM alert_deliveries"
        " WHERE status = 'pending' AND next_attempt_at <= %s",
        (now,),
    ).fetchone()
    assert row is not None
    return Backlog(int(row[0]), row[1])


def deliveries_of_alert(conn: psycopg.Connection[Any], alert_id: int) -> list[DeliveryRow]:
    """Every delivery of an alert, in the order they were queued."""
    rows = conn.execute(
        "SELECT id, event_id, channel, recipient, username, audience, status, attempts, next_attempt_at,"
        " sent_at, last_error FROM alert_deliveries WHERE alert_id = %s ORDER BY id",
        (alert_id,),
    ).fetchall()
    return [DeliveryRow(*row) for row in rows]
