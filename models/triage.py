"""Triage of one reading: red, yellow or green against the patient's own limits, or the NEWS2 bands.

Values in, values out: ``triage(vital, value, limits)`` says where one reading of one vital sign stands
against four limits (``Limits``: red below, yellow below, yellow above, red above; any may be unset), and
``default_limits(vital, scale2=...)`` gives the limits a patient has until a nurse sets their own. Nothing
here does I/O; storing a patient's limits (``gateway.store.thresholds``) and the wording are left to others.

The limits are the edges of the acceptable ranges, inclusive: a value from ``yellow_low`` to
``yellow_high`` is green; one below ``red_low`` or above ``red_high`` is red; anything else is yellow.
A reading is first rounded half up to its vital's resolution (``RESOLUTION``), as the NEWS2 chart reads
a value, so that 91.6 % is read as the 92 % a nurse would chart.

The defaults are the NEWS2 chart (``models.news2``), read off its own scoring functions rather than
retyped: green where a parameter scores 0 points, red where it scores 3 (a "red score"), yellow where it
scores 1 or 2. So with the defaults, a reading is red exactly when NEWS2 gives it 3 points (a property
test holds the two together). SpO2 follows scale 2 on air for a patient on scale 2 (a home has no
oxygen record). Diastolic pressure and weight have no NEWS2 band: their defaults are unset (every
reading green), and the heart-failure weight rules (``models.rules``) watch weight instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import IntEnum
from functools import cache
from itertools import pairwise
from types import MappingProxyType
from typing import Final, Literal

from models import news2
from models.errors import ModelsError

Bound = Literal["red_low", "yellow_low", "yellow_high", "red_high"]
#: The four limits, lowest first: the order a valid set of limits keeps.
BOUNDS: Final[tuple[Bound, ...]] = ("red_low", "yellow_low", "yellow_high", "red_high")

#: Each vital sign a patient can have limits for, with the resolution a reading is read at: the NEWS2
#: chart's (whole numbers, tenths of a degree) for its parameters, a home scale's 0.1 kg for weight.
RESOLUTION: Final[Mapping[str, Decimal]] = MappingProxyType(
    {
        "spo2": Decimal("1"),  # %
        "pulse": Decimal("1"),  # /min
        "systolic": Decimal("1"),  # mmHg
        "diastolic": Decimal("1"),  # mmHg
        "temperature": Decimal("0.1"),  # °C
        "weight": Decimal("0.1"),  # kg
        "respiration_rate": Decimal("1"),  # /min
    }
)
VITALS: Final[tuple[str, ...]] = tuple(RESOLUTION)

# The NEWS2 charts are probed on their resolution's grid from 0 up to this (no parameter's physiological
# limit is higher: news2 refuses values outside them, and the probe skips those).
_PROBE_TOP: Final = Decimal("350")


class TriageError(ModelsError):
    """A limit or a reading triage cannot use: not a finite number, or a vital sign it does not know."""

    def __init__(self, argument: str, reason: str) -> None:
        super().__init__(f"{argument}: {reason}")
        self.argument = argument
        self.reason = reason


class Level(IntEnum):
    """How a reading stands; a larger level is worse, so ``max`` gives a panel's worst component."""

    GREEN = 0
    YELLOW = 1
    RED = 2

    @property
    def key(self) -> str:
        """ "green", "yellow" or "red" (for CSS classes and form values)."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Limits:
    """A patient's limits for one vital sign, in its canonical unit; None: no limit on that side."""

    red_low: float | None = None
    yellow_low: float | None = None
    yellow_high: float | None = None
    red_high: float | None = None

    def __post_init__(self) -> None:
        for bound in BOUNDS:
            value = getattr(self, bound)
            if value is not None and (isinstance(value, bool) or not math.isfinite(value)):
                raise TriageError(bound, f"not a finite number ({value!r})")

    def get(self, bound: Bound) -> float | None:
        """The limit named ``bound``."""
        value: float | None = getattr(self, bound)
        return value

    @property
    def unset(self) -> bool:
        """True when no limit is set (every reading is green)."""
        return all(self.get(bound) is None for bound in BOUNDS)


NO_LIMITS: Final = Limits()


@dataclass(frozen=True, slots=True)
class Triage:
    """Where a reading stands, and the limit it crossed (None when green)."""

    level: Level
    crossed: Bound | None = None
    limit: float | None = None


