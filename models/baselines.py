"""Personal baselines: each patient's own normal for one vital sign, and how far a reading is from it.

Values in, values out: `baseline_series(days, values, vital=...)` takes one patient's readings of one vital
(days since any origin, ascending) and returns, for every reading, the `Baseline` learnt from the readings
BEFORE it (never from the reading itself or from later ones), or None while fewer than `min_points` earlier
readings exist. `deviation(value, baseline)` is the robust z-score `(value - center) / spread`. Nothing
here does I/O or reads a clock; which readings to feed (one vital of one patient), when a deviation
matters, and the disease rules built on baselines (`models.rules`) are left to others.

Why personal. A COPD patient whose saturation is 91 % every day is at their normal, and a beta-blocked
patient whose pulse is usually 55 is not at theirs when it reads 85, although NEWS2 scores the first 3
points and the second 0. The baseline answers "normal for whom": the deviation flags the second.

The estimator: robust exponential smoothing, in the manner of Gelper, Fried & Croux, "Robust forecasting
with exponential and Holt-Winters smoothing", Journal of Forecasting 29(3):285-300, 2010
(doi:10.1002/for.1125): the classical recursion applied to a reading first cleaned by a Huber psi.

1. Start: the median and the MAD (scaled by 1.4826 to estimate a normal SD) of the first `min_points`
   readings, each of which a single outlier cannot move far.
2. Each later reading x, with residual r = x - center and the current spread s:
   - the weight of evidence decays with time, W <- W * 2**(-dt / half_life) + 1, so that a reading
     weighs 1 when taken and half of that `half_life_days` later, whatever the sampling rate (two pulse
     readings a day count as much per day as one weight a day); the step is a = 1 / W (the mean of the
     readings so far at first, an exponential moving average with a = 1 - 2**(-1/half_life) for a
     reading a day in the long run);
   - center <- center + a * clip(r, -K*s, +K*s) with K = `HUBER_K`: a reading within K spreads moves
     the center as an exponential moving average would; one further out moves it only as far as one K
     spreads away would, so a single outlier of any size barely moves it;
   - spread <- spread + a * (sqrt(pi/2) * min(|r|, S*s) - spread) with S = `SCALE_CLIP`: a clipped mean
     absolute deviation (sqrt(pi/2) makes it estimate a normal SD, like a scaled MAD);
   - the spread used for clipping and reported is floored at `MIN_SPREAD[vital]`, about a device's
     resolution and day-to-day noise, so that a perfectly steady series does not make every small
     wobble a huge z.
3. A sustained shift within K spreads is absorbed as an exponential moving average absorbs it: half of
   it after one half-life, three quarters after two. A larger shift is first followed K spreads per
   step (while its residuals widen the spread), so it is flagged for a while before it becomes normal.

`n` is the number of earlier readings the baseline has seen; their influence decays with time, so an
old reading counts in `n` but hardly in `center`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt

from models.errors import ModelsError

FloatArray = npt.NDArray[np.float64]

#: Floor of the spread per vital, in the vital's unit: about the device resolution plus the
#: day-to-day variation of a stable patient (Hurst et al. 2010 saw SDs of about 1 % SpO2 and 5 /min
#: pulse in stable COPD; we take the lower pulse floor of a rested, beta-blocked patient).
MIN_SPREAD: Final[Mapping[str, float]] = MappingProxyType(
    {
        "spo2": 1.0,  # %
        "pulse": 3.0,  # /min
        "systolic": 5.0,  # mmHg
        "diastolic": 3.0,  # mmHg
        "temperature": 0.2,  # °C
        "weight": 0.5,  # kg
    }
)

#: Huber's tuning constant: residuals beyond 2 spreads are clipped (Gelper et al. use 2 as well).
HUBER_K: Final = 2.0
#: Residuals beyond 3 spreads are clipped before they update the spread, so that one outlier cannot
#: inflate it, while a sustained shift still widens it step by step.
SCALE_CLIP: Final = 3.0

# MAD of a normal sample times this estimates its SD; the mean absolute deviation times sqrt(pi/2) too.
_MAD_TO_SD: Final = 1.4826
_MEAN_ABS_TO_SD: Final = math.sqrt(math.pi / 2)


class SeriesError(ModelsError):
    """A series a baseline or a rule cannot use: mismatched lengths, days out of order, a non-number."""

    def __init__(self, argument: str, reason: str) -> None:
        super().__init__(f"{argument}: {reason}")
        self.argument = argument
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Baseline:
    """A patient's usual value of one vital, learnt from earlier readings only."""

    center: float  # the patient's usual value
    spread: float  # a robust scale (MAD-like, floored at MIN_SPREAD[vital] so z never explodes)
    n: int  # how many past points informed it


