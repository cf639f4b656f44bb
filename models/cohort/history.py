"""A long SYNTHETIC history of people in municipal home care: months of home readings, deterioration
episodes, hospital admissions and the change observations home-care staff record.

Everything this module makes is SYNTHETIC: no record describes a real person, every patient is named
"Synthetic patient N" and every value object carries `synthetic=True`.

- `simulate_history(n_patients, days, seed)` simulates each patient over `days` days. Patient i depends
  only on (seed, i), with one random stream per part (who, events, adherence, readings, staff forms), so
  a change in how readings are planned leaves the events as they were.
- Events come one after another at a personal rate: a deterioration episode (heart-failure
  decompensation, COPD exacerbation or infection) builds up over days and ends either in an admission or
  resolving at home; about a quarter of admissions (falls, sudden events) come with no prelude at all.
- Readings follow a plan by condition, thinned by a drifting personal adherence, lapses, holidays and
  being unwell; there are no readings (and no visits) while a patient is in hospital or away.
- The physiology is that of `synthetic.py`: the condition's baseline, a daily rhythm, a slow personal
  wander, an episode's shift towards the `EPISODES` peak, and the device's noise and resolution.

Times inside a history are days (float) since `start`, local time of `start`'s (fixed) offset;
`CohortHistory.at` turns them into datetimes. Writing FHIR is left to `ndjson.py`, and every number
this module draws from lives in `profiles.py` (documented with its source in docs/cohort.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from models.cohort.profiles import (
    ADHERENCE_BETA,
    ADHERENCE_DECLINE_PER_180_DAYS,
    ADHERENCE_DRIFT_SD,
    ADMISSION_HOURS,
    ADMITTED_SEVERITY,
    BURN_IN_DAYS,
    CHANGE_AFTER_DISCHARGE,
    CHANGE_BACKGROUND,
    CHANGE_IN_EPISODE,
    CHANGE_PERSONAL_SD,
    CONDITION_COUNT_RATE,
    CONDITIONS,
    COURSES,
    DAILY_VISITS_SHARE,
    EPISODES,
    EVENT_RATE_PER_DAY,
    FALL_SHARE,
    HF_ADMITTED_WEIGHT_GAIN,
    HF_RESOLVED_WEIGHT_GAIN,
    HISTORY_AGE,
    HOLIDAY_DAYS,
    HOLIDAY_PER_180_DAYS,
    LAPSE_MEAN_DAYS,
    LAPSE_START,
    MAX_CONDITIONS,
    MEASUREMENT_VITALS,
    MISSED_ONE,
    MORNING_HOUR,
    NOISE,
    PERSONAL_RATE_SHAPE,
    PROFILES,
    RESIDUAL_AT_DISCHARGE,
    RESIDUAL_DAYS,
    RESOLVED_SEVERITY,
    RHYTHMS,
    ROUTINE_TEMPERATURE,
    SCALE2_SHARE_OF_COPD,
    SPO2_SCALE2_BASELINE,
    STAY_DAYS,
    STAY_MEDIAN_DAYS,
    STAY_SIGMA,
    UNHERALDED_SHARE,
    UNWELL_ADHERENCE_DROP,
    UNWELL_EXTRA_MEASUREMENT,
    UNWELL_PROGRESS,
    VITALS,
    WANDER,
    WANDER_PERIOD_DAYS,
    Condition,
    EpisodeKind,
    MeasurementKind,
    Sex,
    Span,
    Vital,
)
from models.cohort.synthetic import DEFAULT_START, Baseline, CohortError

AdmissionCause = Literal["heart-failure-decompensation", "copd-exacerbation", "infection", "fall", "sudden"]
FloatArray = npt.NDArray[np.float64]

#: The devices in the order a morning session uses them; `PatientHistory.reading_kinds` indexes this.
KINDS: Final[tuple[MeasurementKind, ...]] = ("body-weight", "blood-pressure", "spo2", "body-temperature")
#: The items of the staff's change form; `PatientHistory.form_changes` has one column per item.
CHANGE_KEYS: Final[tuple[str, ...]] = tuple(CHANGE_BACKGROUND)
#: The shortest history that holds an episode's build-up and an admission.
MIN_HISTORY_DAYS: Final = 14

# One random stream per part of a patient, so that each part can change without moving the others.
_WHO, _EVENTS, _ADHERENCE, _READINGS, _FORMS = 10, 11, 12, 13, 14


@dataclass(frozen=True, slots=True)
class HistoryEpisode:
    """A SYNTHETIC deterioration: from `onset_day` the vitals move by `severity`-scaled `shift` until
    `peak_day`; then the patient is admitted (until `discharge_day`) or recovers over `recovery_days`."""

    kind: EpisodeKind
    onset_day: float
    peak_day: float
    severity: float
    shift: Baseline  # change from baseline at the peak, per vital
    discharge_day: float | None  # None: resolved at home
    recovery_days: float
    synthetic: bool = field(default=True, init=False)

    @property
    def admitted(self) -> bool:
        """True when the episode ends in an admission."""
        return self.discharge_day is not None

    @property
    def end_day(self) -> float:
        """When the episode no longer moves the vitals."""
        if self.discharge_day is not None:
            return self.discharge_day + RESIDUAL_DAYS
        return self.peak_day + self.recovery_days

    def progress(self, t: FloatArray) -> FloatArray:
        """The share of `shift` present at days `t`: an S-curve up to the peak, then a residual fading
        after the discharge, or a linear recovery at home."""
        x = np.clip((t - self.onset_day) / (self.peak_day - self.onset_day), 0.0, 1.0)
        rising = x * x * (3.0 - 2.0 * x)
        if self.discharge_day is not None:
            after = RESIDUAL_AT_DISCHARGE * np.clip(1.0 - (t - self.discharge_day) / RESIDUAL_DAYS, 0.0, 1.0)
        else:
            after = np.clip(1.0 - (t - self.peak_day) / self.recovery_days, 0.0, 1.0)
        result: FloatArray = np.where(t < self.peak_day, rising, after)
        return result


@dataclass(frozen=True, slots=True)
class Admission:
    """A SYNTHETIC hospital admission (an inpatient Encounter); `episode` is None when it came with no
    physiological prelude (a fall, a sudden event)."""

    cause: AdmissionCause
    start_day: float
    end_day: float
    episode: HistoryEpisode | None
    synthetic: bool = field(default=True, init=False)

    @property
    def heralded(self) -> bool:
        """True when a deterioration episode led up to the admission."""
        return self.episode is not None


@dataclass(frozen=True, slots=True)
class HomeReading:
    """One SYNTHETIC device reading: the vitals `MEASUREMENT_VITALS[kind]` reports, in that order."""

    at: datetime
    kind: MeasurementKind
    values: dict[Vital, float]
    synthetic: bool = field(default=True, init=False)


@dataclass(frozen=True, slots=True, eq=False)
class PatientHistory:
    """One SYNTHETIC patient's months at home. Readings and staff forms are numpy arrays (days since the
    cohort start); `readings()` and `forms()` give them as values."""

    number: int
    id: str
    name: str
    birth_date: date
    sex: Sex
    conditions: tuple[Condition, ...]  # main condition first
    spo2_scale2: bool
    baseline: Baseline
    adherence: float  # the usual chance to measure on a day, before drift and decline
    daily_visits: bool  # home care every day (else weekly)
    episodes: tuple[HistoryEpisode, ...]
    admissions: tuple[Admission, ...]
    away: tuple[tuple[float, float], ...]  # holidays: [start, end) days
    reading_days: FloatArray
    reading_kinds: npt.NDArray[np.int8]  # index into KINDS
    reading_values: FloatArray  # (n, 3): MEASUREMENT_VITALS[kind] order, NaN beyond
    form_days: FloatArray
    form_changes: npt.NDArray[np.bool_]  # (n, len(CHANGE_KEYS))
    synthetic: bool = field(default=True, init=False)


@dataclass(frozen=True, slots=True, eq=False)
class CohortHistory:
    """A SYNTHETIC cohort followed for `days` days from `start`."""

    seed: int
    start: datetime
    days: int
    patients: tuple[PatientHistory, ...]
    synthetic: bool = field(default=True, init=False)

    def at(self, day: float) -> datetime:
        """The time `day` days after `start`, to the second, in `start`'s timezone."""
        return self.start + timedelta(seconds=round(day * 86400.0))

    def readings(self, patient: PatientHistory) -> Iterator[HomeReading]:
        """`patient`'s readings as values, in time order."""
        for day, kind, row in zip(
            patient.reading_days, patient.reading_kinds, patient.reading_values, strict=True
        ):
            name = KINDS[int(kind)]
            values = {v: float(x) for v, x in zip(MEASUREMENT_VITALS[name], row, strict=False)}
            yield HomeReading(self.at(float(day)), name, values)


