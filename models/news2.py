"""NEWS2, the National Early Warning Score 2, exactly as the Royal College of Physicians' 2017 chart.

Values in, values out: `score_news2(vitals, now)` takes one `VitalSigns` (each measured parameter with its
own observation time) and returns a frozen `News2Result` with the aggregate, the clinical-risk band, the
points of every parameter that was scored, and the parameters that were not. It does no I/O and reads no
clock; which observations to feed it, whether a patient is on scale 2 (a clinician's decision recorded on
the patient), storing the result as a FHIR RiskAssessment and alerting are left to others.

The chart (RCP, "National Early Warning Score (NEWS) 2", 2017):

    parameter            3        2        1        0              1          2          3
    respiration rate     <=8               9-11     12-20                     21-24      >=25
    SpO2 scale 1         <=91     92-93    94-95    >=96
    SpO2 scale 2         <=83     84-85    86-87    88-92,         93-94 O2   95-96 O2   >=97 O2
                                                    >=93 on air
    air or oxygen                 oxygen            air
    systolic BP          <=90     91-100   101-110  111-219                              >=220
    pulse                <=40              41-50    51-90          91-110     111-130    >=131
    consciousness                                   alert                                new confusion,
                                                                                         voice, pain,
                                                                                         unresponsive
    temperature          <=35.0            35.1-36.0 36.1-38.0     38.1-39.0  >=39.1

Clinical-risk band: aggregate 0-4 low; a score of 3 in any single parameter (a "red score") with an
aggregate of 4 or less low-medium; 5-6 medium; 7 or more high.

Rounding rule. The chart has no rows between its whole numbers (respiration rate, SpO2, systolic BP,
pulse) or between its tenths of a degree (temperature). A value that falls between rows is first rounded
to the chart's resolution, half away from zero ("half up" for these positive values), on its shortest
decimal spelling (`repr`), so that 35.05 is 35.1 (1 point) and not 35.0 because of binary floating point;
then it is looked up. So systolic 90.5 charts as 91 (2 points), 90.49 as 90 (3 points); SpO2 95.5 as 96
(0 points); temperature 38.04 as 38.0 (0 points) and 38.05 as 38.1 (1 point). The charted value is
what `ParameterScore.charted` and the reasons show.

Missing is never normal. A home usually has no respiration rate and no ACVPU assessment: such a
parameter is listed in `missing` with why (not recorded, older than `max_age`, or time-stamped in the
future), the result has `complete=False`, its `total` is the sum over the parameters that were scored
(a lower bound), and `max_total` says how high the aggregate could be if every missing parameter scored
its worst.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Literal

from models.errors import ModelsError

Parameter = Literal[
    "respiration_rate", "spo2", "air_or_oxygen", "systolic_bp", "pulse", "consciousness", "temperature"
]
Band = Literal["low", "low-medium", "medium", "high"]
MissingReason = Literal["not-recorded", "stale", "future"]

#: The seven parameters in the chart's order.
PARAMETERS: Final[tuple[Parameter, ...]] = (
    "respiration_rate",
    "spo2",
    "air_or_oxygen",
    "systolic_bp",
    "pulse",
    "consciousness",
    "temperature",
)

#: The most points each parameter can score (used for `News2Result.max_total`).
MAX_POINTS: Final[dict[Parameter, int]] = {
    "respiration_rate": 3,
    "spo2": 3,
    "air_or_oxygen": 2,
    "systolic_bp": 3,
    "pulse": 3,
    "consciousness": 3,
    "temperature": 3,
}

#: Parameters older than this count as missing unless the caller passes another `max_age`.
DEFAULT_MAX_AGE: Final = timedelta(hours=24)

# A device clock a few minutes fast is common and harmless; a reading from hours ahead is a clock error
# and says nothing about the patient now, so beyond this tolerance it counts as missing.
FUTURE_TOLERANCE: Final = timedelta(minutes=5)

# Chart resolution: whole numbers, and tenths of a degree for temperature.
_WHOLE: Final = Decimal("1")
_TENTH: Final = Decimal("0.1")

# Each band table lists (highest charted value in the row, points) in rising order; None closes the
# table (no upper limit).
_Rows = tuple[tuple[Decimal | None, int], ...]


def _rows(*rows: tuple[str | None, int]) -> _Rows:
    return tuple((None if top is None else Decimal(top), points) for top, points in rows)


_RESPIRATION_RATE: Final = _rows(("8", 3), ("11", 1), ("20", 0), ("24", 2), (None, 3))
_SPO2_SCALE1: Final = _rows(("91", 3), ("93", 2), ("95", 1), (None, 0))
_SPO2_SCALE2_AIR: Final = _rows(("83", 3), ("85", 2), ("87", 1), (None, 0))
_SPO2_SCALE2_OXYGEN: Final = _rows(
    ("83", 3), ("85", 2), ("87", 1), ("92", 0), ("94", 1), ("96", 2), (None, 3)
)
_SYSTOLIC_BP: Final = _rows(("90", 3), ("100", 2), ("110", 1), ("219", 0), (None, 3))
_PULSE: Final = _rows(("40", 3), ("50", 1), ("90", 0), ("110", 1), ("130", 2), (None, 3))
_TEMPERATURE: Final = _rows(("35.0", 3), ("36.0", 1), ("38.0", 0), ("39.0", 1), (None, 2))

# Values outside these limits are not a patient's vital sign but a data error (a temperature of 98.6 is
# Fahrenheit); scoring them would put a wrong number in front of a nurse, so they are refused.
_LIMITS: Final[dict[Parameter, tuple[float, float]]] = {
    "respiration_rate": (0.0, 100.0),
    "spo2": (0.0, 100.0),
    "systolic_bp": (0.0, 350.0),
    "pulse": (0.0, 350.0),
    "temperature": (20.0, 45.0),
}

_ACVPU_WORDS: Final[dict[str, str]] = {
    "a": "A",
    "alert": "A",
    "c": "C",
    "confusion": "C",
    "new confusion": "C",
    "new-confusion": "C",
    "v": "V",
    "voice": "V",
    "p": "P",
    "pain": "P",
    "u": "U",
    "unresponsive": "U",
}
_ACVPU_LABELS: Final[dict[str, str]] = {
    "A": "alert",
    "C": "new confusion",
    "V": "responds to voice",
    "P": "responds to pain",
    "U": "unresponsive",
}
_LABELS: Final[dict[Parameter, str]] = {
    "respiration_rate": "Respiration rate",
    "spo2": "SpO2",
    "air_or_oxygen": "Air or oxygen",
    "systolic_bp": "Systolic BP",
    "pulse": "Pulse",
    "consciousness": "Consciousness",
    "temperature": "Temperature",
}
_UNITS: Final[dict[Parameter, str]] = {
    "respiration_rate": " /min",
    "spo2": " %",
    "systolic_bp": " mmHg",
    "pulse": " /min",
    "temperature": " °C",
}


class News2Error(ModelsError):
    """An input NEWS2 cannot score: a value outside physiological limits, an unknown ACVPU, mixed clocks."""

    def __init__(self, parameter: str, value: object, reason: str) -> None:
        super().__init__(f"NEWS2 {parameter}={value!r}: {reason}")
        self.parameter = parameter
        self.value = value
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Measured:
    """One observed value and the time it was observed."""

    value: float
    at: datetime


@dataclass(frozen=True, slots=True)
class VitalSigns:
    """What is known about a patient for one NEWS2; None means not recorded.

    `on_oxygen` and `acvpu` carry no time of their own: they are taken to hold at the assessment time.
    `scale2` selects SpO2 scale 2, for patients with confirmed hypercapnic respiratory failure only.
    """

    respiration_rate: Measured | None = None
    spo2: Measured | None = None
    systolic_bp: Measured | None = None
    pulse: Measured | None = None
    temperature: Measured | None = None
    on_oxygen: bool | None = None
    acvpu: str | None = None
    scale2: bool = False


@dataclass(frozen=True, slots=True)
class ParameterScore:
    """The points one parameter scored; `at` and `age` are None for parameters without a time."""

    name: Parameter
    value: float | str
    points: int
    at: datetime | None
    age: timedelta | None
    detail: str = ""

    @property
    def charted(self) -> float | str:
        """The value as the chart reads it (rounded to the chart's resolution, see the module docstring)."""
        if isinstance(self.value, str):
            return self.value
        return float(chart_value(self.name, self.value))

    def describe(self) -> str:
        """One line for a nurse, e.g. "SpO2 91 % (scale 1): 3 points"."""
        if self.name == "air_or_oxygen":
            text = "On oxygen" if self.value == "oxygen" else "On air"
        elif self.name == "consciousness":
            text = f"Consciousness {self.value} ({_ACVPU_LABELS.get(str(self.value), '?')})"
        else:
            text = f"{_LABELS[self.name]} {_format_charted(self.name, self.value)}{_UNITS[self.name]}"
            if self.detail:
                text += f" ({self.detail})"
        return f"{text}: {_points_text(self.points)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "value": self.value,
            "charted": self.charted,
            "points": self.points,
            "at": None if self.at is None else self.at.isoformat(),
            "age_seconds": None if self.age is None else self.age.total_seconds(),
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class MissingParameter:
    """A parameter that was not scored, and why."""

    name: Parameter
    reason: MissingReason
    at: datetime | None = None
    age: timedelta | None = None
    max_age: timedelta | None = None

    def describe(self) -> str:
        """One line for a nurse, e.g. "Respiration rate not recorded: not scored"."""
        label = _LABELS[self.name]
        if self.reason == "stale" and self.age is not None and self.max_age is not None:
            return (
                f"{label} last measured {_format_age(self.age)} ago "
                f"(older than {_format_age(self.max_age)}): not scored"
            )
        if self.reason == "future" and self.age is not None:
            ahead = _format_age(-self.age)
            return f"{label} time-stamped {ahead} after the assessment (device clock?): not scored"
        return f"{label} not recorded: not scored"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "reason": self.reason,
            "at": None if self.at is None else self.at.isoformat(),
            "age_seconds": None if self.age is None else self.age.total_seconds(),
            "text": self.describe(),
        }


