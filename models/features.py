"""Daily feature vectors for the 30-day admission-risk model, from one patient's time series.

`patient_features(patient, cohort)` returns a (days x features) matrix: row D describes the patient at the
end of day D, computed ONLY from data with time < D + 1 (days since the cohort origin). Nothing later can
change row D: trends are differences between "as of" values, baselines come from `models.baselines`
(each point's baseline from the points before it), rule hits from `models.rules` count only hits dated
up to day D, and admissions enter only as "days since the last admission that started by day D".
Missing values are NaN; imputation and scaling belong to the model.

`FEATURES` lists every column with a stable name and a description a nurse understands; columns with
`in_model=False` (the personal "usual" values, the usual measuring habit, how many planned measurements
were due) are kept for the explanations.

The patient's own answers to the daily symptom check (`PatientRecord.symptoms`) give the worst answer
and the number of "worse" answers of the last 7 days, and the days of those 7 left unanswered; the
measurement plan (`PatientRecord.planned`, judged by `fhir_contract.plan.match_readings`) gives the share
of the planned measurements of the last 14 days that were missed. A patient who answers no questionnaire,
or has no plan, gets NaN there (not known), never 0 (fine): the model imputes the training mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from models.baselines import baseline_series, deviation
from models.codes import CHANGE_OBSERVATIONS
from models.cohort_reader import Cohort, PatientRecord, Series
from models.news2 import News2Error, pulse_points, spo2_points, systolic_bp_points, temperature_points
from models.rules import copd_pulse_rise, copd_spo2_drop, weight_gain_3d, weight_gain_moving_average

Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Feature:
    """One column: a stable name, what it means, and whether the model uses it."""

    name: str
    description: str
    in_model: bool = True


#: The vitals with trend and baseline features, and how a nurse names them.
TREND_VITALS: Final = {
    "spo2": "SpO2",
    "pulse": "pulse",
    "systolic": "systolic blood pressure",
    "temperature": "temperature",
    "weight": "weight",
}
CONDITIONS: Final = ("heart-failure", "copd", "diabetes", "frailty")
RULES: Final = ("weight_gain_3d", "weight_gain_ma", "copd_spo2_drop", "copd_pulse_rise")
RULE_TEXT: Final = {
    "weight_gain_3d": "weight-gain rule (2 kg in 3 days)",
    "weight_gain_ma": "weight-gain rule (3-day vs 7-day average)",
    "copd_spo2_drop": "COPD SpO2-drop rule",
    "copd_pulse_rise": "COPD pulse-rise rule",
}
# A latest value older than this says nothing about today.
LATEST_MAX_AGE_DAYS: Final = 7.0
# A trend's older end may be this much older than the trend's window (a missed day or two).
TREND_SLACK_DAYS: Final = 2.0
# No admission on record, or one long ago, counts as this many days.
DAYS_SINCE_ADMISSION_CAP: Final = 365.0
#: The symptom features look back this many days; the plan's missed share this many.
SYMPTOM_DAYS: Final = 7
PLAN_DAYS: Final = 14
#: An answer's ordinal at or above this says "worse" or "present" (`fhir_contract.questionnaire`).
WORSE_ORDINAL: Final = 2
#: The usual NEWS2 is the median of the daily NEWS2 over this many days up to the day scored: a
#: patient's level on the one scale every population shares, steadier than one day's value.
NEWS2_USUAL_DAYS: Final = 14


def _feature_list() -> tuple[Feature, ...]:
    out: list[Feature] = []
    for vital, label in TREND_VITALS.items():
        out += [
            Feature(f"{vital}_latest", f"latest {label}"),
            Feature(f"{vital}_change_3d", f"change of {label} over 3 days"),
            Feature(f"{vital}_change_7d", f"change of {label} over 7 days"),
            Feature(f"{vital}_deviation", f"{label} compared with the patient's usual (personal baseline)"),
            Feature(f"{vital}_usual", f"the patient's usual {label}", in_model=False),
        ]
    out += [Feature(f"rule_{rule}", f"{RULE_TEXT[rule]} fired in the last 3 days") for rule in RULES]
    out += [
        Feature("missed_days_7d", "days without measurements in the last 7 days"),
        Feature("missed_days_14d", "days without measurements in the last 14 days"),
        Feature("adherence_drop_7d", "share of days measured, usual habit minus the last 7 days"),
        Feature("usual_measured_share", "share of days the patient usually measures", in_model=False),
        Feature(
            "symptoms_worst_7d",
            "worst answer to the daily symptom check in the last 7 days (0 fine .. 2 worse)",
        ),
        Feature("symptoms_worse_7d", "answers saying worse (or a symptom present) in the last 7 days"),
        Feature(
            "symptoms_unanswered_7d", "days without an answer to the daily symptom check in the last 7 days"
        ),
        Feature(
            "plan_missed_share_14d", "share of the planned measurements of the last 14 days that were missed"
        ),
        Feature("plan_due_14d", "planned measurements due in the last 14 days", in_model=False),
    ]
    out += [
        Feature(f"change_{key}_7d", f"staff noted {text.split(' (')[0]} (times in the last 7 days)")
        for key, text in CHANGE_OBSERVATIONS.items()
    ]
    out += [
        Feature("news2", "NEWS2 of the day's latest readings (home parameters only)"),
        Feature(
            "news2_usual", f"the patient's usual NEWS2 (median of the last {NEWS2_USUAL_DAYS} days' NEWS2)"
        ),
        Feature("age", "age in years"),
        Feature("female", "sex is female"),
        *(Feature(f"condition_{c.replace('-', '_')}", f"has {c.replace('-', ' ')}") for c in CONDITIONS),
        Feature("days_since_admission", "days since the last hospital admission (365 if none)"),
    ]
    return tuple(out)


FEATURES: Final = _feature_list()
FEATURE_NAMES: Final = tuple(f.name for f in FEATURES)
MODEL_FEATURES: Final = tuple(f.name for f in FEATURES if f.in_model)
COLUMN: Final = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _asof(days: npt.NDArray[np.float64], until: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """Index of the last point with time < each `until` (-1 when there is none)."""
    return np.searchsorted(days, until, side="left") - 1


def _vital_columns(series: Series, vital: str, ends: Matrix, out: Matrix) -> None:
    t = np.asarray(series.days, dtype=float)
    v = np.asarray(series.values, dtype=float)
    if t.size == 0:
        return
    idx = _asof(t, ends)
    ok = (idx >= 0) & (ends - t[np.maximum(idx, 0)] <= LATEST_MAX_AGE_DAYS)
    latest = np.where(ok, v[np.maximum(idx, 0)], np.nan)
    out[:, COLUMN[f"{vital}_latest"]] = latest
    for k in (3, 7):
        ref = _asof(t, ends - k)
        good = ok & (ref >= 0) & (idx > ref) & (t[np.maximum(idx, 0)] >= ends - k)
        good &= t[np.maximum(ref, 0)] >= ends - k - 1 - TREND_SLACK_DAYS
        out[:, COLUMN[f"{vital}_change_{k}d"]] = np.where(good, latest - v[np.maximum(ref, 0)], np.nan)
    baselines = baseline_series(series.days, series.values, vital=vital)
    dev = np.full(t.size, np.nan)
    usual = np.full(t.size, np.nan)
    for i, b in enumerate(baselines):
        d = deviation(float(v[i]), b)
        if d is not None and b is not None:
            dev[i], usual[i] = d, b.center
    out[:, COLUMN[f"{vital}_deviation"]] = np.where(ok, dev[np.maximum(idx, 0)], np.nan)
    out[:, COLUMN[f"{vital}_usual"]] = np.where(ok, usual[np.maximum(idx, 0)], np.nan)


def _count_in_window(times: Sequence[float], ends: Matrix, window: float) -> Matrix:
    """How many of `times` fall in [end - window, end) for each end."""
    t = np.sort(np.asarray(times, dtype=float))
    return (np.searchsorted(t, ends, "left") - np.searchsorted(t, ends - window, "left")).astype(float)


def _rule_columns(patient: PatientRecord, ends: Matrix, out: Matrix) -> None:
    r = patient.readings
    empty = Series((), ())
    weight, spo2, pulse = r.get("weight", empty), r.get("spo2", empty), r.get("pulse", empty)
    copd = "copd" in patient.conditions
    hits = {
        "weight_gain_3d": weight_gain_3d(weight.days, weight.values) if weight.days else [],
        "weight_gain_ma": weight_gain_moving_average(weight.days, weight.values) if weight.days else [],
        "copd_spo2_drop": copd_spo2_drop(spo2.days, spo2.values) if copd and spo2.days else [],
        "copd_pulse_rise": copd_pulse_rise(pulse.days, pulse.values) if copd and pulse.days else [],
    }
    for rule, found in hits.items():
        out[:, COLUMN[f"rule_{rule}"]] = _count_in_window([h.day for h in found], ends, 3.0)


def _adherence_columns(patient: PatientRecord, n_days: int, out: Matrix) -> None:
    measured_days = sorted({int(d) for s in patient.readings.values() for d in s.days if 0 <= d < n_days})
    if not measured_days:
        return
    measured = np.zeros(n_days)
    measured[measured_days] = 1.0
    first = measured_days[0]
    cum = np.concatenate([[0.0], np.cumsum(measured)])  # cum[d] = measured days before day d
    day = np.arange(n_days)
    for k in (7, 14):
        start = np.maximum(day - k + 1, first)
        span = np.maximum(day + 1 - start, 0)
        missed = span - (cum[day + 1] - cum[start])
        out[:, COLUMN[f"missed_days_{k}d"]] = np.where(day >= first, missed, np.nan)
    habit_days = day - 7 + 1 - first  # days from the first measurement to before the last week
    usual = np.where(
        habit_days >= 7, (cum[np.maximum(day - 6, 0)] - cum[first]) / np.maximum(habit_days, 1), np.nan
    )
    recent = (cum[day + 1] - cum[np.maximum(day - 6, 0)]) / 7.0
    out[:, COLUMN["usual_measured_share"]] = usual
    out[:, COLUMN["adherence_drop_7d"]] = usual - recent


def _symptom_columns(patient: PatientRecord, ends: Matrix, out: Matrix) -> None:
    """Worst answer and "worse" answers of the responses in [end - 7, end) (NaN without one), and days
    of those 7 without an answer counted from the first answer on (NaN before it)."""
    if not patient.symptoms:
        return
    t = np.asarray([s.day for s in patient.symptoms], dtype=float)
    worst = np.asarray([max(s.ordinals) for s in patient.symptoms], dtype=float)
    worse = np.asarray([sum(o >= WORSE_ORDINAL for o in s.ordinals) for s in patient.symptoms], dtype=float)
    hi = np.searchsorted(t, ends, "left")
    lo = np.searchsorted(t, ends - SYMPTOM_DAYS, "left")
    cum_worse = np.concatenate([[0.0], np.cumsum(worse)])
    any_recent = hi > lo
    # Running maximum over a window: a response's worst is at most 2, so compare per level.
    best_seen = np.full(ends.shape, np.nan)
    for level in (0.0, 1.0, 2.0):
        at_level = np.concatenate([[0.0], np.cumsum(worst >= level)])
        best_seen = np.where(any_recent & (at_level[hi] - at_level[lo] > 0), level, best_seen)
    out[:, COLUMN["symptoms_worst_7d"]] = best_seen
    out[:, COLUMN["symptoms_worse_7d"]] = np.where(any_recent, cum_worse[hi] - cum_worse[lo], np.nan)
    answered = np.unique(np.floor(t))
    first = answered[0]
    day = ends - 1.0
    start = np.maximum(day - SYMPTOM_DAYS + 1, first)
    span = np.maximum(day + 1 - start, 0)
    done = np.searchsorted(answered, day + 1, "left") - np.searchsorted(answered, start, "left")
    out[:, COLUMN["symptoms_unanswered_7d"]] = np.where(day >= first, span - done, np.nan)


def _plan_columns(patient: PatientRecord, ends: Matrix, out: Matrix) -> None:
    """Share of the planned occurrences due in [end - 14, end) and judged by then (deadline before the
    end) that were missed; NaN without any."""
    if not patient.planned:
        return
    due = np.asarray([o.due for o in patient.planned], dtype=float)
    deadline = np.asarray([o.deadline for o in patient.planned], dtype=float)
    missed = np.asarray([not o.done for o in patient.planned], dtype=float)
    judged = (due[np.newaxis, :] >= (ends - PLAN_DAYS)[:, np.newaxis]) & (
        deadline[np.newaxis, :] < ends[:, np.newaxis]
    )
    count = judged.sum(axis=1).astype(float)
    out[:, COLUMN["plan_due_14d"]] = np.where(count > 0, count, np.nan)
    out[:, COLUMN["plan_missed_share_14d"]] = np.where(
        count > 0, (judged * missed[np.newaxis, :]).sum(axis=1) / np.maximum(count, 1.0), np.nan
    )


def _points(func: Callable[[float], int], values: Matrix) -> Matrix:
    """NEWS2 points of each value (NaN stays NaN), scoring each distinct value once with models.news2."""
    out = np.full(values.shape, np.nan)
    present = ~np.isnan(values)
    if not present.any():
        return out
    unique, inverse = np.unique(values[present], return_inverse=True)
    scored = np.empty(unique.size)
    for i, value in enumerate(unique):
        try:
            scored[i] = func(float(value))
        except News2Error:
            scored[i] = np.nan
    out[present] = scored[inverse]
    return out


def news2_from_latest(spo2: Matrix, systolic: Matrix, pulse: Matrix, temperature: Matrix) -> Matrix:
    """NEWS2 (scale 1) from the parameters a home measures; missing ones are not scored; NaN if none."""
    parts = np.stack(
        [
            _points(spo2_points, spo2),
            _points(systolic_bp_points, systolic),
            _points(pulse_points, pulse),
            _points(temperature_points, temperature),
        ]
    )
    return np.where(np.isnan(parts).all(axis=0), np.nan, np.nansum(parts, axis=0))


def usual_news2(daily: Matrix, *, last_only: bool = False) -> Matrix:
    """Per row (a patient) and column (a day): the median NEWS2 of the days up to it, at most
    `NEWS2_USUAL_DAYS` of them, skipping days without one; NaN when there is none. `last_only`: the
    last column's only (one column), for scoring one day of many patients."""
    rows = daily.shape[0]
    padded = np.concatenate([np.full((rows, NEWS2_USUAL_DAYS - 1), np.nan), daily], axis=1)
    windows = np.lib.stride_tricks.sliding_window_view(padded, NEWS2_USUAL_DAYS, axis=1)
    if last_only:
        windows = windows[:, -1:]
    # Sorted, the days without a NEWS2 (NaN) go last: the median is the middle of the first n (the mean
    # of the two middle ones for an even n), as numpy's nanmedian, without its per-window cost.
    ordered = np.sort(windows, axis=2)
    n = np.sum(~np.isnan(ordered), axis=2)
    low = np.take_along_axis(ordered, np.maximum((n - 1) // 2, 0)[..., np.newaxis], axis=2)[..., 0]
    high = np.take_along_axis(ordered, np.maximum(n // 2, 0)[..., np.newaxis], axis=2)[..., 0]
    out: Matrix = np.where(n > 0, (low + high) / 2.0, np.nan)
    return out


def _todays(series: Series | None, ends: Matrix) -> Matrix:
    """The day's latest value (time in [end - 1, end)), NaN on a day without one."""
    if series is None or not series.days:
        return np.full(ends.shape, np.nan)
    t = np.asarray(series.days)
    idx = _asof(t, ends)
    ok = (idx >= 0) & (t[np.maximum(idx, 0)] >= ends - 1.0)
    return np.where(ok, np.asarray(series.values)[np.maximum(idx, 0)], np.nan)


def patient_features(patient: PatientRecord, cohort: Cohort, n_days: int | None = None) -> Matrix:
    """Row D = the patient at the end of day D (D = 0 .. n_days - 1), from data before D + 1 only."""
    n = cohort.days if n_days is None else n_days
    ends = np.arange(n, dtype=float) + 1.0
    out = np.full((n, len(FEATURES)), np.nan)
    for vital in TREND_VITALS:
        if vital in patient.readings:
            _vital_columns(patient.readings[vital], vital, ends, out)
    _rule_columns(patient, ends, out)
    _adherence_columns(patient, n, out)
    _symptom_columns(patient, ends, out)
    _plan_columns(patient, ends, out)
    change_times: dict[str, list[float]] = {key: [] for key in CHANGE_OBSERVATIONS}
    for day, key in patient.changes:
        change_times[key].append(day)
    for key, times in change_times.items():
        out[:, COLUMN[f"change_{key}_7d"]] = _count_in_window(times, ends, 7.0)
    r = patient.readings
    daily_news2 = news2_from_latest(
        _todays(r.get("spo2"), ends),
        _todays(r.get("systolic"), ends),
        _todays(r.get("pulse"), ends),
        _todays(r.get("temperature"), ends),
    )
    out[:, COLUMN["news2"]] = daily_news2
    out[:, COLUMN["news2_usual"]] = usual_news2(daily_news2[np.newaxis, :])[0]
    if patient.birth_date is not None:
        born = (cohort.origin - patient.birth_date).days
        out[:, COLUMN["age"]] = (born + ends - 1.0) / 365.25
    if patient.sex in ("female", "male"):
        out[:, COLUMN["female"]] = float(patient.sex == "female")
    for c in CONDITIONS:
        out[:, COLUMN[f"condition_{c.replace('-', '_')}"]] = float(c in patient.conditions)
    starts = np.sort(np.asarray([np.floor(a.start) for a in patient.admissions], dtype=float))
    since = np.full(n, DAYS_SINCE_ADMISSION_CAP)
    if starts.size:
        idx = _asof(starts, ends)
        since = np.where(idx >= 0, np.minimum(ends - 1.0 - starts[np.maximum(idx, 0)], since), since)
    out[:, COLUMN["days_since_admission"]] = since
    return out


# --- one day for many patients, vectorised --------------------------------------------------------------

#: Days of daily history `DayState` keeps: the 14-day adherence window plus the scored day.
WINDOW_DAYS: Final = 15


@dataclass(frozen=True, slots=True)
class DayState:
    """What a server keeps per patient to score day D for many patients at once (P patients).

    Per trend vital: the last reading of each of the days D-14 .. D (`values`, `times` in days since the
    origin; NaN for a day without one, P x 15) and the personal baseline of the latest reading (`center`,
    `spread`, kept up to date as readings arrive). The rest as counts and flags: `measured` (P x 15, any
    reading that day), `first_day` and `measured_before` (measured days from the first one up to D-7),
    rule hits in the last 3 days (P x 4, in `RULES` order), staff changes in the last 7 days (P x 10, in
    `CHANGE_OBSERVATIONS` order), age, female, conditions (P x 4) and days since the last admission.
    The usual NEWS2 comes from `values` (the NEWS2 of each of the last 14 days). The symptom check's
    worst answer, "worse" answers and unanswered days of the last 7 days (P x 3, in that order) and the
    plan's missed share and due count of the last 14 days (P x 2), kept as counts like the rule hits;
    None: nobody answers a questionnaire or has a plan (all NaN).
    """

    day: int
    values: dict[str, Matrix]
    times: dict[str, Matrix]
    center: dict[str, Matrix]
    spread: dict[str, Matrix]
    measured: Matrix
    first_day: Matrix
    measured_before: Matrix
    rule_hits: Matrix
    changes: Matrix
    age: Matrix
    female: Matrix
    conditions: Matrix
    days_since_admission: Matrix
    symptoms: Matrix | None = None
    plan: Matrix | None = None


#: `DayState.symptoms` and `DayState.plan` columns, in order.
SYMPTOM_COLUMNS: Final = ("symptoms_worst_7d", "symptoms_worse_7d", "symptoms_unanswered_7d")
PLAN_COLUMNS: Final = ("plan_missed_share_14d", "plan_due_14d")


def _last_present(values: Matrix, upto: int) -> npt.NDArray[np.intp]:
    """Column of the last non-NaN value in columns 0 .. upto (-1 when none), per row."""
    present = ~np.isnan(values[:, : upto + 1])
    last = upto - np.argmax(present[:, ::-1], axis=1)
    return np.where(present.any(axis=1), last, -1)


def day_features(state: DayState) -> Matrix:
    """The feature matrix of day D for every patient of `state` (P x features), equal to row D of
    `patient_features` for each patient (tests hold the two together)."""
    n = state.measured.shape[0]
    end = state.day + 1.0
    out = np.full((n, len(FEATURES)), np.nan)
    rows = np.arange(n)
    today = WINDOW_DAYS - 1
    for vital in TREND_VITALS:
        v, t = state.values[vital], state.times[vital]
        idx = _last_present(v, today)
        ok = (idx >= 0) & (end - t[rows, np.maximum(idx, 0)] <= LATEST_MAX_AGE_DAYS)
        latest = np.where(ok, v[rows, np.maximum(idx, 0)], np.nan)
        out[:, COLUMN[f"{vital}_latest"]] = latest
        for k in (3, 7):
            ref = _last_present(v, today - k)
            t_ref = t[rows, np.maximum(ref, 0)]
            good = ok & (ref >= 0) & (t[rows, np.maximum(idx, 0)] >= end - k)
            good &= t_ref >= end - k - 1 - TREND_SLACK_DAYS
            out[:, COLUMN[f"{vital}_change_{k}d"]] = np.where(
                good, latest - v[rows, np.maximum(ref, 0)], np.nan
            )
        out[:, COLUMN[f"{vital}_deviation"]] = np.where(
            ok, (latest - state.center[vital]) / state.spread[vital], np.nan
        )
        out[:, COLUMN[f"{vital}_usual"]] = np.where(ok, state.center[vital], np.nan)
    for i, rule in enumerate(RULES):
        out[:, COLUMN[f"rule_{rule}"]] = state.rule_hits[:, i]
    started = state.first_day <= state.day
    for k in (7, 14):
        first_seen = np.minimum(state.first_day, state.day + 1.0)  # never measured: no window
        first_col = np.maximum(first_seen - (state.day - today), today - k + 1).astype(int)
        cols = np.arange(WINDOW_DAYS)[np.newaxis, :]
        window = (cols >= first_col[:, np.newaxis]) & (cols <= today)
        missed = (window & (state.measured == 0)).sum(axis=1).astype(float)
        out[:, COLUMN[f"missed_days_{k}d"]] = np.where(started, missed, np.nan)
    habit_days = state.day - 6 - state.first_day
    usual = np.where(habit_days >= 7, state.measured_before / np.maximum(habit_days, 1), np.nan)
    out[:, COLUMN["usual_measured_share"]] = usual
    out[:, COLUMN["adherence_drop_7d"]] = usual - state.measured[:, today - 6 :].sum(axis=1) / 7.0
    for i, key in enumerate(CHANGE_OBSERVATIONS):
        out[:, COLUMN[f"change_{key}_7d"]] = state.changes[:, i]
    daily_news2 = news2_from_latest(*(state.values[v] for v in ("spo2", "systolic", "pulse", "temperature")))
    out[:, COLUMN["news2"]] = daily_news2[:, today]
    out[:, COLUMN["news2_usual"]] = usual_news2(daily_news2, last_only=True)[:, 0]
    out[:, COLUMN["age"]] = state.age
    out[:, COLUMN["female"]] = state.female
    for i, c in enumerate(CONDITIONS):
        out[:, COLUMN[f"condition_{c.replace('-', '_')}"]] = state.conditions[:, i]
    out[:, COLUMN["days_since_admission"]] = state.days_since_admission
    for kept, names in ((state.symptoms, SYMPTOM_COLUMNS), (state.plan, PLAN_COLUMNS)):
        if kept is not None:
            for i, name in enumerate(names):
                out[:, COLUMN[name]] = kept[:, i]
    return out


def day_state(patients: Sequence[PatientRecord], cohort: Cohort, day: int) -> DayState:
    """The `DayState` of day `day` built from full records (what a server would have kept up to date);
    for tests and benchmarks. Uses the same baselines and rules as `patient_features`."""
    full = np.vstack([patient_features(p, cohort, n_days=day + 1)[day] for p in patients])
    first = day - WINDOW_DAYS + 1
    values, times, center, spread = {}, {}, {}, {}
    measured = np.zeros((len(patients), WINDOW_DAYS))
    first_day = np.full(len(patients), np.inf)
    before = np.zeros(len(patients))
    for vital in TREND_VITALS:
        values[vital] = np.full((len(patients), WINDOW_DAYS), np.nan)
        times[vital] = np.full((len(patients), WINDOW_DAYS), np.nan)
        center[vital] = full[:, COLUMN[f"{vital}_usual"]]
        spread[vital] = np.full(len(patients), np.nan)
    for i, p in enumerate(patients):
        days_measured = sorted({int(d) for s in p.readings.values() for d in s.days if 0 <= d < day + 1})
        if days_measured:
            first_day[i] = days_measured[0]
            before[i] = sum(1 for d in days_measured if d < day - 6)
        for d in days_measured:
            if d >= first:
                measured[i, d - first] = 1.0
        for vital in TREND_VITALS:
            s = p.readings.get(vital)
            if s is None:
                continue
            for t, v in zip(s.days, s.values, strict=True):
                if first <= t < day + 1:
                    values[vital][i, int(t) - first], times[vital][i, int(t) - first] = v, t
            dev, usual = full[i, COLUMN[f"{vital}_deviation"]], full[i, COLUMN[f"{vital}_usual"]]
            latest = full[i, COLUMN[f"{vital}_latest"]]
            if not np.isnan(dev) and dev != 0:
                spread[vital][i] = (latest - usual) / dev
            else:
                spread[vital][i] = 1.0
    return DayState(
        day=day,
        values=values,
        times=times,
        center=center,
        spread=spread,
        measured=measured,
        first_day=first_day,
        measured_before=before,
        rule_hits=full[:, [COLUMN[f"rule_{r}"] for r in RULES]],
        changes=full[:, [COLUMN[f"change_{k}_7d"] for k in CHANGE_OBSERVATIONS]],
        age=full[:, COLUMN["age"]],
        female=full[:, COLUMN["female"]],
        conditions=full[:, [COLUMN[f"condition_{c.replace('-', '_')}"] for c in CONDITIONS]],
        days_since_admission=full[:, COLUMN["days_since_admission"]],
        symptoms=full[:, [COLUMN[name] for name in SYMPTOM_COLUMNS]],
        plan=full[:, [COLUMN[name] for name in PLAN_COLUMNS]],
    )
