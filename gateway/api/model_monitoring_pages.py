"""The administrator's page that watches the active 30-day risk model on live data
(``GET /admin/models/monitoring``).

For the last :data:`models.monitoring.WINDOW_DAYS` days of the municipality's stored 30-day risks whose
30 days have passed (``gateway.store.model_monitoring``), per model version: predicted against observed
admissions by risk decile (a table and a calibration chart), the AUROC with its patient-bootstrap
interval against NEWS2's on the same patient-days, calibration (observed/expected, slope), how many
patient-days and admissions the figures rest on, and the drift verdict against what the version's model
card promised (``models.monitoring``: the rule, the minimum number of admissions). The active version
(``gateway.store.model_registry.active_version``) comes first; every other version that scored in the
window follows, since the scores carry their version.

Patient-days whose 30 days have not all passed are left out even when an admission already followed
them: counting those admissions before their window's negatives are known raises the observed rate (on
SYNTHETIC windows of 300 patients, observed/expected of a well-calibrated model went from 1.04 to 1.25,
the drift rule's limit: ``bench/monitoring_drift.py --open-window-bias``). The page says how many are
waiting.

A municipality administrator sees her own municipality; a system administrator picks one (hers by
default); nurses and GPs get 403 (``deps.AdminUser``); another municipality's is 403 for a municipality
administrator. The page shows figures over many patients, never a patient; each view is audited as one
row without a patient (``view-model-monitoring``), as the figures are computed from clinical data. The
model was trained on SYNTHETIC data unless the version is local and its training data were the
municipality's own; the page says so, and claims nothing clinical.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import numpy as np
from babel.numbers import format_decimal, format_percent
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from gateway.api.clock import ui_now
from gateway.api.deps import AdminUser, ClientAddress, DbDep, administered_municipality
from gateway.api.i18n import current
from gateway.api.i18n import gettext as _
from gateway.api.web import render_page
from gateway.store import access
from gateway.store import model_registry as registry
from gateway.store.alert_admin import municipalities
from gateway.store.audit import record_audit
from gateway.store.model_monitoring import MonitoredDay, monitored_patient_days
from models.monitoring import (
    MIN_ADMISSIONS,
    OE_TOLERANCE,
    SLOPE_TOLERANCE,
    WINDOW_DAYS,
    Decile,
    Finding,
    Interval,
    Monitoring,
    Promise,
    monitor,
    promised_figures,
)

router = APIRouter(prefix="/admin/models", tags=["admin"])

AUDIT_ACTION: Final = "view-model-monitoring"


# --- numbers in the reader's language --------------------------------------------------------------------


def auroc_text(value: float | None) -> str:
    """An AUROC to three decimals ("0,712" in Danish); a dash when there is none."""
    return "—" if value is None else format_decimal(value, "0.000", locale=current().locale)


def ratio_text(value: float | None) -> str:
    return "—" if value is None else format_decimal(value, "0.00", locale=current().locale)


def percent_text(value: float | None) -> str:
    return "—" if value is None else format_percent(value, "0.0%", locale=current().locale)


def interval_text(interval: Interval | None, number: Callable[[float | None], str] = auroc_text) -> str:
    """The two ends of an interval in words ("0.61 to 0.74"): a dash between them would read as a minus
    sign beside a negative end."""
    if interval is None:
        return "—"
    return _("%(low)s to %(high)s", low=number(interval.low), high=number(interval.high))


# --- the figures of each version ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionReport:
    """One model version's figures on the window, with what its card promised and the verdict in words."""

    version: str
    registered: registry.ModelVersion | None  # None: a version the registry does not know here
    active: bool
    synthetic: bool
    promise: Promise
    figures: Monitoring
    newest: datetime | None  # the newest score of the version in the window (None: none)
    waiting: int  # patient-days already followed by an admission whose 30 days have not all passed
    findings: tuple[str, ...]  # the drift findings, in words

    @property
    def kind(self) -> str:
        if self.registered is None:
            return _("not in the registry")
        return _("shipped default") if self.registered.is_default else _("trained locally")


def synthetic_training(version: registry.ModelVersion | None) -> bool:
    """Whether the version was trained on SYNTHETIC data: the default always, a local one unless its
    training cohort says otherwise (``gateway.alerts.active_models.ChosenModel``'s rule), one the
    registry does not know always (it predates the registry: the shipped model)."""
    if version is None or version.is_default:
        return True
    cohort = version.metadata.get("training_cohort")
    return bool(cohort.get("synthetic", True)) if isinstance(cohort, Mapping) else True


