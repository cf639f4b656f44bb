"""The web form for FiNDR's inputs: a home-care nurse records an early-detection observation or a
hospital stay, and the patient page lists both.

- ``GET``/``POST /patients/{id}/early-detection``: the ten items of the early-detection change form
  (``models.codes.CHANGE_OBSERVATIONS``), each "change seen", "no change" or "not checked" (the
  default), and when (default: now, in the reader's time zone). At least one item must be checked.
- ``GET``/``POST /patients/{id}/hospital-stays``: a new admission (admitted, and discharged when it is
  over), or the discharge of a stay still open (the ``stay`` field names it by identifier).

Only a nurse records (``NurseUser``: home-care staff; a GP is 403), and only for a patient she may see
(``access.patient_scope``; anyone else's is 404). What is stored is the FHIR resource a home-care or
hospital system would have sent (``findr_fhir.change_form_resource``, ``encounter_resource``), decided by
the same rules (``findr_fhir.decide_web_resource``) and stored by ``gateway.store.findr_inputs`` with
source 'web', a random identifier and the nurse as ``recorded_by``, with its audit row in the same
transaction. A refused form is shown again (400) with an error summary and each error beside its field.

``patient_section`` is what the patient page shows (``patient_pages``): the newest observations (when,
who, the changes seen in words) and the hospital stays (admitted, discharged or "in hospital").
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from fhir_contract.limits import EFFECTIVE_FLOOR, MAX_CLOCK_AHEAD
from gateway.api import findr_fhir
from gateway.api.auth import User
from gateway.api.clock import ui_now
from gateway.api.deps import CheckedForm, ClientAddress, ClinicalUser, DbDep
from gateway.api.fhir_search import ID_PATTERN
from gateway.api.i18n import N_, current
from gateway.api.i18n import gettext as _
from gateway.api.presenters import patient_url
from gateway.api.web import render_page
from gateway.store import access, findr_inputs, patient_views
from gateway.store.audit import record_audit
from gateway.store.findr_inputs import HospitalStay, StaffObservation
from gateway.store.patient_views import PatientRow
from models.codes import CHANGE_OBSERVATIONS

router = APIRouter(tags=["web"])

SEEN, NO_CHANGE, NOT_CHECKED = "seen", "none", "unchecked"
CHOICES: Mapping[str, str] = {
    SEEN: N_("Change seen"),
    NO_CHANGE: N_("No change"),
    NOT_CHECKED: N_("Not checked"),
}
# The patient page lists the forms of the last quarter (the 30-day risk reads 7 days of them), at most
# this many, and this many of the newest stays.
RECENT_WINDOW = timedelta(days=90)
RECENT_OBSERVATIONS = 10
RECENT_STAYS = 10
AUDIT_OBSERVATION = "record-staff-observation"
AUDIT_STAY = "record-hospital-stay"
# What <input type="datetime-local"> sends, minutes precision.
_LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
_IDENTIFIER_FIELD_CHARS = 600


def item_words(key: str) -> str:
    """An item in words ("changed breathing"), in the reader's language (the msgids of
    ``model_words``: the same words the 30-day risk's factors use)."""
    return _(CHANGE_OBSERVATIONS[key].split(" (")[0])


def get_nurse(user: ClinicalUser) -> User:
    """The current user when she is a nurse (home-care staff record these); a GP is 403."""
    if user.role != access.NURSE:
        raise HTTPException(403, _("Only home-care nurses record observations and hospital stays."))
    return user


NurseUser = Annotated[User, Depends(get_nurse)]


@dataclass(frozen=True, slots=True)
class Target:
    """The patient a form is about, and the municipality their records are stored under."""

    patient: PatientRow
    municipality_id: str


def _target(conn: psycopg.Connection[Any], user: User, patient_id: str) -> Target:
    """The patient when ``user`` may see them; otherwise 404, whether they exist or not."""
    municipality = (
        findr_inputs.visible_patient_municipality(conn, user, patient_id)
        if ID_PATTERN.fullmatch(patient_id)
        else None
    )
    found = patient_views.patient(conn, user, patient_id) if municipality is not None else None
    if found is None or municipality is None:
        raise HTTPException(404, _("There is no such patient among yours."))
    return Target(found, municipality)


