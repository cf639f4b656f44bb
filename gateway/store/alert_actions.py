"""What people do with an alert: acknowledge it with a note, snooze it, assign it, resolve it with an outcome.

Each action is one transaction: the alert is locked (``FOR UPDATE``) through the actor's access rule
(``access.patient_scope``: an alert of a patient she may not see is, here, an alert that does not exist:
``alerts.UnknownAlert``), its status is checked, the row changed, an ``alert_events`` row appended (actor =
username, the note; announced to the live stream when the transaction commits) and an audit row written.
What an action may do to which status (migration 0013):

- ``acknowledge``: open or snoozed -> acknowledged, with a note (who, when, why). An acknowledged alert
  keeps its first acknowledgement; a second one is only added to the history (its note is not lost).
- ``snooze``: open, acknowledged or snoozed -> snoozed until a time in the next ``SNOOZE_MAX``, with a
  reason (the escalation jobs wake it up as open).
- ``assign``: any active alert, to a nurse or GP who may see the patient (the access rule decides, not
  the form).
- ``resolve``: any active alert -> resolved with an outcome of ``OUTCOMES`` ('other' needs a note); its
  escalation stops.

A value an action cannot take is ``ActionRefused`` (the field and the problem, for the page to word); an
action the alert's status does not allow (resolving a resolved alert) is ``TransitionRefused``; nothing is
written then. Raising alerts is ``gateway.alerts.lifecycle``'s; reading them for pages is
``gateway.store.alert_inbox``'s; wording is left to ``gateway.api``. Times are the caller's (``at``: the web
UI's clock, simulated in the demo).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from gateway.store import access, users
from gateway.store.alerts import UnknownAlert, add_event
from gateway.store.audit import record_audit
from gateway.store.errors import StoreError
from gateway.store.reviews import note_storable

# How an alert was resolved. 'acknowledged-before-lifecycle' (migration 0013) is only ever read.
OUTCOMES: tuple[str, ...] = (
    "contacted-no-action",
    "treatment-adjusted",
    "home-visit",
    "gp-contacted",
    "admitted",
    "false-alarm",
    "measurement-error",
    "other",
)
# An outcome that says nothing by itself: the person must write what happened.
NOTE_REQUIRED = frozenset({"other"})
# alert_events.note holds at most this (migration 0013), and a note or reason goes there.
NOTE_MAX_CHARS = 4000
# A snooze is for "look again later today or this week", never a way to silence an alert for good.
SNOOZE_MAX = timedelta(days=7)
# alerts.id is a bigint; a larger number names no alert (and is not sent to the database).
MAX_ALERT_ID = 2**63 - 1
# A username is short; anything longer names nobody.
_MAX_USERNAME_CHARS = 200

# What ``ActionRefused.problem`` says.
MISSING = "missing"
TOO_LONG = "too-long"
UNSTORABLE = "unstorable"
UNKNOWN = "unknown"  # an outcome not in OUTCOMES
PAST = "past"  # a snooze that ends now or before
TOO_FAR = "too-far"  # a snooze longer than SNOOZE_MAX
NOT_ALLOWED = "not-allowed"  # an assignee who may not see the patient

# Audit actions.
ACKNOWLEDGE = "acknowledge-alert"
SNOOZE = "snooze-alert"
ASSIGN = "assign-alert"
RESOLVE = "resolve-alert"

ACTIVE = ("open", "acknowledged", "snoozed")


class ActionRefused(StoreError):
    """A value the action cannot take: ``field`` ('note', 'reason', 'until', 'assignee', 'outcome') and
    ``problem`` (``MISSING``, ``TOO_LONG``, ...); nothing was written."""

    def __init__(self, alert_id: int, field: str, problem: str) -> None:
        super().__init__(f"alert {alert_id}: {field} refused ({problem})")
        self.alert_id = alert_id
        self.field = field
        self.problem = problem


class TransitionRefused(StoreError):
    """The alert's ``status`` does not allow ``action`` (resolving a resolved alert); nothing was written."""

    def __init__(self, alert_id: int, action: str, status: str) -> None:
        super().__init__(f"alert {alert_id} is {status}: it cannot be {action}")
        self.alert_id = alert_id
        self.action = action
        self.status = status


