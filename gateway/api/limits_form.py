"""The limits form of a patient's page: its field names, and a submitted form read back into
``models.triage.Limits`` per vital sign with what is wrong in words. Pure: a form in, values out.

One field per vital sign and limit ("spo2-red_low"); an empty field is no limit on that side; a decimal
comma is a decimal point (Danish), so "36,5" is 36.5. A value that is not a finite number, and limits out
of order (``models.triage.disorder``), are errors that name the field to go to, for the error summary at
the top of the form and the message beside the field. What changed, storing it and showing the form
are ``gateway.api.patient_pages``'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from babel.numbers import format_decimal

from gateway.api.i18n import N_, current
from gateway.api.i18n import gettext as _
from gateway.api.patient_vitals import VITAL_SIGNS, number
from models.triage import BOUNDS, Bound, Limits, disorder


def field_name(vital: str, bound: Bound) -> str:
    """The form field (and element id) of one limit: "spo2-red_low"."""
    return f"{vital}-{bound}"


@dataclass(frozen=True, slots=True)
class FormError:
    """One problem of the submitted form: the field to go to and what is wrong, in words."""

    field: str
    message: str


_BOUND_NAMES = {
    "red_low": N_("Red below"),
    "yellow_low": N_("Yellow below"),
    "yellow_high": N_("Yellow above"),
    "red_high": N_("Red above"),
}


def bound_name(bound: str) -> str:
    """A limit's name in the form's words ("Red below")."""
    return _(_BOUND_NAMES[bound])


def form_value(value: float | None) -> str:
    """A limit as the form shows it: every decimal it has (up to four), so that saving the form
    unchanged stores nothing new; empty for no limit."""
    return "" if value is None else format_decimal(value, "0.####", locale=current().locale)


def _parse_number(text: str) -> float | None:
    """A limit as typed: empty is no limit; a decimal comma is a decimal point; ValueError otherwise."""
    text = text.strip().replace(",", ".")
    if not text:
        return None
    value = float(text)
    if not math.isfinite(value):  # "nan", "inf" and 1e999 parse, but are no limit
        raise ValueError(text)
    return value


def parse_limits(form: Mapping[str, str]) -> tuple[dict[str, Limits], dict[str, str], list[FormError]]:
    """The limits a submitted form asks for per vital sign, the fields as typed, and what is wrong."""
    wanted: dict[str, Limits] = {}
    typed: dict[str, str] = {}
    errors: list[FormError] = []
    for vital in VITAL_SIGNS:
        values: dict[str, float | None] = {}
        for bound in BOUNDS:
            name = field_name(vital.key, bound)
            typed[name] = form.get(name, "")
            try:
                values[bound] = _parse_number(typed[name])
            except ValueError:
                message = _(
                    "%(vital)s: %(limit)s must be a number, like 92 or 36.5",
                    vital=_(vital.label),
                    limit=bound_name(bound).lower(),
                )
                errors.append(FormError(name, message))
        if len(values) < len(BOUNDS):
            continue
        limits = Limits(**values)
        for lower, upper in disorder(limits):
            message = _(
                "%(vital)s: %(lower)s (%(low)s) must not be more than %(upper)s (%(high)s)",
                vital=_(vital.label),
                lower=bound_name(lower).lower(),
                low=number(values[lower] or 0),
                upper=bound_name(upper).lower(),
                high=number(values[upper] or 0),
            )
            errors.append(FormError(field_name(vital.key, lower), message))
        wanted[vital.key] = limits
    return wanted, typed, errors
