"""The administrators' alert pages: deliveries that failed (``GET /admin/deliveries``) and a
municipality's alert settings (``GET``/``POST /admin/alert-settings``).

A municipality administrator sees and sets her own municipality's; a system administrator sees every
municipality's deliveries (or one's) and picks the municipality whose settings she sets. Nurses and GPs
get 403 (``deps.AdminUser``). The rows come from ``gateway.store.alert_admin``, which already leaves out
all clinical data (a delivery names its alert and patient id only) and cuts a webhook's URL to its host.

Settings: the webhook's secret is write-only. The page says whether one is set and takes a new one; a
secret the administrator types is never shown again, and one the server generates (asked for, or for a
new webhook without one) is shown once, in the answer to the form that made it. A webhook's address must
be ``https://`` outside development (a plain ``http://`` receiver is for a developer's own machine), as
``HOMEWATCH_OIDC_JWKS_URL`` must: the calls carry links to patients and are signed with the secret, but
only TLS keeps them from being read on the way. Every save is audited (``set-alert-settings``) with what
changed, never the secret. Sending the deliveries is ``gateway.alerts``'.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.api.auth import User
from gateway.api.clock import ui_now
from gateway.api.deps import AdminUser, CheckedForm, ClientAddress, DbDep, SettingsDep
from gateway.api.i18n import N_
from gateway.api.i18n import gettext as _
from gateway.api.limits_form import FormError
from gateway.api.web import render_page
from gateway.store import access
from gateway.store.alert_admin import (
    MESSAGE_DETAILS,
    PROBLEM_STATUSES,
    AlertSettings,
    SettingsChange,
    alert_settings,
    delivery_problems,
    municipalities,
    set_alert_settings,
)
from gateway.store.alert_deliveries import delivery_counts
from gateway.store.users import EMAIL

router = APIRouter(prefix="/admin", tags=["admin"])

PAGE_SIZE = 50
# secrets.token_urlsafe(32): 32 random bytes, as the gateway's own secrets.
_SECRET_BYTES = 32
# A typed secret signs the calls (HMAC-SHA256): shorter ones are guessable, longer ones no receiver needs.
_SECRET_CHARS = (16, 200)
_URL_CHARS = 2000
_EMAIL_CHARS = 254  # the longest address SMTP carries
# Escalation after 1 minute up to a day: beyond a day an unacknowledged alert has no one to escalate to.
MINUTES = (1, 1440)

CHANNEL_NAMES: Mapping[str, str] = {"email": N_("E-mail"), "webhook": N_("Webhook")}
AUDIENCE_NAMES: Mapping[str, str] = {
    "care-team": N_("Care team"),
    "gp": N_("GP"),
    "on-call": N_("On call"),
    "municipality": N_("Municipality"),
}
STATUS_NAMES: Mapping[str, str] = {"pending": N_("Pending"), "sent": N_("Sent"), "failed": N_("Failed")}
DETAIL_NAMES: Mapping[str, str] = {
    "none": N_("No patient data: only a link to the alert"),
    "initials": N_("The patient's initials and a link to the alert"),
}


def word(table: Mapping[str, str], code: str) -> str:
    """A code of the outbox in the reader's words; an unknown code as it is."""
    return _(table[code]) if code in table else code


def _municipality_ids(conn: DbDep) -> dict[str, str]:
    return dict(municipalities(conn))


def _own_or_refused(user: User, requested: str) -> str:
    """A municipality administrator's municipality; asking for another's is 403."""
    if requested and requested != user.municipality_id:
        raise HTTPException(403, _("You administer only your own municipality."))
    return user.municipality_id


def _known(names: Mapping[str, str], municipality_id: str) -> str:
    if municipality_id not in names:
        raise HTTPException(404, _("There is no such municipality."))
    return municipality_id


# --- delivery failures -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryQuery:
    """The page's filters as typed: what the form shows again and what its links carry."""

    status: str = ""
    municipality: str = ""

    def link(self, **extra: str | int) -> str:
        given = {"status": self.status, "municipality": self.municipality}
        return urlencode({**{k: v for k, v in given.items() if v}, **{k: str(v) for k, v in extra.items()}})


