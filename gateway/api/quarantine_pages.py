"""The administrator's quarantine pages: refused input, browsed, re-processed after an enrolment fix.

- ``GET /admin/quarantine``: the rows of the municipality, newest first (paged by id), with their
  reason, hub, municipality and time; filters by reason code, hub, dates and state (open by default);
  above them, the open rows counted per reason, each a filter link. Readings of a device assigned to
  nobody (``unassigned-device``) are held there for the administrator: assign the device to the hub, then
  re-process them.
- ``GET /admin/quarantine/{row_id}``: one row, its reason, what became of it, the rows its
  re-processing wrote, and what was refused: the payload as text (escaped by the template, cut to
  ``PAYLOAD_CHARS``). Reading a payload is reading patients' data: it is audited.
- ``POST /admin/quarantine/{row_id}/reprocess``: the live ingest's rules again with today's enrolment
  (``gateway.ingest.reprocess``); ``POST /admin/quarantine/{row_id}/dismiss``: set aside with a reason.
  Both audited, both answered with the row's page.

A municipality administrator sees her municipality's rows; another municipality's row does not exist for
her (404). A system administrator picks a municipality (hers by default) and also sees the rows of no
known municipality (a topic that named none, or a municipality nobody enrolled); she may open any row.
Nurses and GPs get 403 (``deps.AdminUser``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fhir_contract.limits import is_fhir_id
from gateway.api.auth import User
from gateway.api.deps import (
    AdminUser,
    CheckedForm,
    ClientAddress,
    DbDep,
    SettingsDep,
    administered_municipality,
)
from gateway.api.i18n import N_, current
from gateway.api.i18n import gettext as _
from gateway.api.web import render_page
from gateway.ingest.reprocess import ReprocessFailed, patients_named, reprocess
from gateway.store import access
from gateway.store import quarantine as q
from gateway.store.alert_admin import municipalities
from gateway.store.audit import record_audit

router = APIRouter(prefix="/admin/quarantine", tags=["admin"])

PAGE_SIZE = 50
# A payload longer than this is cut on the page (the row keeps up to 256 kB): enough for any Bundle a
# hub sends (~12 kB), short enough that a hostile megabyte never reaches a browser.
PAYLOAD_CHARS = 20_000
# Largest row id a bigint holds; a larger one is no row.
_MAX_ID = 2**63 - 1
_CODE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
UNASSIGNED = "unassigned-device"
# The rows a system administrator lists: her pick and the rows of no municipality, or one of them.
ROWS = ("", "municipality", "unowned")

# Reason codes in words (the others are shown as their code, as the hub's error report names them).
CODE_NAMES: Mapping[str, str] = {
    UNASSIGNED: N_("Held: device assigned to nobody"),
    "unknown-hub": N_("Hub not enrolled (or revoked)"),
    "not-authorised": N_("Not the hub's patient or hub"),
    "conflict": N_("Stored already with other values"),
    "unstorable": N_("The database refused it"),
}
RESOLUTION_NAMES: Mapping[str, str] = {
    q.REPROCESSED_STORED: N_("Re-processed: stored"),
    q.REPROCESSED_PARTLY: N_("Re-processed: partly stored, the rest refused again"),
    q.STILL_REFUSED: N_("Re-processed: refused again"),
    q.DISMISSED: N_("Dismissed"),
}
HUB_STATES: Mapping[str, str] = {
    "enrolled": N_("enrolled"),
    "revoked": N_("revoked"),
    "unknown": N_("not enrolled"),
}
STATE_NAMES: Mapping[str, str] = {
    q.OPEN: N_("Open"),
    q.RESOLVED: N_("Resolved"),
    q.ANY_STATE: N_("All"),
}


def _named(names: Mapping[str, str]) -> Callable[[str | None], str]:
    def name(value: str | None) -> str:
        if value is None:
            return "—"
        return _(names[value]) if value in names else value

    return name


code_name = _named(CODE_NAMES)
resolution_name = _named(RESOLUTION_NAMES)
hub_state_name = _named(HUB_STATES)


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The list's filters as typed: what the form shows again and what its links carry."""

    municipality: str = ""
    rows: str = ""
    code: str = ""
    hub: str = ""
    since: str = ""
    until: str = ""
    state: str = q.OPEN

    def link(self, **extra: str | int) -> str:
        """The query string of a link that keeps these filters (and sets ``extra``)."""
        given = {name: value for name, value in asdict(self).items() if value}
        given.update({name: str(value) for name, value in extra.items()})
        return urlencode({name: value for name, value in given.items() if value})


