"""The alert inbox and an alert's page: what nurses and GPs see of their patients' alerts and do with them.

- ``GET /alerts?tab=open|acknowledged|mine|snoozed|resolved&page=N``: the inbox of the viewer's patients'
  alerts, a tab at a time, 25 a page, each tab with its count (``gateway.store.alert_inbox``).
- ``GET /alerts/{id}``: one alert: what it is, its history, and the forms to act on it.
- ``POST /alerts/{id}/acknowledge`` (``note``), ``/snooze`` (``reason``, ``for``: 1h, 4h, tomorrow 08:00
  or ``until`` a local date and time), ``/assign`` (``assignee``: someone who may see the patient; the
  viewer when not given), ``/resolve`` (``outcome``, ``note``): ``gateway.store.alert_actions``. Each form
  carries ``back`` (the alert's page, the patient's page, or a tab of the inbox), where a done action
  returns to (303) with a confirmation (``?done=``). A value the action cannot take shows the alert's page
  again with an error summary (422); an action the alert's status does not allow (it is resolved), with
  why (409). Nothing the form says reaches the database unchecked.

Thin routes in the house style of ``review_pages``: rows from the store, words from ``alert_presenters``
(template globals), the frame from ``web.render_page``. Only nurses and GPs (``deps.ClinicalUser``); an
alert of a patient outside the viewer's assignment is 404, like one that does not exist. Every page is
audited (``view-alerts``, ``view-alert``), every action in its own transaction (``alert_actions``); every
form carries the session's anti-forgery token (``deps.CheckedForm``). Works without JavaScript; the
inbox's list (``#alert-list``, rows ``.alert-row[data-alert-id]``) and the header's ``#alert-count`` are
what the live updates (``alert_stream``) hold on to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.api.alert_presenters import confirmation
from gateway.api.auth import User
from gateway.api.clock import ui_now
from gateway.api.deps import CheckedForm, ClientAddress, ClinicalUser, DbDep
from gateway.api.i18n import current
from gateway.api.i18n import gettext as _
from gateway.api.presenters import patient_url
from gateway.api.web import render_page
from gateway.store import alert_actions, alert_inbox
from gateway.store.alert_actions import ActionRefused, TransitionRefused
from gateway.store.alert_inbox import TABS, AlertView
from gateway.store.alerts import UnknownAlert
from gateway.store.audit import record_audit

router = APIRouter(tags=["web"])

# Far past any real inbox: a page number beyond this is an error, not a query.
_MAX_PAGE = 10_000
Tab = Annotated[Literal["open", "acknowledged", "mine", "snoozed", "resolved"], Query()]
PageNumber = Annotated[int, Query(alias="page", ge=1, le=_MAX_PAGE)]
assert get_args(get_args(Tab)[0]) == TABS

# Where a form returns to: the alert's page, the patient's page, or a tab of the inbox.
ALERT, PATIENT = "alert", "patient"
BACKS = (ALERT, PATIENT, *TABS)
# The snooze lengths the form offers besides a time of one's own (alert_presenters.SNOOZE_CHOICES).
SNOOZE_FOR = {"1h": timedelta(hours=1), "4h": timedelta(hours=4)}
# "Tomorrow morning": when the day shift has started.
MORNING_HOUR = 8
# A local date and time as <input type="datetime-local"> sends it (seconds optional), or typed with a space.
_LOCAL_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?", re.ASCII)


@dataclass(frozen=True, slots=True)
class Refused:
    """A form shown again: which (``action``), for which alert, what was typed and what is wrong, by
    field ("status": the alert's status refused the action)."""

    action: str
    alert_id: int
    values: Mapping[str, str] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)


def _back(value: str | None) -> str:
    return value if value in BACKS else ALERT


def _return_url(back: str, alert_id: int, patient_id: str, done: str) -> str:
    """Where a done action goes, with its confirmation, scrolled to the alert."""
    if back == PATIENT:
        return f"{patient_url(patient_id)}?done={done}#alert-{alert_id}"
    if back in TABS:
        return f"/alerts?tab={back}&done={done}"
    return f"/alerts/{alert_id}?done={done}"


def _visible(conn: DbDep, user: User, alert_id: int) -> AlertView:
    found = alert_inbox.alert(conn, user, alert_id)
    if found is None:
        raise HTTPException(404, _("There is no such alert among your patients."))
    return found


# --- the inbox ----------------------------------------------------------------------------------------


