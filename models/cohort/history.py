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

- Which population: `settings` (`settings.GeneratorSettings`; the project's own unless told otherwise)
  sets the rates, baselines, noise, adherence, artefacts, episode shapes and staff forms above. The
  defaults give the cohort this module has always given, byte for byte; drop-outs and artefacts, new
  with the settings, have random streams of their own.

Times inside a history are days (float) since `start`, local time of `start`'s (fixed) offset;
`CohortHistory.at` turns them into datetimes. Writing FHIR is left to `ndjson.py`, and every number
this module draws from lives in `profiles.py` or `settings.py` (documented in docs/cohort.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from fhir_contract.plan import PlanItem
from models.cohort.profiles import (
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
    EPISODES,
    FALL_SHARE,
    HF_ADMITTED_WEIGHT_GAIN,
    HF_RESOLVED_WEIGHT_GAIN,
    HISTORY_AGE,
    HOLIDAY_DAYS,
    HOLIDAY_PER_180_DAYS,
    LAPSE_MEAN_DAYS,
    MAX_CONDITIONS,
    MEASUREMENT_VITALS,
    MORNING_HOUR,
    NOISE,
    PROFILES,
    RESIDUAL_AT_DISCHARGE,
    RESIDUAL_DAYS,
    RESOLVED_SEVERITY,
    RHYTHMS,
    ROUTINE_TEMPERATURE,
    SCALE2_SHARE_OF_COPD,
    SEVERITY_REFERENCE,
    SEVERITY_SD,
    SPO2_SCALE2_BASELINE,
    STAY_DAYS,
    STAY_MEDIAN_DAYS,
    STAY_SIGMA,
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
from models.cohort.settings import DEFAULT_SETTINGS, EpisodeCurve, GeneratorSettings
from models.cohort.symptoms import SymptomInputs, symptom_checks_and_plan
from models.cohort.synthetic import DEFAULT_START, Baseline, CohortError

AdmissionCause = Literal["heart-failure-decompensation", "copd-exacerbation", "infection", "fall", "sudden"]
FloatArray = npt.NDArray[np.float64]

#: The devices in the order a morning session uses them; `PatientHistory.reading_kinds` indexes this.
KINDS: Final[tuple[MeasurementKind, ...]] = ("body-weight", "blood-pressure", "spo2", "body-temperature")
#: The measurement of a plan (`fhir_contract.plan.MEASUREMENTS`) each kind of reading counts for.
PLAN_MEASUREMENT: Final = {
    "body-weight": "weight",
    "blood-pressure": "blood-pressure",
    "spo2": "spo2",
    "body-temperature": "temperature",
}
#: The items of the staff's change form; `PatientHistory.form_changes` has one column per item.
CHANGE_KEYS: Final[tuple[str, ...]] = tuple(CHANGE_BACKGROUND)
#: The shortest history that holds an episode's build-up and an admission.
MIN_HISTORY_DAYS: Final = 14
#: The age at which `GeneratorSettings.age_risk_per_decade` leaves the event rate as it is.
REFERENCE_AGE: Final = 80.0
#: A shifted population's usual SpO2 stays below this (no profile's range reaches it).
MAX_BASELINE_SPO2: Final = 99.0

# One random stream per part of a patient, so that each part can change without moving the others.
_WHO, _EVENTS, _ADHERENCE, _READINGS, _FORMS = 10, 11, 12, 13, 14
# The mechanisms added with `GeneratorSettings` (drop-outs, artefacts) have streams of their own, so that
# at their defaults (none) the cohort is the one the project has always simulated.
_DROPOUT, _ARTEFACTS = 15, 16
# The symptom checks and the measurement plan (`symptoms.py`), new with issue 21: a stream of their own.
_SYMPTOMS = 17


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
    curve: EpisodeCurve = "s-curve"  # how the shift grows from onset to peak (`settings.EpisodeCurve`)
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
        """The share of `shift` present at days `t`: the episode's curve (an S-curve unless the
        population's settings say otherwise) up to the peak, then a residual fading after the
        discharge, or a linear recovery at home."""
        x = np.clip((t - self.onset_day) / (self.peak_day - self.onset_day), 0.0, 1.0)
        rising = _rising(x, self.curve)
        if self.discharge_day is not None:
            after = RESIDUAL_AT_DISCHARGE * np.clip(1.0 - (t - self.discharge_day) / RESIDUAL_DAYS, 0.0, 1.0)
        else:
            after = np.clip(1.0 - (t - self.peak_day) / self.recovery_days, 0.0, 1.0)
        result: FloatArray = np.where(t < self.peak_day, rising, after)
        return result


def _rising(x: FloatArray, curve: EpisodeCurve) -> FloatArray:
    """The share of an episode's shift at `x` (0 = onset, 1 = peak) along `curve`."""
    if curve == "linear":
        return x
    if curve == "early":
        result: FloatArray = 1.0 - (1.0 - x) ** 3
        return result
    if curve == "late":
        late: FloatArray = x**4
        return late
    s_curve: FloatArray = x * x * (3.0 - 2.0 * x)
    return s_curve


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
    # The nurse's measurement plan (none: no plan) and its judged occurrences (due day, deadline day,
    # done), the daily symptom check the patient answers (its key; None: none) and the answers: days and
    # one ordinal per item (0 fine .. 2 worse). `symptoms.py` makes them.
    plan: tuple[PlanItem, ...] = ()
    plan_checks: tuple[tuple[float, float, bool], ...] = ()
    questionnaire: str | None = None
    answer_days: FloatArray = field(default_factory=lambda: np.zeros(0))
    answer_ordinals: npt.NDArray[np.int8] = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int8))
    synthetic: bool = field(default=True, init=False)


@dataclass(frozen=True, slots=True, eq=False)
class CohortHistory:
    """A SYNTHETIC cohort followed for `days` days from `start`."""

    seed: int
    start: datetime
    days: int
    patients: tuple[PatientHistory, ...]
    settings: GeneratorSettings = DEFAULT_SETTINGS
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


def simulate_history(
    n_patients: int,
    days: int,
    seed: int,
    start: datetime = DEFAULT_START,
    settings: GeneratorSettings = DEFAULT_SETTINGS,
) -> CohortHistory:
    """`n_patients` SYNTHETIC patients followed for `days` days from `start` (timezone-aware), drawn
    from the population `settings` describes (the project's own one unless told otherwise)."""
    if n_patients < 0:
        raise CohortError("n_patients", n_patients, "must not be negative")
    if days < MIN_HISTORY_DAYS:
        raise CohortError("days", days, f"must be at least {MIN_HISTORY_DAYS}")
    if seed < 0:
        raise CohortError("seed", seed, "must not be negative")
    if start.tzinfo is None:
        raise CohortError("start", start, "must be timezone-aware")
    patients = tuple(
        simulate_patient(number, days, seed, start, settings) for number in range(1, n_patients + 1)
    )
    return CohortHistory(seed, start, days, patients, settings)


def simulate_patient(
    number: int,
    days: int,
    seed: int,
    start: datetime = DEFAULT_START,
    settings: GeneratorSettings = DEFAULT_SETTINGS,
) -> PatientHistory:
    """Patient `number` of the cohort `seed` in the population `settings`: a pure function of its
    arguments."""
    who = np.random.default_rng([seed, number, _WHO])
    conditions, sex, age, scale2, baseline, waves = _who(who, settings)
    episodes, admissions = _events(
        np.random.default_rng([seed, number, _EVENTS]), conditions, age, scale2, baseline, days, settings
    )
    adherence_rng = np.random.default_rng([seed, number, _ADHERENCE])
    adherence = float(adherence_rng.beta(*settings.adherence_beta))
    measuring, away = _measuring_days(adherence_rng, adherence, days, episodes, settings)
    if settings.dropout_per_180_days > 0.0:
        measuring = _drop_out(np.random.default_rng([seed, number, _DROPOUT]), measuring, settings)
    blocked = tuple((a.start_day, a.end_day) for a in admissions) + away
    reading_days, kinds, values, weekday = _readings(
        np.random.default_rng([seed, number, _READINGS]),
        conditions,
        baseline,
        waves,
        episodes,
        measuring,
        blocked,
        days,
        settings,
    )
    if _has_artefacts(settings):
        reading_days, kinds, values = _artefacts(
            np.random.default_rng([seed, number, _ARTEFACTS]), reading_days, kinds, values, days, settings
        )
    forms = np.random.default_rng([seed, number, _FORMS])
    daily_visits = bool(forms.random() < settings.daily_visits_share)
    form_days, changes = _forms(forms, daily_visits, episodes, admissions, blocked, days, settings)
    checks = symptom_checks_and_plan(
        np.random.default_rng([seed, number, _SYMPTOMS]),
        SymptomInputs(
            conditions=conditions,
            weekday=weekday,
            measuring=measuring,
            blocked=blocked,
            unwell=lambda t: _unwell(episodes, t),
            taken={
                PLAN_MEASUREMENT[name]: reading_days[kinds == index]
                for index, name in enumerate(KINDS)
                if name in PLAN_MEASUREMENT
            },
        ),
        days,
        start,
        settings,
    )
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
        plan=checks.plan,
        plan_checks=checks.plan_checks,
        questionnaire=checks.questionnaire,
        answer_days=checks.answer_days,
        answer_ordinals=checks.answer_ordinals,
    )


