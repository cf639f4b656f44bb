"""From a trigger to an alert: raise one, add to the active one, make it worse, or hold back.

Every scorer (NEWS2, the disease rules, the patient's own limits, the 30-day risk, the missing
measurement) hands what it found to ``record_trigger`` as a :class:`Trigger`: a patient, a kind and a key
(which rule, which vital sign, which measurement), a severity, the reason in words, and the time of the
data it stands on (``as_of``). ``decide`` is the rule, pure:

- an *active* alert of the same patient, kind and key takes the trigger: counted, nobody told again
  (a value flapping round a threshold raises one alert, not twenty); a worse severity re-opens it and
  tells everyone again;
- a trigger on data no newer than what the alert already holds changes nothing (scoring the same
  readings twice, fast or slow, gives the same alerts), unless it is worse and as new;
- after an alert was resolved, the same or a lower severity stays quiet for :data:`REALERT_AFTER`
  (the nurse has just dealt with it), counted on the resolved alert; a worse one raises a new alert;
- otherwise a new alert is opened, to escalate when nobody acknowledges it in time.

``record_trigger`` applies the decision in the caller's transaction and, for a new or worse alert,
writes the event and the deliveries it calls for (``gateway.alerts.routing``) in the same transaction: an
alert that is committed has its deliveries committed with it, so none is lost to a crash.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg

from gateway.alerts import routing
from gateway.alerts.rules import SEVERITY_RANK
from gateway.store import alerts as alert_rows

log = logging.getLogger(__name__)

# After an alert is resolved, the same trigger (no worse) stays quiet this long: the nurse has just
# judged it; a value still abnormal two hours later is news again.
REALERT_AFTER = timedelta(hours=2)

Kind = Literal["news2", "disease-rule", "threshold", "risk-rise", "missing"]
Action = Literal["raise", "worse", "count", "repeat", "suppress"]


@dataclass(frozen=True, slots=True)
class Trigger:
    """Something that calls for an alert on one patient."""

    municipality_id: str
    patient_id: str
    kind: Kind
    key: str  # '' for news2 and risk-rise; the rule, vital sign or measurement otherwise
    severity: str  # 'medium' or 'high' (gateway.alerts.rules)
    reason: str
    as_of: datetime  # the time of the reading or score it stands on
    score_id: int | None = None
    observation_identifier: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What ``record_trigger`` did: the action, the alert it touched (None when held back without one)
    and the event it wrote (raised or severity-raised; None otherwise)."""

    action: Action
    alert_id: int | None
    event_id: int | None


def decide(
    trigger: Trigger,
    active: alert_rows.AlertState | None,
    last_resolved: alert_rows.AlertState | None,
    now: datetime,
) -> Action:
    """The rule (module docstring): what a trigger does, given the active and the last resolved alert."""
    if active is not None:
        worse = SEVERITY_RANK[trigger.severity] > SEVERITY_RANK[active.severity]
        # Readings taken in the same second may reach the scorer in different batches: the worse one
        # counts whichever came first, so fast and slow replays agree.
        last = active.last_trigger_as_of
        if trigger.as_of < last or (trigger.as_of == last and not worse):
            return "repeat"
        return "worse" if worse else "count"
    if last_resolved is not None:
        if trigger.as_of <= last_resolved.last_trigger_as_of:
            return "repeat"
        recent = last_resolved.resolved_at is not None and now - last_resolved.resolved_at < REALERT_AFTER
        if recent and SEVERITY_RANK[trigger.severity] <= SEVERITY_RANK[last_resolved.severity]:
            return "suppress"
    return "raise"


def record_trigger(conn: psycopg.Connection[Any], trigger: Trigger, *, now: datetime) -> Outcome:
    """Apply ``decide`` to ``trigger`` in the caller's transaction (module docstring)."""
    t = trigger
    alert_rows.lock_patient_kind(conn, t.municipality_id, t.patient_id, t.kind, t.key)
    active = alert_rows.active_alert(conn, t.municipality_id, t.patient_id, t.kind, t.key)
    last = (
        None
        if active is not None
        else alert_rows.last_resolved_alert(conn, t.municipality_id, t.patient_id, t.kind, t.key)
    )
    action = decide(t, active, last, now)
    held = active or last
    if action == "repeat":
        return Outcome(action, None if held is None else held.id, None)
    if action in ("count", "suppress"):
        assert held is not None  # decide counts or suppresses only against an alert
        alert_rows.count_trigger(conn, held.id, t.as_of)
        return Outcome(action, held.id, None)
    escalate_at = now + alert_rows.escalate_after(conn, t.municipality_id, t.severity)
    if action == "worse":
        assert active is not None
        alert_rows.raise_severity(
            conn,
            active.id,
            severity=t.severity,
            reason=t.reason,
            as_of=t.as_of,
            score_id=t.score_id,
            observation_identifier=t.observation_identifier,
            at=now,
            escalate_at=escalate_at,
        )
        alert_id = active.id
        event = "severity-raised"
        detail = {"severity": t.severity, "was": active.severity}
    else:
        alert_id = alert_rows.insert_alert(
            conn,
            alert_rows.NewAlert(
                municipality_id=t.municipality_id,
                patient_id=t.patient_id,
                kind=t.kind,
                key=t.key,
                severity=t.severity,
                reason=t.reason,
                as_of=t.as_of,
                score_id=t.score_id,
                observation_identifier=t.observation_identifier,
                raised_at=now,
                escalate_at=escalate_at,
            ),
        )
        event = "raised"
        detail = {"severity": t.severity, "kind": t.kind, "key": t.key}
    event_id = alert_rows.add_event(conn, alert_id, event, at=now, detail=detail)
    routing.enqueue_deliveries(conn, alert_id, event_id, level=0, now=now)
    log.warning("ALERT %s %s patient %s: %s", event, t.severity, t.patient_id, t.reason)
    return Outcome(action, alert_id, event_id)
