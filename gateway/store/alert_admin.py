"""What administrators and their monitoring read about alert delivery, and a municipality's alert settings.

For the administrator's pages (``gateway.api.admin_alert_pages``): the deliveries that failed, or that
are still pending after an attempt or past their time, of one municipality (None: every municipality),
newest first and paged by id (``delivery_problems``); a municipality's ``alert_settings``
(``alert_settings``, ``set_alert_settings``). For ``/metrics``: open alerts by municipality, kind and
severity, and the outbox's state (``alert_metrics``, with the outbox's own counts of
``gateway.store.alert_deliveries``).

Administrators see no clinical data, so a delivery row says which alert and which patient id it was
about and nothing of the patient (no name, no reason, no values), and a webhook's address is cut to its
host here, before any page sees it: a webhook URL often carries a token of the receiver in its path. The
webhook's secret is read by nobody here (``AlertSettings.webhook_secret_set`` says whether there is one);
the dispatcher reads it with its deliveries (``gateway.store.alert_deliveries``). Sending, retrying and
writing the outbox are left to ``gateway.alerts``; validating a form to the route.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from gateway.store.alert_deliveries import DeliveryCount, delivery_backlog, delivery_counts
from gateway.store.alerts import DEFAULT_ESCALATE_AFTER
from gateway.store.audit import Actor, record_audit

MESSAGE_DETAILS = ("none", "initials")
# The page's filter: failed ones, pending ones in trouble, or both (None).
PROBLEM_STATUSES = ("failed", "pending")
SET_ALERT_SETTINGS = "set-alert-settings"

# A pending delivery this long past its time was not picked up: the dispatcher looks every second
# (``alert_jobs_interval_s``), so minutes mean it is stopped or stuck, not busy.
OVERDUE_AFTER = timedelta(minutes=5)
# An error text is a server's answer; the page shows its start, enough to tell one cause from another.
_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class DeliveryProblem:
    """A delivery that failed, or is pending after a failed attempt or past its time; no clinical data."""

    id: int
    municipality_id: str
    alert_id: int
    patient_id: str
    channel: str  # 'email' | 'webhook'
    audience: str  # 'care-team' | 'gp' | 'on-call' | 'municipality'
    recipient: str  # an e-mail address (staff data), or a webhook's host only
    username: str | None  # the person behind an e-mail address, when one is
    status: str  # 'failed' | 'pending'
    attempts: int
    last_error: str | None  # cut short, a webhook's URL in it cut to its host
    created_at: datetime
    next_attempt_at: datetime  # pending: when it is tried next; failed: when it failed


@dataclass(frozen=True, slots=True)
class ProblemPage:
    """Rows newest first, and the id to read older rows before (None: these are the oldest)."""

    rows: tuple[DeliveryProblem, ...]
    older_than: int | None


def webhook_host(url: str) -> str:
    """The host (and port, when one is given) of a webhook's URL: what may be shown of it."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "?"
    if not host:
        return "?"
    return f"{host}:{port}" if port is not None else host


def _shown_error(error: str | None, channel: str, recipient: str) -> str | None:
    if error is None:
        return None
    if channel == "webhook":  # an HTTP client's message often quotes the URL it called
        error = error.replace(recipient, webhook_host(recipient))
    return error if len(error) <= _ERROR_CHARS else error[: _ERROR_CHARS - 1] + "…"


def _problem(row: tuple[Any, ...]) -> DeliveryProblem:
    (id_, municipality, alert_id, patient_id, channel, audience, recipient, username, status, attempts,
     error, created_at, next_attempt_at) = row  # fmt: skip
    return DeliveryProblem(
        id=int(id_),
        municipality_id=municipality,
        alert_id=int(alert_id),
        patient_id=patient_id,
        channel=channel,
        audience=audience,
        recipient=webhook_host(recipient) if channel == "webhook" else recipient,
        username=username,
        status=status,
        attempts=int(attempts),
        last_error=_shown_error(error, channel, recipient),
        created_at=created_at,
        next_attempt_at=next_attempt_at,
    )