# --- who ----------------------------------------------------------------------------------------------


def _draw(rng: np.random.Generator, span: Span) -> float:
    return float(rng.uniform(span.low, span.high))


def _who(
    rng: np.random.Generator, settings: GeneratorSettings
) -> tuple[tuple[Condition, ...], Sex, float, bool, Baseline, FloatArray]:
    names = list(PROFILES)
    main: Condition = names[int(rng.choice(len(names), p=[PROFILES[c].share for c in names]))]
    profile = PROFILES[main]
    extra = sorted((c for c, p in profile.comorbidities if rng.random() < p), key=CONDITIONS.index)
    conditions = (main, *extra)[:MAX_CONDITIONS]
    sex: Sex = "female" if rng.random() < 0.5 else "male"
    age = _draw(rng, Span(max(profile.age.low, HISTORY_AGE.low), min(profile.age.high, HISTORY_AGE.high)))
    scale2 = main == "copd" and bool(rng.random() < SCALE2_SHARE_OF_COPD)

    def usual(span: Span, vital: Vital) -> float:
        """A baseline drawn from `span`, spread and shifted as the population's settings say."""
        value = _draw(rng, span)
        if settings.baseline_spread != 1.0:  # (x - c) + c is not always x: leave the default alone
            centre = (span.low + span.high) / 2
            value = centre + (value - centre) * settings.baseline_spread
        shift = settings.baseline_shift.get(vital)
        return value + shift if shift else value

    systolic = usual(profile.systolic, "systolic")
    baseline = Baseline(
        spo2=min(usual(SPO2_SCALE2_BASELINE if scale2 else profile.spo2, "spo2"), MAX_BASELINE_SPO2),
        pulse=usual(profile.pulse, "pulse"),
        systolic=systolic,
        diastolic=systolic - _draw(rng, profile.pulse_pressure),
        temperature=usual(profile.temperature, "temperature"),
        weight=usual(profile.weight_female if sex == "female" else profile.weight_male, "weight"),
    )
    # Two slow waves per vital, as in synthetic.py: (period, phase) x 2 in the order of VITALS.
    periods = rng.uniform(WANDER_PERIOD_DAYS.low, WANDER_PERIOD_DAYS.high, (len(VITALS), 2))
    phases = rng.uniform(0.0, 2 * math.pi, (len(VITALS), 2))
    waves: FloatArray = np.stack([periods, phases], axis=-1)
    return conditions, sex, age, scale2, baseline, waves


