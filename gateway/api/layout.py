"""What the page header shows: the main navigation of a role, the role in words, the language buttons.

``templates/base.html`` calls these (template globals). Which links a role gets follows
``gateway.store.access``: nurses and GPs work with patients (the worklist, the weekly review and the
alerts, whose link shows how many of their patients' alerts are not yet acknowledged), administrators see
no patient and get the audit log, the alert deliveries, the alert settings, the risk models, the homes
(hubs and devices), the quarantine and the fleet. Whether a route lets a user in is decided by the route,
not by the menu.

The alert count is one query on the request's own connection: the clinical pages' routers lend it to the
templates (``lend_connection``, a router dependency), so a page counts without taking a second pooled
connection while its route holds one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from jinja2 import pass_context
from jinja2.runtime import Context

from gateway.api.deps import DbDep
from gateway.api.i18n import LANGUAGES, N_, current_language, gettext
from gateway.store.access import CLINICAL_ROLES, GP, MUNICIPALITY_ADMIN, NURSE, SYSTEM_ADMIN
from gateway.store.alert_inbox import open_count

WORKLIST = ("/", N_("Worklist"))
REVIEW = ("/review", N_("Weekly review"))
ALERTS = ("/alerts", N_("Alerts"))
AUDIT = ("/admin/audit", N_("Audit log"))
DELIVERIES = ("/admin/deliveries", N_("Alert deliveries"))
ALERT_SETTINGS = ("/admin/alert-settings", N_("Alert settings"))
MODELS = ("/admin/models", N_("Risk models"))
HOMES = ("/admin/homes", N_("Homes"))
QUARANTINE = ("/admin/quarantine", N_("Quarantine"))
FLEET = ("/admin/fleet", N_("Fleet"))
NAVIGATION: Mapping[str, tuple[tuple[str, str], ...]] = {
    NURSE: (WORKLIST, REVIEW, ALERTS),
    GP: (WORKLIST, REVIEW, ALERTS),
    MUNICIPALITY_ADMIN: (AUDIT, DELIVERIES, ALERT_SETTINGS, MODELS, HOMES, QUARANTINE, FLEET),
    SYSTEM_ADMIN: (AUDIT, DELIVERIES, ALERT_SETTINGS, MODELS, HOMES, QUARANTINE, FLEET),
}
ROLE_NAMES: Mapping[str, str] = {
    NURSE: N_("Nurse"),
    GP: N_("General practitioner"),
    MUNICIPALITY_ADMIN: N_("Municipality administrator"),
    SYSTEM_ADMIN: N_("System administrator"),
    # System accounts (no pages; named in the audit log): gateway.api.scopes.
    "homecare_system": N_("Home-care record system"),
    "hospital_system": N_("Hospital system"),
}
# Each language named in itself, as a language switch must (a reader of only that language finds it).
AUTONYMS: Mapping[str, str] = {"da": "Dansk", "en": "English"}


@dataclass(frozen=True, slots=True)
class NavLink:
    href: str
    label: str
    current: bool  # the page shown is this link's (aria-current="page")
    count: int | None = None  # the alerts link: how many are not yet acknowledged (None: not counted)


def _is_current(href: str, path: str) -> bool:
    return path == href if href == "/" else path == href or path.startswith(href + "/")


def navigation(role: str, path: str, open_alerts: int | None = None) -> list[NavLink]:
    """The main navigation of ``role``, the link of ``path`` marked current, the alerts link with the
    count ``open_alerts``."""
    return [
        NavLink(href, gettext(label), _is_current(href, path), open_alerts if href == ALERTS[0] else None)
        for href, label in NAVIGATION.get(role, ())
    ]


def lend_connection(request: Request, conn: DbDep) -> None:
    """A dependency of the clinical pages' routers: the request's connection (the route's own: FastAPI
    lends one per request), for ``open_alerts`` in the header."""
    request.state.connection = conn


# Include a clinical pages' router with these, so its pages' headers count the open alerts.
HEADER_DEPENDENCIES = [Depends(lend_connection)]


@pass_context
def open_alerts(context: Context) -> int | None:
    """How many alerts of the viewer's patients are not yet acknowledged, for the header; None on a page
    without a clinical user, or whose router did not lend its connection."""
    user, request = context.get("user"), context.get("request")
    connection = getattr(request.state, "connection", None) if request is not None else None
    if connection is None or user is None or user.role not in CLINICAL_ROLES:
        return None
    return open_count(connection, user)


def role_name(role: str) -> str:
    """A role in words ("Sygeplejerske"); an unknown role as it is."""
    return gettext(ROLE_NAMES[role]) if role in ROLE_NAMES else role


def other_languages() -> list[tuple[str, str]]:
    """(code, autonym) of each language but the current one: the header's language buttons."""
    return [(code, AUTONYMS[code]) for code in LANGUAGES if code != current_language()]


LAYOUT_GLOBALS: Mapping[str, Any] = {
    "language": current_language,
    "navigation": navigation,
    "open_alerts": open_alerts,
    "role_name": role_name,
    "other_languages": other_languages,
}
