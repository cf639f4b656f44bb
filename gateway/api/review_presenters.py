"""What the worklist's cards and the review pages say: risk in per cent, its change, readings, outcomes.

Pure functions over the store's values (``gateway.store.worklist``, ``gateway.store.reviews``), called
by the templates (``REVIEW_GLOBALS``). Numbers, units and ages go through ``presenters`` (the request's
language and time zone); every word through gettext. Nothing here reads the database or the clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup

from gateway.api.i18n import N_, gettext
from gateway.api.presenters import age, patient_url, score_text, top_reasons, unit, when
from gateway.api.sparkline import sparkline
from gateway.fleet import DeviceActivity
from gateway.store.reviews import ADMISSION_RISK, OUTCOMES, TRIAGE, Review
from gateway.store.worklist import TREND_DAYS, Reading, Risk, WorklistRow
from models.news2 import PARAMETERS

# A change smaller than this (in percentage points) is "unchanged": the model's noise, not news.
STEADY_PP = 0.5
# NEWS2's highest possible total (3 points in each of seven parameters): the top of its trend line.
NEWS2_MAX = 3 * len(PARAMETERS)

_MEASUREMENT_LABELS = {
    "blood-pressure": N_("Blood pressure"),
    "pulse": N_("Pulse"),
    "spo2": "SpO₂",
    "weight": N_("Weight"),
    "temperature": N_("Temperature"),
}
OUTCOME_LABELS: Mapping[str, str] = {
    "no-action": N_("No action"),
    "phone-call": N_("Phone call"),
    "home-visit": N_("Home visit"),
    "gp-contacted": N_("GP contacted"),
    "other": N_("Other"),
}
TRIAGE_LABELS: Mapping[str, tuple[str, str]] = {
    "red": (N_("Red"), N_("act today")),
    "yellow": (N_("Yellow"), N_("follow up this week")),
    "green": (N_("Green"), N_("routine care")),
}
assert set(OUTCOME_LABELS) == set(OUTCOMES) and set(TRIAGE_LABELS) == set(TRIAGE)


def _decimal(value: float) -> str:
    # ``score_text`` formats a number in the request's language without a pointless decimal.
    return score_text(value)


def risk_percent(probability: float | None) -> str:
    """A probability as people read it: "23 %", "4,2 %" (one decimal below 10 %), "< 1 %"."""
    if probability is None:
        return "—"
    percent = probability * 100
    if percent < 1:
        return "< 1 %"
    shown = round(percent, 1) if percent < 10 else round(percent)
    return f"{_decimal(shown)} %"


@dataclass(frozen=True, slots=True)
class RiskChange:
    """The change of the 30-day risk since a week before: an arrow, its words, and a CSS class."""

    arrow: str
    text: str
    css: str


def risk_change(risk: Risk | None) -> RiskChange | None:
    """How much the risk moved since the assessment of at least a week before (None: no such one)."""
    if risk is None or risk.week_before is None:
        return None
    points = (risk.probability - risk.week_before) * 100
    if abs(points) < STEADY_PP:
        return RiskChange("→", gettext("unchanged since last week"), "risk-steady")
    if points > 0:
        text = gettext("up %(points)s percentage points since last week", points=_decimal(round(points, 1)))
        return RiskChange("▲", text, "risk-up")
    text = gettext("down %(points)s percentage points since last week", points=_decimal(round(-points, 1)))
    return RiskChange("▼", text, "risk-down")


def measurement_label(key: str) -> str:
    """A measurement's name ("Blood pressure", "SpO₂")."""
    return gettext(_MEASUREMENT_LABELS[key]) if key in _MEASUREMENT_LABELS else key


def measurement_value(reading: Reading) -> str:
    """The newest value of a measurement with its unit ("128/84 mmHg"), or that there is none yet."""
    if reading.effective is None or not reading.values:
        return gettext("no reading yet")
    numbers = "/".join(_decimal(v) for v in reading.values)
    return f"{numbers} {unit(reading.unit)}".strip()


def news2_reasons(detail: Mapping[str, Any] | None) -> list[str]:
    """Every NEWS2 parameter that scored, most points first: their points add up to the total shown."""
    parameters = (detail or {}).get("parameters")
    return top_reasons(detail, len(parameters) if isinstance(parameters, list) else 0)


