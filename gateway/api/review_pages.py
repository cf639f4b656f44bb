"""The weekly risk review in the web UI: the ranked worklist, review mode, and a patient's review history.

- ``GET /``: the viewer's patients ranked by the 30-day admission risk (``gateway.store.worklist``), 25
  a page, with filters (care team, condition, reviewed this week or not yet) as a plain GET form; above
  them the patients' open "contact my nurse" requests (``contact_request_pages``), whatever the filters.
- ``GET /review``: review mode. It walks the patients not yet reviewed this week in rank order, one at a
  time (``position`` counts the ones skipped); saving a review leaves the next one at the same position.
- ``GET /patients/{id}/reviews``: the patient's card, review history and the review form.
- ``POST /patients/{id}/reviews``: records a review (``gateway.store.reviews``); an invalid form is shown
  again with an error summary at its top (GOV.UK / DKFDS), a valid one goes on to the next page.

Thin routes: rows from the store, words from ``review_presenters`` (template globals), the page frame
from ``web``. Every page that shows patient data writes audit rows; the review form carries the
session's anti-forgery token. Works without JavaScript.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.api.auth import User
from gateway.api.clock import ui_now
from gateway.api.contact_request_pages import confirmation, worklist_requests
from gateway.api.deps import CheckedForm, ClientAddress, ClinicalUser, DbDep, client_address
from gateway.api.fhir_search import ID_PATTERN
from gateway.api.i18n import gettext as _
from gateway.api.review_presenters import outcome_label, query_url, review_url
from gateway.api.web import render_page
from gateway.store import model_registry, worklist
from gateway.store.access import NURSE, may_see_patient
from gateway.store.audit import record_audit
from gateway.store.reviews import (
    NOTE_MAX_CHARS,
    NOTE_REQUIRED,
    OUTCOMES,
    TRIAGE,
    ReviewRefused,
    note_storable,
    record_review,
    reviews_of,
    week_start,
)
from gateway.store.worklist import WorklistFilter, WorklistRow

router = APIRouter(tags=["web"])

# Filter values are ids and codes; anything longer is not one of them (and not sent to the database).
_MAX_FILTER_CHARS = 64
# Far past any real list: a page number beyond this is an error, not a query.
_MAX_PAGE = 10_000
# How many of a patient's earlier reviews review mode shows beside the form.
_RECENT_REVIEWS = 3

# Filter values are shown again and sent to the database: no control characters (PostgreSQL refuses NUL).
_FILTER_VALUE = re.compile(rf"[^\x00-\x1f\x7f]{{0,{_MAX_FILTER_CHARS}}}")
# The id of the 30-day risk a form was shown with (scores.public_id): a uuid, or nothing.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# pydantic searches a pattern: anchored, it must hold for the whole value.
_ANCHORED = f"^{_FILTER_VALUE.pattern}$"
Team = Annotated[str, Query(max_length=_MAX_FILTER_CHARS, pattern=_ANCHORED)]
Condition = Annotated[str, Query(max_length=_MAX_FILTER_CHARS, pattern=_ANCHORED)]
Reviewed = Annotated[Literal["", "yes", "no"], Query()]


@dataclass(frozen=True, slots=True)
class Filters:
    """The worklist's filters as the GET form sends them ("" = any)."""

    team: str = ""
    condition: str = ""
    reviewed: str = ""

    def wanted(self) -> WorklistFilter:
        reviewed = {"yes": True, "no": False}.get(self.reviewed)
        return WorklistFilter(self.team or None, self.condition or None, reviewed)

    def params(self) -> list[tuple[str, str]]:
        return [("team", self.team), ("condition", self.condition), ("reviewed", self.reviewed)]


def _audit_rows(
    request: Request, conn: DbDep, user: User, action: str, rows: list[WorklistRow], detail: str
) -> None:
    record_audit(conn, user, action, [row.patient_id for row in rows], detail, client=client_address(request))


