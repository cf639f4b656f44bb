"""Turning rows into what a nurse reads: bands, reasons, ages, values with units. Pure functions.

The NEWS2 ``detail`` is ``models.news2.News2Result.to_dict()``: ``parameters`` (name, charted value,
points), ``missing`` (each with a ``text``), ``notes``, ``complete`` and ``max_total``. Older or other
shapes fall back to a plain ``reasons`` list. The templates call these functions; nothing here reads the
database or the clock (``now`` is passed in).

Wording is English in the code and translated through ``gateway.api.i18n`` (tables of names are marked
with ``N_`` and translated when shown); numbers, times and durations are formatted by Babel with the
CLDR conventions of the request's language ("36,6 °C", "2. mar. 2025 00.30", "for 2 timer siden") and
in its time zone (Europe/Copenhagen), so no UTC time reaches the screen. ``iso`` keeps the offset for
``<time datetime>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from babel.dates import format_date, format_skeleton, format_timedelta
from babel.numbers import format_decimal

from gateway.api.i18n import N_, current, gettext, ngettext
from gateway.api.model_words import model_text
from gateway.store.patient_views import ReadingRow
from gateway.store.worklist import Measured


@dataclass(frozen=True, slots=True)
class BandView:
    """How a NEWS2 band is shown: always a text, never colour alone."""

    css: str
    label: str
    action: str


# The English source of each band's words; ``band`` translates them.
BANDS: Mapping[str, BandView] = {
    "low": BandView("band-low", N_("Low"), N_("routine monitoring")),
    "low-medium": BandView("band-low-medium", N_("Low-medium"), N_("a single red parameter: review soon")),
    "medium": BandView("band-medium", N_("Medium"), N_("urgent review")),
    "high": BandView("band-high", N_("High"), N_("emergency assessment")),
}
NO_BAND = BandView("band-none", N_("No score"), N_("no NEWS2 yet"))


def band(name: str | None) -> BandView:
    """The view of a band name in the current language (unknown names are shown as they are)."""
    if name is None:
        found = NO_BAND
    elif name in BANDS:
        found = BANDS[name]
    else:
        return BandView("band-none", name, "")
    return BandView(found.css, gettext(found.label), gettext(found.action))


_PARAMETER_LABELS = {
    "respiration_rate": (N_("Respiration rate"), " /min"),
    "spo2": (N_("SpO₂"), " %"),
    "air_or_oxygen": (N_("Air or oxygen"), ""),
    "systolic_bp": (N_("Systolic BP"), " mmHg"),
    "pulse": (N_("Pulse"), " /min"),
    "consciousness": (N_("Consciousness"), ""),
    "temperature": (N_("Temperature"), " °C"),
}


def _points(points: int) -> str:
    return ngettext("%(num)d point", "%(num)d points", points)


def _number(value: float) -> str:
    """At most one decimal, none when it is 0, with the language's decimal sign ("36,6" in Danish)."""
    return format_decimal(value, "0.#", locale=current().locale)


# Air or oxygen is said in words, not as a label and a value.
_AIR_OR_OXYGEN = {"air": N_("On air"), "oxygen": N_("On oxygen")}


def _parameter_text(parameter: Mapping[str, Any]) -> str:
    name = str(parameter.get("name", "?"))
    value = parameter.get("charted", parameter.get("value"))
    points = _points(int(parameter.get("points", 0)))
    if name == "air_or_oxygen" and value in _AIR_OR_OXYGEN:
        return f"{gettext(_AIR_OR_OXYGEN[str(value)])}: {points}"
    label, unit = _PARAMETER_LABELS.get(name, (name, ""))
    label = gettext(label) if name in _PARAMETER_LABELS else label
    shown = _number(value) if isinstance(value, int | float) else str(value)
    return f"{label} {shown}{unit}: {points}"


def parameter_label(name: str) -> str:
    """A NEWS2 parameter's name for people ("Respiration rate"); an unknown name as it is."""
    return gettext(_PARAMETER_LABELS[name][0]) if name in _PARAMETER_LABELS else name


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


def _missing_text(missing: Mapping[str, Any]) -> str:
    """A missing parameter as a sentence, worded here from its name and reason; a reason this code does
    not know keeps the model's English ``text``."""
    name = str(missing.get("name", "?"))
    label = parameter_label(name)
    reason, seconds = missing.get("reason"), missing.get("age_seconds")
    if reason == "not-recorded":
        return gettext("%(parameter)s not recorded: not scored", parameter=label)
    if reason == "stale" and isinstance(seconds, int | float):
        return gettext(
            "%(parameter)s last measured %(ago)s: too old to score", parameter=label, ago=_ago(seconds)
        )
    if reason == "future":
        return gettext(
            "%(parameter)s time-stamped in the future (device clock?): not scored", parameter=label
        )
    return model_text(str(missing.get("text", name)))


