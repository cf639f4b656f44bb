"""The administrator's fleet pages: which hubs are offline, which devices silent, which batteries low.

- ``GET /admin/fleet?municipality=&flag=``: every hub of the municipality (``gateway.store.fleet``,
  judged by ``gateway.fleet``'s rules), most urgent first: offline hubs and silent devices, then low
  batteries, then the other flags; online or offline, last contact, agent version, outbox depth,
  readings awaiting the gateway's receipt, evictions, the config applied against the current one, and
  the flags. ``flag`` narrows the table to the hubs with that flag (an unknown one is 400).
- ``GET /admin/fleet/{hub_id}?municipality=``: one hub: its figures, each device (last reading, expected
  interval and silence, battery, clock, errors, the last error) and the status history (the changes
  that matter, newest first: ``gateway.store.hub_status``).

Nothing here changes anything, so nothing is audited and there is no form but the GET filters. A
municipality administrator sees her own municipality; another's is 403 and another's hub 404 (it does
not exist for her). A system administrator picks a municipality (hers by default). Nurses and GPs get
403 (``deps.AdminUser``). The pages show the patient's id (what the hub is enrolled for), never a name.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote, urlencode

from babel.dates import format_timedelta
from babel.numbers import format_decimal
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from gateway import fleet
from gateway.api.clock import ui_now
from gateway.api.deps import AdminUser, DbDep, administered_municipality
from gateway.api.fhir_search import ID_PATTERN
from gateway.api.i18n import N_, current
from gateway.api.i18n import gettext as _
from gateway.api.patient_pages import device_kind
from gateway.api.web import render_page
from gateway.store import access
from gateway.store.alert_admin import municipalities
from gateway.store.fleet import fleet_hub, fleet_report
from gateway.store.hub_status import hub_history

router = APIRouter(prefix="/admin/fleet", tags=["admin"])

# The history rows a hub's page shows: some weeks of an ordinary home.
HISTORY_ROWS = 200

FLAG_NAMES: Mapping[str, str] = {
    fleet.OFFLINE: N_("Offline"),
    fleet.SILENT_DEVICE: N_("Silent device"),
    fleet.LOW_BATTERY: N_("Low battery"),
    fleet.CLOCK: N_("Clock not in sync"),
    fleet.DEVICE_ERRORS: N_("Device errors"),
    fleet.OUTBOX_FULL: N_("Outbox full"),
    fleet.EVICTIONS: N_("Readings evicted"),
    fleet.CONFIG_ERROR: N_("Config refused"),
    fleet.CONFIG_PENDING: N_("Config not applied"),
    fleet.REVOKED: N_("Revoked"),
}
assert tuple(FLAG_NAMES) == fleet.FLAGS
CHANGE_NAMES: Mapping[str, str] = {
    "first": N_("First status"),
    "online": N_("Online"),
    "offline": N_("Offline"),
    "agent-version": N_("Agent version"),
    "config": N_("Config applied"),
    "evictions": N_("Evictions"),
    "outbox-full": N_("Outbox full"),
    "device-added": N_("Device added"),
    "device-gone": N_("Device gone"),
    "connected": N_("Device connection"),
    "battery": N_("Battery"),
    "clock": N_("Clock"),
    "error": N_("Device error"),
}
CLOCK_NAMES: Mapping[str, str] = {
    "in-sync": N_("In sync"),
    "wrong": N_("Wrong"),
    "unset": N_("Not set"),
    "unknown": N_("Unknown"),
}


# --- words -------------------------------------------------------------------------------------------


def flag_name(flag: str) -> str:
    return _(FLAG_NAMES[flag]) if flag in FLAG_NAMES else flag


def change_name(change: str) -> str:
    return _(CHANGE_NAMES[change]) if change in CHANGE_NAMES else change


def state_text(hub: fleet.FleetHub) -> str:
    """The hub's state in a word: revoked, online, or offline (and whether by silence)."""
    if hub.revoked:
        return _("Revoked")
    if hub.online:
        return _("Online")
    if hub.last_contact is None:
        return _("Never connected")
    return _("Offline (no status)") if hub.silent else _("Offline")


def span(value: timedelta) -> str:
    """A duration in minutes below two hours, hours below two days, else days ("5 minutes", "36 hours",
    "7 days"), as the ages are rounded (``presenters.age``)."""
    unit: Literal["minute", "hour", "day"] = "day"
    if value < timedelta(hours=2):
        unit = "minute"
    elif value < timedelta(hours=48):
        unit = "hour"
    return format_timedelta(value, granularity=unit, threshold=float("inf"), locale=current().locale)