# --- events -------------------------------------------------------------------------------------------


def baseline_severity(baseline: Baseline, settings: GeneratorSettings = DEFAULT_SETTINGS) -> float:
    """How far a patient's usual vitals lie towards the ill side (`profiles.SEVERITY_REFERENCE`), about
    unit variance in a population; measured from the population's own centre (without its shift)."""
    total = 0.0
    for vital, (centre, scale) in SEVERITY_REFERENCE.items():
        total += (baseline.get(vital) - settings.baseline_shift.get(vital) - centre) / scale
    return total / len(SEVERITY_REFERENCE) / SEVERITY_SD


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
    rng: np.random.Generator,
    conditions: tuple[Condition, ...],
    age: float,
    scale2: bool,
    baseline: Baseline,
    days: int,
    settings: GeneratorSettings,
) -> tuple[tuple[HistoryEpisode, ...], tuple[Admission, ...]]:
    rate = settings.event_rate_per_day * CONDITION_COUNT_RATE[len(conditions) - 1]
    shape = settings.personal_rate_shape
    rate *= float(rng.gamma(shape, 1.0 / shape))
    if settings.baseline_risk_link:  # sicker at baseline, admitted more often (mean multiplier about 1)
        link = settings.baseline_risk_link
        rate *= math.exp(link * baseline_severity(baseline, settings) - link * link / 2)
    if not settings.condition_risk.neutral:  # the case mix weighs differently in this population
        rate *= sum(settings.condition_risk.get(c) for c in conditions) / len(conditions)
    if settings.age_risk_per_decade:
        rate *= math.exp(settings.age_risk_per_decade * (age - REFERENCE_AGE) / 10.0)
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
        if rng.random() < settings.unheralded_share:
            cause: AdmissionCause = "fall" if rng.random() < FALL_SHARE else "sudden"
            begin = _at_hour(t, rng)
            end = begin + _stay(rng)
            admissions.append(Admission(cause, begin, end, None))
            t = end
            continue
        kind = kinds[int(rng.choice(len(kinds), p=[weights[k] / total for k in kinds]))]
        episode = _episode(rng, kind, t, scale2, baseline, settings)
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
    rng: np.random.Generator,
    kind: EpisodeKind,
    onset: float,
    scale2: bool,
    baseline: Baseline,
    settings: GeneratorSettings,
) -> HistoryEpisode:
    course, peak = COURSES[kind], EPISODES[kind]
    admitted = bool(rng.random() < course.admitted)
    severity = _draw(rng, ADMITTED_SEVERITY if admitted else RESOLVED_SEVERITY) * settings.severity_scale
    # A build-up scaled below a day still peaks at least a few hours after its onset.
    build_up = max(_draw(rng, course.build_up_days) * settings.build_up_scale, 0.25)
    peak_day = max(_at_hour(onset + build_up, rng), onset + 0.25)
    fever = 1.0 if rng.random() < course.fever_share else 0.1

    def towards(target: Span | None, base: float) -> float:
        return 0.0 if target is None else _draw(rng, target) - base

    systolic = towards(peak.systolic, baseline.systolic) * severity
    if kind == "heart-failure-decompensation":
        gain = _draw(rng, HF_ADMITTED_WEIGHT_GAIN if admitted else HF_RESOLVED_WEIGHT_GAIN)
        weight = gain * settings.severity_scale
    else:
        weight = _draw(rng, peak.weight_gain) * severity
    moved = settings.episode_vitals

    def only_moved(vital: Vital, value: float) -> float:
        return value if vital in moved else 0.0

    shift = Baseline(
        spo2=only_moved(
            "spo2", min(towards(peak.spo2_scale2 if scale2 else peak.spo2, baseline.spo2), 0.0) * severity
        ),
        pulse=only_moved("pulse", max(towards(peak.pulse, baseline.pulse), 0.0) * severity),
        systolic=only_moved("systolic", systolic),
        diastolic=only_moved("systolic", systolic / 2),  # the diastolic moves with the systolic
        temperature=only_moved(
            "temperature", max(towards(peak.temperature, baseline.temperature), 0.0) * severity * fever
        ),
        weight=only_moved("weight", weight),
    )
    discharge = peak_day + _stay(rng) if admitted else None
    recovery = _draw(rng, course.recovery_days)
    return HistoryEpisode(kind, onset, peak_day, severity, shift, discharge, recovery, settings.episode_curve)


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
    rng: np.random.Generator,
    adherence: float,
    days: int,
    episodes: tuple[HistoryEpisode, ...],
    settings: GeneratorSettings,
) -> tuple[npt.NDArray[np.bool_], tuple[tuple[float, float], ...]]:
    """Which days the patient measures at all, and the holidays away from home."""
    day = np.arange(days, dtype=np.float64)
    drift = np.cumsum(rng.normal(0.0, ADHERENCE_DRIFT_SD, days)) - ADHERENCE_DECLINE_PER_180_DAYS * day / 180
    logit = math.log(adherence / (1.0 - adherence)) + drift
    chance = 1.0 / (1.0 + np.exp(-logit))
    chance *= 1.0 - settings.unwell_adherence_drop * _unwell(episodes, day + 0.3)
    lapse = np.zeros(days, dtype=bool)
    starts = np.flatnonzero(rng.random(days) < settings.lapse_start)
    lengths = rng.geometric(1.0 / LAPSE_MEAN_DAYS, len(starts))
    for begin, length in zip(starts, lengths, strict=True):
        lapse[begin : begin + length] = True
    away: tuple[tuple[float, float], ...] = ()
    holiday_start, holiday_days = float(rng.uniform(0, days)), round(_draw(rng, HOLIDAY_DAYS))
    if rng.random() < min(1.0, HOLIDAY_PER_180_DAYS * days / 180):
        away = ((float(math.floor(holiday_start)), float(math.floor(holiday_start) + holiday_days)),)
    measuring = (rng.random(days) < chance) & ~lapse & ~_inside(day + 0.5, away)
    return measuring, away