def simulate_history(n_patients: int, days: int, seed: int, start: datetime = DEFAULT_START) -> CohortHistory:
    """`n_patients` SYNTHETIC patients followed for `days` days from `start` (timezone-aware)."""
    if n_patients < 0:
        raise CohortError("n_patients", n_patients, "must not be negative")
    if days < MIN_HISTORY_DAYS:
        raise CohortError("days", days, f"must be at least {MIN_HISTORY_DAYS}")
    if seed < 0:
        raise CohortError("seed", seed, "must not be negative")
    if start.tzinfo is None:
        raise CohortError("start", start, "must be timezone-aware")
    patients = tuple(simulate_patient(number, days, seed, start) for number in range(1, n_patients + 1))
    return CohortHistory(seed, start, days, patients)


def simulate_patient(number: int, days: int, seed: int, start: datetime = DEFAULT_START) -> PatientHistory:
    """Patient `number` of the cohort `seed`: a pure function of its arguments."""
    who = np.random.default_rng([seed, number, _WHO])
    conditions, sex, age, scale2, baseline, waves = _who(who)
    episodes, admissions = _events(
        np.random.default_rng([seed, number, _EVENTS]), conditions, scale2, baseline, days
    )
    adherence_rng = np.random.default_rng([seed, number, _ADHERENCE])
    adherence = float(adherence_rng.beta(*ADHERENCE_BETA))
    measuring, away = _measuring_days(adherence_rng, adherence, days, episodes)
    blocked = tuple((a.start_day, a.end_day) for a in admissions) + away
    reading_days, kinds, values = _readings(
        np.random.default_rng([seed, number, _READINGS]),
        conditions,
        baseline,
        waves,
        episodes,
        measuring,
        blocked,
        days,
    )
    forms = np.random.default_rng([seed, number, _FORMS])
    daily_visits = bool(forms.random() < DAILY_VISITS_SHARE)
    form_days, changes = _forms(forms, daily_visits, episodes, admissions, blocked, days)
    return PatientHistory(
        number=number,
        id=f"p-{number:04d}",
        name=f"Synthetic patient {number}",
        birth_date=start.date() - timedelta(days=int(age * 365.25)),
        sex=sex,
        conditions=conditions,
        spo2_scale2=scale2,
        baseline=baseline,
        adherence=adherence,
        daily_visits=daily_visits,
        episodes=episodes,
        admissions=admissions,
        away=away,
        reading_days=reading_days,
        reading_kinds=kinds,
        reading_values=values,
        form_days=form_days,
        form_changes=changes,
    )


