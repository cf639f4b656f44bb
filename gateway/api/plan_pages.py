"""A patient's measurement plan: the nurse's form, and the plan as the patient page shows it.

- ``GET /patients/{id}/plan``: the form (``plan_form``: one fieldset per measurement, its times of day,
  weekdays and grace), filled with the plan in force, and every earlier version of the plan under it;
  ``?done=`` says what the last save did (sent to the hub, waiting for the broker, unchanged).
- ``POST /patients/{id}/plan``: stores the plan and sends it to the patient's hub
  (``gateway.administration.plans.set_plan``: audited, the hub's config version counted and published),
  then back to the form (303) saying whether the hub has it yet; or the form again (400) with an error
  summary at the top and each error beside its field, what was typed kept.

Only a nurse sets the plan (``NurseUser``: home-care staff; a GP is 403 here and sees the plan on the
patient page), and only for a patient she may see (``access.patient_scope``: her care teams'; anyone
else's is 404, whether they exist or not). Every view and change is audited; the form carries the
session's anti-forgery token (``deps.CheckedForm``). The plan's times are the time of day in the
patient's home, saved on the gateway's clock (``ui_now``: the demo's simulated time), from which on the
missing-measurement alert expects them.

The publisher of retained configs is the app's (``gateway.api.fleet_broker``, as the administrator's
pages use); when the broker is away the gateway's config job publishes the plan later.
``plan_section`` is what the patient page shows (``patient_pages``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from fhir_contract.plan import MEASUREMENTS, PlanItem
from gateway.administration.errors import AdministrationError
from gateway.administration.plans import set_plan
from gateway.api.auth import User
from gateway.api.clock import ui_now
from gateway.api.deps import CheckedForm, ClientAddress, ClinicalUser, DbDep
from gateway.api.fhir_search import ID_PATTERN
from gateway.api.fleet_broker import fleet_broker
from gateway.api.i18n import N_
from gateway.api.i18n import gettext as _
from gateway.api.plan_form import (
    CHECKED,
    WEEKDAYS,
    FormError,
    clock,
    day_name,
    days_text,
    field_name,
    form_values,
    grace_text,
    measurement_label,
    parse_plan_form,
)
from gateway.api.presenters import patient_url
from gateway.api.web import render_page
from gateway.store import access, patient_views, plans
from gateway.store.audit import record_audit
from gateway.store.patient_views import PatientRow

router = APIRouter(tags=["web"])

AUDIT_VIEW = "view-plan"
# What the form says after a save (``?done=``); anything else says nothing.
DONE: Mapping[str, str] = {
    "sent": N_("The plan is saved and sent to the patient's hub."),
    "queued": N_(
        "The plan is saved. The hub could not be reached now: the gateway sends it the plan as soon as it"
        " can."
    ),
    "no-hub": N_("The plan is saved. The patient has no hub yet: the hub gets the plan when it is enrolled."),
    "unchanged": N_("The plan is as it was: nothing changed."),
}
# The error summary's link when the plan as a whole is refused (by the service, not a field).
_PLAN_FIELD = field_name(MEASUREMENTS[0], "on")


def get_nurse(user: ClinicalUser) -> User:
    """The current user when she is a nurse (home-care staff set the plan); a GP is 403."""
    if user.role != access.NURSE:
        raise HTTPException(403, _("Only a nurse of the patient's care team sets the measurement plan."))
    return user


NurseUser = Annotated[User, Depends(get_nurse)]


def _patient_or_404(conn: psycopg.Connection[Any], user: User, patient_id: str) -> PatientRow:
    """The patient when ``user`` may see them; otherwise 404, whether they exist or not."""
    found = patient_views.patient(conn, user, patient_id) if ID_PATTERN.fullmatch(patient_id) else None
    if found is None:
        raise HTTPException(404, _("There is no such patient among yours."))
    return found


# --- what the pages show of a plan ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One measurement of a plan in words."""

    measurement: str
    times: str
    days: str
    grace: str


@dataclass(frozen=True, slots=True)
class PlanVersion:
    """A version of the plan in words: its rows (none: no plan), who set it and when."""

    rows: list[PlanRow]
    set_by: str
    set_at: datetime