@dataclass(frozen=True, slots=True)
class Done:
    """What an action did: the alert, its patient, its status now, and the event it wrote."""

    alert_id: int
    patient_id: str
    status: str
    event_id: int


@dataclass(frozen=True, slots=True)
class _Locked:
    patient_id: str
    status: str
    assigned_to: str | None


def _text(alert_id: int, field: str, text: str, *, required: bool) -> str | None:
    """``text`` stripped, or None when empty and not required; ``ActionRefused`` otherwise."""
    text = text.strip()
    if not text:
        if required:
            raise ActionRefused(alert_id, field, MISSING)
        return None
    if len(text) > NOTE_MAX_CHARS:
        raise ActionRefused(alert_id, field, TOO_LONG)
    if not note_storable(text):
        raise ActionRefused(alert_id, field, UNSTORABLE)
    return text


def _lock(conn: psycopg.Connection[Any], actor: access.Viewer, alert_id: int) -> _Locked:
    """Lock the alert for the caller's transaction when its patient is one ``actor`` may see."""
    if not 0 < alert_id <= MAX_ALERT_ID:
        raise UnknownAlert(alert_id)
    row = conn.execute(
        sql.SQL(
            "SELECT a.patient_id, a.status, a.assigned_to FROM alerts a"
            " JOIN patients p ON p.municipality_id = a.municipality_id AND p.id = a.patient_id"
            " WHERE a.id = %s AND {scope} FOR UPDATE OF a"
        ).format(scope=access.patient_scope(actor)),
        (alert_id,),
    ).fetchone()
    if row is None:
        raise UnknownAlert(alert_id)
    return _Locked(row[0], row[1], row[2])


def acknowledge(
    conn: psycopg.Connection[Any],
    actor: access.Viewer,
    alert_id: int,
    note: str,
    *,
    at: datetime,
    client: str | None,
) -> Done:
    """Acknowledge an open or snoozed alert with ``note`` (required): who, when and why; an acknowledged
    alert keeps its first acknowledgement and gets this one in its history only."""
    text = _text(alert_id, "note", note, required=True)
    with conn.transaction():
        alert = _lock(conn, actor, alert_id)
        detail: dict[str, Any] = {"was": alert.status}
        if alert.status in ("open", "snoozed"):
            conn.execute(
                "UPDATE alerts SET status = 'acknowledged', acknowledged_by = %s, acknowledged_at = %s,"
                " acknowledgement_note = %s, snoozed_until = NULL, snooze_reason = NULL, updated_at = %s"
                " WHERE id = %s",
                (actor.username, at, text, at, alert_id),
            )
        elif alert.status == "acknowledged":
            detail["again"] = True
        else:
            raise TransitionRefused(alert_id, "acknowledged", alert.status)
        event = add_event(
            conn, alert_id, "acknowledged", at=at, actor=actor.username, note=text, detail=detail
        )
        again = " (already acknowledged)" if alert.status == "acknowledged" else ""
        record_audit(conn, actor, ACKNOWLEDGE, [alert.patient_id], f"alert {alert_id}{again}", client=client)
    return Done(alert_id, alert.patient_id, "acknowledged", event)