# --- who ----------------------------------------------------------------------------------------------


def _draw(rng: np.random.Generator, span: Span) -> float:
    return float(rng.uniform(span.low, span.high))


def _who(
    rng: np.random.Generator,
) -> tuple[tuple[Condition, ...], Sex, float, bool, Baseline, FloatArray]:
    names = list(PROFILES)
    main: Condition = names[int(rng.choice(len(names), p=[PROFILES[c].share for c in names]))]
    profile = PROFILES[main]
    extra = sorted((c for c, p in profile.comorbidities if rng.random() < p), key=CONDITIONS.index)
    conditions = (main, *extra)[:MAX_CONDITIONS]
    sex: Sex = "female" if rng.random() < 0.5 else "male"
    age = _draw(rng, Span(max(profile.age.low, HISTORY_AGE.low), min(profile.age.high, HISTORY_AGE.high)))
    scale2 = main == "copd" and bool(rng.random() < SCALE2_SHARE_OF_COPD)
    systolic = _draw(rng, profile.systolic)
    baseline = Baseline(
        spo2=_draw(rng, SPO2_SCALE2_BASELINE if scale2 else profile.spo2),
        pulse=_draw(rng, profile.pulse),
        systolic=systolic,
        diastolic=systolic - _draw(rng, profile.pulse_pressure),
        temperature=_draw(rng, profile.temperature),
        weight=_draw(rng, profile.weight_female if sex == "female" else profile.weight_male),
    )
    # Two slow waves per vital, as in synthetic.py: (period, phase) x 2 in the order of VITALS.
    periods = rng.uniform(WANDER_PERIOD_DAYS.low, WANDER_PERIOD_DAYS.high, (len(VITALS), 2))
    phases = rng.uniform(0.0, 2 * math.pi, (len(VITALS), 2))
    waves: FloatArray = np.stack([periods, phases], axis=-1)
    return conditions, sex, age, scale2, baseline, waves