def _drop_out(
    rng: np.random.Generator, measuring: npt.NDArray[np.bool_], settings: GeneratorSettings
) -> npt.NDArray[np.bool_]:
    """Measuring days after a drop-out: with the settings' chance (per 180 days of follow-up) the
    patient stops measuring for good on a day drawn uniformly over the period."""
    days = measuring.size
    chance = min(1.0, settings.dropout_per_180_days * days / 180)
    stop = int(rng.integers(days))
    if rng.random() >= chance:
        return measuring
    out = measuring.copy()
    out[stop:] = False
    return out


def _plans(
    rng: np.random.Generator, conditions: tuple[Condition, ...], unwell: npt.NDArray[np.bool_], days: int
) -> tuple[list[npt.NDArray[np.bool_]], int]:
    """Per kind of KINDS, the days the plan asks for it, and the weekday (days from the start, 0-6) the
    weekly measurements fall on."""
    day = np.arange(days)
    weekday = int(rng.integers(7))
    extra, routine = rng.random(days), rng.random(days)
    heart, copd = "heart-failure" in conditions, "copd" in conditions
    weekly = (day % 7) == weekday
    weight = np.full(days, heart) | (weekly & ("frailty" in conditions))
    pressure = np.full(days, heart) | np.isin((day - weekday) % 7, (0, 2, 4))
    spo2 = np.full(days, copd) | (unwell & (extra < UNWELL_EXTRA_MEASUREMENT))
    temperature = (unwell & (extra < UNWELL_EXTRA_MEASUREMENT)) | (routine < ROUTINE_TEMPERATURE)
    return [weight, pressure, spo2, temperature], weekday