def delivery_problems(
    conn: psycopg.Connection[Any],
    municipality_id: str | None,
    *,
    now: datetime,
    status: str | None = None,
    before_id: int | None = None,
    size: int = 50,
) -> ProblemPage:
    """A page of ``municipality_id``'s (None: every municipality's) deliveries in trouble, newest first,
    older than ``before_id``: failed ones, and pending ones after a failed attempt or ``OVERDUE_AFTER``
    past their time at ``now``; ``status`` 'failed' or 'pending' keeps only those."""
    failed = sql.SQL("d.status = 'failed'")
    # An attempt is counted when it is claimed, so a pending row's error (not its count) tells of a
    # failed attempt (gateway.store.alert_deliveries: mark_retry writes it, mark_sent clears it).
    pending = sql.SQL(
        "(d.status = 'pending' AND (d.last_error IS NOT NULL OR d.next_attempt_at < {due}))"
    ).format(due=sql.Literal(now - OVERDUE_AFTER))
    wanted = (
        failed
        if status == "failed"
        else pending
        if status == "pending"
        else failed + sql.SQL(" OR ") + pending
    )
    conditions: list[sql.Composable] = [sql.SQL("({})").format(wanted)]
    if municipality_id is not None:
        conditions.append(sql.SQL("d.municipality_id = {}").format(sql.Literal(municipality_id)))
    if before_id is not None:
        conditions.append(sql.SQL("d.id < {}").format(sql.Literal(before_id)))
    query = sql.SQL(
        "SELECT d.id, d.municipality_id, d.alert_id, a.patient_id, d.channel, d.audience, d.recipient,"
        " d.username, d.status, d.attempts, d.last_error, d.created_at, d.next_attempt_at"
        " FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id"
        " WHERE {where} ORDER BY d.id DESC LIMIT {limit}"
    ).format(where=sql.SQL(" AND ").join(conditions), limit=sql.Literal(size + 1))
    rows = [_problem(row) for row in conn.execute(query).fetchall()]
    page = tuple(rows[:size])
    return ProblemPage(page, page[-1].id if len(rows) > size else None)


# --- /metrics ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenAlerts:
    municipality_id: str
    kind: str
    severity: str
    count: int


@dataclass(frozen=True, slots=True)
class AlertMetrics:
    """What ``/metrics`` says of alerts and their delivery, every municipality's together."""

    open_alerts: tuple[OpenAlerts, ...]  # status 'open' (not acknowledged, snoozed or resolved)
    deliveries: tuple[DeliveryCount, ...]
    failed: int  # deliveries that failed for good (the dispatcher retries no failed one)
    oldest_pending_s: float  # age of the oldest pending delivery; 0 when none is pending
    most_overdue_s: float  # how long the longest-due pending delivery waits past its time; 0: none


def alert_metrics(conn: psycopg.Connection[Any], *, now: datetime) -> AlertMetrics:
    """Open alerts by municipality, kind and severity, and the outbox's counts and ages at ``now``."""
    opened = conn.execute(
        "SELECT municipality_id, kind, severity, count(*) FROM alerts WHERE status = 'open'"
        " GROUP BY municipality_id, kind, severity ORDER BY municipality_id, kind, severity"
    ).fetchall()
    deliveries = delivery_counts(conn, None)
    oldest = conn.execute("SELECT min(created_at) FROM alert_deliveries WHERE status = 'pending'").fetchone()
    assert oldest is not None
    due = delivery_backlog(conn, now).oldest_due_at
    return AlertMetrics(
        open_alerts=tuple(OpenAlerts(m, k, s, int(n)) for m, k, s, n in opened),
        deliveries=tuple(deliveries),
        failed=sum(c.count for c in deliveries if c.status == "failed"),
        # A clock behind the rows' (a demo's simulated one) makes no negative age.
        oldest_pending_s=0.0 if oldest[0] is None else max((now - oldest[0]).total_seconds(), 0.0),
        most_overdue_s=0.0 if due is None else max((now - due).total_seconds(), 0.0),
    )


# --- alert settings --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """A municipality's alert settings as the page shows them: never the webhook's secret."""

    municipality_id: str
    webhook_url: str | None
    webhook_secret_set: bool
    on_call_email: str | None
    message_detail: str  # 'none' | 'initials': how much of the patient a message names
    escalate_high_minutes: int
    escalate_medium_minutes: int
    updated_by: str | None  # None (with updated_at): never set, these are the defaults
    updated_at: datetime | None


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def default_settings(municipality_id: str) -> AlertSettings:
    """What a municipality without an ``alert_settings`` row gets (migration 0013's defaults)."""
    return AlertSettings(
        municipality_id=municipality_id,
        webhook_url=None,
        webhook_secret_set=False,
        on_call_email=None,
        message_detail="initials",
        escalate_high_minutes=_minutes(DEFAULT_ESCALATE_AFTER["high"]),
        escalate_medium_minutes=_minutes(DEFAULT_ESCALATE_AFTER["medium"]),
        updated_by=None,
        updated_at=None,
    )