@router.get("/", response_class=HTMLResponse)
def worklist_page(
    request: Request,
    user: ClinicalUser,
    conn: DbDep,
    team: Team = "",
    condition: Condition = "",
    reviewed: Reviewed = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=_MAX_PAGE)] = 1,
    request_done: Annotated[str, Query(alias="request", max_length=_MAX_FILTER_CHARS)] = "",
) -> HTMLResponse:
    """The patients' open contact requests, then the viewer's patients ranked by the 30-day admission
    risk, one page of 25."""
    now = ui_now(request)
    filters = Filters(team, condition, reviewed)
    limit = worklist.PAGE_SIZE
    found = worklist.worklist_page(
        conn,
        user,
        now=now,
        week_start=week_start(now),
        wanted=filters.wanted(),
        offset=(page_number - 1) * limit,
        limit=limit,
    )
    _audit_rows(
        request, conn, user, "view-worklist", found.rows, f"patients: {len(found.rows)}; page: {page_number}"
    )
    to_review = worklist.count_patients(
        conn, user, replace(filters.wanted(), reviewed=False), found.week_start
    )
    return render_page(
        request,
        user,
        "worklist.html",
        found=found,
        rows=found.rows,
        synthetic=any(row.synthetic for row in found.rows),
        filters=filters,
        options=worklist.filter_options(conn, user),
        page_number=page_number,
        previous_url=query_url("/", [*filters.params(), ("page", str(page_number - 1))])
        if page_number > 1
        else None,
        next_url=query_url("/", [*filters.params(), ("page", str(page_number + 1))])
        if found.has_next
        else None,
        review_start_url=query_url("/review", [("team", team), ("condition", condition)]),
        to_review=to_review,
        # The risks shown came (partly) from the shipped default: the page says what that means.
        default_models=sorted(model_registry.default_versions_among(conn, found.models)),
        # A nurse's patients are her municipality's; a GP's may live in several, so none is named.
        municipality=worklist.municipality_name(conn, user.municipality_id) if user.role == NURSE else None,
        contact_requests=worklist_requests(conn, user, client_address(request)),
        request_done=confirmation(request_done),
    )


def _review_mode(
    request: Request,
    user: User,
    conn: DbDep,
    filters: Filters,
    position: int,
    *,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    patient_id: str | None = None,
) -> HTMLResponse:
    """Review mode at ``position`` among the unreviewed patients (or, after an invalid form, the patient
    the form was for)."""
    now = ui_now(request)
    week = week_start(now)
    unreviewed = replace(filters.wanted(), reviewed=False)
    if patient_id is None:
        found = worklist.worklist_page(
            conn, user, now=now, week_start=week, wanted=unreviewed, offset=position, limit=1
        )
        remaining = found.total
    else:  # the form of this patient, shown again with what was wrong
        one = replace(filters.wanted(), patient_id=patient_id)
        found = worklist.worklist_page(conn, user, now=now, week_start=week, wanted=one)
        remaining = worklist.count_patients(conn, user, unreviewed, week)
    row = found.rows[0] if found.rows else None
    _audit_rows(request, conn, user, "view-review", found.rows, f"review mode, position {position}")
    recent = reviews_of(conn, user, row.patient_id)[:_RECENT_REVIEWS] if row else []
    params = [("team", filters.team), ("condition", filters.condition)]
    return render_page(
        request,
        user,
        "review.html",
        status=400 if errors else 200,
        row=row,
        found=found,
        synthetic=bool(row and row.synthetic),
        position=position,
        remaining=remaining,
        filters=filters,
        recent=recent,
        form=form or {},
        errors=errors or {},
        skip_url=query_url("/review", [*params, ("position", str(position + 1))]),
        restart_url=query_url("/review", params) if position else None,
    )


@router.get("/review", response_class=HTMLResponse)
def review_mode(
    request: Request,
    user: ClinicalUser,
    conn: DbDep,
    team: Team = "",
    condition: Condition = "",
    position: Annotated[int, Query(ge=0, le=_MAX_PAGE)] = 0,
) -> HTMLResponse:
    """Review mode: the next patient not yet reviewed this week, highest risk first, with the form."""
    return _review_mode(request, user, conn, Filters(team, condition), position)