@router.get("/alerts", response_class=HTMLResponse)
def inbox_page(
    request: Request,
    user: ClinicalUser,
    conn: DbDep,
    client: ClientAddress,
    tab: Tab = "open",
    page: PageNumber = 1,
    done: str = "",
) -> HTMLResponse:
    """The alerts of the viewer's patients in one tab, most severe first (resolved: newest first)."""
    found = alert_inbox.inbox(conn, user, tab, page=page)
    detail = f"tab {tab}, page {page}: {len(found.rows)} alerts"
    record_audit(conn, user, "view-alerts", [row.patient_id for row in found.rows], detail, client=client)
    return render_page(
        request,
        user,
        "alerts.html",
        found=found,
        tab=tab,
        page=page,
        synthetic=any(row.synthetic for row in found.rows),
        confirmation=confirmation(done),
    )


# --- one alert ----------------------------------------------------------------------------------------


def _alert_page(
    request: Request,
    user: User,
    conn: DbDep,
    alert: AlertView,
    client: str,
    *,
    back: str,
    status: int = 200,
    done: str = "",
    refused: Refused | None = None,
) -> HTMLResponse:
    detail = f"alert {alert.id}" + (f": {refused.action} refused" if refused else "")
    record_audit(conn, user, "view-alert", [alert.patient_id], detail, client=client)
    now = ui_now(request)
    zone = current().time_zone
    return render_page(
        request,
        user,
        "alert.html",
        status,
        alert=alert,
        history=alert_inbox.alert_history(conn, user, alert.id),
        people=alert_inbox.assignable_people(conn, user, alert.patient_id) if alert.active else [],
        back=back,
        back_url=_back_url(back, alert),
        refused=refused,
        confirmation=confirmation(done),
        synthetic=alert.synthetic,
        # The bounds of a snooze's own time, in the viewer's zone, for the browser's picker.
        snooze_min=_local_input(now, zone),
        snooze_max=_local_input(now + alert_actions.SNOOZE_MAX, zone),
    )


def _back_url(back: str, alert: AlertView) -> str:
    """The page the alert's page leads back to: the patient's, or the inbox (at the tab it came from)."""
    if back == PATIENT:
        return f"{patient_url(alert.patient_id)}#alert-{alert.id}"
    return f"/alerts?tab={back}" if back in TABS else "/alerts"


def _local_input(moment: datetime, zone: tzinfo) -> str:
    """``moment`` as <input type="datetime-local"> shows it, in ``zone``."""
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


@router.get("/alerts/{alert_id:int}", response_class=HTMLResponse)
def alert_page(
    alert_id: int,
    request: Request,
    user: ClinicalUser,
    conn: DbDep,
    client: ClientAddress,
    back: str = ALERT,
    done: str = "",
) -> HTMLResponse:
    """One alert of the viewer's patients: what it is, its history, and the forms to act on it."""
    return _alert_page(
        request, user, conn, _visible(conn, user, alert_id), client, back=_back(back), done=done
    )


# --- the actions ----------------------------------------------------------------------------------------


def _refused_words(refused: ActionRefused, action: str) -> str:
    """Why a value was refused, in the viewer's language."""
    problem, name = refused.problem, refused.field
    if problem == alert_actions.MISSING:
        if name == "reason":
            return _("Write why the alert can wait")
        if action == "resolve":
            return _("Write what happened: the outcome “Other” needs a note")
        return _("Write a note: what you did, or will do")
    if problem == alert_actions.TOO_LONG:
        return _("The note can have at most %(max)d characters", max=alert_actions.NOTE_MAX_CHARS)
    if problem == alert_actions.UNSTORABLE:
        return _("The note holds characters that cannot be stored; type it again")
    if problem == alert_actions.UNKNOWN:
        return _("Choose how the alert was resolved")
    if problem == alert_actions.PAST:
        return _("Choose a time in the future")
    if problem == alert_actions.TOO_FAR:
        return _("An alert can be snoozed for at most %(days)d days", days=alert_actions.SNOOZE_MAX.days)
    return _("Choose someone who may see this patient")