@router.get("/deliveries", response_class=HTMLResponse)
def deliveries(
    request: Request,
    user: AdminUser,
    conn: DbDep,
    status: str = "",
    municipality: str = "",
    before: int | None = None,
) -> HTMLResponse:
    """Alert deliveries that failed or are stuck, of the administrator's municipality (a system
    administrator's: every one, or the one she picks), newest first, with counts by status and channel."""
    if status and status not in PROBLEM_STATUSES:
        raise HTTPException(400, _("Show failed or pending deliveries, or both."))
    names = _municipality_ids(conn)
    if user.role == access.SYSTEM_ADMIN:
        chosen = _known(names, municipality) if municipality else None
    else:
        chosen = _own_or_refused(user, municipality)
    found = delivery_problems(
        conn, chosen, now=ui_now(request), status=status or None, before_id=before, size=PAGE_SIZE
    )
    query = DeliveryQuery(status, municipality if user.role == access.SYSTEM_ADMIN else "")
    return render_page(
        request,
        user,
        "admin_deliveries.html",
        rows=found.rows,
        counts=delivery_counts(conn, chosen),
        query=query,
        first_page=query.link(),
        older=None if found.older_than is None else query.link(before=found.older_than),
        paged=before is not None,
        every_municipality=chosen is None,
        municipality_names=names,
        pick_municipality=user.role == access.SYSTEM_ADMIN,
        word=word,
        channel_names=CHANNEL_NAMES,
        audience_names=AUDIENCE_NAMES,
        status_names=STATUS_NAMES,
    )


# --- alert settings ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingsForm:
    """The form's fields as the page shows them: stored values, or what was typed (never a secret)."""

    webhook_url: str
    on_call_email: str
    message_detail: str
    escalate_high_minutes: str
    escalate_medium_minutes: str

    @classmethod
    def of(cls, stored: AlertSettings) -> SettingsForm:
        return cls(
            stored.webhook_url or "",
            stored.on_call_email or "",
            stored.message_detail,
            str(stored.escalate_high_minutes),
            str(stored.escalate_medium_minutes),
        )


@dataclass(frozen=True, slots=True)
class ReadForm:
    """A submitted settings form read back: the change to store (None when something is wrong), the
    secret the server generated for it (shown once), and what is wrong."""

    change: SettingsChange | None
    generated_secret: str | None
    errors: tuple[FormError, ...]


def _webhook_problem(url: str, development: bool) -> str | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is no number raises here
    except ValueError:
        return _("The webhook's address is not a web address.")
    schemes = ("https", "http") if development else ("https",)
    if len(url) > _URL_CHARS or any(c.isspace() for c in url) or not parts.hostname:
        return _("The webhook's address is not a web address.")
    if parts.scheme not in schemes:
        return _("The webhook's address must begin with https://.")
    if parts.username is not None or parts.password is not None:
        return _("Put no user name or password in the webhook's address: the secret signs the calls.")
    return None


def _minutes(form: Mapping[str, str], field: str, errors: list[FormError]) -> int:
    text = form.get(field, "").strip()
    low, high = MINUTES
    if not text.isdigit() or not low <= int(text) <= high:
        errors.append(
            FormError(field, _("Write whole minutes from %(low)d to %(high)d.", low=low, high=high))
        )
        return 0
    return int(text)