# --- events -------------------------------------------------------------------------------------------


def _episode_weights(conditions: tuple[Condition, ...]) -> dict[EpisodeKind, float]:
    """Which episodes a patient gets: the main condition's kinds in full, the others' at half weight."""
    weights: dict[EpisodeKind, float] = {}
    for index, condition in enumerate(conditions):
        for kind, p in PROFILES[condition].episode_kinds:
            weights[kind] = weights.get(kind, 0.0) + p * (1.0 if index == 0 else 0.5)
    return weights


def _stay(rng: np.random.Generator) -> float:
    stay = STAY_MEDIAN_DAYS * math.exp(float(rng.normal(0.0, STAY_SIGMA)))
    return min(max(stay, STAY_DAYS.low), STAY_DAYS.high)


def _at_hour(day: float, rng: np.random.Generator) -> float:
    return math.floor(day) + _draw(rng, ADMISSION_HOURS) / 24.0


def _events(
    rng: np.random.Generator, conditions: tuple[Condition, ...], scale2: bool, baseline: Baseline, days: int
) -> tuple[tuple[HistoryEpisode, ...], tuple[Admission, ...]]:
    rate = EVENT_RATE_PER_DAY * CONDITION_COUNT_RATE[len(conditions) - 1]
    rate *= float(rng.gamma(PERSONAL_RATE_SHAPE, 1.0 / PERSONAL_RATE_SHAPE))
    weights = _episode_weights(conditions)
    kinds = list(weights)
    total = sum(weights.values())
    episodes: list[HistoryEpisode] = []
    admissions: list[Admission] = []
    t = -float(BURN_IN_DAYS)
    while True:
        t += float(rng.exponential(1.0 / rate))
        if t >= days:
            break
        if rng.random() < UNHERALDED_SHARE:
            cause: AdmissionCause = "fall" if rng.random() < FALL_SHARE else "sudden"
            begin = _at_hour(t, rng)
            end = begin + _stay(rng)
            admissions.append(Admission(cause, begin, end, None))
            t = end
            continue
        kind = kinds[int(rng.choice(len(kinds), p=[weights[k] / total for k in kinds]))]
        episode = _episode(rng, kind, t, scale2, baseline)
        episodes.append(episode)
        if episode.discharge_day is not None:
            admissions.append(Admission(kind, episode.peak_day, episode.discharge_day, episode))
            t = episode.discharge_day
        else:
            t = episode.peak_day + episode.recovery_days
    # Keep what reaches into the period: admissions that end after its start and begin before its end.
    kept = tuple(a for a in admissions if a.end_day > 0.0 and a.start_day < days)
    return tuple(e for e in episodes if e.end_day > 0.0), kept


def _episode(
    rng: np.random.Generator, kind: EpisodeKind, onset: float, scale2: bool, baseline: Baseline
) -> HistoryEpisode:
    course, peak = COURSES[kind], EPISODES[kind]
    admitted = bool(rng.random() < course.admitted)
    severity = _draw(rng, ADMITTED_SEVERITY if admitted else RESOLVED_SEVERITY)
    peak_day = _at_hour(onset + _draw(rng, course.build_up_days), rng)
    fever = 1.0 if rng.random() < course.fever_share else 0.1

    def towards(target: Span | None, base: float) -> float:
        return 0.0 if target is None else _draw(rng, target) - base

    systolic = towards(peak.systolic, baseline.systolic) * severity
    if kind == "heart-failure-decompensation":
        weight = _draw(rng, HF_ADMITTED_WEIGHT_GAIN if admitted else HF_RESOLVED_WEIGHT_GAIN)
    else:
        weight = _draw(rng, peak.weight_gain) * severity
    shift = Baseline(
        spo2=min(towards(peak.spo2_scale2 if scale2 else peak.spo2, baseline.spo2), 0.0) * severity,
        pulse=max(towards(peak.pulse, baseline.pulse), 0.0) * severity,
        systolic=systolic,
        diastolic=systolic / 2,
        temperature=max(towards(peak.temperature, baseline.temperature), 0.0) * severity * fever,
        weight=weight,
    )
    discharge = peak_day + _stay(rng) if admitted else None
    return HistoryEpisode(kind, onset, peak_day, severity, shift, discharge, _draw(rng, course.recovery_days))


