"""Who is told of an alert: the patient's care team and GP at once, the on-call when it escalates.

``enqueue_deliveries`` writes the deliveries an alert event calls for into the outbox
(``gateway.store.alert_deliveries``) in the caller's transaction, so an event that commits has its
deliveries committed with it; the dispatcher (``gateway.alerts.dispatcher``) sends them. By level:

- **0** (raised, severity raised): every nurse of the patient's care team who has an e-mail address and
  the patient's GP (audience 'gp'), all for the same event, plus the municipality's webhook when it has
  one (audience 'municipality');
- **1 and up** (escalated: nobody acknowledged in time, or nobody could be told): the municipality's
  on-call address (audience 'on-call') first, then the care team, the GP and the webhook again.

An alert already escalated keeps its wider audience when it gets worse (the level used is the higher of
the caller's and the alert's). When nobody at all can be told (no address, no webhook), or the dispatcher
reached nobody, the alert gets an 'undeliverable' event (``record_undeliverable``) and, when it has not
escalated yet, escalates at once: the first step brings in the on-call, who should not wait the
escalation delay for an alert nobody else heard of. An alert already escalated goes on at its own
pace: a second step at once would tell the same people again.

``escalate`` raises an open alert one level, writes its 'escalated' event and tells the wider audience;
it stops at :data:`MAX_ESCALATION_LEVEL`. When it is called (a job, or nobody reached) is the
dispatcher's; the SQL is the store's (``alert_deliveries``, ``alert_jobs``, ``alerts``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import psycopg

from gateway.store import alert_deliveries as outbox
from gateway.store import alert_jobs
from gateway.store import alerts as alert_rows

log = logging.getLogger(__name__)

# Level 1 brings in the on-call; level 2 tells everyone once more after the same delay again. Past that,
# a message every quarter of an hour teaches people to ignore them: the alert stays at the top of the
# inbox at its highest level until someone acknowledges it.
MAX_ESCALATION_LEVEL = 2


def recipients_at(audience: outbox.Audience, level: int) -> list[outbox.Recipient]:
    """Whom an event at escalation ``level`` goes to (module docstring), each address once: the first
    audience that names an address keeps it (the on-call before a nurse who shares its address)."""
    chosen: list[outbox.Recipient | None] = []
    if level >= 1:
        chosen.append(audience.on_call)
    chosen += [*audience.care_team, audience.gp, audience.webhook]
    seen: set[tuple[str, str]] = set()
    unique: list[outbox.Recipient] = []
    for r in chosen:
        if r is not None and (r.channel, r.recipient.lower()) not in seen:
            seen.add((r.channel, r.recipient.lower()))
            unique.append(r)
    return unique


def enqueue_deliveries(
    conn: psycopg.Connection[Any], alert_id: int, event_id: int, *, level: int, now: datetime
) -> int:
    """Queue the e-mails and webhook calls that tell of event ``event_id`` of alert ``alert_id`` at
    escalation ``level`` (0: the care team and the GP; 1 and up: also the on-call), due at ``now``; how
    many were queued. Nobody to tell: an 'undeliverable' event, and the alert escalates at once."""
    audience = outbox.audience_of(conn, alert_id)
    if audience is None:
        raise alert_rows.UnknownAlert(alert_id)
    effective = max(level, audience.escalation_level)
    recipients = recipients_at(audience, effective)
    if not recipients:
        record_undeliverable(conn, alert_id, event_id, level=effective, reason="no-recipients", now=now)
        return 0
    return outbox.enqueue(conn, audience.municipality_id, alert_id, event_id, recipients, now=now)


def record_undeliverable(
    conn: psycopg.Connection[Any], alert_id: int, event_id: int, *, level: int, reason: str, now: datetime
) -> None:
    """Nobody was told of event ``event_id`` (``reason``: 'no-recipients' or 'all-deliveries-failed'):
    say so in the alert's history and, when the alert is open and not escalated yet, escalate it at once
    (module docstring)."""
    alert_rows.add_event(
        conn, alert_id, "undeliverable", at=now, detail={"event": event_id, "level": level, "reason": reason}
    )
    log.warning("alert %d: nobody could be told of event %d (%s)", alert_id, event_id, reason)
    alert = alert_jobs.lock_alert(conn, alert_id)
    if alert is not None and alert.escalation_level == 0:
        escalate(conn, alert_id, now=now, reason="undeliverable")


def escalate(conn: psycopg.Connection[Any], alert_id: int, *, now: datetime, reason: str) -> bool:
    """Raise open alert ``alert_id`` one level (``reason``: 'not-acknowledged' or 'undeliverable'), write
    its 'escalated' event and queue the deliveries of the new level; the next escalation follows after
    the same delay (none past :data:`MAX_ESCALATION_LEVEL`). False, changing nothing, when the alert is
    not open (acknowledged, snoozed, resolved); at the top level it only stops escalating."""
    alert = alert_jobs.lock_alert(conn, alert_id)
    if alert is None or alert.status != "open":
        return False
    if alert.escalation_level >= MAX_ESCALATION_LEVEL:
        alert_jobs.stop_escalating(conn, alert_id, at=now)
        return False
    level = alert.escalation_level + 1
    escalate_at = (
        now + alert_rows.escalate_after(conn, alert.municipality_id, alert.severity)
        if level < MAX_ESCALATION_LEVEL
        else None
    )
    alert_jobs.set_escalation(conn, alert_id, level=level, escalate_at=escalate_at, at=now)
    event_id = alert_rows.add_event(
        conn, alert_id, "escalated", at=now, detail={"level": level, "reason": reason}
    )
    log.warning("alert %d escalated to level %d (%s)", alert_id, level, reason)
    enqueue_deliveries(conn, alert_id, event_id, level=level, now=now)
    return True