def snooze(
    conn: psycopg.Connection[Any],
    actor: access.Viewer,
    alert_id: int,
    reason: str,
    until: datetime,
    *,
    at: datetime,
    client: str | None,
) -> Done:
    """Snooze an active alert until ``until`` (after ``at``, at most ``SNOOZE_MAX`` later), with a reason."""
    text = _text(alert_id, "reason", reason, required=True)
    if until <= at:
        raise ActionRefused(alert_id, "until", PAST)
    if until - at > SNOOZE_MAX:
        raise ActionRefused(alert_id, "until", TOO_FAR)
    with conn.transaction():
        alert = _lock(conn, actor, alert_id)
        if alert.status not in ACTIVE:
            raise TransitionRefused(alert_id, "snoozed", alert.status)
        conn.execute(
            "UPDATE alerts SET status = 'snoozed', snoozed_until = %s, snooze_reason = %s, updated_at = %s"
            " WHERE id = %s",
            (until, text, at, alert_id),
        )
        detail = {"until": until.isoformat(), "was": alert.status}
        event = add_event(conn, alert_id, "snoozed", at=at, actor=actor.username, note=text, detail=detail)
        audit = f"alert {alert_id} until {until.isoformat()}"
        record_audit(conn, actor, SNOOZE, [alert.patient_id], audit, client=client)
    return Done(alert_id, alert.patient_id, "snoozed", event)


def may_be_assigned(conn: psycopg.Connection[Any], username: str, patient_id: str) -> bool:
    """Whether ``username`` is a nurse or GP who may see the patient (``access.patient_scope``)."""
    if not username or len(username) > _MAX_USERNAME_CHARS or not note_storable(username):
        return False
    person = users.user_by_name(conn, username)
    if person is None or person.role not in access.CLINICAL_ROLES:
        return False
    return access.may_see_patient(conn, person, patient_id)


def assign(
    conn: psycopg.Connection[Any],
    actor: access.Viewer,
    alert_id: int,
    assignee: str,
    *,
    at: datetime,
    client: str | None,
) -> Done:
    """Assign an active alert to ``assignee``, a nurse or GP who may see its patient."""
    with conn.transaction():
        alert = _lock(conn, actor, alert_id)
        if alert.status not in ACTIVE:
            raise TransitionRefused(alert_id, "assigned", alert.status)
        if not may_be_assigned(conn, assignee, alert.patient_id):
            raise ActionRefused(alert_id, "assignee", NOT_ALLOWED)
        conn.execute(
            "UPDATE alerts SET assigned_to = %s, assigned_at = %s, updated_at = %s WHERE id = %s",
            (assignee, at, at, alert_id),
        )
        detail = {"assignee": assignee, "was": alert.assigned_to}
        event = add_event(conn, alert_id, "assigned", at=at, actor=actor.username, detail=detail)
        record_audit(
            conn, actor, ASSIGN, [alert.patient_id], f"alert {alert_id} to {assignee}", client=client
        )
    return Done(alert_id, alert.patient_id, alert.status, event)


def resolve(
    conn: psycopg.Connection[Any],
    actor: access.Viewer,
    alert_id: int,
    outcome: str,
    note: str,
    *,
    at: datetime,
    client: str | None,
) -> Done:
    """Resolve an active alert with an outcome of ``OUTCOMES`` and a note (required for 'other'); its
    escalation and snooze end."""
    if outcome not in OUTCOMES:
        raise ActionRefused(alert_id, "outcome", UNKNOWN)
    text = _text(alert_id, "note", note, required=outcome in NOTE_REQUIRED)
    with conn.transaction():
        alert = _lock(conn, actor, alert_id)
        if alert.status not in ACTIVE:
            raise TransitionRefused(alert_id, "resolved", alert.status)
        conn.execute(
            "UPDATE alerts SET status = 'resolved', resolved_at = %s, resolved_by = %s, outcome = %s,"
            " resolution_note = %s, escalate_at = NULL, snoozed_until = NULL, snooze_reason = NULL,"
            " updated_at = %s WHERE id = %s",
            (at, actor.username, outcome, text, at, alert_id),
        )
        detail = {"outcome": outcome, "was": alert.status}
        event = add_event(conn, alert_id, "resolved", at=at, actor=actor.username, note=text, detail=detail)
        record_audit(conn, actor, RESOLVE, [alert.patient_id], f"alert {alert_id}: {outcome}", client=client)
    return Done(alert_id, alert.patient_id, "resolved", event)
