"""The alert inbox of a nurse or GP: the alerts of her patients by tab, one alert, and their histories.

Every read joins the alert to its patient and applies ``access.patient_scope``: an alert of a patient the
viewer may not see is not in her inbox, not counted, and has no history. The tabs (``TABS``):

- ``open``: not yet acknowledged (someone must look now); the header's badge counts these;
- ``acknowledged``: someone is on it, not yet resolved;
- ``mine``: assigned to the viewer and not resolved, whatever the status;
- ``snoozed``: put off until a time, soonest first;
- ``resolved``: newest first.

Active tabs list the most severe first, then the newest. Each tab is read a page at a time (offset, with
one row more than the page to tell whether there is another). Changing alerts is
``gateway.store.alert_actions``'; wording is left to ``gateway.api``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from gateway.store import access, alert_actions
from gateway.store.synthetic import patient_enrolled_synthetic

TABS: tuple[str, ...] = ("open", "acknowledged", "mine", "snoozed", "resolved")
PAGE_SIZE = 25
# The alerts a patient's page shows: every active one, then the newest resolved ones, this many in all.
PATIENT_ALERTS = 30


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert as the inbox, its own page and the patient's page show it."""

    id: int
    patient_id: str
    patient_name: str
    kind: str
    key: str
    severity: str
    reason: str
    status: str
    raised_at: datetime
    as_of: datetime
    trigger_count: int
    last_trigger_as_of: datetime
    escalation_level: int
    assigned_to: str | None
    assigned_name: str | None  # users.full_name of the assignee, when set
    assigned_at: datetime | None
    snoozed_until: datetime | None
    snooze_reason: str | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    acknowledgement_note: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    outcome: str | None
    resolution_note: str | None
    synthetic: bool  # the patient was enrolled as synthetic

    @property
    def active(self) -> bool:
        return self.status != "resolved"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One line of an alert's history; ``actor`` None is homewatch itself."""

    id: int
    alert_id: int
    at: datetime
    action: str
    actor: str | None
    actor_name: str | None  # users.full_name of the actor, when set
    note: str | None
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TabCounts:
    """How many alerts each active tab holds (the resolved tab is not counted: it only grows)."""

    open: int
    acknowledged: int
    mine: int
    snoozed: int

    def of(self, tab: str) -> int | None:
        return None if tab == "resolved" else int(getattr(self, tab))


@dataclass(frozen=True, slots=True)
class InboxPage:
    tab: str
    rows: tuple[AlertView, ...]
    has_more: bool
    counts: TabCounts


@dataclass(frozen=True, slots=True)
class Person:
    """Someone an alert can be assigned to."""

    username: str
    full_name: str | None
    role: str


_COLUMNS = sql.SQL(
    "a.id, a.patient_id, p.name, a.kind, a.key, a.severity, a.reason, a.status, a.raised_at, a.as_of,"
    " a.trigger_count, a.last_trigger_as_of, a.escalation_level, a.assigned_to,"
    " (SELECT u.full_name FROM users u WHERE u.username = a.assigned_to), a.assigned_at, a.snoozed_until,"
    " a.snooze_reason, a.acknowledged_by, a.acknowledged_at, a.acknowledgement_note, a.resolved_at,"
    " a.resolved_by, a.outcome, a.resolution_note, coalesce({synthetic}, false)"
).format(synthetic=patient_enrolled_synthetic("p"))
# The viewer's alerts: each through its patient, under the access rule.
_FROM = sql.SQL(
    " FROM patients p JOIN alerts a ON a.municipality_id = p.municipality_id AND a.patient_id = p.id"
    " WHERE {scope}"
)
_MOST_SEVERE_FIRST = "a.severity = 'high' DESC, a.raised_at DESC, a.id DESC"
# Per tab: which alerts (``%(me)s`` is the viewer's username) and in which order.
_TABS: Mapping[str, tuple[str, str]] = {
    "open": ("a.status = 'open'", _MOST_SEVERE_FIRST),
    "acknowledged": ("a.status = 'acknowledged'", _MOST_SEVERE_FIRST),
    "mine": (
        "a.assigned_to = %(me)s AND a.status <> 'resolved'",
        f"a.status = 'open' DESC, {_MOST_SEVERE_FIRST}",
    ),
    "snoozed": ("a.status = 'snoozed'", "a.snoozed_until, a.id"),
    "resolved": ("a.status = 'resolved'", "a.resolved_at DESC, a.id DESC"),
}
assert tuple(_TABS) == TABS


def _view(row: Sequence[Any]) -> AlertView:
    return AlertView(*row)


def _scoped(viewer: access.Viewer) -> sql.Composable:
    return _FROM.format(scope=access.patient_scope(viewer))


def tab_counts(conn: psycopg.Connection[Any], viewer: access.Viewer) -> TabCounts:
    """How many of the viewer's alerts each active tab holds."""
    query = sql.SQL(
        "SELECT count(*) FILTER (WHERE a.status = 'open'), count(*) FILTER (WHERE a.status = 'acknowledged'),"
        " count(*) FILTER (WHERE a.assigned_to = %(me)s), count(*) FILTER (WHERE a.status = 'snoozed')"
        "{scoped} AND a.status <> 'resolved'"
    ).format(scoped=_scoped(viewer))
    row = conn.execute(query, {"me": viewer.username}).fetchone()
    assert row is not None  # an aggregate returns one row
    return TabCounts(*row)