def finding_text(finding: Finding) -> str:
    """One drift finding (``models.monitoring.DRIFT_RULE``) as a sentence."""
    live = finding.live
    if finding.kind == "discrimination":
        return _(
            "Discrimination has fallen: the AUROC on live data is %(live)s (interval %(interval)s),"
            " below the %(promised)s the model card promised.",
            live=auroc_text(live),
            interval=interval_text(finding.live_interval),
            promised=auroc_text(finding.reference),
        )
    if finding.kind == "news2":
        return _(
            "The model ranks worse than NEWS2 on the same patient-days: its AUROC minus NEWS2's is"
            " %(live)s (interval %(interval)s).",
            live=auroc_text(live),
            interval=interval_text(finding.live_interval),
        )
    if finding.kind == "calibration-in-the-large":
        return _(
            "Calibration has drifted: %(live)s times the admissions the model predicts were observed"
            " (interval %(interval)s; promised %(promised)s).",
            live=ratio_text(live),
            interval=interval_text(finding.live_interval, ratio_text),
            promised=ratio_text(finding.reference),
        )
    return _(
        "Calibration has drifted: the calibration slope is %(live)s (interval %(interval)s;"
        " promised %(promised)s). Below 1 the risks are spread too wide, above 1 too narrow.",
        live=ratio_text(live),
        interval=interval_text(finding.live_interval, ratio_text),
        promised=ratio_text(finding.reference),
    )


def drift_rules() -> list[str]:
    """The drift rule, one sentence per finding, with the thresholds of ``models.monitoring``."""
    return [
        _(
            "Discrimination: the upper end of the live AUROC's interval lies below the lower end of the"
            " interval the model card promised."
        ),
        _(
            "NEWS2: the model's AUROC minus NEWS2's on the same patient-days lies below 0 over its whole"
            " interval."
        ),
        _(
            "Calibration: observed/expected lies above %(high)s or below %(low)s times the promised ratio"
            " (1 when none was promised) over its whole interval.",
            high=ratio_text(OE_TOLERANCE),
            low=ratio_text(1 / OE_TOLERANCE),
        ),
        _(
            "Calibration slope: it lies below %(low)s or above %(high)s times the promised slope (1 when"
            " none was promised) over its whole interval.",
            low=ratio_text(SLOPE_TOLERANCE),
            high=ratio_text(1 / SLOPE_TOLERANCE),
        ),
    ]


def version_reports(
    days: Sequence[MonitoredDay],
    known: Mapping[str, registry.ModelVersion | None],
    active: str | None,
) -> list[VersionReport]:
    """Each version's figures on its patient-days whose 30 days have passed; the active version first
    (also without any), the others newest first."""
    by_version: dict[str, list[MonitoredDay]] = {}
    for day in days:
        by_version.setdefault(day.version, []).append(day)
    if active is not None:
        by_version.setdefault(active, [])
    reports = []
    for name, rows in by_version.items():
        closed = [d for d in rows if d.window_closed]
        registered = known.get(name)
        promise = (
            promised_figures(registered.metrics, registered.metadata)
            if registered is not None
            else Promise("none")
        )
        figures = monitor(
            [d.risk for d in closed],
            [d.admitted for d in closed],
            [np.nan if d.news2 is None else d.news2 for d in closed],
            [d.patient_id for d in closed],
            [d.admission_id for d in closed],
            promise,
        )
        reports.append(
            VersionReport(
                version=name,
                registered=registered,
                active=name == active,
                synthetic=synthetic_training(registered),
                promise=promise,
                figures=figures,
                newest=max((d.as_of for d in rows), default=None),
                waiting=sum(1 for d in rows if d.admitted and not d.window_closed),
                findings=tuple(finding_text(f) for f in figures.verdict.findings),
            )
        )
    reports.sort(key=lambda r: (not r.active, -r.newest.timestamp() if r.newest else 0.0, r.version))
    return reports


# --- the calibration chart (server-rendered SVG, as gateway.api.charts) -----------------------------------

_SIZE = 320
_LEFT, _BOTTOM, _TOP, _RIGHT = 52, 40, 12, 14
_STEP = 0.05  # the axes run to the next multiple of 5 percentage points above every point


def _axis_top(deciles: Sequence[Decile]) -> float:
    highest = max([_STEP * 2, *(d.mean_predicted for d in deciles), *(d.observed_rate for d in deciles)])
    return float(np.ceil(highest / _STEP - 1e-9) * _STEP)