@dataclass(frozen=True, slots=True)
class News2Result:
    """A NEWS2: aggregate, band, what was scored, what was not (and why)."""

    total: int
    band: Band
    scale: Literal[1, 2]
    parameters: tuple[ParameterScore, ...]
    missing: tuple[Parameter, ...]
    missing_details: tuple[MissingParameter, ...]
    max_total: int
    assessed_at: datetime
    max_age: timedelta
    notes: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """True when all seven parameters were scored; otherwise `total` is a lower bound."""
        return not self.missing

    @property
    def red_score(self) -> bool:
        """True when any single parameter scored 3."""
        return any(p.points == 3 for p in self.parameters)

    def reasons(self, limit: int | None = None) -> tuple[str, ...]:
        """Human-readable reasons: the scoring parameters, most points first (at most `limit` of them),
        then every missing parameter and every note, because a nurse must see what the score does not know."""
        scoring = sorted(
            (p for p in self.parameters if p.points > 0),
            key=lambda p: (-p.points, PARAMETERS.index(p.name)),
        )
        lines = [p.describe() for p in scoring[:limit]]
        if not scoring:
            lines.append("No parameter scores points")
        lines.extend(m.describe() for m in self.missing_details)
        lines.extend(self.notes)
        return tuple(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "score": "NEWS2",
            "total": self.total,
            "band": self.band,
            "complete": self.complete,
            "max_total": self.max_total,
            "red_score": self.red_score,
            "scale": self.scale,
            "assessed_at": self.assessed_at.isoformat(),
            "max_age_seconds": self.max_age.total_seconds(),
            "parameters": [p.to_dict() for p in self.parameters],
            "missing": [m.to_dict() for m in self.missing_details],
            "notes": list(self.notes),
            "reasons": list(self.reasons()),
        }


