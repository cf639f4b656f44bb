"""The administrator's model registry pages: which 30-day risk model ranks the municipality's worklist.

- ``GET /admin/models``: the versions the municipality may score with (its local ones and the shipped
  default), their held-out figures (AUROC with its interval against NEWS2's on the same patient-days)
  and whether they clear the activation gate (``models.activation``), which one is active, the
  activation history (who, when, the reason given to override the gate), and the rollback form.
- ``GET /admin/models/{version}``: one version, its figures and its model card (Markdown shown as text:
  escaped, in ``<pre>``; no HTML from a card ever reaches the page), and the form that activates it.
- ``POST /admin/models/{version}/activate`` and ``POST /admin/models/rollback``: the changes
  (``gateway.store.model_registry``, which writes the audit log with the client's address). A version
  that does not beat NEWS2 by the margin is activated only with a reason, which is recorded; without
  one, the page comes back (400) saying why. After a change the scoring schedule of this gateway is
  woken (``app.state.rescore``, set by ``gateway.service``), so the worklist is ranked by the new model
  within a run rather than at the next scheduled one.

A municipality administrator sees and changes her own municipality's models; another municipality's is
403, and another municipality's version is 404 (it does not exist for her). A system administrator picks
a municipality (hers by default). Nurses and GPs get 403 (``deps.AdminUser``). The pages show no
patient; monitoring the active model on live data is ``/admin/models/monitoring``
(``gateway.api.model_monitoring_pages``). Everything a model says is labelled SYNTHETIC where its
training was; nothing here is a clinical claim.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from babel.numbers import format_decimal
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.api.auth import User
from gateway.api.deps import AdminUser, CheckedForm, ClientAddress, DbDep, administered_municipality
from gateway.api.i18n import current
from gateway.api.i18n import gettext as _
from gateway.api.web import render_page
from gateway.store import access
from gateway.store import model_registry as registry
from gateway.store.alert_admin import municipalities
from models.activation import ACTIVATION_MARGIN

router = APIRouter(prefix="/admin/models", tags=["admin"])

# An override reason is a sentence or two for the record; longer is not one.
REASON_CHARS = 1000
MONITORING = "/admin/models/monitoring"


# --- words and numbers -------------------------------------------------------------------------------


def auroc_text(value: float | None, ci: tuple[float, float] | None = None) -> str:
    """An AUROC to three decimals in the reader's language, with its 95 % interval when known."""
    if value is None:
        return "—"
    locale = current().locale
    text = format_decimal(value, "0.000", locale=locale)
    if ci is None:
        return text
    low, high = (format_decimal(v, "0.000", locale=locale) for v in ci)
    return f"{text} ({low}\u2013{high})"


def gate_text(found: registry.ModelVersion) -> str:
    """Whether the version may be activated without an override, in words."""
    if found.is_default:
        return _("The default: not gated")
    check = found.check()
    if check.model_auroc is None or check.news2_auroc is None:
        return _("No held-out comparison with NEWS2")
    if check.passed:
        return _("Beats NEWS2 by the margin")
    return _("Does not beat NEWS2 by the margin")


def refusal_text(refused: registry.ActivationRefused, found: registry.ModelVersion | None) -> str:
    """Why an activation or rollback was refused, in the reader's language."""
    if refused.kind == "gate" and found is not None:
        check = found.check()
        if check.model_auroc is None or check.news2_auroc is None:
            return _(
                "Version %(version)s has no held-out comparison with NEWS2, so it cannot be shown to rank"
                " better. To activate it anyway, write why.",
                version=found.version,
            )
        return _(
            "Version %(version)s does not beat NEWS2 by the margin of %(margin)s on its held-out data"
            " (AUROC %(model)s against %(news2)s for NEWS2). To activate it anyway, write why.",
            version=found.version,
            margin=format_decimal(ACTIVATION_MARGIN, "0.00", locale=current().locale),
            model=auroc_text(check.model_auroc),
            news2=auroc_text(check.news2_auroc),
        )
    if refused.kind == "active":
        return _("Version %(version)s is already active.", version=refused.version or "")
    if refused.kind == "nothing":
        return _("There is nothing to roll back: the default model is active and was never replaced.")
    return _("That version cannot be activated here.")


ACTION_NAMES: Mapping[str, Callable[[], str]] = {
    registry.ACTIVATE: lambda: _("Activated"),
    registry.ROLLBACK: lambda: _("Rolled back"),
    registry.TO_DEFAULT: lambda: _("Back to the default"),
}


def action_text(action: str) -> str:
    return ACTION_NAMES[action]() if action in ACTION_NAMES else action


@dataclass(frozen=True, slots=True)
class VersionView:
    """A version as a row of the page: the registry's row, its figures and gate in words, active or not."""

    version: registry.ModelVersion
    figures: registry.HeldOut
    gate: str
    gate_passed: bool | None  # None: the default (not gated)
    active: bool

    @property
    def synthetic(self) -> bool:
        """Trained on SYNTHETIC data: the default always; a local one when its cohort says so."""
        if self.version.is_default:
            return True
        cohort = self.version.metadata.get("training_cohort")
        return bool(cohort.get("synthetic", True)) if isinstance(cohort, Mapping) else True


def _view(found: registry.ModelVersion, active: str | None) -> VersionView:
    return VersionView(
        found,
        found.held_out(),
        gate_text(found),
        None if found.is_default else found.check().passed,
        found.version == active,
    )


# --- scope -------------------------------------------------------------------------------------------