def missing_reasons(detail: Mapping[str, Any] | None) -> list[str]:
    """What the score does not know: each missing parameter and each note, as sentences (the notes are
    the model's, reworded by ``model_words``)."""
    if not detail:
        return []
    lines = [_missing_text(m) for m in detail.get("missing", []) if isinstance(m, Mapping)]
    lines.extend(model_text(str(note)) for note in detail.get("notes", []))
    return lines


def completeness(detail: Mapping[str, Any] | None) -> str | None:
    """A warning when the score is a lower bound (parameters missing), else None."""
    if not detail or detail.get("complete", True):
        return None
    missing = len(detail.get("missing", []))
    worst = detail.get("max_total")
    if isinstance(worst, int | float):
        return gettext(
            "Lower bound: %(missing)d of 7 parameters not measured; could be up to %(worst)s",
            missing=missing,
            worst=_number(worst),
        )
    return gettext("Lower bound: %(missing)d of 7 parameters not measured", missing=missing)


def score_text(score: float | None) -> str:
    """A score as a number without a pointless decimal."""
    return "—" if score is None else _number(score)


# How an age is rounded down to one unit: minutes below an hour, hours below two days (a nurse reads
# "30 hours ago" as more precise than "1 day ago"), days beyond. Babel words it in the language's way.
_AGE_UNITS: tuple[tuple[float, Literal["minute", "hour", "day"], int], ...] = (
    (3600, "minute", 60),
    (48 * 3600, "hour", 3600),
    (float("inf"), "day", 86400),
)


