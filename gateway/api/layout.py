"""What the page header shows: the main navigation of a role, the role in words, the language buttons.

``templates/base.html`` calls these (template globals). Which links a role gets follows
``gateway.store.access``: nurses and GPs work with patients (the worklist and the weekly review),
administrators see no patient and get the audit log. Whether a route lets a user in is decided by the
route, not by the menu.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.api.i18n import LANGUAGES, N_, current_language, gettext
from gateway.store.access import GP, MUNICIPALITY_ADMIN, NURSE, SYSTEM_ADMIN

WORKLIST = ("/", N_("Worklist"))
REVIEW = ("/review", N_("Weekly review"))
AUDIT = ("/admin/audit", N_("Audit log"))
NAVIGATION: Mapping[str, tuple[tuple[str, str], ...]] = {
    NURSE: (WORKLIST, REVIEW),
    GP: (WORKLIST, REVIEW),
    MUNICIPALITY_ADMIN: (AUDIT,),
    SYSTEM_ADMIN: (AUDIT,),
}
ROLE_NAMES: Mapping[str, str] = {
    NURSE: N_("Nurse"),
    GP: N_("General practitioner"),
    MUNICIPALITY_ADMIN: N_("Municipality administrator"),
    SYSTEM_ADMIN: N_("System administrator"),
}
# Each language named in itself, as a language switch must (a reader of only that language finds it).
AUTONYMS: Mapping[str, str] = {"da": "Dansk", "en": "English"}


@dataclass(frozen=True, slots=True)
class NavLink:
    href: str
    label: str
    current: bool  # the page shown is this link's (aria-current="page")


def _is_current(href: str, path: str) -> bool:
    return path == href if href == "/" else path == href or path.startswith(href + "/")


def navigation(role: str, path: str) -> list[NavLink]:
    """The main navigation of ``role``, the link of ``path`` marked current."""
    return [
        NavLink(href, gettext(label), _is_current(href, path)) for href, label in NAVIGATION.get(role, ())
    ]


def role_name(role: str) -> str:
    """A role in words ("Sygeplejerske"); an unknown role as it is."""
    return gettext(ROLE_NAMES[role]) if role in ROLE_NAMES else role


def other_languages() -> list[tuple[str, str]]:
    """(code, autonym) of each language but the current one: the header's language buttons."""
    return [(code, AUTONYMS[code]) for code in LANGUAGES if code != current_language()]


LAYOUT_GLOBALS: Mapping[str, Any] = {
    "language": current_language,
    "navigation": navigation,
    "role_name": role_name,
    "other_languages": other_languages,
}
