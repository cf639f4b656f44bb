"""Disease rules for home monitoring: heart-failure weight gain and COPD desaturation and tachycardia.

Values in, values out: each rule takes one patient's readings of one vital (days since any origin,
ascending) and returns a `RuleHit` for every reading that starts an excursion: the reading that first
meets the rule's condition, judged on that reading and the ones before it only (causal, as on the day it
arrived). The rule then stays silent while the condition holds and re-arms on the first reading where it
no longer holds, so a nurse sees one hit per excursion, not one per day. Nothing here does I/O or reads a
clock; which patients a rule applies to (a heart-failure or COPD diagnosis), what a hit triggers
(a call, a worklist entry) and combining rules into a risk score are left to others.

Every threshold is a keyword argument with a default; the defaults follow the published logic below and
are configurable starting points, not clinical claims. None of these rules has been validated here.

hf-weight-gain-3d (`weight_gain_3d`): weight more than `gain_kg` (2 kg) above the lowest weight of the
previous `window_days` (3 days). The widely taught heart-failure self-care rule: a sudden unexpected
gain of more than 2 kg in 3 days should prompt the patient to contact the care team and/or take an
extra diuretic dose (patient-education tables of the ESC heart-failure guidelines, McDonagh et al.,
Eur Heart J 2021;42:3599-3726, doi:10.1093/eurheartj/ehab368, and the HFA self-care recommendations,
Jaarsma et al., Eur J Heart Fail 2021;23:157-174, doi:10.1002/ejhf.2008; we could confirm the wording
only through secondary sources). Such rules are sensitive to daily noise and miss slow gains
(Zhang et al. 2009 and Cuba Gyllensten et al. 2016 below).

hf-weight-gain-ma (`weight_gain_moving_average`): the mean weight of the last `short_days` (3 days) is
more than `gain_kg` (1.5 kg) above the lowest such mean of the previous `long_days` (7 days). Averaging
first suppresses day-to-day scatter (clothes, meals, scale placement); comparing with the past week
catches the slow gain that begins days to weeks before a heart-failure admission (Chaudhry et al.,
"Patterns of weight change preceding hospitalization for heart failure", Circulation
2007;116:1549-1554, doi:10.1161/CIRCULATIONAHA.107.690768: the gain diverged from controls in the week
before admission). It is in the spirit of the moving-average (MACD) algorithm of Zhang et al.,
"Predicting hospitalization due to worsening heart failure using daily weight measurement: analysis of
the TEN-HMS study", Eur J Heart Fail 2009;11:420-427, doi:10.1093/eurjhf/hfp033, which was more
specific but less sensitive than rules of thumb (3 lb in 1 day, 5 lb in 3 days), and compared in Cuba
Gyllensten et al., JMIR Med Inform 2016;4(1):e3, doi:10.2196/medinform.4842. It is NOT their fitted
algorithm: the windows and the threshold here are our assumptions.

copd-spo2-drop (`copd_spo2_drop`): SpO2 `drop_points` (4) or more points below the patient's own
baseline (`models.baselines`). copd-pulse-rise (`copd_pulse_rise`): pulse `rise_bpm` (15 /min) or more
above it. A COPD patient's stable saturation can sit at 88-92 %, where a population threshold would
alarm every day; exacerbations show as a fall in SpO2 and a rise in pulse against the patient's own
stable values (Hurst et al., "Domiciliary pulse-oximetry at exacerbation of COPD", BMC Pulm Med
2010;10:52, doi:10.1186/1471-2466-10-52: stable SDs of about 1 % SpO2 and 5 /min pulse, changes largest
2-3 days after symptom onset; reviewed in Al Rajeh & Hurst, J Clin Med 2016;5(12):108,
doi:10.3390/jcm5120108; a change-from-baseline approach in Shah et al., J Med Internet Res
2017;19(3):e69, doi:10.2196/jmir.7207). With those SDs, 4 points is about 4 SDs and 15 /min about 3:
our assumption of a change unlikely in a stable week, not a published cut-off. Physiology alone did not
separate exacerbations from bad days in some telemonitoring studies; these rules prompt a look, they do
not diagnose.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from models.baselines import Baseline, FloatArray, SeriesError, baseline_series, validate_series

# Readings are taken at the patient's routine time, which drifts by an hour or two from day to day:
# a weight taken 3 days and 2 hours earlier still counts as "3 days ago". Windows reach back this much
# further than their nominal length.
WINDOW_SLACK_DAYS: Final = 0.25


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One rule firing on one reading: which rule, the day of the reading, and why in a nurse's words."""

    rule: str  # "hf-weight-gain-3d", "hf-weight-gain-ma", "copd-spo2-drop", "copd-pulse-rise"
    day: float  # the day of the reading that fired it
    reason: str  # one sentence a nurse understands, with the numbers


def weight_gain_3d(
    days: Sequence[float], weights: Sequence[float], *, gain_kg: float = 2.0, window_days: float = 3.0
) -> list[RuleHit]:
    """Hits where weight is more than `gain_kg` above the lowest weight of the previous `window_days`."""
    _positive("gain_kg", gain_kg)
    _positive("window_days", window_days)
    day_array, weight_array = validate_series(days, weights, what="weights")

    def judge(i: int) -> str | None:
        earlier = _window(day_array, i, window_days)
        if earlier.stop <= earlier.start:
            return None
        # The latest of equal lows, so that a jump after a steady week reads "in 1 day".
        j = earlier.stop - 1 - int(np.argmin(weight_array[earlier][::-1]))
        gain = weight_array[i] - weight_array[j]
        if not gain > gain_kg:
            return None
        return (
            f"Weight up {gain:.1f} kg in {_span(day_array[i] - day_array[j])} "
            f"({weight_array[j]:.1f} -> {weight_array[i]:.1f} kg)"
        )

    return _excursions("hf-weight-gain-3d", day_array, judge)


