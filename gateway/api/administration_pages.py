"""The administrator's homes: a municipality's patients with their hubs and devices, and the forms that
enrol and run them, on the one service layer the ``homewatch admin`` commands use
(``gateway.administration.homes`` and ``.users``, which check the input, change, audit and tell the
broker).

- ``GET /admin/homes``: the municipality's patients by id (no name: the administrator sees no record),
  each with her hub in service and its devices, revoked hubs marked; a search by patient, hub or device;
  and the forms: add a patient, enrol a hub, assign a device, invite a user (and, for a system
  administrator, add a municipality).
- ``POST /admin/homes/patients``, ``/devices``, ``/devices/remove``, ``/municipalities``: the change,
  then back to the page (303) saying what was done.
- ``POST /admin/homes/hubs``: enrols the hub (or issues it new credentials) and shows its broker
  password once, with the kit (``hub.toml``, ``mqtt-password`` mode 0600, ``ca.crt``) as a ``.zip`` to
  download at once: the zip is built in memory and travels in the page itself (a ``data:`` link with a
  ``download`` name), so neither the password nor the kit is kept anywhere; leaving the page loses them,
  and enrolling again issues a new password.
- ``GET /admin/homes/revoke?hub=H`` asks to confirm; ``POST /admin/homes/hubs/revoke`` revokes (the
  gateway first, then the broker).
- ``POST /admin/homes/users``: invites a user and shows her link once (``gateway.administration.users``).

Scope: a municipality administrator acts within her municipality only (``within=``: another
municipality's hub, device or patient looks unknown, and the remove and revoke buttons' ids are 404); a
system administrator picks a municipality (``admin_macros.municipality_picker``), may act on any, and may
add one. Every POST takes the session's anti-forgery token (``deps.CheckedForm``) and is audited by the
service layer with the client's address; an ``AdministrationError`` is shown above its form (400) with
what was typed kept. Nurses and GPs get 403 (``deps.AdminUser``).

The broker: the hub accounts and the retained-config publisher are the app's
(``gateway.api.fleet_broker``); a broker that is away costs the page one failed connection: a config not
published now is published by the gateway's config job.
"""

from __future__ import annotations

import base64
import io
import time
import zipfile
from collections.abc import Mapping
from datetime import date, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fhir_contract.limits import is_fhir_id
from gateway.administration import homes
from gateway.administration.errors import AdministrationError
from gateway.administration.users import ROLE_WORDS, invite_user
from gateway.api.auth import User
from gateway.api.deps import (
    AdminUser,
    CheckedForm,
    ClientAddress,
    DbDep,
    SettingsDep,
    administered_municipality,
)
from gateway.api.fleet_broker import fleet_broker
from gateway.api.i18n import N_
from gateway.api.i18n import gettext as _
from gateway.api.patient_pages import device_kind
from gateway.api.web import render_page
from gateway.store import access
from gateway.store import administration as records
from gateway.store.admin_homes import hubs_in_service, municipality_homes, patient_ids
from gateway.store.alert_admin import municipalities
from gateway.store.invitations import care_teams_in

router = APIRouter(prefix="/admin/homes", tags=["admin"])

PAGE = "/admin/homes"
# Patients listed at once; a search finds the others (500 hubs is a municipality's whole fleet).
LIST_LIMIT = 200
# A search longer than this is no id or Bluetooth address.
_MAX_SEARCH_CHARS = 64
# What was done, for the notice above the page (``done=``): the codes a redirect carries.
DONE: Mapping[str, str] = {
    "municipality": N_("Municipality %(subject)s is saved."),
    "patient": N_("Patient %(subject)s is saved."),
    "device": N_("Device %(subject)s is assigned; the hub gets its new configuration."),
    "device-unpublished": N_(
        "Device %(subject)s is assigned. The broker could not be reached now: the gateway sends the hub its"
        " new configuration when it can."
    ),
    "removed": N_("Device %(subject)s is removed; the hub gets its new configuration."),
    "configured": N_("Hub %(subject)s has new settings; it gets them in its configuration."),
    "unchanged": N_("Hub %(subject)s already has these settings: nothing changed."),
    "revoked": N_("Hub %(subject)s is revoked: the gateway refuses it and its broker account is deleted."),
}
ROLE_NAMES: Mapping[str, str] = {
    "nurse": N_("Nurse"),
    "gp": N_("General practitioner"),
    "admin": N_("Administrator"),
}