def _truth(
    baseline: Baseline,
    waves: FloatArray,
    episodes: tuple[HistoryEpisode, ...],
    t: FloatArray,
    wander_scale: float = 1.0,
) -> dict[Vital, FloatArray]:
    """The physiological truth at days `t`, vectorised as in `SyntheticPatient.vitals_at`."""
    hour = (t % 1.0) * 24.0
    progress = [(episode, episode.progress(t)) for episode in episodes]
    values: dict[Vital, FloatArray] = {}
    for index, vital in enumerate(VITALS):
        rhythm = RHYTHMS[vital]
        value = baseline.get(vital) + rhythm.amplitude * np.cos(2 * math.pi * (hour - rhythm.peak_hour) / 24)
        for period, phase in waves[index]:
            value = value + WANDER[vital] * wander_scale * np.sin(2 * math.pi * t / period + phase)
        for episode, share in progress:
            value = value + share * episode.shift.get(vital)
        values[vital] = value
    values["spo2"] = np.minimum(values["spo2"], 100.0)
    values["diastolic"] = np.minimum(values["diastolic"], values["systolic"] - 20.0)
    return values


def _measured(
    vital: Vital, truth: FloatArray, rng: np.random.Generator, noise_scale: float = 1.0
) -> FloatArray:
    noise = NOISE[vital]
    value = np.clip(truth + rng.normal(0.0, noise.sd * noise_scale, truth.shape), noise.low, noise.high)
    return _at_resolution(vital, value)