def _active(conn: DbDep, municipality_id: str) -> registry.ModelVersion | None:
    try:
        return registry.active_version(conn, municipality_id)
    except registry.RegistryError:
        return None  # no default registered yet (the gateway registers it at start)


def list_url(municipality_id: str, **extra: str) -> str:
    return "/admin/models?" + urlencode({"municipality": municipality_id, **extra})


def version_url(version: str, municipality_id: str) -> str:
    return f"/admin/models/{quote(version, safe='')}?" + urlencode({"municipality": municipality_id})


def _rescore(request: Request) -> None:
    """Wake this gateway's scoring schedule (when it runs one) so the new model ranks the worklist soon."""
    rescore = getattr(request.app.state, "rescore", None)
    if callable(rescore):
        rescore()


# --- pages -------------------------------------------------------------------------------------------


def _list_page(
    request: Request,
    user: User,
    conn: DbDep,
    chosen: str,
    names: Mapping[str, str],
    *,
    status: int = 200,
    error: str | None = None,
    done: str = "",
) -> HTMLResponse:
    active = _active(conn, chosen)
    active_name = None if active is None else active.version
    return render_page(
        request,
        user,
        "admin_models.html",
        status,
        views=[_view(v, active_name) for v in registry.versions(conn, chosen)],
        active=None if active is None else _view(active, active_name),
        history=registry.activations(conn, chosen),
        chosen=chosen,
        municipality_names=names,
        pick_municipality=user.role == access.SYSTEM_ADMIN,
        error=error,
        done=done,
        monitoring_url=MONITORING + "?" + urlencode({"municipality": chosen}),
        **_helpers(),
    )


def _helpers() -> dict[str, Any]:
    return {
        "auroc_text": auroc_text,
        "action_text": action_text,
        "version_url": version_url,
        "margin": format_decimal(ACTIVATION_MARGIN, "0.00", locale=current().locale),
    }


@router.get("", response_class=HTMLResponse)
def models_page(
    request: Request, user: AdminUser, conn: DbDep, municipality: str = "", done: str = ""
) -> HTMLResponse:
    """The municipality's model versions, which is active, the activation history, and rollback."""
    names = dict(municipalities(conn))
    chosen = administered_municipality(user, names, municipality)
    shown = done if done in ("activated", "rolled-back") else ""
    return _list_page(request, user, conn, chosen, names, done=shown)


def _version_page(
    request: Request,
    user: User,
    conn: DbDep,
    chosen: str,
    names: Mapping[str, str],
    found: registry.ModelVersion,
    *,
    status: int = 200,
    error: str | None = None,
    reason: str = "",
) -> HTMLResponse:
    active = _active(conn, chosen)
    return render_page(
        request,
        user,
        "admin_model_version.html",
        status,
        view=_view(found, None if active is None else active.version),
        active=active,
        chosen=chosen,
        municipality_name=names.get(chosen, chosen),
        error=error,
        reason=reason,
        reason_chars=REASON_CHARS,
        list_url=list_url(chosen),
        activate_url=f"/admin/models/{quote(found.version, safe='')}/activate",
        **_helpers(),
    )


def _visible(conn: DbDep, chosen: str, version: str) -> registry.ModelVersion:
    found = registry.version(conn, chosen, version)
    if found is None:
        raise HTTPException(404, _("There is no such model version in this municipality."))
    return found


@router.get("/{version}", response_class=HTMLResponse)
def model_version_page(
    request: Request, user: AdminUser, conn: DbDep, version: str, municipality: str = ""
) -> HTMLResponse:
    """One version: its held-out figures, its model card, and the form that activates it."""
    names = dict(municipalities(conn))
    chosen = administered_municipality(user, names, municipality)
    return _version_page(request, user, conn, chosen, names, _visible(conn, chosen, version))


@router.post("/{version}/activate", response_class=HTMLResponse, response_model=None)
def activate_version(
    request: Request, user: AdminUser, form: CheckedForm, conn: DbDep, client: ClientAddress, version: str
) -> Response:
    """Make the version the municipality's active model (audited); the version page again (400) with the
    reason when refused."""
    names = dict(municipalities(conn))
    chosen = administered_municipality(user, names, form.get("municipality", ""))
    found = _visible(conn, chosen, version)
    reason = form.get("override_reason", "").strip()
    if len(reason) > REASON_CHARS:
        error = _("Write the reason in at most %(chars)d characters.", chars=REASON_CHARS)
        return _version_page(
            request, user, conn, chosen, names, found, status=400, error=error, reason=reason
        )
    try:
        registry.activate(
            conn, chosen, found.version, actor=user, override_reason=reason or None, client=client
        )
    except registry.ActivationRefused as refused:
        error = refusal_text(refused, found)
        return _version_page(
            request, user, conn, chosen, names, found, status=400, error=error, reason=reason
        )
    _rescore(request)
    return RedirectResponse(list_url(chosen, done="activated"), status_code=303)


@router.post("/rollback", response_class=HTMLResponse, response_model=None)
def rollback_version(
    request: Request, user: AdminUser, form: CheckedForm, conn: DbDep, client: ClientAddress
) -> Response:
    """Return the municipality to the version active before the current one (audited)."""
    names = dict(municipalities(conn))
    chosen = administered_municipality(user, names, form.get("municipality", ""))
    try:
        registry.rollback(conn, chosen, actor=user, client=client)
    except registry.ActivationRefused as refused:
        return _list_page(request, user, conn, chosen, names, status=400, error=refusal_text(refused, None))
    _rescore(request)
    return RedirectResponse(list_url(chosen, done="rolled-back"), status_code=303)