def alert_settings(conn: psycopg.Connection[Any], municipality_id: str) -> AlertSettings:
    """``municipality_id``'s alert settings; the defaults when it has none."""
    row = conn.execute(
        "SELECT municipality_id, webhook_url, webhook_secret IS NOT NULL, on_call_email, message_detail,"
        " escalate_high_minutes, escalate_medium_minutes, updated_by, updated_at"
        " FROM alert_settings WHERE municipality_id = %s",
        (municipality_id,),
    ).fetchone()
    return default_settings(municipality_id) if row is None else AlertSettings(*row)


@dataclass(frozen=True, slots=True)
class SettingsChange:
    """New alert settings of a municipality, checked by the caller (the database checks them again)."""

    webhook_url: str | None  # None: no webhook (its secret goes with it)
    new_webhook_secret: str | None  # None: keep the stored secret
    on_call_email: str | None
    message_detail: str
    escalate_high_minutes: int
    escalate_medium_minutes: int


def _described(before: AlertSettings, change: SettingsChange) -> str:
    """What changed, for the audit log: hosts of webhooks only, and of the secret only that it changed."""
    changed = []
    if before.webhook_url != change.webhook_url:
        old, new = (webhook_host(u) if u else "-" for u in (before.webhook_url, change.webhook_url))
        changed.append(f"webhook {old} -> {new}")
    if change.new_webhook_secret is not None:
        changed.append("webhook secret replaced")
    for name, old_value, new_value in (
        ("on-call e-mail", before.on_call_email, change.on_call_email),
        ("message detail", before.message_detail, change.message_detail),
        ("escalate high after min", before.escalate_high_minutes, change.escalate_high_minutes),
        ("escalate medium after min", before.escalate_medium_minutes, change.escalate_medium_minutes),
    ):
        if old_value != new_value:
            changed.append(f"{name} {old_value or '-'} -> {new_value or '-'}")
    return f"municipality {before.municipality_id}: " + ("; ".join(changed) or "unchanged")


def set_alert_settings(
    conn: psycopg.Connection[Any],
    actor: Actor,
    municipality_id: str,
    change: SettingsChange,
    *,
    now: datetime,
    client: str | None,
) -> AlertSettings:
    """Store ``municipality_id``'s alert settings as ``actor`` set them at ``now``, with an audit row
    (action ``set-alert-settings``) in one transaction (a savepoint of the caller's, when it has one);
    the settings as stored.

    A webhook without a new secret keeps the stored one; a webhook without any secret is refused by the
    database (the caller gives one), and no webhook drops its secret."""
    with conn.transaction():
        before = alert_settings(conn, municipality_id)
        conn.execute(
            "INSERT INTO alert_settings (municipality_id, webhook_url, webhook_secret, on_call_email,"
            " message_detail, escalate_high_minutes, escalate_medium_minutes, updated_by, updated_at)"
            # The row's checks hold for the values proposed, before ON CONFLICT: the kept secret is in them.
            " VALUES (%(m)s, %(url)s, CASE WHEN %(url)s::text IS NOT NULL THEN coalesce(%(secret)s::text,"
            " (SELECT webhook_secret FROM alert_settings WHERE municipality_id = %(m)s)) END,"
            " %(email)s, %(detail)s, %(high)s, %(medium)s, %(by)s, %(at)s)"
            " ON CONFLICT (municipality_id) DO UPDATE SET webhook_url = EXCLUDED.webhook_url,"
            " webhook_secret = EXCLUDED.webhook_secret,"
            " on_call_email = EXCLUDED.on_call_email, message_detail = EXCLUDED.message_detail,"
            " escalate_high_minutes = EXCLUDED.escalate_high_minutes,"
            " escalate_medium_minutes = EXCLUDED.escalate_medium_minutes,"
            " updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at",
            {
                "m": municipality_id,
                "url": change.webhook_url,
                "secret": change.new_webhook_secret,
                "email": change.on_call_email,
                "detail": change.message_detail,
                "high": change.escalate_high_minutes,
                "medium": change.escalate_medium_minutes,
                "by": actor.username,
                "at": now,
            },
        )
        record_audit(conn, actor, SET_ALERT_SETTINGS, [], _described(before, change), client=client)
        return alert_settings(conn, municipality_id)


def municipalities(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """(id, name) of every municipality, by id: what a system administrator picks from."""
    return [(str(i), str(n)) for i, n in conn.execute("SELECT id, name FROM municipalities ORDER BY id")]