def _history(
    request: Request,
    user: User,
    conn: DbDep,
    patient_id: str,
    *,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> HTMLResponse:
    now = ui_now(request)
    found = worklist.worklist_page(
        conn, user, now=now, week_start=week_start(now), wanted=WorklistFilter(patient_id=patient_id)
    )
    if not found.rows:
        raise HTTPException(404, _("There is no such patient among yours."))
    row = found.rows[0]
    history = reviews_of(conn, user, patient_id)
    _audit_rows(request, conn, user, "view-reviews", found.rows, f"reviews: {len(history)}")
    return render_page(
        request,
        user,
        "review_history.html",
        status=400 if errors else 200,
        row=row,
        found=found,
        synthetic=row.synthetic,
        history=history,
        form=form or {},
        errors=errors or {},
    )


def _visible_patient(conn: DbDep, user: User, patient_id: str) -> str:
    # A patient id is a FHIR id; anything else (a NUL byte among them) names no patient and is not sent
    # to the database.
    if not ID_PATTERN.fullmatch(patient_id) or not may_see_patient(conn, user, patient_id):
        raise HTTPException(404, _("There is no such patient among yours."))
    return patient_id


@router.get("/patients/{patient_id}/reviews", response_class=HTMLResponse)
def review_history(patient_id: str, request: Request, user: ClinicalUser, conn: DbDep) -> HTMLResponse:
    """A patient's reviews, newest first, and the form to record one."""
    return _history(request, user, conn, _visible_patient(conn, user, patient_id))


def form_errors(form: Mapping[str, str]) -> dict[str, str]:
    """What is wrong with a review form, by field (in the order the form asks); empty when it is valid."""
    errors: dict[str, str] = {}
    outcome, note, triage = form.get("outcome", ""), form.get("note", ""), form.get("triage", "")
    if outcome not in OUTCOMES:
        errors["outcome"] = _("Choose what you did")
    if outcome in NOTE_REQUIRED and not note.strip():
        errors["note"] = _(
            "Write what you did: the outcome “%(outcome)s” needs a note", outcome=outcome_label(outcome)
        )
    elif len(note) > NOTE_MAX_CHARS:
        errors["note"] = _("The note can have at most %(max)d characters", max=NOTE_MAX_CHARS)
    elif not note_storable(note):
        errors["note"] = _("The note holds characters that cannot be stored; type it again")
    if triage not in TRIAGE:
        errors["triage"] = _("Choose a triage colour")
    return errors


def _filter_value(value: str) -> str:
    """A filter carried by the review form, or none when it is not one a filter can be."""
    return value if _FILTER_VALUE.fullmatch(value) else ""


def _position(form: Mapping[str, str]) -> int:
    text = form.get("position", "0")
    return min(int(text), _MAX_PAGE) if text.isascii() and text.isdigit() and len(text) < 6 else 0


@router.post("/patients/{patient_id}/reviews", response_class=HTMLResponse, response_model=None)
def save_review(
    patient_id: str,
    request: Request,
    user: ClinicalUser,
    form: CheckedForm,
    conn: DbDep,
    client: ClientAddress,
) -> Response:
    """Record a review, then go on: to the next patient in review mode, else back to the history."""
    patient_id = _visible_patient(conn, user, patient_id)
    walking = form.get("return") == "review"
    filters = Filters(_filter_value(form.get("team", "")), _filter_value(form.get("condition", "")))
    seen = form.get("seen_risk", "")
    position = _position(form)
    errors = form_errors(form)
    if not errors:
        try:
            record_review(
                conn,
                user,
                patient_id,
                form["outcome"],
                form.get("note", ""),
                form["triage"],
                seen_risk_id=seen if _UUID.fullmatch(seen) else None,
                # The page's clock (the demo's simulated one), so "reviewed this week" and "just now"
                # agree with the page that shows them; in production it is the wall clock.
                now=ui_now(request),
                client=client,
            )
        except ReviewRefused as refused:
            if refused.field == "patient":
                raise HTTPException(404, _("There is no such patient among yours.")) from refused
            errors = {refused.field: refused.detail}
    if errors:
        if walking:
            return _review_mode(
                request, user, conn, filters, position, form=form, errors=errors, patient_id=patient_id
            )
        return _history(request, user, conn, patient_id, form=form, errors=errors)
    if walking:
        params = [("team", filters.team), ("condition", filters.condition), ("position", str(position))]
        return RedirectResponse(query_url("/review", params), status_code=303)
    return RedirectResponse(f"{review_url(patient_id)}#history", status_code=303)