def _at_resolution(vital: Vital, value: FloatArray) -> FloatArray:
    """Values as the device shows them: within its range, half up at its resolution."""
    noise = NOISE[vital]
    value = np.clip(value, noise.low, noise.high)
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
    settings: GeneratorSettings,
) -> tuple[FloatArray, npt.NDArray[np.int8], FloatArray, int]:
    """The readings (days, kind index, values) and the weekday of the weekly measurements (`_plans`)."""
    day = np.arange(days, dtype=np.float64)
    habit = float(rng.uniform(-1.0, 1.0))
    jitter = np.clip(rng.normal(0.0, 0.5, days), -1.5, 1.5)
    session = day + (MORNING_HOUR + habit + jitter) / 24.0
    plans, weekday = _plans(rng, conditions, _unwell(episodes, session) > UNWELL_PROGRESS, days)
    times: list[FloatArray] = []
    kinds: list[npt.NDArray[np.int8]] = []
    for index, plan in enumerate(plans):
        minutes = 2.5 * index + rng.uniform(0.5, 2.0, days)
        taken = plan & measuring & (rng.random(days) >= settings.missed_one)
        times.append((session + minutes / 1440.0)[taken])
        kinds.append(np.full(int(taken.sum()), index, dtype=np.int8))
    t = np.concatenate(times)
    kind = np.concatenate(kinds)
    keep = ~_inside(t, blocked) & (t >= 0.0) & (t < days)
    t, kind = t[keep], kind[keep]
    order = np.argsort(t, kind="stable")
    t, kind = t[order], kind[order]
    truth = _truth(baseline, waves, episodes, t, settings.wander_scale)
    measured = {vital: _measured(vital, truth[vital], rng, settings.noise_scale) for vital in VITALS}
    measured["diastolic"] = np.minimum(measured["diastolic"], measured["systolic"] - 10.0)
    values = np.full((len(t), 3), np.nan)
    for index, name in enumerate(KINDS):
        rows = kind == index
        for column, vital in enumerate(MEASUREMENT_VITALS[name]):
            values[rows, column] = measured[vital][rows]
    return t, kind, values, weekday


# --- artefacts ----------------------------------------------------------------------------------------

#: A patient who wears the cuff on the other arm does so at this share of blood-pressure readings, and
#: that arm reads this much lower (mmHg systolic; the diastolic half of it).
WRONG_ARM_SHARE_OF_READINGS: Final = 0.5
INTER_ARM_DIFFERENCE: Final = Span(8.0, 20.0)
#: A device clock that is off is off by this many hours, either way (a wrong time zone, a wrong date).
CLOCK_ERROR_HOURS: Final = Span(2.0, 26.0)
#: A reading taken again follows the first by this many minutes.
REPEAT_MINUTES: Final = Span(2.0, 10.0)


def _has_artefacts(settings: GeneratorSettings) -> bool:
    return any(
        (settings.outlier_share, settings.repeat_share, settings.clock_error_share, settings.wrong_arm_share)
    )