GREEN: Final = Triage(Level.GREEN)


def disorder(limits: Limits) -> tuple[tuple[Bound, Bound], ...]:
    """The neighbouring set limits that are out of order (the lower one above the upper one).

    Unset limits are skipped, so (red_low 90, yellow_high 80) is reported when yellow_low is unset;
    when every neighbouring pair is in order, every pair is (order is transitive).
    """
    present = [(bound, value) for bound in BOUNDS if (value := limits.get(bound)) is not None]
    return tuple((lower, upper) for (lower, low), (upper, high) in pairwise(present) if low > high)


def read_at_resolution(vital: str, value: float) -> Decimal:
    """``value`` rounded half up to ``vital``'s resolution, on its shortest spelling (as NEWS2 reads it)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TriageError("value", f"not a finite number ({value!r})")
    return Decimal(repr(value)).quantize(_resolution(vital), rounding=ROUND_HALF_UP)


# Red before yellow: a value below red_low is also below yellow_low, and the worse verdict wins.
_CHECKS: Final[tuple[tuple[Level, Bound, bool], ...]] = (
    (Level.RED, "red_low", True),
    (Level.RED, "red_high", False),
    (Level.YELLOW, "yellow_low", True),
    (Level.YELLOW, "yellow_high", False),
)


def triage(vital: str, value: float, limits: Limits) -> Triage:
    """Red, yellow or green for one reading of ``vital`` (canonical unit) against ``limits``."""
    read = read_at_resolution(vital, value)
    for level, bound, below in _CHECKS:
        limit = limits.get(bound)
        if limit is None:
            continue
        edge = Decimal(repr(limit))
        if (read < edge) if below else (read > edge):
            return Triage(level, bound, limit)
    return GREEN


def worst(triages: list[Triage]) -> Triage:
    """The worst of several triages (a blood pressure's systolic and diastolic); green for none."""
    return max(triages, key=lambda t: t.level, default=GREEN)


# --- the NEWS2 defaults -----------------------------------------------------------------------------


def _resolution(vital: str) -> Decimal:
    try:
        return RESOLUTION[vital]
    except KeyError:
        raise TriageError("vital", f"unknown vital sign {vital!r} (known: {', '.join(VITALS)})") from None


def news2_points(vital: str, *, scale2: bool = False) -> Callable[[float], int] | None:
    """The NEWS2 scoring function of ``vital`` (SpO2 on scale 2 on air when ``scale2``); None when NEWS2
    does not score it (diastolic pressure, weight)."""
    _resolution(vital)
    if vital == "spo2":
        return lambda value: news2.spo2_points(value, scale2=scale2)
    chart: Mapping[str, Callable[[float], int]] = {
        "pulse": news2.pulse_points,
        "systolic": news2.systolic_bp_points,
        "temperature": news2.temperature_points,
        "respiration_rate": news2.respiration_rate_points,
    }
    return chart.get(vital)


@cache
def default_limits(vital: str, *, scale2: bool = False) -> Limits:
    """The NEWS2 bands of ``vital`` as limits (unset for a vital NEWS2 does not score)."""
    points_of = news2_points(vital, scale2=scale2)
    if points_of is None:
        return NO_LIMITS
    step = _resolution(vital)
    scored: list[tuple[Decimal, int]] = []
    for i in range(int(_PROBE_TOP / step) + 1):
        value = i * step
        try:
            scored.append((value, points_of(float(value))))
        except news2.News2Error:  # outside the parameter's physiological limits
            continue
    zero = [value for value, points in scored if points == 0]
    low_end, high_end = zero[0], zero[-1]
    if any(points != 0 for value, points in scored if low_end <= value <= high_end):
        raise TriageError("vital", f"the NEWS2 chart of {vital!r} has no single 0-point range")
    below = [(value, points) for value, points in scored if value < low_end]
    above = [(value, points) for value, points in scored if value > high_end]
    red_below = [value for value, points in below if points == 3]
    red_above = [value for value, points in above if points == 3]
    return Limits(
        red_low=float(max(red_below) + step) if red_below else None,
        yellow_low=float(low_end) if below else None,
        yellow_high=float(high_end) if above else None,
        red_high=float(min(red_above) - step) if red_above else None,
    )
