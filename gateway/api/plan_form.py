"""The measurement-plan form of a patient's page: its fields, the plan shown in them, and a submitted form
read back into ``fhir_contract.plan`` items with what is wrong in words. Pure: a form in, values out.

One fieldset per measurement of ``fhir_contract.plan.MEASUREMENTS``: a checkbox that puts it in the plan
("blood-pressure-on"), the times of day in one text field ("blood-pressure-times": "08:00, 20:00"; a
comma, a semicolon or a space between; 8, 8:00, 08.00 and 0800 all read as 08:00, the way Danish and
English write a time), a checkbox per weekday ("blood-pressure-day-1" for Monday ... "-day-7") and the
grace in minutes ("blood-pressure-grace", 15 to 1,440). A measurement left unchecked is not in the plan,
whatever its other fields hold; nothing checked is no plan. Each error names the field to go to, for the
error summary at the top of the form and the message beside the field; what was typed is kept. Storing
the plan and telling the hub are ``gateway.administration.plans``'s; the page is ``plan_pages``'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from babel.dates import format_skeleton, format_timedelta, get_day_names

from fhir_contract.plan import ALL_DAYS, MAX_GRACE, MAX_TIMES, MEASUREMENTS, MIN_GRACE, PlanItem
from gateway.api.i18n import N_, current
from gateway.api.i18n import gettext as _

#: The measurements as the form and the patient page name them.
MEASUREMENT_LABELS: Mapping[str, str] = {
    "blood-pressure": N_("Blood pressure"),
    "spo2": N_("SpO₂"),
    "weight": N_("Weight"),
    "temperature": N_("Temperature"),
    "glucose": N_("Blood glucose"),
}
assert tuple(MEASUREMENT_LABELS) == MEASUREMENTS
WEEKDAYS = tuple(range(1, 8))  # ISO: 1 = Monday ... 7 = Sunday
DEFAULT_GRACE_MINUTES = 120  # the contract's default (fhir_contract.plan.PlanItem.grace)
CHECKED = "yes"
# A time as people type it: 8, 08, 8:00, 08.00, 0800.
_TIME = re.compile(r"([01]?[0-9]|2[0-3])(?:[:.]?([0-5][0-9]))?")
_SEPARATORS = re.compile(r"[,;\s]+")


def field_name(measurement: str, part: str) -> str:
    """A field (and element id) of the form: "blood-pressure-times", "weight-day-3"."""
    return f"{measurement}-{part}"


def measurement_label(measurement: str) -> str:
    """A measurement in the reader's language ("Blodtryk")."""
    label = MEASUREMENT_LABELS.get(measurement)
    return _(label) if label else measurement


def day_name(day: int, width: Literal["abbreviated", "wide"] = "abbreviated") -> str:
    """An ISO weekday's name in the reader's language ("man.", "mandag")."""
    names = get_day_names(width, locale=current().locale)  # babel's 0 is Monday
    return str(names[day - 1])


def clock(at: time) -> str:
    """A time of day on the 24-hour clock as the reader's language writes it ("08.00" in Danish, "08:00"
    in English; the form reads both back)."""
    return str(format_skeleton("Hm", datetime.combine(date(2000, 1, 1), at), locale=current().locale))


def grace_text(grace: timedelta) -> str:
    """The grace in words: whole hours as hours ("2 timer"), anything else in minutes ("90 minutter")."""
    whole_hours = grace.total_seconds() % 3600 == 0
    return str(
        format_timedelta(
            grace,
            granularity="hour" if whole_hours else "minute",
            threshold=1 if whole_hours else 10_000,
            locale=current().locale,
        )
    )


def days_text(days: frozenset[int]) -> str:
    """The weekdays of an item in words: "every day", or their short names in week order."""
    if days == ALL_DAYS:
        return _("every day")
    return ", ".join(day_name(day) for day in sorted(days))