# --- per-parameter points ---------------------------------------------------------------------------


def chart_value(parameter: Parameter, value: float) -> Decimal:
    """`value` rounded half up to the chart's resolution for `parameter` (0.1 °C for temperature, else 1)."""
    limits = _LIMITS.get(parameter)
    if limits is None:
        raise News2Error(parameter, value, "not a numeric NEWS2 parameter")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise News2Error(parameter, value, "not a finite number")
    low, high = limits
    if not low <= value <= high:
        raise News2Error(parameter, value, f"outside physiological limits {low:g}-{high:g}")
    step = _TENTH if parameter == "temperature" else _WHOLE
    return Decimal(repr(value)).quantize(step, rounding=ROUND_HALF_UP)


def _lookup(rows: _Rows, charted: Decimal) -> int:
    for top, points in rows:
        if top is None or charted <= top:
            return points
    raise AssertionError("band tables end with an open row")  # pragma: no cover


def respiration_rate_points(rate: float) -> int:
    """Points for a respiration rate (breaths/min)."""
    return _lookup(_RESPIRATION_RATE, chart_value("respiration_rate", rate))


def spo2_points(spo2: float, *, scale2: bool = False, on_oxygen: bool = False) -> int:
    """Points for SpO2 (%) on scale 1, or on scale 2 where 93 % and above scores only on oxygen."""
    charted = chart_value("spo2", spo2)
    if not scale2:
        return _lookup(_SPO2_SCALE1, charted)
    return _lookup(_SPO2_SCALE2_OXYGEN if on_oxygen else _SPO2_SCALE2_AIR, charted)