@dataclass(frozen=True, slots=True)
class PlanSection:
    """The patient page's plan: the version in force (None: never set), and whether the viewer may
    change it (a nurse)."""

    current: PlanVersion | None
    may_change: bool


def plan_rows(items: tuple[PlanItem, ...]) -> list[PlanRow]:
    """The measurements of a plan in words, in the reader's language."""
    return [
        PlanRow(
            measurement_label(item.measurement),
            ", ".join(clock(at) for at in item.times),
            days_text(item.days),
            grace_text(item.grace),
        )
        for item in items
    ]


def _version(stored: plans.StoredPlan) -> PlanVersion:
    return PlanVersion(plan_rows(stored.items), stored.set_by_name or stored.set_by, stored.set_at)


def _in_force(conn: psycopg.Connection[Any], user: User, patient_id: str) -> plans.StoredPlan | None:
    try:
        return plans.visible_plan(conn, user, patient_id)
    except plans.PlanUnreadable:
        return None  # logged by the store's history; shown as no plan rather than a broken page


def plan_section(conn: psycopg.Connection[Any], user: User, patient_id: str) -> PlanSection:
    """The plan in force of a patient ``user`` may see (none otherwise), for the patient page."""
    stored = _in_force(conn, user, patient_id)
    return PlanSection(None if stored is None else _version(stored), user.role == access.NURSE)


# --- the form ---------------------------------------------------------------------------------------------


def _plan_page(
    request: Request,
    user: User,
    conn: psycopg.Connection[Any],
    patient: PatientRow,
    *,
    values: Mapping[str, str],
    errors: list[FormError],
    done: str = "",
) -> HTMLResponse:
    history = plans.plan_history(conn, user, patient.id)
    return render_page(
        request,
        user,
        "plan.html",
        400 if errors else 200,
        patient=patient,
        synthetic=patient.synthetic,
        measurements=MEASUREMENTS,
        weekdays=WEEKDAYS,
        checked=CHECKED,
        values=values,
        field_name=field_name,
        measurement_label=measurement_label,
        day_name=day_name,
        errors=errors,
        error_of={error.field: error.message for error in reversed(errors)},
        history=[_version(version) for version in history],
        done=_(DONE[done]) if done in DONE else None,
    )


@router.get("/patients/{patient_id}/plan", response_class=HTMLResponse)
def plan_form(
    patient_id: str, request: Request, user: NurseUser, conn: DbDep, client: ClientAddress, done: str = ""
) -> HTMLResponse:
    """The patient's measurement plan as a form, with its earlier versions."""
    patient = _patient_or_404(conn, user, patient_id)
    record_audit(conn, user, AUDIT_VIEW, [patient.id], client=client)
    stored = _in_force(conn, user, patient.id)
    values = form_values(() if stored is None else stored.items)
    return _plan_page(request, user, conn, patient, values=values, errors=[], done=done)


@router.post("/patients/{patient_id}/plan", response_class=HTMLResponse, response_model=None)
def save_plan(
    patient_id: str,
    request: Request,
    user: NurseUser,
    form: CheckedForm,
    conn: DbDep,
    client: ClientAddress,
) -> HTMLResponse | RedirectResponse:
    """Store the plan (audited) and send it to the patient's hub; show the form again with what is wrong
    when a time, day or grace is not one the plan can hold."""
    patient = _patient_or_404(conn, user, patient_id)
    items, typed, errors = parse_plan_form(form)
    if not errors:
        try:
            change = set_plan(
                conn,
                patient.id,
                items,
                by=user.username,
                at=ui_now(request),
                publisher=fleet_broker(request).publisher,
                viewer=user,
                client=client,
            )
        except AdministrationError as refused:
            errors = [FormError(_PLAN_FIELD, str(refused))]
    if errors:
        # The form shows the patient's plan again: a view, audited as one.
        record_audit(conn, user, AUDIT_VIEW, [patient.id], "plan refused", client=client)
        return _plan_page(request, user, conn, patient, values=typed, errors=errors)
    if not change.changed:
        done = "unchanged"
    elif not change.hubs:
        done = "no-hub"
    else:
        done = "sent" if change.published else "queued"
    return RedirectResponse(f"{patient_url(patient.id)}/plan?done={done}", status_code=303)