def calibration_chart(key: str, deciles: Sequence[Decile], *, title: str, description: str) -> Markup:
    """The deciles' mean predicted risk (x) against their observed rate (y), joined, over the diagonal
    where the two are equal. A labelled image (``<title>``, ``<desc>``); each point has a ``<title>``
    with its figures; presentation attributes only (the Content-Security-Policy forbids inline style)."""
    if not deciles:
        return Markup("")
    top = _axis_top(deciles)
    span_x, span_y = _SIZE - _LEFT - _RIGHT, _SIZE - _TOP - _BOTTOM

    def x(value: float) -> float:
        return _LEFT + value / top * span_x

    def y(value: float) -> float:
        return _TOP + (1 - value / top) * span_y

    parts = [
        Markup(
            '<svg class="chart calibration-chart" role="img" viewBox="0 0 {s} {s}"'
            ' aria-labelledby="{k}-title {k}-desc"><title id="{k}-title">{t}</title>'
            '<desc id="{k}-desc">{d}</desc>'
        ).format(s=_SIZE, k=key, t=title, d=description)
    ]
    ticks = round(top / _STEP)
    every = max(1, ticks // 5)
    for i in range(0, ticks + 1, every):
        value = i * _STEP
        label = escape(format_percent(value, "0%", locale=current().locale))
        parts.append(
            Markup(
                '<line x1="{x0}" y1="{yv:.1f}" x2="{x1}" y2="{yv:.1f}" stroke="#e3e8ee"/>'
                '<text x="{lx}" y="{ly:.1f}" font-size="11" text-anchor="end" fill="#4a5360">{label}</text>'
                '<text x="{xv:.1f}" y="{bx}" font-size="11" text-anchor="middle"'
                ' fill="#4a5360">{label}</text>'
            ).format(
                x0=_LEFT,
                x1=_SIZE - _RIGHT,
                yv=y(value),
                lx=_LEFT - 6,
                ly=y(value) + 4,
                xv=x(value),
                bx=_SIZE - _BOTTOM + 16,
                label=label,
            )
        )
    parts.append(
        Markup(
            '<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="#4a5360"'
            ' stroke-dasharray="4 4"><title>{said}</title></line>'
        ).format(x0=x(0), y0=y(0), x1=x(top), y1=y(top), said=_("Predicted equals observed"))
    )
    line = " ".join(f"{x(d.mean_predicted):.1f},{y(d.observed_rate):.1f}" for d in deciles)
    parts.append(
        Markup('<polyline points="{p}" fill="none" stroke="#3b6fb6" stroke-width="2"/>').format(p=line)
    )
    for d in deciles:
        said = _(
            "Decile %(number)d: predicted %(predicted)s, observed %(observed)s (%(days)d patient-days)",
            number=d.number,
            predicted=percent_text(d.mean_predicted),
            observed=percent_text(d.observed_rate),
            days=d.patient_days,
        )
        parts.append(
            Markup(
                '<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4.5" fill="#3b6fb6" stroke="#1d3f73">'
                "<title>{t}</title></circle>"
            ).format(cx=x(d.mean_predicted), cy=y(d.observed_rate), t=said)
        )
    parts.append(
        Markup(
            '<text x="{mx:.1f}" y="{by}" font-size="12" text-anchor="middle" fill="#1b1f24">{xl}</text>'
            '<text x="14" y="{my:.1f}" font-size="12" text-anchor="middle" fill="#1b1f24"'
            ' transform="rotate(-90 14 {my:.1f})">{yl}</text></svg>'
        ).format(
            mx=_LEFT + span_x / 2,
            by=_SIZE - 6,
            my=_TOP + span_y / 2,
            xl=_("Predicted risk (mean of the decile)"),
            yl=_("Observed admission rate"),
        )
    )
    return Markup("").join(parts)


# --- the route -------------------------------------------------------------------------------------------


@router.get("/monitoring", response_class=HTMLResponse)
def model_monitoring(
    request: Request, user: AdminUser, conn: DbDep, client: ClientAddress, municipality: str = ""
) -> HTMLResponse:
    """How the municipality's active 30-day risk model (and any other version that scored in the last 90
    days) does on the patient-days whose outcome is known: deciles, AUROC against NEWS2, calibration,
    the drift verdict."""
    names = dict(municipalities(conn))
    chosen = administered_municipality(user, names, municipality)
    now = ui_now(request)
    since = now - timedelta(days=WINDOW_DAYS)
    try:
        active: registry.ModelVersion | None = registry.active_version(conn, chosen)
    except registry.RegistryError:
        active = None  # no default registered yet (the gateway registers it at start)
    days = monitored_patient_days(conn, chosen, since=since, now=now)
    known: dict[str, registry.ModelVersion | None] = {
        name: registry.version(conn, chosen, name) for name in {d.version for d in days}
    }
    if active is not None:
        known[active.version] = active
    reports = version_reports(days, known, None if active is None else active.version)
    record_audit(
        conn,
        user,
        AUDIT_ACTION,
        [],
        f"{chosen}: {len(days)} patient-days, {len(reports)} version(s)",
        client=client,
    )
    return render_page(
        request,
        user,
        "admin_model_monitoring.html",
        active=active,
        reports=reports,
        since=since,
        until=now,
        window_days=WINDOW_DAYS,
        min_admissions=MIN_ADMISSIONS,
        chosen=chosen,
        municipality_names=names,
        pick_municipality=user.role == access.SYSTEM_ADMIN,
        drift_rules=drift_rules(),
        auroc_text=auroc_text,
        ratio_text=ratio_text,
        percent_text=percent_text,
        interval_text=interval_text,
        calibration_chart=calibration_chart,
    )