def open_count(conn: psycopg.Connection[Any], viewer: access.Viewer) -> int:
    """How many alerts of the viewer's patients are open (not yet acknowledged): the header's badge."""
    query = sql.SQL("SELECT count(*){scoped} AND a.status = 'open'").format(scoped=_scoped(viewer))
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def inbox(
    conn: psycopg.Connection[Any], viewer: access.Viewer, tab: str, *, page: int = 1, size: int = PAGE_SIZE
) -> InboxPage:
    """One page (from 1) of the viewer's alerts in ``tab`` (one of ``TABS``), with every tab's count."""
    where, order = _TABS[tab]
    query = sql.SQL(
        "SELECT {columns}{scoped} AND {where} ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s"
    ).format(columns=_COLUMNS, scoped=_scoped(viewer), where=sql.SQL(where), order=sql.SQL(order))
    params = {"me": viewer.username, "limit": size + 1, "offset": (max(page, 1) - 1) * size}
    rows = [_view(row) for row in conn.execute(query, params).fetchall()]
    return InboxPage(tab, tuple(rows[:size]), len(rows) > size, tab_counts(conn, viewer))


def alert(conn: psycopg.Connection[Any], viewer: access.Viewer, alert_id: int) -> AlertView | None:
    """The alert when its patient is one the viewer may see; else None, whether it exists or not."""
    if not 0 < alert_id <= alert_actions.MAX_ALERT_ID:
        return None
    query = sql.SQL("SELECT {columns}{scoped} AND a.id = %s").format(columns=_COLUMNS, scoped=_scoped(viewer))
    row = conn.execute(query, (alert_id,)).fetchone()
    return None if row is None else _view(row)


def patient_alerts(
    conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str, limit: int = PATIENT_ALERTS
) -> list[AlertView]:
    """The patient's alerts: the active ones first (most severe, newest), then the resolved, newest first."""
    query = sql.SQL(
        "SELECT {columns}{scoped} AND p.id = %s"
        " ORDER BY a.status = 'resolved', a.severity = 'high' AND a.status <> 'resolved' DESC,"
        " coalesce(a.resolved_at, a.raised_at) DESC, a.id DESC LIMIT %s"
    ).format(columns=_COLUMNS, scoped=_scoped(viewer))
    return [_view(row) for row in conn.execute(query, (patient_id, limit)).fetchall()]


_EVENT_COLUMNS = sql.SQL(
    "e.id, e.alert_id, e.at, e.action, e.actor, (SELECT u.full_name FROM users u WHERE u.username = e.actor),"
    " e.note, e.detail"
)


def _events(
    conn: psycopg.Connection[Any], viewer: access.Viewer, alert_ids: Sequence[int]
) -> list[AlertEvent]:
    query = sql.SQL(
        "SELECT {columns} FROM patients p"
        " JOIN alerts a ON a.municipality_id = p.municipality_id AND a.patient_id = p.id"
        " JOIN alert_events e ON e.alert_id = a.id"
        " WHERE {scope} AND a.id = ANY(%s) ORDER BY e.alert_id, e.id"
    ).format(columns=_EVENT_COLUMNS, scope=access.patient_scope(viewer))
    ids = [i for i in alert_ids if 0 < i <= alert_actions.MAX_ALERT_ID]
    return [AlertEvent(*row) for row in conn.execute(query, (ids,)).fetchall()]


def alert_history(conn: psycopg.Connection[Any], viewer: access.Viewer, alert_id: int) -> list[AlertEvent]:
    """Everything that happened to the alert, in order; nothing when the viewer may not see its patient."""
    return _events(conn, viewer, [alert_id])


def patient_alert_histories(
    conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str, alert_ids: Sequence[int]
) -> dict[int, list[AlertEvent]]:
    """The histories of the patient's alerts ``alert_ids`` (those the page shows), by alert, in order."""
    histories: dict[int, list[AlertEvent]] = {i: [] for i in alert_ids}
    for event in _events(conn, viewer, alert_ids):
        histories.setdefault(event.alert_id, []).append(event)
    return histories


def assignable_people(conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str) -> list[Person]:
    """The nurses and GPs an alert of the patient can be assigned to: the members of the patient's care
    team and the patient's GP, each kept only when the access rule lets them see the patient; nobody when
    the viewer may not see the patient."""
    query = sql.SQL(
        "SELECT u.username, u.full_name, u.role FROM patients p JOIN users u"
        " ON u.username = p.gp_username OR u.username IN (SELECT m.username FROM care_team_members m"
        "  WHERE m.municipality_id = p.municipality_id AND m.care_team_id = p.care_team_id)"
        " WHERE p.id = %s AND {scope} ORDER BY coalesce(u.full_name, u.username), u.username"
    ).format(scope=access.patient_scope(viewer))
    found = [Person(*row) for row in conn.execute(query, (patient_id,)).fetchall()]
    return [person for person in found if alert_actions.may_be_assigned(conn, person.username, patient_id)]