# --- adherence and readings ---------------------------------------------------------------------------


def _unwell(episodes: tuple[HistoryEpisode, ...], t: FloatArray) -> FloatArray:
    total = np.zeros_like(t)
    for episode in episodes:
        total += episode.progress(t)
    result: FloatArray = np.minimum(total, 1.0)
    return result


def _inside(t: FloatArray, spans: tuple[tuple[float, float], ...]) -> npt.NDArray[np.bool_]:
    inside = np.zeros(t.shape, dtype=bool)
    for low, high in spans:
        inside |= (t >= low) & (t < high)
    return inside


def _measuring_days(
    rng: np.random.Generator, adherence: float, days: int, episodes: tuple[HistoryEpisode, ...]
) -> tuple[npt.NDArray[np.bool_], tuple[tuple[float, float], ...]]:
    """Which days the patient measures at all, and the holidays away from home."""
    day = np.arange(days, dtype=np.float64)
    drift = np.cumsum(rng.normal(0.0, ADHERENCE_DRIFT_SD, days)) - ADHERENCE_DECLINE_PER_180_DAYS * day / 180
    logit = math.log(adherence / (1.0 - adherence)) + drift
    chance = 1.0 / (1.0 + np.exp(-logit))
    chance *= 1.0 - UNWELL_ADHERENCE_DROP * _unwell(episodes, day + 0.3)
    lapse = np.zeros(days, dtype=bool)
    starts = np.flatnonzero(rng.random(days) < LAPSE_START)
    lengths = rng.geometric(1.0 / LAPSE_MEAN_DAYS, len(starts))
    for begin, length in zip(starts, lengths, strict=True):
        lapse[begin : begin + length] = True
    away: tuple[tuple[float, float], ...] = ()
    holiday_start, holiday_days = float(rng.uniform(0, days)), round(_draw(rng, HOLIDAY_DAYS))
    if rng.random() < min(1.0, HOLIDAY_PER_180_DAYS * days / 180):
        away = ((float(math.floor(holiday_start)), float(math.floor(holiday_start) + holiday_days)),)
    measuring = (rng.random(days) < chance) & ~lapse & ~_inside(day + 0.5, away)
    return measuring, away


def _plans(
    rng: np.random.Generator, conditions: tuple[Condition, ...], unwell: npt.NDArray[np.bool_], days: int
) -> list[npt.NDArray[np.bool_]]:
    """Per kind of KINDS, the days the plan asks for it."""
    day = np.arange(days)
    weekday = int(rng.integers(7))
    extra, routine = rng.random(days), rng.random(days)
    heart, copd = "heart-failure" in conditions, "copd" in conditions
    weekly = (day % 7) == weekday
    weight = np.full(days, heart) | (weekly & ("frailty" in conditions))
    pressure = np.full(days, heart) | np.isin((day - weekday) % 7, (0, 2, 4))
    spo2 = np.full(days, copd) | (unwell & (extra < UNWELL_EXTRA_MEASUREMENT))
    temperature = (unwell & (extra < UNWELL_EXTRA_MEASUREMENT)) | (routine < ROUTINE_TEMPERATURE)
    return [weight, pressure, spo2, temperature]


def _truth(
    baseline: Baseline, waves: FloatArray, episodes: tuple[HistoryEpisode, ...], t: FloatArray
) -> dict[Vital, FloatArray]:
    """The physiological truth at days `t`, vectorised as in `SyntheticPatient.vitals_at`."""
    hour = (t % 1.0) * 24.0
    progress = [(episode, episode.progress(t)) for episode in episodes]
    values: dict[Vital, FloatArray] = {}
    for index, vital in enumerate(VITALS):
        rhythm = RHYTHMS[vital]
        value = baseline.get(vital) + rhythm.amplitude * np.cos(2 * math.pi * (hour - rhythm.peak_hour) / 24)
        for period, phase in waves[index]:
            value = value + WANDER[vital] * np.sin(2 * math.pi * t / period + phase)
        for episode, share in progress:
            value = value + share * episode.shift.get(vital)
        values[vital] = value
    values["spo2"] = np.minimum(values["spo2"], 100.0)
    values["diastolic"] = np.minimum(values["diastolic"], values["systolic"] - 20.0)
    return values