def _ago(seconds: float) -> str:
    """``seconds`` (at least a minute) ago, rounded down to one unit, in the current language."""
    unit_name, unit_seconds = next((name, size) for below, name, size in _AGE_UNITS if seconds < below)
    whole = timedelta(seconds=-(seconds // unit_seconds) * unit_seconds)  # negative: "ago"
    # An infinite threshold keeps Babel at ``granularity`` instead of rounding up to a larger unit.
    return format_timedelta(
        whole, granularity=unit_name, threshold=float("inf"), add_direction=True, locale=current().locale
    )


def age(then: datetime | None, now: datetime) -> str:
    """How long ago, in the largest sensible unit ("for 12 minutter siden", "5 hours ago", "3 days ago")."""
    if then is None:
        return gettext("no readings")
    seconds = (now - then).total_seconds()
    if seconds < -300:
        return gettext("in the future (device clock?)")
    if seconds < 60:
        return gettext("just now")
    return _ago(seconds)


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


# Every reading kind of the contract (``fhir/terminology.json``), as the readings table names it.
_KINDS = {
    "blood-pressure": N_("Blood pressure"),
    "pulse-rate-cuff": N_("Pulse (cuff)"),
    "pulse-rate-oximeter": N_("Pulse (oximeter)"),
    "pulse-rate-oximeter-fast": N_("Pulse (oximeter, fast response)"),
    "pulse-rate-oximeter-slow": N_("Pulse (oximeter, slow response)"),
    "heart-rate": N_("Heart rate"),
    "rr-interval": N_("RR interval"),
    "spo2": N_("SpO₂"),
    "spo2-fast": N_("SpO₂ (fast response)"),
    "spo2-slow": N_("SpO₂ (slow response)"),
    "respiratory-rate": N_("Respiration rate"),
    "body-temperature": N_("Temperature"),
    "body-weight": N_("Weight"),
    "body-height": N_("Height"),
    "bmi": N_("BMI"),
    "body-fat-percentage": N_("Body fat percentage"),
    "fat-free-mass": N_("Fat-free mass"),
    "soft-lean-mass": N_("Soft lean mass"),
    "body-water-mass": N_("Body water"),
    "body-impedance": N_("Body impedance"),
    "basal-metabolism": N_("Basal metabolism"),
    "muscle-percentage": N_("Muscle percentage"),
    "muscle-mass": N_("Muscle mass"),
    "energy-expended": N_("Energy expended"),
    "glucose-capillary-whole-blood": N_("Glucose, capillary whole blood"),
    "glucose-capillary-plasma": N_("Glucose, capillary plasma"),
    "glucose-venous-whole-blood": N_("Glucose, venous whole blood"),
    "glucose-venous-plasma": N_("Glucose, venous plasma"),
    "glucose-arterial-whole-blood": N_("Glucose, arterial whole blood"),
    "glucose-arterial-plasma": N_("Glucose, arterial plasma"),
    "glucose-undetermined-whole-blood": N_("Glucose, whole blood (sample type unknown)"),
    "glucose-undetermined-plasma": N_("Glucose, plasma (sample type unknown)"),
    "cgm-glucose": N_("Glucose (continuous monitor)"),
    # Not a reading kind: a measurement plan's (fhir_contract.plan), the key of its 'missing' alert.
    "glucose": N_("Blood glucose"),
    "battery-level": N_("Battery level"),
}
# The parts of a blood-pressure panel, when a panel lacks systolic or diastolic.
_COMPONENTS = {"systolic": N_("systolic"), "diastolic": N_("diastolic"), "mean": N_("mean")}
# Why a reading has no number (http://terminology.hl7.org/CodeSystem/data-absent-reason: the codes the hub
# gives a device's special values, ``edge_agent.gatt.ieee11073``, and the implausible-value code).
_ABSENT_REASONS = {
    "not-a-number": N_("not a number"),
    "error": N_("device error"),
    "positive-infinity": N_("above the measuring range"),
    "negative-infinity": N_("below the measuring range"),
    "unknown": N_("unknown"),
}
# An Observation's status (FHIR R4 ObservationStatus) beside a reading that is not final.
_STATUSES = {
    "registered": N_("registered"),
    "preliminary": N_("preliminary"),
    "amended": N_("amended"),
    "corrected": N_("corrected"),
    "cancelled": N_("cancelled"),
    "entered-in-error": N_("entered in error"),
    "unknown": N_("unknown"),
}


def kind(name: str) -> str:
    """A reading type's name for people."""
    return gettext(_KINDS[name]) if name in _KINDS else name


def reading(row: ReadingRow) -> str:
    """A reading's value for people: '94 %', '128/84 mmHg', or why there is no value."""
    if row.value is not None:
        return f"{_number(row.value)} {unit(row.unit)}".strip()
    comps = row.components or {}
    numbers = {key: (val.get("value") if isinstance(val, Mapping) else val) for key, val in comps.items()}
    systolic, diastolic = numbers.get("systolic"), numbers.get("diastolic")
    if isinstance(systolic, int | float) and isinstance(diastolic, int | float):
        return f"{_number(systolic)}/{_number(diastolic)} mmHg"
    shown = [
        f"{gettext(_COMPONENTS[key]) if key in _COMPONENTS else key} {_number(val)}"
        for key, val in numbers.items()
        if isinstance(val, int | float)
    ]
    if shown:
        return ", ".join(shown)
    if row.absent_reason:
        reason = _ABSENT_REASONS.get(row.absent_reason)
        return gettext("no value (%(reason)s)", reason=gettext(reason) if reason else row.absent_reason)
    return gettext("no value")


def reading_status(code: str) -> str:
    """An Observation's status in words ("preliminary"); an unknown code as it is."""
    return gettext(_STATUSES[code]) if code in _STATUSES else code


_CONDITIONS = {
    "copd": N_("COPD"),
    "heart-failure": N_("Heart failure"),
    "diabetes": N_("Diabetes"),
    "frailty": N_("Frailty"),
}


def condition(name: str) -> str:
    """A condition code for people."""
    if name in _CONDITIONS:
        return gettext(_CONDITIONS[name])
    return name.replace("-", " ").capitalize()


def when(moment: datetime | None) -> str:
    """A date and time to the minute, in the user's zone and language ("2. mar. 2025 00.30")."""
    if moment is None:
        return "—"
    localization = current()
    zone, locale = localization.time_zone, localization.locale
    date_part = format_skeleton("yMMMd", moment, tzinfo=zone, locale=locale)
    time_part = format_skeleton("Hm", moment, tzinfo=zone, locale=locale)  # 24-hour in both languages
    return str(locale.datetime_formats["medium"]).format(time_part, date_part)


def day(moment: datetime | None) -> str:
    """The date of ``moment`` in the user's zone and language ("2. mar. 2025")."""
    if moment is None:
        return "—"
    localization = current()
    return format_date(moment.astimezone(localization.time_zone), "medium", locale=localization.locale)


def iso(moment: datetime) -> str:
    """A machine-readable time for ``<time datetime=...>``, in the user's zone with its offset."""
    return moment.astimezone(current().time_zone).isoformat()


def patient_url(patient_id: str) -> str:
    """The local URL of a patient's page."""
    return f"/patients/{quote(patient_id, safe='')}"


def alert_url(alert_id: int) -> str:
    """The local URL of an alert's page (its history and the forms to act on it: ``alert_pages``)."""
    return f"/alerts/{alert_id}"


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
    "model_text": model_text,
    "reading_status": reading_status,
    "reading": reading,
    "condition": condition,
    "when": when,
    "day": day,
    "iso": iso,
}