@dataclass(frozen=True, slots=True)
class FieldError:
    """A refused field: its id in the form, and why."""

    field: str
    message: str


def local_input(moment: datetime, zone: tzinfo) -> str:
    """A moment as a datetime-local field shows it, in ``zone``."""
    return moment.astimezone(zone).strftime(_LOCAL_FORMAT)


def parse_moment(text: str, zone: tzinfo, now: datetime) -> datetime | str:
    """A datetime-local value (local time in ``zone``) as an aware moment, or why it is refused (in
    words): empty, not a time, before 2015, in the future."""
    if not text.strip():
        return _("Enter the date and time.")
    try:
        naive = datetime.fromisoformat(text.strip())
    except ValueError:
        return _("Enter a date and time such as 2026-01-05 09:30.")
    moment = naive if naive.tzinfo else naive.replace(tzinfo=zone)
    if moment > now + MAX_CLOCK_AHEAD:
        return _("The time cannot be in the future.")
    if moment < EFFECTIVE_FLOOR:
        return _("The time cannot be before 2015.")
    return moment.astimezone(UTC)


# --- what the patient page shows ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObservationView:
    effective: datetime
    who: str
    by_system: bool  # sent by the home-care record system, not typed in here
    changes: list[str]  # the items with a change seen, in words
    checked: int  # items checked


@dataclass(frozen=True, slots=True)
class StayView:
    start: datetime
    end: datetime | None  # None: in hospital
    by_system: bool


@dataclass(frozen=True, slots=True)
class FindrSection:
    observations: list[ObservationView]
    stays: list[StayView]
    may_record: bool


def _observation_view(obs: StaffObservation) -> ObservationView:
    changes = [item_words(key) for key in CHANGE_OBSERVATIONS if obs.items.get(key) is True]
    return ObservationView(
        obs.effective, obs.recorded_by_name or obs.recorded_by, obs.source == "fhir", changes, len(obs.items)
    )


def patient_section(
    conn: psycopg.Connection[Any], user: User, patient_id: str, now: datetime
) -> FindrSection:
    """The newest observations and stays of a patient ``user`` may see (none otherwise), newest first."""
    municipality = findr_inputs.visible_patient_municipality(conn, user, patient_id)
    if municipality is None:
        return FindrSection([], [], False)
    forms = findr_inputs.staff_observations(
        conn, municipality, patient_id, after=now - RECENT_WINDOW, until=now, limit=RECENT_OBSERVATIONS
    )
    stays = findr_inputs.hospital_stays(conn, municipality, patient_id, until=now + MAX_CLOCK_AHEAD)
    shown = [
        StayView(s.period_start, s.period_end, s.source == "fhir") for s in stays if findr_inputs.counts(s)
    ]
    return FindrSection(
        [_observation_view(obs) for obs in reversed(forms)],
        list(reversed(shown))[:RECENT_STAYS],
        user.role == access.NURSE,
    )


# --- the early-detection form ---------------------------------------------------------------------------

# The form's own checks come first, so this is shown only if the FHIR path's rules refuse what it built.
NOT_SAVED = N_("This could not be saved; check the times and try again.")


def _decided(resource: Mapping[str, Any], user: User, target: Target) -> findr_fhir.Record | None:
    """What the FHIR path's rules make of a resource the form built (None: refused)."""
    try:
        return findr_fhir.decide_web_resource(
            resource, username=user.username, municipality_id=target.municipality_id, now=datetime.now(UTC)
        )
    except findr_fhir.Refused:
        return None


def _observation_page(
    request: Request,
    user: User,
    target: Target,
    *,
    chosen: Mapping[str, str],
    effective: str,
    errors: list[FieldError],
) -> HTMLResponse:
    return render_page(
        request,
        user,
        "findr_observation.html",
        400 if errors else 200,
        patient=target.patient,
        synthetic=target.patient.synthetic,
        items=[(key, item_words(key)) for key in CHANGE_OBSERVATIONS],
        choices=[(value, _(label)) for value, label in CHOICES.items()],
        chosen=chosen,
        effective=effective,
        errors=errors,
        error_of={e.field: e.message for e in reversed(errors)},
    )