def _measured(vital: Vital, truth: FloatArray, rng: np.random.Generator) -> FloatArray:
    noise = NOISE[vital]
    value = np.clip(truth + rng.normal(0.0, noise.sd, truth.shape), noise.low, noise.high)
    result: FloatArray = np.round(np.floor(value / noise.resolution + 0.5) * noise.resolution, 1)
    return result


def _readings(
    rng: np.random.Generator,
    conditions: tuple[Condition, ...],
    baseline: Baseline,
    waves: FloatArray,
    episodes: tuple[HistoryEpisode, ...],
    measuring: npt.NDArray[np.bool_],
    blocked: tuple[tuple[float, float], ...],
    days: int,
) -> tuple[FloatArray, npt.NDArray[np.int8], FloatArray]:
    day = np.arange(days, dtype=np.float64)
    habit = float(rng.uniform(-1.0, 1.0))
    jitter = np.clip(rng.normal(0.0, 0.5, days), -1.5, 1.5)
    session = day + (MORNING_HOUR + habit + jitter) / 24.0
    plans = _plans(rng, conditions, _unwell(episodes, session) > UNWELL_PROGRESS, days)
    times: list[FloatArray] = []
    kinds: list[npt.NDArray[np.int8]] = []
    for index, plan in enumerate(plans):
        minutes = 2.5 * index + rng.uniform(0.5, 2.0, days)
        taken = plan & measuring & (rng.random(days) >= MISSED_ONE)
        times.append((session + minutes / 1440.0)[taken])
        kinds.append(np.full(int(taken.sum()), index, dtype=np.int8))
    t = np.concatenate(times)
    kind = np.concatenate(kinds)
    keep = ~_inside(t, blocked) & (t >= 0.0) & (t < days)
    t, kind = t[keep], kind[keep]
    order = np.argsort(t, kind="stable")
    t, kind = t[order], kind[order]
    truth = _truth(baseline, waves, episodes, t)
    measured = {vital: _measured(vital, truth[vital], rng) for vital in VITALS}
    measured["diastolic"] = np.minimum(measured["diastolic"], measured["systolic"] - 10.0)
    values = np.full((len(t), 3), np.nan)
    for index, name in enumerate(KINDS):
        rows = kind == index
        for column, vital in enumerate(MEASUREMENT_VITALS[name]):
            values[rows, column] = measured[vital][rows]
    return t, kind, values


# --- staff change observations ------------------------------------------------------------------------


def _forms(
    rng: np.random.Generator,
    daily_visits: bool,
    episodes: tuple[HistoryEpisode, ...],
    admissions: tuple[Admission, ...],
    blocked: tuple[tuple[float, float], ...],
    days: int,
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """When the staff fill in the change form (daily: at the first visit; weekly: one visit a week) and
    which items they mark changed."""
    day = np.arange(days, dtype=np.float64)
    weekday = int(rng.integers(7))
    first_visit = day + np.clip(rng.normal(8.0, 0.5, days), 6.5, 10.0) / 24.0
    weekly_visit = day + rng.uniform(9.0, 14.0, days) / 24.0
    t = first_visit if daily_visits else weekly_visit[(day % 7) == weekday]
    t = t[~_inside(t, blocked)]
    personal = np.exp(rng.normal(0.0, CHANGE_PERSONAL_SD, len(CHANGE_KEYS)) - CHANGE_PERSONAL_SD**2 / 2)
    chance = np.tile(np.array([CHANGE_BACKGROUND[k] for k in CHANGE_KEYS]) * personal, (len(t), 1))
    for episode in episodes:
        progress = episode.progress(t)
        for column, key in enumerate(CHANGE_KEYS):
            chance[:, column] += CHANGE_IN_EPISODE[episode.kind].get(key, 0.0) * progress
    for admission in admissions:
        fading = np.clip(1.0 - (t - admission.end_day) / RESIDUAL_DAYS, 0.0, 1.0) * (t >= admission.end_day)
        for column, key in enumerate(CHANGE_KEYS):
            chance[:, column] += CHANGE_AFTER_DISCHARGE.get(key, 0.0) * fading
    changes: npt.NDArray[np.bool_] = rng.random(chance.shape) < np.minimum(chance, 0.95)
    return t, changes
