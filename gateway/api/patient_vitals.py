"""A patient's vital signs for the page: which readings make which vital sign, the limits in force, the
triage of every reading, and the charts. Pure: rows in, view values out (wording in the request's
language through ``gateway.api.i18n``).

``VITAL_SIGNS`` says which stored reading kinds (and which component of a panel) make each vital sign
of ``models.triage``; values are the canonical ones (migration 0006), so a scale in pounds plots in kg.
The limits in force are the patient's own (``gateway.store.thresholds``) or else the NEWS2 defaults
(``models.triage.default_limits``). The personal baseline band is ``models.baselines.baseline_series``
on the same series the chart shows (plus the weeks before it, so that the band exists from the first
day of the window): the usual value and ``HUBER_K`` spreads either side, the range within which a
reading moves the baseline as an ordinary one does. Drawing is ``gateway.api.charts``'.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from babel.numbers import format_decimal
from markupsafe import Markup

from gateway.api.charts import BandPoint, Chart, ChartPoint, render_chart
from gateway.api.i18n import N_, current, gettext, ngettext
from gateway.api.presenters import reading, unit, when
from gateway.store.patient_views import CanonicalReading, ReadingRow
from gateway.store.thresholds import StoredLimits
from models.baselines import HUBER_K, MIN_SPREAD, baseline_series
from models.triage import VITALS, Level, Limits, Triage, default_limits, triage, worst

# The baseline needs weeks of earlier readings (its half-life is 14 days): the page loads this much more
# than the window it plots, as the disease rules do (gateway.alerts.home_rules.HISTORY).
BASELINE_HISTORY = timedelta(days=42)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class VitalSign:
    """A vital sign as the page shows it: its key in ``models.triage``, its name, the reading kinds it
    comes from (the ``component`` of a panel), its canonical UCUM unit, and the most it can read."""

    key: str
    label: str  # English, marked for translation; shown through gettext
    kinds: tuple[str, ...]
    unit: str
    component: str | None = None
    y_max: float | None = None


VITAL_SIGNS: tuple[VitalSign, ...] = (
    VitalSign("spo2", N_("SpO₂"), ("spo2",), "%", y_max=100),
    VitalSign("pulse", N_("Pulse"), ("pulse-rate-oximeter", "pulse-rate-cuff", "heart-rate"), "/min"),
    VitalSign("systolic", N_("Systolic blood pressure"), ("blood-pressure",), "mm[Hg]", "systolic"),
    VitalSign("diastolic", N_("Diastolic blood pressure"), ("blood-pressure",), "mm[Hg]", "diastolic"),
    VitalSign("temperature", N_("Temperature"), ("body-temperature",), "Cel"),
    VitalSign("weight", N_("Weight"), ("body-weight",), "kg"),
    VitalSign("respiration_rate", N_("Respiration rate"), ("respiratory-rate",), "/min"),
)
BY_KEY: Mapping[str, VitalSign] = {vital.key: vital for vital in VITAL_SIGNS}
# Every stored kind that makes some vital sign: what the page loads for its charts.
VITAL_KINDS: frozenset[str] = frozenset(kind for vital in VITAL_SIGNS for kind in vital.kinds)
assert tuple(BY_KEY) == VITALS, "VITAL_SIGNS must name the vital signs of models.triage, in its order"


def number(value: float) -> str:
    """A number with at most one decimal, as the request's language writes it ("36,6" in Danish)."""
    return format_decimal(value, "0.#", locale=current().locale)


def with_unit(value: float, vital: VitalSign) -> str:
    """A value with its unit: "94 %", "36,6 °C"."""
    return f"{number(value)} {unit(vital.unit)}"


# --- limits -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitsInForce:
    """The limits one vital sign is triaged against, and where they come from (``own`` None: the NEWS2
    defaults)."""

    vital: VitalSign
    limits: Limits
    default: Limits
    own: StoredLimits | None


def limits_in_force(own: Mapping[str, StoredLimits], *, scale2: bool) -> dict[str, LimitsInForce]:
    """Each vital sign's limits: the patient's own where set, else the NEWS2 defaults."""
    found: dict[str, LimitsInForce] = {}
    for vital in VITAL_SIGNS:
        default = default_limits(vital.key, scale2=scale2)
        stored = own.get(vital.key)
        found[vital.key] = LimitsInForce(vital, stored.limits if stored else default, default, stored)
    return found


def triage_text(result: Triage, vital: VitalSign) -> str:
    """A triage in words, with the limit crossed: "Red: below 92 %", "Green: within the limits"."""
    if result.crossed is None or result.limit is None:
        return gettext("Green: within the limits")
    limit = with_unit(result.limit, vital)
    words = {
        "red_low": gettext("Red: below %(limit)s", limit=limit),
        "yellow_low": gettext("Yellow: below %(limit)s", limit=limit),
        "yellow_high": gettext("Yellow: above %(limit)s", limit=limit),
        "red_high": gettext("Red: above %(limit)s", limit=limit),
    }
    return words[result.crossed]


def level_name(level: Level) -> str:
    """A triage level's one word."""
    return {Level.GREEN: gettext("Green"), Level.YELLOW: gettext("Yellow"), Level.RED: gettext("Red")}[level]


# --- triage of stored readings ----------------------------------------------------------------------


def _value(vital: VitalSign, value: float | None, components: Mapping[str, float]) -> float | None:
    return components.get(vital.component) if vital.component else value