def clock_text(device: fleet.FleetDevice) -> str:
    """The device clock: its state and, when known, its offset ("Wrong, 1.5 h behind")."""
    if device.clock is None:
        return "—"
    state = _(CLOCK_NAMES[device.clock]) if device.clock in CLOCK_NAMES else device.clock
    offset = device.clock_offset_s
    if offset is None or device.clock == "in-sync":
        return state
    hours = format_decimal(abs(offset) / 3600, "0.#", locale=current().locale)
    if offset > 0:  # hub local time minus device time: the device is behind
        return _("%(state)s, %(hours)s h behind", state=state, hours=hours)
    return _("%(state)s, %(hours)s h ahead", state=state, hours=hours)


def battery_text(level: float | None) -> str:
    return "—" if level is None else f"{format_decimal(level, '0', locale=current().locale)} %"


def config_text(hub: fleet.FleetHub) -> str:
    """The config the hub runs against the gateway's ("3 of 4"; "none of 4"; "—" when none exists)."""
    if hub.config_version == 0:
        return "—" if hub.config_applied is None else hub.config_applied
    applied = hub.config_applied if hub.config_applied is not None else _("none")
    return _("%(applied)s of %(current)s", applied=applied, current=hub.config_version)


def count_text(value: int | None) -> str:
    return "—" if value is None else format_decimal(value, locale=current().locale)


def list_url(municipality_id: str, **extra: str) -> str:
    return "/admin/fleet?" + urlencode({"municipality": municipality_id, **extra})


def hub_url(hub_id: str, municipality_id: str) -> str:
    return f"/admin/fleet/{quote(hub_id, safe='')}?" + urlencode({"municipality": municipality_id})


_HELPERS: dict[str, Any] = {
    "flag_name": flag_name,
    "change_name": change_name,
    "state_text": state_text,
    "span": span,
    "clock_text": clock_text,
    "battery_text": battery_text,
    "config_text": config_text,
    "count_text": count_text,
    "device_kind": device_kind,
    "hub_url": hub_url,
}


# --- pages -------------------------------------------------------------------------------------------


def _flag_counts(hubs: list[fleet.FleetHub]) -> list[tuple[str, int]]:
    return [(flag, sum(1 for h in hubs if flag in h.flags)) for flag in fleet.FLAGS]


@router.get("", response_class=HTMLResponse)
def fleet_page(
    request: Request, user: AdminUser, conn: DbDep, municipality: str = "", flag: str = ""
) -> HTMLResponse:
    """Every hub of the municipality, most urgent first; ``flag`` narrows to the hubs with that flag."""
    names = dict(municipalities(conn))
    chosen = administered_municipality(user, names, municipality)
    if flag and flag not in fleet.FLAGS:
        raise HTTPException(400, _("There is no such flag."))
    now: datetime = ui_now(request)
    hubs = fleet_report(conn, chosen, now)
    shown = [h for h in hubs if flag in h.flags] if flag else hubs
    return render_page(
        request,
        user,
        "admin_fleet.html",
        hubs=shown,
        total=len(hubs),
        counts=_flag_counts(hubs),
        flag=flag,
        chosen=chosen,
        municipality_names=names,
        pick_municipality=user.role == access.SYSTEM_ADMIN,
        list_url=list_url(chosen),
        low_battery=fleet.LOW_BATTERY_PERCENT,
        **_HELPERS,
    )


@router.get("/{hub_id}", response_class=HTMLResponse)
def fleet_hub_page(
    request: Request, user: AdminUser, conn: DbDep, hub_id: str, municipality: str = ""
) -> HTMLResponse:
    """One hub: its figures, its devices, and its status history."""
    names = dict(municipalities(conn))
    chosen = administered_municipality(user, names, municipality)
    # A hub id is a FHIR id (its MQTT topic names it); anything else names no hub and is not looked up.
    found = fleet_hub(conn, chosen, hub_id, ui_now(request)) if ID_PATTERN.fullmatch(hub_id) else None
    if found is None:
        raise HTTPException(404, _("There is no such hub in this municipality."))
    return render_page(
        request,
        user,
        "admin_fleet_hub.html",
        hub=found,
        history=hub_history(conn, chosen, found.hub_id, limit=HISTORY_ROWS),
        history_rows=HISTORY_ROWS,
        chosen=chosen,
        municipality_name=names.get(chosen, chosen),
        list_url=list_url(chosen),
        low_battery=fleet.LOW_BATTERY_PERCENT,
        **_HELPERS,
    )