def air_or_oxygen_points(on_oxygen: bool) -> int:
    """Points for supplemental oxygen: 2 on oxygen, 0 on air."""
    return 2 if on_oxygen else 0


def systolic_bp_points(systolic: float) -> int:
    """Points for systolic blood pressure (mmHg)."""
    return _lookup(_SYSTOLIC_BP, chart_value("systolic_bp", systolic))


def pulse_points(pulse: float) -> int:
    """Points for pulse (beats/min)."""
    return _lookup(_PULSE, chart_value("pulse", pulse))


def temperature_points(temperature: float) -> int:
    """Points for temperature (°C)."""
    return _lookup(_TEMPERATURE, chart_value("temperature", temperature))


def normalise_acvpu(acvpu: str) -> str:
    """The ACVPU letter for a letter or word ("A", "alert", "new confusion", "voice", ...)."""
    letter = _ACVPU_WORDS.get(acvpu.strip().lower()) if isinstance(acvpu, str) else None
    if letter is None:
        raise News2Error("consciousness", acvpu, "not one of A, C, V, P, U")
    return letter


def consciousness_points(acvpu: str) -> int:
    """Points for ACVPU: 0 when alert, 3 for new confusion, voice, pain or unresponsive."""
    return 0 if normalise_acvpu(acvpu) == "A" else 3


def band_for(total: int, red_score: bool) -> Band:
    """The clinical-risk band for an aggregate, given whether any single parameter scored 3."""
    if total >= 7:
        return "high"
    if total >= 5:
        return "medium"
    return "low-medium" if red_score else "low"


# --- the score ----------------------------------------------------------------------------------------