@dataclass(frozen=True, slots=True)
class FormError:
    """One problem of the submitted form: the field to go to and what is wrong, in words."""

    field: str
    message: str


def form_values(items: Sequence[PlanItem]) -> dict[str, str]:
    """The form's fields showing ``items`` (a measurement not in the plan: unchecked, every day, the
    default grace), as a submitted form would carry them; times as the reader writes them (``clock``)."""
    by_measurement = {item.measurement: item for item in items}
    values: dict[str, str] = {}
    for measurement in MEASUREMENTS:
        item = by_measurement.get(measurement)
        if item is not None:
            values[field_name(measurement, "on")] = CHECKED
        values[field_name(measurement, "times")] = (
            "" if item is None else ", ".join(clock(at) for at in item.times)
        )
        for day in WEEKDAYS if item is None else sorted(item.days):
            values[field_name(measurement, f"day-{day}")] = CHECKED
        grace = DEFAULT_GRACE_MINUTES if item is None else int(item.grace.total_seconds() // 60)
        values[field_name(measurement, "grace")] = str(grace)
    return values


def _times(text: str) -> tuple[time, ...] | str:
    """The times typed, sorted, each once; or the token that is not a time."""
    found: set[time] = set()
    for token in _SEPARATORS.split(text.strip()):
        if not token:
            continue
        match = _TIME.fullmatch(token)
        if match is None:
            return token
        found.add(time(int(match[1]), int(match[2] or 0)))
    return tuple(sorted(found))


def parse_plan_form(form: Mapping[str, str]) -> tuple[tuple[PlanItem, ...], dict[str, str], list[FormError]]:
    """The plan a submitted form asks for, the fields as typed (to show again), and what is wrong."""
    typed = {name: value for name, value in form.items() if name != "csrf"}
    items: list[PlanItem] = []
    errors: list[FormError] = []
    for measurement in MEASUREMENTS:
        if form.get(field_name(measurement, "on")) != CHECKED:
            continue
        label = measurement_label(measurement)
        times_field = field_name(measurement, "times")
        times = _times(form.get(times_field, ""))
        if isinstance(times, str):
            errors.append(
                FormError(
                    times_field,
                    _(
                        "%(measurement)s: “%(value)s” is not a time of day; write it as 08:00.",
                        measurement=label,
                        value=times,
                    ),
                )
            )
        elif not times:
            errors.append(
                FormError(
                    times_field,
                    _("%(measurement)s: write at least one time of day, such as 08:00.", measurement=label),
                )
            )
        elif len(times) > MAX_TIMES:
            errors.append(
                FormError(
                    times_field,
                    _("%(measurement)s: at most %(max)d times a day.", measurement=label, max=MAX_TIMES),
                )
            )
        days = frozenset(
            day for day in WEEKDAYS if form.get(field_name(measurement, f"day-{day}")) == CHECKED
        )
        if not days:
            errors.append(
                FormError(
                    field_name(measurement, "day-1"),
                    _("%(measurement)s: choose at least one day.", measurement=label),
                )
            )
        grace_field = field_name(measurement, "grace")
        grace = _minutes(form.get(grace_field, ""))
        if grace is None:
            errors.append(
                FormError(
                    grace_field,
                    _(
                        "%(measurement)s: the grace is a whole number of minutes from %(low)d to %(high)d.",
                        measurement=label,
                        low=MIN_GRACE // timedelta(minutes=1),
                        high=MAX_GRACE // timedelta(minutes=1),
                    ),
                )
            )
        if isinstance(times, tuple) and 0 < len(times) <= MAX_TIMES and days and grace is not None:
            items.append(PlanItem(measurement, times, days, grace))
    return (tuple(items) if not errors else ()), typed, errors


def _minutes(text: str) -> timedelta | None:
    """The grace typed, in minutes; None when it is not a whole number within the contract's range."""
    text = text.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 5:
        return None
    grace = timedelta(minutes=int(text))
    return grace if MIN_GRACE <= grace <= MAX_GRACE else None