def read_settings_form(form: Mapping[str, str], stored: AlertSettings, *, development: bool) -> ReadForm:
    """The settings a submitted form asks for, checked (pure: a form in, values out). A webhook keeps its
    stored secret unless a new one is typed or generation is asked for; a webhook without any secret
    gets a generated one."""
    errors: list[FormError] = []
    url = form.get("webhook_url", "").strip() or None
    if url is not None and (problem := _webhook_problem(url, development)) is not None:
        errors.append(FormError("webhook_url", problem))
    typed_secret = form.get("webhook_secret", "")
    generate = form.get("generate_secret") == "1"
    generated = None
    if url is not None and (generate or (not typed_secret and not stored.webhook_secret_set)):
        generated = secrets.token_urlsafe(_SECRET_BYTES)
    elif url is not None and typed_secret:
        low, high = _SECRET_CHARS
        if not low <= len(typed_secret) <= high or any(c.isspace() for c in typed_secret):
            message = _("A secret has %(low)d to %(high)d characters and no spaces.", low=low, high=high)
            errors.append(FormError("webhook_secret", message))
    email = form.get("on_call_email", "").strip() or None
    if email is not None and (len(email) > _EMAIL_CHARS or not EMAIL.match(email)):
        errors.append(FormError("on_call_email", _("Write an e-mail address, such as vagt@kommune.dk.")))
    detail = form.get("message_detail", "")
    if detail not in MESSAGE_DETAILS:
        errors.append(FormError("message_detail-initials", _("Choose how much a message says.")))
    high = _minutes(form, "escalate_high_minutes", errors)
    medium = _minutes(form, "escalate_medium_minutes", errors)
    if errors:
        return ReadForm(None, None, tuple(errors))
    change = SettingsChange(
        webhook_url=url,
        new_webhook_secret=generated or (typed_secret if url is not None and typed_secret else None),
        on_call_email=email,
        message_detail=detail,
        escalate_high_minutes=high,
        escalate_medium_minutes=medium,
    )
    return ReadForm(change, generated, ())


def _target(conn: DbDep, user: User, requested: str) -> tuple[str, dict[str, str]]:
    """The municipality whose settings are shown or set, and every municipality's name."""
    names = _municipality_ids(conn)
    if user.role == access.SYSTEM_ADMIN:
        return _known(names, requested or user.municipality_id), names
    return _own_or_refused(user, requested), names


def _settings_page(
    request: Request,
    user: User,
    stored: AlertSettings,
    names: Mapping[str, str],
    *,
    shown: SettingsForm,
    status: int = 200,
    errors: tuple[FormError, ...] = (),
    saved: bool = False,
    new_secret: str | None = None,
) -> HTMLResponse:
    return render_page(
        request,
        user,
        "admin_alert_settings.html",
        status,
        settings=stored,
        form=shown,
        errors=errors,
        error_of={e.field: e.message for e in errors},
        saved=saved,
        new_secret=new_secret,
        municipality_names=names,
        pick_municipality=user.role == access.SYSTEM_ADMIN,
        detail_names=DETAIL_NAMES,
        minutes=MINUTES,
    )


@router.get("/alert-settings", response_class=HTMLResponse)
def alert_settings_form(
    request: Request, user: AdminUser, conn: DbDep, municipality: str = "", saved: bool = False
) -> HTMLResponse:
    """The alert settings of the administrator's municipality (a system administrator's pick)."""
    chosen, names = _target(conn, user, municipality)
    stored = alert_settings(conn, chosen)
    return _settings_page(request, user, stored, names, shown=SettingsForm.of(stored), saved=saved)


@router.post("/alert-settings", response_class=HTMLResponse, response_model=None)
def save_alert_settings(
    request: Request,
    user: AdminUser,
    form: CheckedForm,
    conn: DbDep,
    settings: SettingsDep,
    client: ClientAddress,
) -> Response:
    """Check and store the municipality's alert settings (audited); the form again with what is wrong,
    or the page with a generated secret shown once, or back to the page."""
    chosen, names = _target(conn, user, form.get("municipality", ""))
    stored = alert_settings(conn, chosen)
    read = read_settings_form(form, stored, development=settings.development)
    if read.change is None:
        typed = SettingsForm(
            form.get("webhook_url", ""),
            form.get("on_call_email", ""),
            form.get("message_detail", ""),
            form.get("escalate_high_minutes", ""),
            form.get("escalate_medium_minutes", ""),
        )
        return _settings_page(request, user, stored, names, shown=typed, status=400, errors=read.errors)
    now = ui_now(request)
    saved = set_alert_settings(conn, user, chosen, read.change, now=now, client=client)
    if read.generated_secret is not None:
        page = SettingsForm.of(saved)
        return _settings_page(
            request, user, saved, names, shown=page, saved=True, new_secret=read.generated_secret
        )
    target = urlencode({"municipality": chosen, "saved": "1"})
    return RedirectResponse(f"/admin/alert-settings?{target}", status_code=303)