@dataclass(frozen=True, slots=True)
class TriagedReading:
    """A reading of the readings table with its triage (None: a kind no limit applies to, or no value)."""

    row: ReadingRow
    triage: Triage | None
    text: str  # the triage in words ("" without one)


def triage_row(row: ReadingRow, limits: Mapping[str, LimitsInForce]) -> TriagedReading:
    """Triage one stored reading on its canonical value; a panel by its worst component."""
    results: list[tuple[Triage, VitalSign]] = []
    if row.status == "final":
        for vital in VITAL_SIGNS:
            value = _value(vital, row.canonical_value, row.canonical_components)
            if row.kind in vital.kinds and value is not None:
                results.append((triage(vital.key, value, limits[vital.key].limits), vital))
    if not results:
        return TriagedReading(row, None, "")
    worst_result = worst([result for result, _ in results])
    vital = next(vital for result, vital in results if result == worst_result)
    return TriagedReading(row, worst_result, triage_text(worst_result, vital))


def canonical_text(row: ReadingRow) -> str:
    """A reading in its canonical unit ("81,6 kg", "128/84 mmHg"); as sent when it has no canonical
    number (an absent value says why)."""
    if row.canonical_value is not None:
        return f"{number(row.canonical_value)} {unit(row.canonical_unit)}".strip()
    systolic, diastolic = row.canonical_components.get("systolic"), row.canonical_components.get("diastolic")
    if systolic is not None and diastolic is not None:
        # A stored panel may carry no unit of its own: its components are in the vital signs' unit.
        panel_unit = row.canonical_unit or BY_KEY["systolic"].unit
        return f"{number(systolic)}/{number(diastolic)} {unit(panel_unit)}"
    return reading(row)


# --- charts -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VitalChart:
    """One vital sign over the window: its chart (None without readings in it), the newest reading in
    words, and how many readings were red, yellow and green."""

    vital: VitalSign
    svg: Markup | None
    newest: str
    newest_level: Level | None
    counts: Mapping[Level, int]


def _series(vital: VitalSign, readings: Iterable[CanonicalReading]) -> list[tuple[datetime, float]]:
    series = []
    for row in readings:
        value = _value(vital, row.value, row.components) if row.kind in vital.kinds else None
        if value is not None:
            series.append((row.effective, value))
    return series


def _band(vital: VitalSign, series: Sequence[tuple[datetime, float]]) -> tuple[BandPoint, ...]:
    """The personal baseline at each reading (learnt from the readings before it), as a band."""
    if vital.key not in MIN_SPREAD:  # no baseline is defined for it (respiration rate)
        return ()
    days = [(at - _EPOCH) / timedelta(days=1) for at, _ in series]
    baselines = baseline_series(days, [value for _, value in series], vital=vital.key)
    return tuple(
        BandPoint(at, b.center - HUBER_K * b.spread, b.center, b.center + HUBER_K * b.spread)
        for (at, _), b in zip(series, baselines, strict=True)
        if b is not None
    )


def _description(
    vital: VitalSign, points: Sequence[ChartPoint], band: Sequence[BandPoint], days: int, limits: Limits
) -> str:
    counts = {level: sum(p.level == level for p in points) for level in Level}
    parts = [
        ngettext(
            "%(num)d reading in the last %(days)d days: %(red)d red, %(yellow)d yellow, %(green)d green.",
            "%(num)d readings in the last %(days)d days: %(red)d red, %(yellow)d yellow, %(green)d green.",
            len(points),
            days=days,
            red=counts[Level.RED],
            yellow=counts[Level.YELLOW],
            green=counts[Level.GREEN],
        ),
        gettext("Newest: %(reading)s.", reading=points[-1].text),
    ]
    if band:
        usual = with_unit(band[-1].center, vital)
        parts.append(gettext("Usual value for this patient (personal baseline): %(usual)s.", usual=usual))
    if limits.unset:
        parts.append(gettext("No limits are set."))
    return " ".join(parts)


def vital_charts(
    readings: Sequence[CanonicalReading],
    limits: Mapping[str, LimitsInForce],
    *,
    now: datetime,
    days: int,
    time_zone: tzinfo,
) -> list[VitalChart]:
    """A chart of each vital sign the patient has measured (within the window plus the baseline history),
    over the ``days`` before ``now``; oldest readings first in ``readings``."""
    start = now - timedelta(days=days)
    charts: list[VitalChart] = []
    for vital in VITAL_SIGNS:
        series = _series(vital, readings)
        if not series:
            continue
        in_force = limits[vital.key].limits
        band = _band(vital, series)
        points = tuple(
            ChartPoint(
                at,
                value,
                result.level,
                f"{with_unit(value, vital)}, {when(at)}: {triage_text(result, vital)}",
            )
            for at, value in series
            if at > start
            for result in (triage(vital.key, value, in_force),)
        )
        counts = {level: sum(p.level == level for p in points) for level in Level}
        if not points:
            charts.append(VitalChart(vital, None, "", None, counts))
            continue
        label = gettext(vital.label)
        chart = Chart(
            key=vital.key,
            title=gettext("%(vital)s, last %(days)d days", vital=label, days=days),
            description=_description(vital, points, band, days, in_force),
            start=start,
            end=max(now, points[-1].at),
            points=points,
            band=tuple(b for b in band if b.at > start),
            limits=in_force,
            time_zone=time_zone,
            number=number,
            min_span=4 * MIN_SPREAD.get(vital.key, 1.0),
            y_max=vital.y_max,
        )
        charts.append(VitalChart(vital, render_chart(chart), points[-1].text, points[-1].level, counts))
    return charts