# --- scope and words --------------------------------------------------------------------------------


def within(user: User) -> str | None:
    """The one municipality the user may change (None: a system administrator, any)."""
    return None if user.role == access.SYSTEM_ADMIN else user.municipality_id


def page_url(municipality_id: str, **extra: str) -> str:
    return PAGE + "?" + urlencode({"municipality": municipality_id, **extra})


def done_url(municipality_id: str, done: str, subject: str) -> str:
    """Where a change returns to: the page, at its notice (a form's action names its own section, which
    the browser would otherwise keep across the redirect)."""
    return page_url(municipality_id, done=done, subject=subject) + "#done"


def _done_text(done: str, subject: str) -> str | None:
    if done not in DONE or not is_fhir_id(subject):
        return None
    return _(DONE[done], subject=subject)


def _kinds() -> list[tuple[str, str]]:
    return [(kind, f"{device_kind(kind)} ({kind})") for kind in homes.DEVICE_KINDS]


def _roles() -> list[tuple[str, str]]:
    return [(word, _(ROLE_NAMES[word])) for word in ("nurse", "gp", "admin") if word in ROLE_WORDS]


def _homes_page(
    request: Request,
    user: User,
    conn: DbDep,
    chosen: str,
    names: Mapping[str, str],
    *,
    status: int = 200,
    error: str | None = None,
    error_form: str = "",
    values: Mapping[str, str] | None = None,
    done: str | None = None,
    search: str = "",
) -> HTMLResponse:
    found = municipality_homes(conn, chosen, search=search, limit=LIST_LIMIT)
    return render_page(
        request,
        user,
        "admin_homes.html",
        status,
        homes=found.homes,
        more=found.more,
        limit=LIST_LIMIT,
        search=search,
        chosen=chosen,
        municipality_names=names,
        pick_municipality=user.role == access.SYSTEM_ADMIN,
        teams=care_teams_in(conn, chosen),
        hubs=hubs_in_service(conn, chosen),
        patients=patient_ids(conn, chosen),
        kinds=_kinds(),
        kind_text=device_kind,
        conditions=homes.CONDITIONS,
        roles=_roles(),
        error=error,
        error_form=error_form,
        values=values or {},
        done=done,
        page_url=page_url,
    )


def _refused(
    request: Request,
    user: User,
    conn: DbDep,
    chosen: str,
    names: Mapping[str, str],
    form: Mapping[str, str],
    which: str,
    refused: AdministrationError,
) -> HTMLResponse:
    """The page again (400) with the service's one line above the form ``which``, its values kept."""
    kept = {name: value for name, value in form.items() if name != "csrf"}
    return _homes_page(
        request, user, conn, chosen, names, status=400, error=str(refused), error_form=which, values=kept
    )


def _chosen(user: User, conn: DbDep, requested: str) -> tuple[str, dict[str, str]]:
    names = dict(municipalities(conn))
    return administered_municipality(user, names, requested), names


# --- pages ------------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def homes_page(
    request: Request,
    user: AdminUser,
    conn: DbDep,
    municipality: str = "",
    q: str = "",
    done: str = "",
    subject: str = "",
) -> HTMLResponse:
    """The municipality's patients, hubs and devices, and the forms that change them."""
    chosen, names = _chosen(user, conn, municipality)
    search = q.strip()
    if len(search) > _MAX_SEARCH_CHARS or "\x00" in search:
        raise HTTPException(400, _("Search for a patient, hub or device id, or a Bluetooth address."))
    return _homes_page(request, user, conn, chosen, names, done=_done_text(done, subject), search=search)