def outcome_label(outcome: str) -> str:
    return gettext(OUTCOME_LABELS[outcome]) if outcome in OUTCOME_LABELS else outcome


def triage_label(triage: str) -> str:
    """A triage colour with what it asks for ("Red: act today"): never the colour alone."""
    if triage not in TRIAGE_LABELS:
        return triage
    colour, meaning = TRIAGE_LABELS[triage]
    return gettext("%(colour)s: %(meaning)s", colour=gettext(colour), meaning=gettext(meaning))


def triage_name(triage: str) -> str:
    return gettext(TRIAGE_LABELS[triage][0]) if triage in TRIAGE_LABELS else triage


def reviewer(review: Review) -> str:
    """Who reviewed: their full name when known, else their username."""
    return review.reviewer_name or review.reviewer


def review_summary(review: Review, now: datetime) -> str:
    """ "Reviewed by Anna Jensen, 2 days ago: phone call"."""
    return gettext(
        "Reviewed by %(who)s, %(ago)s: %(outcome)s",
        who=reviewer(review),
        ago=age(review.reviewed_at, now),
        outcome=outcome_label(review.outcome).lower(),
    )


def tel_url(phone: str) -> str:
    """A ``tel:`` link of a phone number as written ("+45 12 34 56 78" -> "tel:+4512345678")."""
    dialled = "".join(c for c in phone if c.isdigit() or c == "+")
    return f"tel:{dialled}"


def trend(row: WorklistRow, now: datetime) -> Markup:
    """The card's trend line: the 30-day risk (or, without one, NEWS2) over the last four weeks."""
    points = [(p.at, p.value) for p in row.trend]
    if not points:
        return Markup("")
    start = now - timedelta(days=TREND_DAYS)
    if row.trend_method == ADMISSION_RISK:
        label = gettext(
            "30-day risk over the last 4 weeks: from %(first)s to %(last)s",
            first=risk_percent(points[0][1]),
            last=risk_percent(points[-1][1]),
        )
        top = max(max(v for _, v in points), 0.1)  # a low risk is drawn low, not stretched to the top
        return sparkline(points, start=start, end=now, low=0.0, high=top, label=label)
    label = gettext(
        "NEWS2 over the last 4 weeks: from %(first)s to %(last)s",
        first=score_text(points[0][1]),
        last=score_text(points[-1][1]),
    )
    return sparkline(points, start=start, end=now, low=0.0, high=NEWS2_MAX / 2, label=label)


def silent_device_text(device: DeviceActivity, since: datetime, now: datetime) -> str:
    """A silent device on the card (``WorklistRow.silent_devices``): which one, and since when."""
    # patient_pages imports this module, so its words for device kinds are looked up when called.
    from gateway.api.patient_pages import device_kind

    name = f"{device_kind(device.kind)} ({device.device_id})"
    if device.last_reading is None:
        return gettext(
            "%(device)s: no reading since it was assigned %(when)s (%(age)s)",
            device=name,
            when=when(since),
            age=age(since, now),
        )
    return gettext(
        "%(device)s: no reading since %(when)s (%(age)s)", device=name, when=when(since), age=age(since, now)
    )


def review_url(patient_id: str) -> str:
    """The patient's review history and form."""
    return f"{patient_url(patient_id)}/reviews"


def query_url(path: str, params: Sequence[tuple[str, str]]) -> str:
    """``path`` with the non-empty ``params`` as its query string."""
    kept = [(k, v) for k, v in params if v]
    return f"{quote(path)}?{urlencode(kept)}" if kept else quote(path)


REVIEW_GLOBALS: Mapping[str, Any] = {
    "risk_percent": risk_percent,
    "risk_change": risk_change,
    "measurement_label": measurement_label,
    "measurement_value": measurement_value,
    "news2_reasons": news2_reasons,
    "outcome_label": outcome_label,
    "triage_label": triage_label,
    "triage_name": triage_name,
    "review_summary": review_summary,
    "reviewer": reviewer,
    "tel_url": tel_url,
    "trend": trend,
    "review_url": review_url,
    "silent_device_text": silent_device_text,
    "OUTCOMES": OUTCOMES,
    "TRIAGE": TRIAGE,
}