# --- input ---------------------------------------------------------------------------------------------


def _bad(message: str) -> HTTPException:
    return HTTPException(400, message)


def _code(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if not _CODE.fullmatch(value):
        raise _bad(_("A reason code is lower-case letters, digits and hyphens, like unassigned-device."))
    return value


def _hub(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if not is_fhir_id(value):
        raise _bad(_("A hub id is letters, digits, hyphens and dots (at most 64)."))
    return value


def _day_start(value: str, *, next_day: bool = False) -> datetime | None:
    """The start of a day typed as YYYY-MM-DD in the user's time zone (or of the day after)."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise _bad(_("A date must be written YYYY-MM-DD.")) from None
    if next_day:
        if day == date.max:
            return None
        day += timedelta(days=1)
    return datetime.combine(day, time(), tzinfo=current().time_zone)


def _row_id(value: int) -> int:
    if not 0 < value <= _MAX_ID:
        raise HTTPException(404, _("There is no such quarantined row here."))
    return value


def _list_scope(user: User, chosen: str, rows: str) -> q.Scope:
    if user.role != access.SYSTEM_ADMIN:
        return q.Scope(user.municipality_id)
    return q.Scope(chosen, owned=rows != "unowned", unowned=rows != "municipality")


def _row_scope(user: User) -> q.Scope:
    """A system administrator may open any row; a municipality administrator her municipality's."""
    return q.Scope.everything() if user.role == access.SYSTEM_ADMIN else q.Scope(user.municipality_id)


def _helpers() -> dict[str, Any]:
    return {
        "code_name": code_name,
        "resolution_name": resolution_name,
        "hub_state_name": hub_state_name,
        "row_url": row_url,
        "unassigned": UNASSIGNED,
    }


def row_url(row_id: int, **extra: str) -> str:
    return f"/admin/quarantine/{row_id}" + (f"?{urlencode(extra)}" if extra else "")


# --- the list ------------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def quarantine_list(
    request: Request,
    user: AdminUser,
    conn: DbDep,
    municipality: str = "",
    rows: str = "",
    code: str = "",
    hub: str = "",
    since: str = "",
    until: str = "",
    state: str = q.OPEN,
    before: int | None = None,
) -> HTMLResponse:
    """The quarantine of the administrator's municipality, newest first, filtered."""
    names = dict(municipalities(conn))
    chosen = administered_municipality(user, names, municipality)
    if rows not in ROWS or state not in q.STATES:
        raise _bad(_("That choice of rows is not one this page offers."))
    wanted = q.QuarantineFilter(
        code=_code(code),
        hub_id=_hub(hub),
        since=_day_start(since),
        until=_day_start(until, next_day=True),
        state=state,
    )
    if before is not None and not 0 < before <= _MAX_ID:
        raise _bad(_("That page of the quarantine does not exist."))
    system = user.role == access.SYSTEM_ADMIN
    query = ListQuery(municipality if system else "", rows if system else "", code, hub, since, until, state)
    scope = _list_scope(user, chosen, rows)
    found = q.quarantine_page(conn, scope, wanted, before_id=before, size=PAGE_SIZE)
    counts = q.open_counts(conn, scope)
    return render_page(
        request,
        user,
        "admin_quarantine.html",
        rows=found.rows,
        counts=counts,
        query=query,
        chosen=chosen,
        municipality_names=names,
        pick_municipality=system,
        first_page=query.link(),
        older=None if found.older_than is None else query.link(before=found.older_than),
        paged=before is not None,
        state_names={key: _(value) for key, value in STATE_NAMES.items()},
        **_helpers(),
    )


# --- one row -------------------------------------------------------------------------------------------


def _visible(conn: DbDep, user: User, row_id: int) -> q.QuarantineRow:
    found = q.quarantine_row(conn, _row_id(row_id), _row_scope(user))
    if found is None:
        raise HTTPException(404, _("There is no such quarantined row here."))
    return found


def payload_text(payload: str) -> tuple[str, bool]:
    """The payload as shown: JSON indented when it is JSON, cut to ``PAYLOAD_CHARS``; whether it was cut.
    (The template escapes it.)"""
    text = payload
    with contextlib.suppress(orjson.JSONDecodeError, orjson.JSONEncodeError):  # not JSON, or too deep
        text = orjson.dumps(orjson.loads(payload.encode("utf-8")), option=orjson.OPT_INDENT_2).decode()
    if len(text) > PAYLOAD_CHARS:
        return text[:PAYLOAD_CHARS], True
    return text, False


def _row_page(
    request: Request,
    user: User,
    conn: DbDep,
    row: q.QuarantineRow,
    *,
    status: int = 200,
    error: str | None = None,
    reason: str = "",
    reason_error: bool = False,
    done: str = "",
) -> HTMLResponse:
    shown, cut = payload_text(row.payload)
    list_query = {"municipality": row.municipality_id} if user.role == access.SYSTEM_ADMIN else {}
    if user.role == access.SYSTEM_ADMIN and not row.municipality_known:
        list_query = {"rows": "unowned"}
    return render_page(
        request,
        user,
        "admin_quarantine_row.html",
        status,
        row=row,
        payload=shown,
        payload_cut=cut,
        payload_limit=PAYLOAD_CHARS,
        successors=q.successors(conn, row.id),
        is_status=row.topic.endswith("/status"),
        error=error,
        reason=reason,
        reason_error=reason_error,
        reason_chars=q.NOTE_CHARS,
        done=done,
        list_url="/admin/quarantine" + (f"?{urlencode(list_query)}" if list_query else ""),
        **_helpers(),
    )


@router.get("/{row_id:int}", response_class=HTMLResponse)
def quarantine_row_page(
    request: Request, user: AdminUser, conn: DbDep, client: ClientAddress, row_id: int, done: str = ""
) -> HTMLResponse:
    """One quarantined row: its reason, its review, and what was refused (audited: it holds readings)."""
    row = _visible(conn, user, row_id)
    detail = f"quarantine row {row.id} ({row.code})"
    record_audit(conn, user, q.AUDIT_VIEW, patients_named(row.payload) or [None], detail, client=client)
    shown = done if done in ("reprocessed", "dismissed") else ""
    return _row_page(request, user, conn, row, done=shown)


def _refusal(refused: q.QuarantineRefused) -> tuple[int, str]:
    if refused.kind == "unknown":
        raise HTTPException(404, _("There is no such quarantined row here."))
    if refused.kind == "not-a-reading":
        return 409, _("A hub's status is not re-processed: the hub's next status replaces it. Dismiss it.")
    return 409, _("Someone resolved this row already; nothing was changed.")


@router.post("/{row_id:int}/reprocess", response_class=HTMLResponse, response_model=None)
def reprocess_row(
    request: Request,
    user: AdminUser,
    form: CheckedForm,
    conn: DbDep,
    client: ClientAddress,
    settings: SettingsDep,
    row_id: int,
) -> Response:
    """Run the row again through the live ingest's rules with today's enrolment (audited)."""
    row = _visible(conn, user, row_id)
    try:
        reprocess(
            conn,
            row.id,
            scope=_row_scope(user),
            actor=user,
            client=client,
            max_bytes=settings.max_payload_bytes,
            notify_channel=settings.scorer_channel,
        )
    except q.QuarantineRefused as refused:
        status, error = _refusal(refused)
        return _row_page(request, user, conn, _visible(conn, user, row_id), status=status, error=error)
    except ReprocessFailed as failed:
        error = _("The readings could not be stored: %(problem)s", problem=failed.problem)
        return _row_page(request, user, conn, row, status=422, error=error)
    return RedirectResponse(row_url(row.id, done="reprocessed"), status_code=303)


@router.post("/{row_id:int}/dismiss", response_class=HTMLResponse, response_model=None)
def dismiss_row(
    request: Request, user: AdminUser, form: CheckedForm, conn: DbDep, client: ClientAddress, row_id: int
) -> Response:
    """Set the row aside with a reason (audited); the row's page again (400) without one."""
    row = _visible(conn, user, row_id)
    reason = form.get("reason", "").strip()
    if not reason or len(reason) > q.NOTE_CHARS or "\x00" in reason:
        error = _("Write why the row is dismissed, in at most %(chars)d characters.", chars=q.NOTE_CHARS)
        kept = reason.replace("\x00", "")[: q.NOTE_CHARS]
        return _row_page(request, user, conn, row, status=400, error=error, reason=kept, reason_error=True)
    try:
        with conn.transaction():
            taken = q.take_open(conn, row.id, _row_scope(user))
            q.resolve(
                conn,
                taken,
                q.DISMISSED,
                reason,
                actor=user,
                client=client,
                patient_ids=patients_named(taken.payload),
            )
    except q.QuarantineRefused as refused:
        status, error = _refusal(refused)
        return _row_page(request, user, conn, _visible(conn, user, row_id), status=status, error=error)
    return RedirectResponse(row_url(row.id, done="dismissed"), status_code=303)