def score_news2(vitals: VitalSigns, now: datetime, max_age: timedelta = DEFAULT_MAX_AGE) -> News2Result:
    """NEWS2 at `now` from `vitals`; parameters older than `max_age` count as missing."""
    if max_age <= timedelta(0):
        raise News2Error("max_age", max_age, "must be positive")
    scores: list[ParameterScore] = []
    missing: list[MissingParameter] = []
    notes: list[str] = []
    extra_worst = 0  # how much more than scored the aggregate could be where the input is ambiguous

    def fresh(name: Parameter, measured: Measured | None) -> Measured | None:
        if measured is None:
            missing.append(MissingParameter(name, "not-recorded"))
            return None
        if (measured.at.tzinfo is None) != (now.tzinfo is None):
            raise News2Error(name, measured.at, "time and assessment time must be both aware or both naive")
        age = now - measured.at
        if age > max_age:
            missing.append(MissingParameter(name, "stale", measured.at, age, max_age))
            return None
        if -age > FUTURE_TOLERANCE:
            missing.append(MissingParameter(name, "future", measured.at, age, max_age))
            return None
        return measured

    def add(name: Parameter, measured: Measured, points: int, detail: str = "") -> None:
        scores.append(ParameterScore(name, measured.value, points, measured.at, now - measured.at, detail))

    if (m := fresh("respiration_rate", vitals.respiration_rate)) is not None:
        add("respiration_rate", m, respiration_rate_points(m.value))

    if (m := fresh("spo2", vitals.spo2)) is not None:
        if not vitals.scale2:
            add("spo2", m, spo2_points(m.value), "scale 1")
        else:
            on_air = spo2_points(m.value, scale2=True, on_oxygen=False)
            on_oxygen = spo2_points(m.value, scale2=True, on_oxygen=True)
            if vitals.on_oxygen is None and on_oxygen != on_air:
                notes.append(
                    f"SpO2 {_format_charted('spo2', m.value)} % on scale 2 scored as on air because air or "
                    f"oxygen is not recorded; on oxygen it would score {_points_text(on_oxygen)}"
                )
                extra_worst += on_oxygen - on_air
            points = on_oxygen if vitals.on_oxygen else on_air
            add("spo2", m, points, "scale 2, on oxygen" if vitals.on_oxygen else "scale 2")

    if vitals.on_oxygen is None:
        missing.append(MissingParameter("air_or_oxygen", "not-recorded"))
    else:
        scores.append(
            ParameterScore(
                "air_or_oxygen",
                "oxygen" if vitals.on_oxygen else "air",
                air_or_oxygen_points(vitals.on_oxygen),
                None,
                None,
            )
        )

    if (m := fresh("systolic_bp", vitals.systolic_bp)) is not None:
        add("systolic_bp", m, systolic_bp_points(m.value))

    if (m := fresh("pulse", vitals.pulse)) is not None:
        add("pulse", m, pulse_points(m.value))

    if vitals.acvpu is None:
        missing.append(MissingParameter("consciousness", "not-recorded"))
    else:
        letter = normalise_acvpu(vitals.acvpu)
        scores.append(ParameterScore("consciousness", letter, consciousness_points(letter), None, None))

    if (m := fresh("temperature", vitals.temperature)) is not None:
        add("temperature", m, temperature_points(m.value))

    missing.sort(key=lambda item: PARAMETERS.index(item.name))
    total = sum(s.points for s in scores)
    red = any(s.points == 3 for s in scores)
    return News2Result(
        total=total,
        band=band_for(total, red),
        scale=2 if vitals.scale2 else 1,
        parameters=tuple(scores),
        missing=tuple(item.name for item in missing),
        missing_details=tuple(missing),
        max_total=total + extra_worst + sum(MAX_POINTS[item.name] for item in missing),
        assessed_at=now,
        max_age=max_age,
        notes=tuple(notes),
    )


# --- formatting ---------------------------------------------------------------------------------------


def _format_charted(parameter: Parameter, value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(chart_value(parameter, value))


def _points_text(points: int) -> str:
    return "1 point" if points == 1 else f"{points} points"


def _format_age(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    if abs(hours) >= 48:
        return f"{hours / 24:.1f} days"
    if abs(hours) >= 1:
        return f"{hours:.1f} h".replace(".0 h", " h")
    return f"{round(hours * 60)} min"
