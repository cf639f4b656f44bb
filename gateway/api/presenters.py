"""Turning rows into what a nurse reads: bands, reasons, ages, values with units. Pure functions.

The NEWS2 ``detail`` is ``models.news2.News2Result.to_dict()``: ``parameters`` (name, charted value,
points), ``missing`` (each with a ``text``), ``notes``, ``complete`` and ``max_total``. Older or other
shapes fall back to a plain ``reasons`` list. The templates call these functions; nothing here reads the
database or the clock (``now`` is passed in).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from gateway.store.patient_views import ReadingRow
from gateway.store.worklist import Measured


@dataclass(frozen=True, slots=True)
class BandView:
    """How a NEWS2 band is shown: always a text, never colour alone."""

    css: str
    label: str
    action: str


BANDS: Mapping[str, BandView] = {
    "low": BandView("band-low", "Low", "routine monitoring"),
    "low-medium": BandView("band-low-medium", "Low-medium", "a single red parameter: review soon"),
    "medium": BandView("band-medium", "Medium", "urgent review"),
    "high": BandView("band-high", "High", "emergency assessment"),
}
NO_BAND = BandView("band-none", "No score", "no NEWS2 yet")


def band(name: str | None) -> BandView:
    """The view of a band name (unknown names are shown as they are)."""
    if name is None:
        return NO_BAND
    return BANDS.get(name, BandView("band-none", name, ""))


_PARAMETER_LABELS = {
    "respiration_rate": ("Respiration rate", " /min"),
    "spo2": ("SpO₂", " %"),
    "air_or_oxygen": ("Air or oxygen", ""),
    "systolic_bp": ("Systolic BP", " mmHg"),
    "pulse": ("Pulse", " /min"),
    "consciousness": ("Consciousness", ""),
    "temperature": ("Temperature", " °C"),
}


def _points(points: int) -> str:
    return "1 point" if points == 1 else f"{points} points"


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _parameter_text(parameter: Mapping[str, Any]) -> str:
    name = str(parameter.get("name", "?"))
    label, unit = _PARAMETER_LABELS.get(name, (name, ""))
    value = parameter.get("charted", parameter.get("value"))
    shown = _number(value) if isinstance(value, int | float) else str(value)
    return f"{label} {shown}{unit}: {_points(int(parameter.get('points', 0)))}"


def top_reasons(detail: Mapping[str, Any] | None, limit: int = 3) -> list[str]:
    """The parameters that scored most points, most first (at most ``limit``)."""
    if not detail:
        return []
    parameters = detail.get("parameters")
    if isinstance(parameters, list):
        scoring = [p for p in parameters if isinstance(p, Mapping) and int(p.get("points", 0)) > 0]
        scoring.sort(key=lambda p: -int(p.get("points", 0)))
        return [_parameter_text(p) for p in scoring[:limit]]
    reasons = detail.get("reasons")
    return [str(reason) for reason in reasons[:limit]] if isinstance(reasons, list) else []


def missing_reasons(detail: Mapping[str, Any] | None) -> list[str]:
    """What the score does not know: each missing parameter and each note, as sentences."""
    if not detail:
        return []
    lines = [str(m.get("text", m.get("name"))) for m in detail.get("missing", []) if isinstance(m, Mapping)]
    lines.extend(str(note) for note in detail.get("notes", []))
    return lines


def completeness(detail: Mapping[str, Any] | None) -> str | None:
    """A warning when the score is a lower bound (parameters missing), else None."""
    if not detail or detail.get("complete", True):
        return None
    missing = len(detail.get("missing", []))
    worst = detail.get("max_total")
    could_be = f"; could be up to {_number(worst)}" if isinstance(worst, int | float) else ""
    return f"Lower bound: {missing} of 7 parameters not measured{could_be}"


def score_text(score: float | None) -> str:
    """A score as a number without a pointless decimal."""
    return "—" if score is None else _number(score)


def age(then: datetime | None, now: datetime) -> str:
    """How long ago, in the largest sensible unit ("12 min ago", "5 h ago", "3 days ago")."""
    if then is None:
        return "no readings"
    seconds = (now - then).total_seconds()
    if seconds < -300:
        return "in the future (device clock?)"
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


def stale(then: datetime | None, now: datetime, hours: float = 24) -> bool:
    """Whether the newest reading is older than ``hours`` (shown as a warning)."""
    return then is None or (now - then).total_seconds() > hours * 3600


_UNITS = {"mm[Hg]": "mmHg", "Cel": "°C", "/min": "/min", "%": "%", "kg": "kg", "[lb_av]": "lb", "cm": "cm"}


def unit(ucum: str | None) -> str:
    """A UCUM unit as people write it."""
    return "" if ucum is None else _UNITS.get(ucum, ucum)


def measured(value: Measured | None) -> str:
    """A newest value with its unit, or a dash."""
    return "—" if value is None else f"{_number(value.value)} {unit(value.unit)}".strip()


_KINDS = {
    "blood-pressure": "Blood pressure",
    "pulse-rate-cuff": "Pulse (cuff)",
    "pulse-rate-oximeter": "Pulse (oximeter)",
    "heart-rate": "Heart rate",
    "spo2": "SpO₂",
    "body-temperature": "Temperature",
    "body-weight": "Weight",
    "body-height": "Height",
    "bmi": "BMI",
    "respiration-rate": "Respiration rate",
}


def kind(name: str) -> str:
    """A reading type's name for people."""
    return _KINDS.get(name, name)


def reading(row: ReadingRow) -> str:
    """A reading's value for people: '94 %', '128/84 mmHg', or why there is no value."""
    if row.value is not None:
        return f"{_number(row.value)} {unit(row.unit)}".strip()
    comps = row.components or {}
    numbers = {key: (val.get("value") if isinstance(val, Mapping) else val) for key, val in comps.items()}
    systolic, diastolic = numbers.get("systolic"), numbers.get("diastolic")
    if isinstance(systolic, int | float) and isinstance(diastolic, int | float):
        return f"{_number(systolic)}/{_number(diastolic)} mmHg"
    shown = [f"{key} {_number(val)}" for key, val in numbers.items() if isinstance(val, int | float)]
    if shown:
        return ", ".join(shown)
    return f"no value ({row.absent_reason})" if row.absent_reason else "no value"


_CONDITIONS = {"copd": "COPD", "heart-failure": "Heart failure", "diabetes": "Diabetes", "frailty": "Frailty"}


def condition(name: str) -> str:
    """A condition code for people."""
    return _CONDITIONS.get(name, name.replace("-", " ").capitalize())


def when(moment: datetime | None) -> str:
    """A time stamp in UTC, to the minute."""
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(moment: datetime) -> str:
    """A machine-readable time for ``<time datetime=...>``."""
    return moment.astimezone(UTC).isoformat()


def patient_url(patient_id: str) -> str:
    """The local URL of a patient's page."""
    return f"/patients/{quote(patient_id, safe='')}"


def alert_url(alert_id: int) -> str:
    """The local URL that acknowledges an alert."""
    return f"/alerts/{alert_id}/acknowledge"


TEMPLATE_GLOBALS: Mapping[str, Any] = {
    "patient_url": patient_url,
    "alert_url": alert_url,
    "band": band,
    "top_reasons": top_reasons,
    "missing_reasons": missing_reasons,
    "completeness": completeness,
    "score_text": score_text,
    "age": age,
    "stale": stale,
    "measured": measured,
    "kind": kind,
    "reading": reading,
    "condition": condition,
    "when": when,
    "iso": iso,
}
