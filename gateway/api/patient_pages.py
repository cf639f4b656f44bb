"""A patient's pages: the overview with plots, the readings table, the limits form, and notes.

- ``GET /patients/{id}?days=7|30|90``: the overview: alerts with their history and the forms to
  acknowledge and resolve them (``alert_pages``; ``?done=`` confirms an action), the latest NEWS2, a
  chart of every vital sign the patient measures over the window (the personal baseline band and the
  limits drawn in, each reading triaged), the RiskAssessment history by method, reviews, notes, the
  limits in force, the staff's early-detection observations and the hospital stays (``findr_pages``),
  the patient's "contact my nurse" requests and the nurse's messages to the patient
  (``patient_message_pages``; ``?message=`` and ``?request=`` confirm an action there), devices and hub.
- ``GET /patients/{id}/readings?page=N``: every reading, newest first, 50 a page, each triaged.
- ``GET``/``POST /patients/{id}/thresholds``: the patient's own red and yellow limits per vital sign
  (defaults: the NEWS2 bands); a form with an error summary at the top when a value is not a number
  or the limits are out of order.
- ``POST /patients/{id}/notes``: add a note (append-only).

Thin routes: rows come from ``gateway.store`` (``patient_views``, ``thresholds``, ``notes``,
``reviews``), every one scoped by ``gateway.store.access`` so that a patient outside the viewer's
assignment is 404 ("no such patient among yours"); views are built by ``patient_vitals`` (charts,
triage) and ``patient_scores``; the limits form is read by ``limits_form``. Every page writes an
audit row, every change one in its transaction; every form carries the session's anti-forgery token
(``deps.CheckedForm``). Only people of a clinical role (nurse, GP) get these pages
(``deps.ClinicalUser``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import psycopg
from babel.dates import format_date
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from fhir_contract.device import contract_kind
from gateway.api.alert_presenters import confirmation
from gateway.api.auth import User
from gateway.api.clock import ui_now
from gateway.api.deps import CheckedForm, ClientAddress, ClinicalUser, DbDep
from gateway.api.fhir_search import ID_PATTERN
from gateway.api.findr_pages import patient_section
from gateway.api.i18n import N_, current
from gateway.api.i18n import gettext as _
from gateway.api.limits_form import FormError, bound_name, field_name, form_value, parse_limits
from gateway.api.patient_message_pages import contact_section
from gateway.api.patient_scores import method_histories
from gateway.api.patient_symptoms import symptom_section
from gateway.api.patient_vitals import (
    BASELINE_HISTORY,
    BY_KEY,
    VITAL_KINDS,
    LimitsInForce,
    canonical_text,
    level_name,
    limits_in_force,
    number,
    triage_row,
    vital_charts,
)
from gateway.api.plan_pages import plan_section
from gateway.api.presenters import patient_url, unit
from gateway.api.review_presenters import outcome_label, review_url, reviewer, tel_url, triage_label
from gateway.api.web import render_page
from gateway.store import alert_inbox, notes, patient_views, thresholds
from gateway.store.audit import record_audit
from gateway.store.patient_views import PatientRow
from gateway.store.reviews import reviews_of
from models.triage import BOUNDS, Bound

router = APIRouter(tags=["web"])

# The windows a nurse can plot: the last week, the last month (the default: the weekly review looks at
# the trend of a month) and the last quarter.
WINDOWS = (7, 30, 90)
DEFAULT_WINDOW = 30
READINGS_PER_PAGE = 50
# Below this battery level (%) the devices table warns: at ~20 % a cuff or an oximeter has days left,
# time for a visit to change batteries before readings stop.
LOW_BATTERY_PERCENT = 20
# The few newest scores of each method the overview shows (the trend needs at least two).
SCORES_PER_METHOD = 5


def _patient_or_404(conn: psycopg.Connection[Any], user: User, patient_id: str) -> PatientRow:
    """The patient when ``user`` may see them; otherwise 404, whether they exist or not."""
    # A patient id is a FHIR id (the FHIR API serves the same patient); anything else, a NUL byte that
    # PostgreSQL refuses among them, names no patient and is not sent to the database.
    found = patient_views.patient(conn, user, patient_id) if ID_PATTERN.fullmatch(patient_id) else None
    if found is None:
        raise HTTPException(404, _("There is no such patient among yours."))
    return found


# Every device kind of the contract (``fhir/devices.json``); a hub's own names for them
# (``edge_agent.config.DeviceKind``) are read through ``contract_kind``.
_DEVICE_KINDS = {
    "blood-pressure-monitor": N_("Blood pressure cuff"),
    "pulse-oximeter": N_("Pulse oximeter"),
    "weight-scale": N_("Scale"),
    "thermometer": N_("Thermometer"),
    "glucose-meter": N_("Glucose meter"),
    "continuous-glucose-monitor": N_("Continuous glucose monitor"),
    "body-composition-analyzer": N_("Body composition scale"),
    "heart-rate-monitor": N_("Heart rate monitor"),
}


def device_kind(kind: str | None) -> str:
    """A device kind in words; a device the hub reports but that was never registered says so."""
    if kind is None:
        return _("not registered")
    label = _DEVICE_KINDS.get(contract_kind(kind))
    return _(label) if label else kind


def _born(patient: PatientRow) -> str | None:
    if patient.birth_date is None:
        return None
    return format_date(patient.birth_date, "medium", locale=current().locale)


def _limits(conn: psycopg.Connection[Any], user: User, patient: PatientRow) -> dict[str, LimitsInForce]:
    return limits_in_force(thresholds.current_limits(conn, user, patient.id), scale2=patient.spo2_scale2)


# --- the overview -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteForm:
    """The note form as shown again after a refused note: what was typed and why it was refused."""

    text: str = ""
    error: str | None = None


def _overview(
    request: Request,
    user: User,
    conn: psycopg.Connection[Any],
    patient: PatientRow,
    days: int,
    *,
    status: int = 200,
    note: NoteForm | None = None,
    done: str = "",
    message: str = "",
    request_done: str = "",
) -> HTMLResponse:
    now = ui_now(request)
    alerts = alert_inbox.patient_alerts(conn, user, patient.id)
    limits = _limits(conn, user, patient)
    after = now - timedelta(days=days) - BASELINE_HISTORY
    readings = patient_views.canonical_readings(conn, user, patient.id, after=after, kinds=VITAL_KINDS)
    charts = vital_charts(readings, limits, now=now, days=days, time_zone=current().time_zone)
    scores = patient_views.scores_by_method(conn, user, patient.id, SCORES_PER_METHOD)
    return render_page(
        request,
        user,
        "patient.html",
        status,
        patient=patient,
        synthetic=patient.synthetic,
        born=_born(patient),
        days=days,
        windows=WINDOWS,
        charts=charts,
        news2=patient_views.latest_news2(conn, user, patient.id),
        histories=method_histories(scores),
        symptoms=symptom_section(conn, user, patient.id),
        contact=contact_section(conn, user, patient.id, message=message, request=request_done),
        alerts=alerts,
        alert_histories=alert_inbox.patient_alert_histories(conn, user, patient.id, [a.id for a in alerts]),
        alert_done=confirmation(done),
        reviews=reviews_of(conn, user, patient.id),
        notes=notes.notes_of(conn, user, patient.id),
        findr=patient_section(conn, user, patient.id, now),
        plan=plan_section(conn, user, patient.id),
        note=note or NoteForm(),
        note_max=notes.NOTE_MAX_CHARS,
        limits=list(limits.values()),
        number=number,
        unit=unit,
        devices=patient_views.patient_devices(conn, user, patient.id),
        hubs=patient_views.patient_hubs(conn, user, patient.id),
        device_kind=device_kind,
        low_battery=LOW_BATTERY_PERCENT,
        level_name=level_name,
        # The review module's wording (its template globals too; named here so this page never
        # depends on which globals another module registered).
        tel_url=tel_url,
        reviewer=reviewer,
        triage_label=triage_label,
        outcome_label=outcome_label,
        review_url=review_url,
    )


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(
    patient_id: str,
    request: Request,
    user: ClinicalUser,
    conn: DbDep,
    client: ClientAddress,
    days: int = DEFAULT_WINDOW,
    done: str = "",
    message: Annotated[str, Query(max_length=16)] = "",
    request_done: Annotated[str, Query(alias="request", max_length=16)] = "",
) -> HTMLResponse:
    """One patient: alerts, NEWS2, charts of the vital signs, symptoms, contact requests and messages,
    risk history, reviews, notes, devices."""
    patient = _patient_or_404(conn, user, patient_id)
    window = days if days in WINDOWS else DEFAULT_WINDOW
    record_audit(conn, user, "view-patient", [patient.id], f"{window} days", client=client)
    return _overview(
        request, user, conn, patient, window, done=done, message=message, request_done=request_done
    )


@router.post("/patients/{patient_id}/notes", response_class=HTMLResponse, response_model=None)
def add_note(
    patient_id: str,
    request: Request,
    user: ClinicalUser,
    form: CheckedForm,
    conn: DbDep,
    client: ClientAddress,
) -> HTMLResponse | RedirectResponse:
    """Add a note to the patient (audited); an empty or too long note shows the page again with why."""
    patient = _patient_or_404(conn, user, patient_id)
    text = form.get("text", "").strip()
    error = None
    if not text:
        error = _("Write the note before saving it.")
    elif len(text) > notes.NOTE_MAX_CHARS:
        error = _("A note can have at most %(max)d characters.", max=notes.NOTE_MAX_CHARS)
    if error is not None:
        # The page shows the patient's data again: that is a view, and audited as one.
        record_audit(conn, user, "view-patient", [patient.id], "note refused", client=client)
        return _overview(request, user, conn, patient, DEFAULT_WINDOW, status=400, note=NoteForm(text, error))
    notes.add_note(conn, user, patient.id, text, client=client)
    return RedirectResponse(f"{patient_url(patient.id)}#notes", status_code=303)


# --- the readings table -----------------------------------------------------------------------------


@router.get("/patients/{patient_id}/readings", response_class=HTMLResponse)
def readings_page(
    patient_id: str, request: Request, user: ClinicalUser, conn: DbDep, client: ClientAddress, page: int = 1
) -> HTMLResponse:
    """Every reading of the patient, newest first, a page at a time, each triaged."""
    patient = _patient_or_404(conn, user, patient_id)
    page = max(page, 1)
    found = patient_views.readings_page(conn, user, patient.id, page=page, size=READINGS_PER_PAGE)
    limits = _limits(conn, user, patient)
    record_audit(conn, user, "view-readings", [patient.id], f"page {page}", client=client)
    return render_page(
        request,
        user,
        "patient_readings.html",
        patient=patient,
        synthetic=patient.synthetic,
        rows=[triage_row(row, limits) for row in found.rows],
        canonical=canonical_text,
        page=page,
        has_more=found.has_more,
    )


# --- the limits form --------------------------------------------------------------------------------


def _limits_form(
    request: Request,
    user: User,
    patient: PatientRow,
    in_force: Mapping[str, LimitsInForce],
    history: list[thresholds.StoredLimits],
    *,
    typed: Mapping[str, str] | None = None,
    errors: list[FormError] | None = None,
) -> HTMLResponse:
    def shown(vital: str, bound: Bound) -> str:
        if typed is not None:
            return typed.get(field_name(vital, bound), "")
        return form_value(in_force[vital].limits.get(bound))

    return render_page(
        request,
        user,
        "thresholds.html",
        400 if errors else 200,
        patient=patient,
        synthetic=patient.synthetic,
        limits=list(in_force.values()),
        history=history,
        vital_signs=BY_KEY,
        bounds=BOUNDS,
        field_name=field_name,
        bound_name=bound_name,
        shown=shown,
        number=number,
        unit=unit,
        errors=errors or [],
        error_of={error.field: error.message for error in reversed(errors or [])},
    )


@router.get("/patients/{patient_id}/thresholds", response_class=HTMLResponse)
def limits_form(
    patient_id: str, request: Request, user: ClinicalUser, conn: DbDep, client: ClientAddress
) -> HTMLResponse:
    """The form of the patient's red and yellow limits per vital sign, with their history."""
    patient = _patient_or_404(conn, user, patient_id)
    record_audit(conn, user, "view-thresholds", [patient.id], client=client)
    history = thresholds.limits_history(conn, user, patient.id)
    return _limits_form(request, user, patient, _limits(conn, user, patient), history)


@router.post("/patients/{patient_id}/thresholds", response_class=HTMLResponse, response_model=None)
def set_limits(
    patient_id: str,
    request: Request,
    user: ClinicalUser,
    form: CheckedForm,
    conn: DbDep,
    client: ClientAddress,
) -> HTMLResponse | RedirectResponse:
    """Store the limits that changed (audited) and return to the patient; show the form again with an
    error summary when a value is not a number or the limits are out of order."""
    patient = _patient_or_404(conn, user, patient_id)
    in_force = _limits(conn, user, patient)
    wanted, typed, errors = parse_limits(form)
    if errors:
        record_audit(conn, user, "view-thresholds", [patient.id], "thresholds refused", client=client)
        history = thresholds.limits_history(conn, user, patient.id)
        return _limits_form(request, user, patient, in_force, history, typed=typed, errors=errors)
    changes = {vital: limits for vital, limits in wanted.items() if limits != in_force[vital].limits}
    thresholds.set_limits(conn, user, patient.id, changes, client=client)
    return RedirectResponse(f"{patient_url(patient.id)}#limits", status_code=303)