@router.get("/patients/{patient_id}/early-detection", response_class=HTMLResponse)
def observation_form(
    patient_id: str, request: Request, user: NurseUser, conn: DbDep, client: ClientAddress
) -> HTMLResponse:
    """The early-detection form: ten items, each not checked until chosen, and the time (now)."""
    target = _target(conn, user, patient_id)
    record_audit(conn, user, "view-early-detection-form", [target.patient.id], client=client)
    now = local_input(ui_now(request), current().time_zone)
    return _observation_page(request, user, target, chosen={}, effective=now, errors=[])


@router.post("/patients/{patient_id}/early-detection", response_class=HTMLResponse, response_model=None)
def record_observation(
    patient_id: str,
    request: Request,
    user: NurseUser,
    form: CheckedForm,
    conn: DbDep,
    client: ClientAddress,
) -> HTMLResponse | RedirectResponse:
    """Store the form (source 'web', audited) and return to the patient; show it again with the errors
    when no item is checked or the time is not a time, or in the future."""
    target = _target(conn, user, patient_id)
    chosen = {key: form.get(f"item-{key}", NOT_CHECKED) for key in CHANGE_OBSERVATIONS}
    errors = [
        FieldError(f"item-{key}-{SEEN}", _("Choose one of the three answers."))
        for key, value in chosen.items()
        if value not in CHOICES
    ]
    items = {key: value == SEEN for key, value in chosen.items() if value in (SEEN, NO_CHANGE)}
    if not errors and not items:
        first = next(iter(CHANGE_OBSERVATIONS))
        errors.append(FieldError(f"item-{first}-{SEEN}", _("Check at least one item before saving.")))
    typed = form.get("effective", "")
    effective = parse_moment(typed, current().time_zone, datetime.now(UTC))
    if isinstance(effective, str):
        errors.append(FieldError("effective", effective))
    if errors or isinstance(effective, str):
        record_audit(conn, user, "view-early-detection-form", [target.patient.id], "refused", client=client)
        return _observation_page(request, user, target, chosen=chosen, effective=typed, errors=errors)
    resource = findr_fhir.change_form_resource(target.patient.id, str(uuid.uuid4()), effective, items)
    record = _decided(resource, user, target)
    if not isinstance(record, StaffObservation):
        errors = [FieldError("effective", _(NOT_SAVED))]
        return _observation_page(request, user, target, chosen=chosen, effective=typed, errors=errors)
    with conn.transaction():
        findr_inputs.store_staff_observation(conn, record)
        record_audit(conn, user, AUDIT_OBSERVATION, [target.patient.id], record.identifier, client=client)
    return RedirectResponse(f"{patient_url(target.patient.id)}#staff-hospital", status_code=303)


# --- the hospital stays form ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenStay:
    """A stay still open, with the field its discharge is typed in."""

    identifier: str
    start: datetime
    field: str
    typed: str


def _open_stays(
    conn: psycopg.Connection[Any], target: Target, now: datetime
) -> tuple[list[HospitalStay], list[HospitalStay]]:
    """Every counted stay of the patient and those still open, oldest first."""
    stays = findr_inputs.hospital_stays(
        conn, target.municipality_id, target.patient.id, until=now + MAX_CLOCK_AHEAD
    )
    counted = [s for s in stays if findr_inputs.counts(s)]
    return counted, [s for s in counted if s.period_end is None]


def _stays_page(
    request: Request,
    user: User,
    conn: psycopg.Connection[Any],
    target: Target,
    *,
    typed: Mapping[str, str],
    errors: list[FieldError],
) -> HTMLResponse:
    counted, still_open = _open_stays(conn, target, datetime.now(UTC))
    now_text = local_input(ui_now(request), current().time_zone)
    open_stays = [
        OpenStay(s.identifier, s.period_start, f"discharged-{i}", typed.get(f"discharged-{i}", now_text))
        for i, s in enumerate(still_open)
    ]
    return render_page(
        request,
        user,
        "findr_stays.html",
        400 if errors else 200,
        patient=target.patient,
        synthetic=target.patient.synthetic,
        open_stays=open_stays,
        stays=[StayView(s.period_start, s.period_end, s.source == "fhir") for s in reversed(counted)],
        admitted=typed.get("admitted", now_text),
        discharged=typed.get("discharged", ""),
        errors=errors,
        error_of={e.field: e.message for e in reversed(errors)},
    )