def validate_series(
    days: Sequence[float], values: Sequence[float], *, what: str = "values"
) -> tuple[FloatArray, FloatArray]:
    """`days` and `values` as float arrays, after checking that they are finite numbers of the same
    length and that `days` never decreases (equal days are allowed: two devices, one moment)."""
    day_array = _finite_array(days, "days")
    value_array = _finite_array(values, what)
    if day_array.shape != value_array.shape:
        raise SeriesError(what, f"{value_array.size} values for {day_array.size} days")
    if day_array.size > 1 and bool(np.any(np.diff(day_array) < 0)):
        first = int(np.argmax(np.diff(day_array) < 0)) + 1
        raise SeriesError("days", f"not in ascending order at index {first} ({day_array[first]!r})")
    return day_array, value_array


def _finite_array(values: Sequence[float], argument: str) -> FloatArray:
    if isinstance(values, str | bytes):
        raise SeriesError(argument, "a sequence of numbers, not a string")
    if any(isinstance(v, bool) for v in values):
        raise SeriesError(argument, "booleans are not measurements")
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SeriesError(argument, f"not a sequence of numbers ({exc})") from exc
    if array.ndim != 1:
        raise SeriesError(argument, f"expected one dimension, got shape {array.shape}")
    if not bool(np.all(np.isfinite(array))):
        bad = int(np.argmax(~np.isfinite(array)))
        raise SeriesError(argument, f"not a finite number at index {bad} ({array[bad]!r})")
    return array


def min_spread(vital: str) -> float:
    """The spread floor of `vital`; ValueError for a vital that is not one of `MIN_SPREAD`."""
    try:
        return MIN_SPREAD[vital]
    except KeyError:
        known = ", ".join(MIN_SPREAD)
        raise SeriesError("vital", f"unknown vital {vital!r} (known: {known})") from None


def baseline_series(
    days: Sequence[float],
    values: Sequence[float],
    *,
    vital: str,
    half_life_days: float = 14.0,
    min_points: int = 5,
) -> list[Baseline | None]:
    """For each point i (days ascending, in days since any origin), the baseline from points BEFORE i only
    (never the point itself or the future); None until min_points past points exist. Robust: an exponentially
    weighted median-like estimate whose updates are clipped (Huber-style) so a single outlier barely moves it;
    adapts slowly (half-life in days). See the module docstring for the recursion."""
    floor = min_spread(vital)
    if not (math.isfinite(half_life_days) and half_life_days > 0):
        raise SeriesError("half_life_days", f"must be a positive number of days, got {half_life_days!r}")
    if isinstance(min_points, bool) or not isinstance(min_points, int) or min_points < 1:
        raise SeriesError("min_points", f"must be a whole number of at least 1, got {min_points!r}")
    day_array, value_array = validate_series(days, values, what=vital)
    count = value_array.size
    result: list[Baseline | None] = [None] * min(min_points, count)
    if count <= min_points:
        return result

    start = value_array[:min_points]
    center = float(np.median(start))
    raw_spread = _MAD_TO_SD * float(np.median(np.abs(start - center)))
    weight = float(min_points)
    result.append(Baseline(center, max(raw_spread, floor), min_points))

    day_list: list[float] = day_array.tolist()
    value_list: list[float] = value_array.tolist()
    for i in range(min_points, count - 1):
        spread = max(raw_spread, floor)
        weight = weight * 2.0 ** (-(day_list[i] - day_list[i - 1]) / half_life_days) + 1.0
        step = 1.0 / weight
        residual = value_list[i] - center
        center += step * min(max(residual, -HUBER_K * spread), HUBER_K * spread)
        raw_spread += step * (_MEAN_ABS_TO_SD * min(abs(residual), SCALE_CLIP * spread) - raw_spread)
        result.append(Baseline(center, max(raw_spread, floor), i + 1))
    return result


def deviation(value: float, baseline: Baseline | None) -> float | None:
    """(value - center) / spread, or None without a baseline."""
    if baseline is None:
        return None
    if isinstance(value, bool) or not math.isfinite(value):
        raise SeriesError("value", f"not a finite number ({value!r})")
    return (value - baseline.center) / baseline.spread