def weight_gain_moving_average(
    days: Sequence[float],
    weights: Sequence[float],
    *,
    short_days: float = 3.0,
    long_days: float = 7.0,
    gain_kg: float = 1.5,
) -> list[RuleHit]:
    """Hits where the mean weight of the last `short_days` is more than `gain_kg` above the lowest such
    mean of the previous `long_days`."""
    _positive("short_days", short_days)
    _positive("long_days", long_days)
    _positive("gain_kg", gain_kg)
    day_array, weight_array = validate_series(days, weights, what="weights")
    # The short moving average at each reading: the readings of the last `short_days`, itself included.
    first = np.searchsorted(day_array, day_array - short_days, side="right")
    sums = np.concatenate(([0.0], np.cumsum(weight_array)))
    index = np.arange(day_array.size)
    smoothed = (sums[index + 1] - sums[first]) / (index + 1 - first)

    def judge(i: int) -> str | None:
        earlier = _window(day_array, i, long_days)
        if earlier.stop <= earlier.start:
            return None
        low = float(np.min(smoothed[earlier]))
        gain = smoothed[i] - low
        if not gain > gain_kg:
            return None
        return (
            f"Average weight of the last {_span(short_days)} {smoothed[i]:.1f} kg, {gain:.1f} kg above "
            f"its lowest in the {_span(long_days)} before ({low:.1f} kg)"
        )

    return _excursions("hf-weight-gain-ma", day_array, judge)


def copd_spo2_drop(
    days: Sequence[float],
    spo2: Sequence[float],
    *,
    drop_points: float = 4.0,
    baselines: Sequence[Baseline | None] | None = None,
) -> list[RuleHit]:
    """Hits where SpO2 is `drop_points` or more below the patient's own baseline (from `baseline_series`
    unless `baselines` are given, one per reading)."""
    _positive("drop_points", drop_points)
    day_array, spo2_array = validate_series(days, spo2, what="spo2")
    usual = _baselines(day_array, spo2_array, baselines, vital="spo2")

    def judge(i: int) -> str | None:
        baseline = usual[i]
        if baseline is None:
            return None
        drop = baseline.center - spo2_array[i]
        if not drop >= drop_points:
            return None
        return (
            f"SpO2 {spo2_array[i]:g} %, {drop:.1f} points below this patient's usual {baseline.center:.1f} %"
        )

    return _excursions("copd-spo2-drop", day_array, judge)


def copd_pulse_rise(
    days: Sequence[float],
    pulse: Sequence[float],
    *,
    rise_bpm: float = 15.0,
    baselines: Sequence[Baseline | None] | None = None,
) -> list[RuleHit]:
    """Hits where pulse is `rise_bpm` or more above the patient's own baseline (from `baseline_series`
    unless `baselines` are given, one per reading)."""
    _positive("rise_bpm", rise_bpm)
    day_array, pulse_array = validate_series(days, pulse, what="pulse")
    usual = _baselines(day_array, pulse_array, baselines, vital="pulse")

    def judge(i: int) -> str | None:
        baseline = usual[i]
        if baseline is None:
            return None
        rise = pulse_array[i] - baseline.center
        if not rise >= rise_bpm:
            return None
        return (
            f"Pulse {pulse_array[i]:g} /min, {rise:.0f} above this patient's usual {baseline.center:.0f} /min"
        )

    return _excursions("copd-pulse-rise", day_array, judge)


# --- shared ---------------------------------------------------------------------------------------------


def _excursions(rule: str, days: FloatArray, judge: Callable[[int], str | None]) -> list[RuleHit]:
    """One hit per excursion: fire on the first reading whose `judge` gives a reason, stay silent while
    readings keep meeting the condition, re-arm on the first reading that does not."""
    hits: list[RuleHit] = []
    armed = True
    for i in range(days.size):
        reason = judge(i)
        if reason is None:
            armed = True
        elif armed:
            hits.append(RuleHit(rule, float(days[i]), reason))
            armed = False
    return hits


def _window(days: FloatArray, i: int, length: float) -> slice:
    """The readings before reading i taken within `length` days of it (plus the routine's slack)."""
    start = int(np.searchsorted(days, days[i] - length - WINDOW_SLACK_DAYS, side="left"))
    return slice(start, i)


def _baselines(
    days: FloatArray, values: FloatArray, given: Sequence[Baseline | None] | None, *, vital: str
) -> Sequence[Baseline | None]:
    if given is None:
        return baseline_series(days.tolist(), values.tolist(), vital=vital)
    if len(given) != days.size:
        raise SeriesError("baselines", f"{len(given)} baselines for {days.size} readings")
    return given


def _positive(argument: str, value: float) -> None:
    if isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise SeriesError(argument, f"must be a positive number, got {value!r}")


def _span(days: float) -> str:
    whole = round(days)
    if whole < 1:
        return "less than a day"
    return "1 day" if whole == 1 else f"{whole} days"