def snooze_until(choice: str, typed: str, now: datetime, zone: tzinfo) -> datetime | str:
    """When a snooze ends, from the form's choice (``SNOOZE_FOR``, "tomorrow" at ``MORNING_HOUR``, or
    "until" the local date and time ``typed`` in ``zone``); or, in words, why the form gives no time.
    Whether the time is in the future and near enough is ``alert_actions.snooze``'s to say."""
    if choice in SNOOZE_FOR:
        return now + SNOOZE_FOR[choice]
    local_now = now.astimezone(zone)
    if choice == "tomorrow":
        tomorrow = (local_now + timedelta(days=1)).date()
        return datetime(tomorrow.year, tomorrow.month, tomorrow.day, MORNING_HOUR, tzinfo=zone)
    if choice != "until":
        return _("Choose for how long the alert can wait")
    example = _local_input(now + timedelta(hours=2), zone).replace("T", " ")
    found = _LOCAL_TIME.fullmatch(typed.strip())
    if found is None:
        return _("Write the date and time as %(example)s", example=example)
    year, month, day, hour, minute = (int(part) for part in found.groups()[:5])
    # A week ahead is this year or the next: other years are refused before they are dates (the far
    # ones would overflow on the way to UTC).
    if year < local_now.year - 1:
        return _("Choose a time in the future")
    if year > local_now.year + 1:
        return _("An alert can be snoozed for at most %(days)d days", days=alert_actions.SNOOZE_MAX.days)
    try:
        return datetime(year, month, day, hour, minute, tzinfo=zone)
    except ValueError:  # no such day or hour (31 April, 25:00)
        return _("Write the date and time as %(example)s", example=example)


def _act(
    action: str,
    alert_id: int,
    request: Request,
    user: User,
    form: Mapping[str, str],
    conn: DbDep,
    client: str,
) -> Response:
    """Do ``action`` to the alert and return where the form came from; or show the form again."""
    alert = _visible(conn, user, alert_id)
    back = _back(form.get("back"))
    now = ui_now(request)
    typed = {name: value for name, value in form.items() if name != "csrf"}

    def again(status: int, errors: Mapping[str, str]) -> HTMLResponse:
        refused = Refused(action, alert_id, typed, errors)
        fresh = alert_inbox.alert(conn, user, alert_id) or alert
        return _alert_page(request, user, conn, fresh, client, back=back, status=status, refused=refused)

    try:
        if action == "acknowledge":
            done = alert_actions.acknowledge(
                conn, user, alert_id, form.get("note", ""), at=now, client=client
            )
        elif action == "snooze":
            until = snooze_until(form.get("for", ""), form.get("until", ""), now, current().time_zone)
            if isinstance(until, str):
                return again(422, {"until" if form.get("for") == "until" else "for": until})
            reason = form.get("reason", "")
            done = alert_actions.snooze(conn, user, alert_id, reason, until, at=now, client=client)
        elif action == "assign":
            assignee = form.get("assignee") or user.username
            done = alert_actions.assign(conn, user, alert_id, assignee, at=now, client=client)
        else:
            outcome, note = form.get("outcome", ""), form.get("note", "")
            done = alert_actions.resolve(conn, user, alert_id, outcome, note, at=now, client=client)
    except UnknownAlert as gone:
        raise HTTPException(404, _("There is no such alert among your patients.")) from gone
    except ActionRefused as refused:
        return again(422, {refused.field: _refused_words(refused, action)})
    except TransitionRefused:
        return again(409, {"status": _("This alert is already resolved; nothing was changed.")})
    done_word = {"acknowledge": "acknowledged", "snooze": "snoozed", "assign": "assigned"}.get(
        action, "resolved"
    )
    return RedirectResponse(_return_url(back, done.alert_id, done.patient_id, done_word), status_code=303)


@router.post("/alerts/{alert_id:int}/acknowledge", response_class=HTMLResponse, response_model=None)
def acknowledge(
    alert_id: int, request: Request, user: ClinicalUser, form: CheckedForm, conn: DbDep, client: ClientAddress
) -> Response:
    """Acknowledge the alert with a note (who, when, why), audited."""
    return _act("acknowledge", alert_id, request, user, form, conn, client)


@router.post("/alerts/{alert_id:int}/snooze", response_class=HTMLResponse, response_model=None)
def snooze(
    alert_id: int, request: Request, user: ClinicalUser, form: CheckedForm, conn: DbDep, client: ClientAddress
) -> Response:
    """Snooze the alert for a while, with a reason, audited."""
    return _act("snooze", alert_id, request, user, form, conn, client)


@router.post("/alerts/{alert_id:int}/assign", response_class=HTMLResponse, response_model=None)
def assign(
    alert_id: int, request: Request, user: ClinicalUser, form: CheckedForm, conn: DbDep, client: ClientAddress
) -> Response:
    """Assign the alert to someone who may see the patient (the viewer by default), audited."""
    return _act("assign", alert_id, request, user, form, conn, client)


@router.post("/alerts/{alert_id:int}/resolve", response_class=HTMLResponse, response_model=None)
def resolve(
    alert_id: int, request: Request, user: ClinicalUser, form: CheckedForm, conn: DbDep, client: ClientAddress
) -> Response:
    """Resolve the alert with an outcome (and a note), audited."""
    return _act("resolve", alert_id, request, user, form, conn, client)