@router.get("/patients/{patient_id}/hospital-stays", response_class=HTMLResponse)
def stays_form(
    patient_id: str, request: Request, user: NurseUser, conn: DbDep, client: ClientAddress
) -> HTMLResponse:
    """The patient's hospital stays, a discharge form for each open one, and a new admission's form."""
    target = _target(conn, user, patient_id)
    record_audit(conn, user, "view-hospital-stays", [target.patient.id], client=client)
    return _stays_page(request, user, conn, target, typed={}, errors=[])


def _discharge(
    form: Mapping[str, str], target: Target, still_open: list[HospitalStay], now: datetime
) -> tuple[dict[str, Any] | None, dict[str, str], list[FieldError]]:
    """The Encounter of an open stay with its discharge, or the errors (by the stay's field)."""
    wanted = form.get("stay", "")[:_IDENTIFIER_FIELD_CHARS]
    index = next((i for i, s in enumerate(still_open) if s.identifier == wanted), None)
    if index is None:
        return None, {}, [FieldError("admitted", _("That stay is no longer open; see the list of stays."))]
    stay, field = still_open[index], f"discharged-{index}"
    typed = form.get(field, form.get("discharged", ""))
    end = parse_moment(typed, current().time_zone, now)
    if isinstance(end, str):
        return None, {field: typed}, [FieldError(field, end)]
    if end < stay.period_start:
        return None, {field: typed}, [FieldError(field, _("The discharge cannot be before the admission."))]
    base = stay.resource if stay.resource.get("resourceType") == "Encounter" else None
    if base is None:
        system, _bar, value = stay.identifier.partition("|")
        base = findr_fhir.encounter_resource(target.patient.id, value, stay.period_start, None, system=system)
    return findr_fhir.discharged_resource(base, end), {}, []


def _admission(
    form: Mapping[str, str], target: Target, now: datetime
) -> tuple[dict[str, Any] | None, dict[str, str], list[FieldError]]:
    """The Encounter of a new stay, or the errors by field."""
    typed = {"admitted": form.get("admitted", ""), "discharged": form.get("discharged", "")}
    errors = []
    start = parse_moment(typed["admitted"], current().time_zone, now)
    if isinstance(start, str):
        errors.append(FieldError("admitted", start))
    end: datetime | str | None = None
    if typed["discharged"].strip():
        end = parse_moment(typed["discharged"], current().time_zone, now)
        if isinstance(end, str):
            errors.append(FieldError("discharged", end))
        elif not isinstance(start, str) and end < start:
            errors.append(FieldError("discharged", _("The discharge cannot be before the admission.")))
    if errors or isinstance(start, str) or isinstance(end, str):
        return None, typed, errors
    return findr_fhir.encounter_resource(target.patient.id, str(uuid.uuid4()), start, end), typed, []


@router.post("/patients/{patient_id}/hospital-stays", response_class=HTMLResponse, response_model=None)
def record_stay(
    patient_id: str,
    request: Request,
    user: NurseUser,
    form: CheckedForm,
    conn: DbDep,
    client: ClientAddress,
) -> HTMLResponse | RedirectResponse:
    """Store a new stay, or an open stay's discharge (source 'web', audited), and return to the
    patient; show the form again with the errors beside their fields."""
    target = _target(conn, user, patient_id)
    now = datetime.now(UTC)
    if "stay" in form:
        _counted, still_open = _open_stays(conn, target, now)
        resource, typed, errors = _discharge(form, target, still_open, now)
    else:
        resource, typed, errors = _admission(form, target, now)
    record = None if resource is None else _decided(resource, user, target)
    if not isinstance(record, HospitalStay):
        errors = errors or [FieldError("admitted", _(NOT_SAVED))]
        record_audit(conn, user, "view-hospital-stays", [target.patient.id], "refused", client=client)
        return _stays_page(request, user, conn, target, typed=typed, errors=errors)
    with conn.transaction():
        outcome = findr_inputs.store_encounter(conn, record)
        record_audit(
            conn, user, AUDIT_STAY, [target.patient.id], f"{outcome} {record.identifier}", client=client
        )
    return RedirectResponse(f"{patient_url(target.patient.id)}#staff-hospital", status_code=303)