@router.post("/municipalities", response_class=HTMLResponse, response_model=None)
def add_municipality(
    request: Request, user: AdminUser, form: CheckedForm, conn: DbDep, client: ClientAddress
) -> Response:
    """Add a municipality or rename one: a system administrator's (a municipality's administrator 403)."""
    if user.role != access.SYSTEM_ADMIN:
        raise HTTPException(403, _("Only a system administrator adds municipalities."))
    chosen, names = _chosen(user, conn, form.get("municipality", ""))
    code = form.get("code", "").strip()
    try:
        homes.add_municipality(conn, code, form.get("name", ""), by=user.username, within=None, client=client)
    except AdministrationError as refused:
        return _refused(request, user, conn, chosen, names, form, "municipality", refused)
    return RedirectResponse(done_url(code, "municipality", code), status_code=303)


def _birth_date(text: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise AdministrationError(_("Write the birth date as YYYY-MM-DD.")) from None


@router.post("/patients", response_class=HTMLResponse, response_model=None)
def add_patient(
    request: Request, user: AdminUser, form: CheckedForm, conn: DbDep, client: ClientAddress
) -> Response:
    """Enrol a patient of the municipality (or update what was enrolled)."""
    chosen, names = _chosen(user, conn, form.get("municipality", ""))
    patient = form.get("patient", "").strip()
    conditions = [c for c in homes.CONDITIONS if form.get(f"condition-{c}")]
    try:
        homes.add_patient(
            conn,
            chosen,
            patient,
            name=form.get("name", ""),
            care_team=form.get("care_team") or None,
            phone=form.get("phone") or None,
            conditions=conditions,
            birth_date=_birth_date(form.get("birth_date", "")),
            by=user.username,
            within=within(user),
            client=client,
        )
    except AdministrationError as refused:
        return _refused(request, user, conn, chosen, names, form, "patient", refused)
    return RedirectResponse(done_url(chosen, "patient", patient), status_code=303)


def kit_zip(kit: homes.HubKit) -> bytes:
    """The kit as a zip of one folder named after the hub: ``hub.toml``, ``mqtt-password`` and
    ``patient-view-pin`` (mode 0600 when unpacked) and ``ca.crt``, as ``homes.write_kit`` writes them
    (``homes.kit_files``); built in memory, never stored."""
    buffer = io.BytesIO()
    stamp = time.localtime()[:6]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data, mode in homes.kit_files(kit):
            entry = zipfile.ZipInfo(f"{kit.hub_id}/{name}", stamp)
            entry.external_attr = (0o100000 | mode) << 16  # a regular file with this mode (unzip sets it)
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return buffer.getvalue()


@router.post("/hubs", response_class=HTMLResponse, response_model=None)
def enroll_hub(
    request: Request,
    user: AdminUser,
    form: CheckedForm,
    conn: DbDep,
    settings: SettingsDep,
    client: ClientAddress,
) -> Response:
    """Enrol the patient's hub (or issue it new credentials): its password once, and the kit to download."""
    chosen, names = _chosen(user, conn, form.get("municipality", ""))
    broker = fleet_broker(request)
    try:
        kit = homes.enroll_hub(
            conn,
            settings,
            chosen,
            form.get("hub", "").strip(),
            form.get("patient", "").strip(),
            by=user.username,
            accounts=broker.accounts,
            within=within(user),
            client=client,
        )
    except AdministrationError as refused:
        return _refused(request, user, conn, chosen, names, form, "hub", refused)
    archive = base64.b64encode(kit_zip(kit)).decode("ascii")
    return render_page(
        request,
        user,
        "admin_homes_kit.html",
        kit=kit,
        zip_href=f"data:application/zip;base64,{archive}",
        zip_name=f"homewatch-kit-{kit.hub_id}.zip",
        back=page_url(chosen),
        chosen=chosen,
        municipality_name=names.get(chosen, chosen),
    )


def _interval(text: str) -> timedelta | None:
    if not text.strip():
        return None
    try:
        hours = float(text.strip().replace(",", "."))
    except ValueError:
        raise AdministrationError(_("Write the expected interval in hours, e.g. 24.")) from None
    if not 0 < hours < 10_000:
        raise AdministrationError(_("Write the expected interval in hours, e.g. 24."))
    return timedelta(hours=hours)


@router.post("/devices", response_class=HTMLResponse, response_model=None)
def assign_device(
    request: Request,
    user: AdminUser,
    form: CheckedForm,
    conn: DbDep,
    settings: SettingsDep,
    client: ClientAddress,
) -> Response:
    """Assign a device to a hub (its patient's); the hub's config is published."""
    chosen, names = _chosen(user, conn, form.get("municipality", ""))
    hub_id = form.get("hub", "").strip()
    try:
        hub = records.hub_record(conn, hub_id) if is_fhir_id(hub_id) else None
        scope = within(user)
        if hub is None or (scope is not None and hub.municipality_id != scope):
            raise AdministrationError(_("There is no hub %(hub)s.", hub=hub_id))
        assigned = homes.assign_device_outcome(
            conn,
            settings,
            hub_id,
            hub.patient_id,
            form.get("kind", ""),
            form.get("address", ""),
            by=user.username,
            device_id=form.get("device", "").strip() or None,
            expected_interval=_interval(form.get("interval", "")),
            publisher=fleet_broker(request).publisher,
            within=scope,
            client=client,
        )
    except AdministrationError as refused:
        return _refused(request, user, conn, chosen, names, form, "device", refused)
    done = "device" if assigned.published or assigned.outcome == "unchanged" else "device-unpublished"
    return RedirectResponse(done_url(chosen, done, assigned.device_id), status_code=303)


def _number(text: str, kind: type[int] | type[float], message: str) -> int | float | None:
    """A form's optional number (empty: None); ``message`` when it is not one."""
    if not text.strip():
        return None
    try:
        return kind(text.strip().replace(",", "."))
    except ValueError:
        raise AdministrationError(message) from None


def _hub_settings(form: Mapping[str, str]) -> homes.HubSettings:
    interval = _number(
        form.get("status_interval", ""), float, _("Write the status interval in seconds, e.g. 300.")
    )
    bundle = _number(form.get("bundle_size", ""), int, _("Write the bundle size as a whole number, e.g. 50."))
    connections = _number(
        form.get("max_connections", ""), int, _("Write the connections as a whole number, e.g. 7.")
    )
    return homes.HubSettings(
        status_interval_s=interval,
        timezone=form.get("timezone", "").strip() or None,
        bundle_size=None if bundle is None else int(bundle),
        max_connections=None if connections is None else int(connections),
    )


@router.post("/hubs/settings", response_class=HTMLResponse, response_model=None)
def configure_hub(
    request: Request,
    user: AdminUser,
    form: CheckedForm,
    conn: DbDep,
    settings: SettingsDep,
    client: ClientAddress,
) -> Response:
    """Set a hub's settings (status interval, time zone, bundle size, connections); its config is
    published and the hub applies them without a restart. Empty fields leave a setting as it is."""
    chosen, names = _chosen(user, conn, form.get("municipality", ""))
    hub_id = form.get("hub", "").strip()
    try:
        _now, changed = homes.configure_hub(
            conn,
            settings,
            hub_id,
            _hub_settings(form),
            by=user.username,
            publisher=fleet_broker(request).publisher,
            within=within(user),
            client=client,
        )
    except AdministrationError as refused:
        return _refused(request, user, conn, chosen, names, form, "settings", refused)
    return RedirectResponse(
        done_url(chosen, "configured" if changed else "unchanged", hub_id), status_code=303
    )


def _unknown(message: str) -> HTTPException:
    return HTTPException(404, message)


@router.post("/devices/remove", response_class=HTMLResponse, response_model=None)
def remove_device(
    request: Request,
    user: AdminUser,
    form: CheckedForm,
    conn: DbDep,
    settings: SettingsDep,
    client: ClientAddress,
) -> Response:
    """Take a device off its hub (ingest refuses its readings from now on); the hub's config is published."""
    device_id = form.get("device", "")
    device = records.device_record(conn, device_id) if is_fhir_id(device_id) else None
    scope = within(user)
    if device is None or (scope is not None and device.municipality_id != scope):
        raise _unknown(_("There is no such device in your municipality."))
    chosen, names = _chosen(user, conn, device.municipality_id if scope is None else "")
    try:
        homes.remove_device(
            conn,
            settings,
            device_id,
            by=user.username,
            publisher=fleet_broker(request).publisher,
            within=scope,
            client=client,
        )
    except AdministrationError as refused:
        return _refused(request, user, conn, chosen, names, form, "remove", refused)
    return RedirectResponse(done_url(chosen, "removed", device_id), status_code=303)


def _scoped_hub(conn: DbDep, user: User, hub_id: str) -> records.HubRecord:
    hub = records.hub_record(conn, hub_id) if is_fhir_id(hub_id) else None
    scope = within(user)
    if hub is None or (scope is not None and hub.municipality_id != scope):
        raise _unknown(_("There is no such hub in your municipality."))
    return hub


def _revoke_page(
    request: Request,
    user: User,
    conn: DbDep,
    hub: records.HubRecord,
    *,
    status: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    return render_page(
        request,
        user,
        "admin_homes_revoke.html",
        status,
        hub=hub,
        devices=records.hub_devices(conn, hub.id),
        kind_text=device_kind,
        back=page_url(hub.municipality_id),
        error=error,
    )


@router.get("/revoke", response_class=HTMLResponse)
def confirm_revoke(request: Request, user: AdminUser, conn: DbDep, hub: str = "") -> HTMLResponse:
    """What revoking the hub does, and the button that does it."""
    return _revoke_page(request, user, conn, _scoped_hub(conn, user, hub))


@router.post("/hubs/revoke", response_class=HTMLResponse, response_model=None)
def revoke_hub(
    request: Request,
    user: AdminUser,
    form: CheckedForm,
    conn: DbDep,
    settings: SettingsDep,
    client: ClientAddress,
) -> Response:
    """Revoke the hub: the gateway refuses it at once, then its broker account is deleted."""
    hub = _scoped_hub(conn, user, form.get("hub", ""))
    broker = fleet_broker(request)
    try:
        homes.revoke_hub(
            conn,
            settings,
            hub.id,
            by=user.username,
            accounts=broker.accounts,
            publisher=broker.publisher,
            within=within(user),
            client=client,
        )
    except AdministrationError as refused:
        found = records.hub_record(conn, hub.id) or hub
        return _revoke_page(request, user, conn, found, status=502, error=str(refused))
    return RedirectResponse(done_url(hub.municipality_id, "revoked", hub.id), status_code=303)


@router.post("/users", response_class=HTMLResponse, response_model=None)
def invite(
    request: Request,
    user: AdminUser,
    form: CheckedForm,
    conn: DbDep,
    settings: SettingsDep,
    client: ClientAddress,
) -> Response:
    """Invite a user of the municipality; her link is shown once."""
    chosen, names = _chosen(user, conn, form.get("municipality", ""))
    team = form.get("team", "").strip()  # one team here (the CLI names more)
    try:
        invitation = invite_user(
            conn,
            settings,
            chosen,
            form.get("role", ""),
            form.get("email", ""),
            username=form.get("username", "").strip() or None,
            teams=[team] if team else [],
            by=user.username,
            client=client,
        )
    except AdministrationError as refused:
        return _refused(request, user, conn, chosen, names, form, "user", refused)
    return render_page(
        request,
        user,
        "admin_homes_invited.html",
        invitation=invitation,
        back=page_url(chosen),
        municipality_name=names.get(chosen, chosen),
    )