def _artefacts(
    rng: np.random.Generator,
    t: FloatArray,
    kind: npt.NDArray[np.int8],
    values: FloatArray,
    days: int,
    settings: GeneratorSettings,
) -> tuple[FloatArray, npt.NDArray[np.int8], FloatArray]:
    """The readings as devices and people also make them: a cuff on the other arm, an implausible
    value (a cold finger, someone else on the scale, a thermometer not in place, talking during a
    blood pressure), a reading taken again minutes later, and a device clock that is hours off."""
    n = t.size
    # The patient's own draws first, so that they do not depend on how many readings there are.
    wrong_arm = bool(rng.random() < settings.wrong_arm_share)
    arm_difference = _draw(rng, INTER_ARM_DIFFERENCE)
    clock_off = bool(rng.random() < settings.clock_error_share)
    offset_days = (1.0 if rng.random() < 0.5 else -1.0) * _draw(rng, CLOCK_ERROR_HOURS) / 24.0
    values = values.copy()
    pressure = kind == KINDS.index("blood-pressure")
    other_arm = pressure & (rng.random(n) < WRONG_ARM_SHARE_OF_READINGS) & wrong_arm
    values[other_arm, 0] = _at_resolution("systolic", values[other_arm, 0] - arm_difference)
    values[other_arm, 1] = _at_resolution("diastolic", values[other_arm, 1] - arm_difference / 2)
    outlier = rng.random(n) < settings.outlier_share
    size = rng.uniform(0.0, 1.0, n)
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    weight = outlier & (kind == KINDS.index("body-weight"))
    values[weight, 0] = _at_resolution(
        "weight", values[weight, 0] + sign[weight] * (4.0 + 8.0 * size[weight])
    )
    high = outlier & pressure
    values[high, 0] = _at_resolution("systolic", values[high, 0] + 25.0 + 25.0 * size[high])
    values[high, 1] = _at_resolution("diastolic", values[high, 1] + 10.0 + 15.0 * size[high])
    cold = outlier & (kind == KINDS.index("spo2"))
    values[cold, 0] = _at_resolution("spo2", 72.0 + 13.0 * size[cold])
    misplaced = outlier & (kind == KINDS.index("body-temperature"))
    values[misplaced, 0] = _at_resolution("temperature", 34.0 + 1.5 * size[misplaced])
    values[pressure, 1] = np.minimum(values[pressure, 1], values[pressure, 0] - 10.0)
    again = rng.random(n) < settings.repeat_share
    repeat_t = t[again] + rng.uniform(REPEAT_MINUTES.low, REPEAT_MINUTES.high, int(again.sum())) / 1440.0
    repeat_values = values[again].copy()
    for index, name in enumerate(KINDS):
        rows = kind[again] == index
        for column, vital in enumerate(MEASUREMENT_VITALS[name]):
            noisy = repeat_values[rows, column] + rng.normal(0.0, NOISE[vital].sd, int(rows.sum()))
            repeat_values[rows, column] = _at_resolution(vital, noisy)
    repeat_pressure = kind[again] == KINDS.index("blood-pressure")
    repeat_values[repeat_pressure, 1] = np.minimum(
        repeat_values[repeat_pressure, 1], repeat_values[repeat_pressure, 0] - 10.0
    )
    t = np.concatenate([t, repeat_t])
    kind = np.concatenate([kind, kind[again]])
    values = np.concatenate([values, repeat_values])
    if clock_off:
        t = t + offset_days
    keep = (t >= 0.0) & (t < days)
    order = np.argsort(t[keep], kind="stable")
    return t[keep][order], kind[keep][order], values[keep][order]


# --- staff change observations ------------------------------------------------------------------------


def _forms(
    rng: np.random.Generator,
    daily_visits: bool,
    episodes: tuple[HistoryEpisode, ...],
    admissions: tuple[Admission, ...],
    blocked: tuple[tuple[float, float], ...],
    days: int,
    settings: GeneratorSettings,
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """When the staff fill in the change form (daily: at the first visit; weekly: one visit a week) and
    which items they mark changed; none at all where the population's staff use no such form."""
    day = np.arange(days, dtype=np.float64)
    weekday = int(rng.integers(7))
    first_visit = day + np.clip(rng.normal(8.0, 0.5, days), 6.5, 10.0) / 24.0
    weekly_visit = day + rng.uniform(9.0, 14.0, days) / 24.0
    t = first_visit if daily_visits else weekly_visit[(day % 7) == weekday]
    t = t[~_inside(t, blocked)]
    if not settings.staff_forms:
        return t[:0], np.zeros((0, len(CHANGE_KEYS)), dtype=bool)
    personal = np.exp(rng.normal(0.0, CHANGE_PERSONAL_SD, len(CHANGE_KEYS)) - CHANGE_PERSONAL_SD**2 / 2)
    background = np.array([CHANGE_BACKGROUND[k] for k in CHANGE_KEYS]) * settings.change_background_scale
    chance = np.tile(background * personal, (len(t), 1))
    for episode in episodes:
        progress = episode.progress(t)
        for column, key in enumerate(CHANGE_KEYS):
            seen = CHANGE_IN_EPISODE[episode.kind].get(key, 0.0) * settings.change_in_episode_scale
            chance[:, column] += seen * progress
    for admission in admissions:
        fading = np.clip(1.0 - (t - admission.end_day) / RESIDUAL_DAYS, 0.0, 1.0) * (t >= admission.end_day)
        for column, key in enumerate(CHANGE_KEYS):
            chance[:, column] += CHANGE_AFTER_DISCHARGE.get(key, 0.0) * fading
    changes: npt.NDArray[np.bool_] = rng.random(chance.shape) < np.minimum(chance, 0.95)
    return t, changes
