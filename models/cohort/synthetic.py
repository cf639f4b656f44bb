"""A seeded, reproducible SYNTHETIC cohort of people living at home with heart failure, COPD, diabetes or
frailty, their physiological truth over time, noisy home measurements and a home-monitoring schedule.

Everything this module makes is SYNTHETIC: no record describes a real person. Every record carries
`synthetic=True` (a field that cannot be set otherwise) and every patient is named "Synthetic patient N".

- `make_cohort(n, seed)` draws the patients. Patient i depends only on (seed, i), so a larger cohort
  with the same seed starts with the same patients; which patients deteriorate is drawn for the cohort.
- `SyntheticPatient.vitals_at(t)` is the truth at any time: personal baseline + daily rhythm + slow
  day-to-day wander + the trajectory of a deterioration episode, if the patient has one. It is a pure
  function of the patient and `t`.
- `SyntheticPatient.measure(vital, t, rng)` and `read(kind, t, rng)` add a device's noise and
  resolution; `schedule(...)` lists when a plan asks for measurements (with jitter and missed ones);
  `take_readings(...)` measures a whole schedule.

An episode ramps smoothly from its onset to its peak, which falls on one of the last four days of the
simulated period before the morning measurements; the patient then stays at the peak to the end of the
period (a real patient would be admitted around the peak: `Episode.peak_at` is the day to count as the
admission when judging alerts). The tables of ranges live in `profiles.py`. Scoring is left to
`models.news2` and to the other models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Final

import numpy as np

from models.cohort.profiles import (
    CONDITIONS,
    DAILY_PLAN,
    DAY_JITTER_HOURS,
    EPISODES,
    HABIT_SPREAD_HOURS,
    MEASUREMENT_VITALS,
    MISSED_MEASUREMENT,
    MISSED_SESSION,
    NOISE,
    PROFILES,
    RHYTHMS,
    SCALE2_SHARE_OF_COPD,
    SPO2_SCALE2_BASELINE,
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
from models.errors import ModelsError

#: Where a cohort starts unless told otherwise: a Monday, midnight, Danish winter time (UTC+1).
DEFAULT_START: Final = datetime(2025, 1, 6, tzinfo=timezone(timedelta(hours=1), "CET"))
#: The shortest period in which an episode (up to 5 days) can build up and peak.
MIN_DAYS: Final = 7
#: Peaks fall on one of this many last days, before this local hour (so before the morning readings).
PEAK_WINDOW_DAYS: Final = 4
PEAK_BEFORE_HOUR: Final = 6.0

_DAY: Final = timedelta(days=1)


class CohortError(ModelsError):
    """An argument the generator cannot use; `argument` names it."""

    def __init__(self, argument: str, value: object, reason: str) -> None:
        super().__init__(f"{argument}={value!r}: {reason}")
        self.argument = argument
        self.value = value
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Vitals:
    """The six vitals the demo's devices measure (SpO2 %, pulse /min, mmHg, °C, kg). SYNTHETIC."""

    spo2: float
    pulse: float
    systolic: float
    diastolic: float
    temperature: float
    weight: float
    synthetic: bool = field(default=True, init=False)

    def get(self, vital: Vital) -> float:
        """The value of one vital by name."""
        value: float = getattr(self, vital)
        return value


@dataclass(frozen=True, slots=True)
class TrueVitals(_Vitals):
    """SYNTHETIC physiological truth at one moment."""


@dataclass(frozen=True, slots=True)
class Baseline(_Vitals):
    """A SYNTHETIC patient's own normal: daily means when stable."""


@dataclass(frozen=True, slots=True)
class Episode:
    """A SYNTHETIC deterioration: from `onset` the vitals move smoothly by `shift` until `peak_at`."""

    kind: EpisodeKind
    onset_day: int  # whole days from the cohort start to the onset
    onset: datetime
    duration: timedelta
    shift: Baseline  # change from baseline at the peak, per vital
    synthetic: bool = field(default=True, init=False)

    @property
    def peak_at(self) -> datetime:
        """When the episode peaks (the day a real patient would be admitted)."""
        return self.onset + self.duration

    def progress(self, t: datetime) -> float:
        """0 before the onset, 1 from the peak on, a smooth S-curve between."""
        x = (t - self.onset) / self.duration
        x = min(max(x, 0.0), 1.0)
        return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True, slots=True)
class Wave:
    """One slow personal wave of day-to-day variation."""

    period_days: float
    phase: float


@dataclass(frozen=True, slots=True)
class SyntheticPatient:
    """A SYNTHETIC person living at home: `vitals_at` gives the truth, `measure` and `read` a device's."""

    id: str
    number: int
    name: str
    birth_date: date
    sex: Sex
    conditions: tuple[Condition, ...]  # main condition first
    spo2_scale2: bool
    baseline: Baseline
    episode: Episode | None
    start: datetime  # start of the simulated period; its timezone is the patient's local time
    days: int
    waves: tuple[tuple[Wave, Wave], ...]  # per vital, in the order of VITALS
    synthetic: bool = field(default=True, init=False)

    @property
    def deteriorating(self) -> bool:
        """True when the patient has a deterioration episode."""
        return self.episode is not None

    def vitals_at(self, t: datetime) -> TrueVitals:
        """The physiological truth at `t` (timezone-aware)."""
        if t.tzinfo is None:
            raise CohortError("t", t, "must be timezone-aware")
        local = t.astimezone(self.start.tzinfo)
        hour = local.hour + local.minute / 60 + local.second / 3600
        day = (t - self.start) / _DAY
        progress = 0.0 if self.episode is None else self.episode.progress(t)
        values: dict[Vital, float] = {}
        for index, vital in enumerate(VITALS):
            rhythm = RHYTHMS[vital]
            value = self.baseline.get(vital)
            value += rhythm.amplitude * math.cos(2 * math.pi * (hour - rhythm.peak_hour) / 24)
            value += WANDER[vital] * sum(
                math.sin(2 * math.pi * day / wave.period_days + wave.phase) for wave in self.waves[index]
            )
            if self.episode is not None:
                value += progress * self.episode.shift.get(vital)
            values[vital] = value
        return TrueVitals(
            spo2=min(values["spo2"], 100.0),
            pulse=values["pulse"],
            systolic=values["systolic"],
            diastolic=min(values["diastolic"], values["systolic"] - 20.0),
            temperature=values["temperature"],
            weight=values["weight"],
        )

    def measure(self, vital: Vital, t: datetime, rng: np.random.Generator) -> float:
        """One device's measurement of `vital` at `t`: the truth plus noise, at the device's resolution."""
        return _with_noise(vital, self.vitals_at(t).get(vital), rng)

    def read(self, kind: MeasurementKind, t: datetime, rng: np.random.Generator) -> Reading:
        """What one device of `kind` reports at `t` (a cuff: systolic, diastolic and pulse)."""
        truth = self.vitals_at(t)
        values = {vital: _with_noise(vital, truth.get(vital), rng) for vital in MEASUREMENT_VITALS[kind]}
        if "systolic" in values:
            values["diastolic"] = min(values["diastolic"], values["systolic"] - 10.0)
        return Reading(patient_id=self.id, at=t, kind=kind, **values)


@dataclass(frozen=True, slots=True)
class ScheduledMeasurement:
    """One SYNTHETIC measurement a home-monitoring plan asks for."""

    at: datetime
    kind: MeasurementKind
    synthetic: bool = field(default=True, init=False)


@dataclass(frozen=True, slots=True)
class Reading:
    """One SYNTHETIC device reading; the vitals the device does not report are None."""

    patient_id: str
    at: datetime
    kind: MeasurementKind
    spo2: float | None = None
    pulse: float | None = None
    systolic: float | None = None
    diastolic: float | None = None
    temperature: float | None = None
    weight: float | None = None
    synthetic: bool = field(default=True, init=False)

    def values(self) -> dict[Vital, float]:
        """The vitals this reading holds."""
        return {vital: value for vital in VITALS if (value := getattr(self, vital)) is not None}


# --- the cohort ---------------------------------------------------------------------------------------


def make_cohort(
    n: int,
    seed: int,
    deteriorating_fraction: float = 0.25,
    days: int = 30,
    start: datetime = DEFAULT_START,
) -> list[SyntheticPatient]:
    """`n` SYNTHETIC patients followed for `days` days from `start`; round(n * fraction) deteriorate."""
    if n < 0:
        raise CohortError("n", n, "must not be negative")
    if seed < 0:
        raise CohortError("seed", seed, "must not be negative")
    if not 0.0 <= deteriorating_fraction <= 1.0:
        raise CohortError("deteriorating_fraction", deteriorating_fraction, "must be between 0 and 1")
    if days < MIN_DAYS:
        raise CohortError("days", days, f"must be at least {MIN_DAYS} for an episode to build up and peak")
    if start.tzinfo is None:
        raise CohortError("start", start, "must be timezone-aware")
    chosen = np.random.default_rng([seed, 0]).permutation(n)[: round(n * deteriorating_fraction)]
    deteriorating = {int(index) + 1 for index in chosen}
    return [_make_patient(number, seed, start, days, number in deteriorating) for number in range(1, n + 1)]


def _draw(rng: np.random.Generator, span: Span) -> float:
    return float(rng.uniform(span.low, span.high))


def _make_patient(
    number: int, seed: int, start: datetime, days: int, deteriorating: bool
) -> SyntheticPatient:
    rng = np.random.default_rng([seed, number])
    names = list(PROFILES)
    main: Condition = names[int(rng.choice(len(names), p=[PROFILES[c].share for c in names]))]
    profile = PROFILES[main]
    conditions = [main] + [c for c, p in profile.comorbidities if rng.random() < p]
    conditions.sort(key=lambda c: (c != main, CONDITIONS.index(c)))
    sex: Sex = "female" if rng.random() < 0.5 else "male"
    age_days = _draw(rng, profile.age) * 365.25
    scale2 = main == "copd" and rng.random() < SCALE2_SHARE_OF_COPD
    systolic = _draw(rng, profile.systolic)
    baseline = Baseline(
        spo2=_draw(rng, SPO2_SCALE2_BASELINE if scale2 else profile.spo2),
        pulse=_draw(rng, profile.pulse),
        systolic=systolic,
        diastolic=systolic - _draw(rng, profile.pulse_pressure),
        temperature=_draw(rng, profile.temperature),
        weight=_draw(rng, profile.weight_female if sex == "female" else profile.weight_male),
    )
    waves = tuple(
        (
            Wave(_draw(rng, WANDER_PERIOD_DAYS), float(rng.uniform(0, 2 * math.pi))),
            Wave(_draw(rng, WANDER_PERIOD_DAYS), float(rng.uniform(0, 2 * math.pi))),
        )
        for _ in VITALS
    )
    # The episode has its own stream so that being chosen to deteriorate changes nothing else.
    episode = _make_episode(np.random.default_rng([seed, number, 1]), main, scale2, baseline, start, days)
    return SyntheticPatient(
        id=f"p-{number:04d}",
        number=number,
        name=f"Synthetic patient {number}",
        birth_date=start.date() - timedelta(days=int(age_days)),
        sex=sex,
        conditions=tuple(conditions),
        spo2_scale2=scale2,
        baseline=baseline,
        episode=episode if deteriorating else None,
        start=start,
        days=days,
        waves=waves,
    )


def _make_episode(
    rng: np.random.Generator, main: Condition, scale2: bool, baseline: Baseline, start: datetime, days: int
) -> Episode:
    kinds = PROFILES[main].episode_kinds
    kind = kinds[int(rng.choice(len(kinds), p=[p for _, p in kinds]))][0]
    profile = EPISODES[kind]
    duration = timedelta(days=_draw(rng, profile.duration_days))
    first_peak_day = max(days - PEAK_WINDOW_DAYS, math.ceil(duration / _DAY) + 1)
    peak_day = int(rng.integers(first_peak_day, days))  # days - 1 at the latest: within the period
    peak_at = _local_midnight(start, peak_day) + timedelta(hours=float(rng.uniform(0, PEAK_BEFORE_HOUR)))
    onset = peak_at - duration

    def towards(target: Span | None, base: float) -> float:
        return 0.0 if target is None else _draw(rng, target) - base

    spo2_target = profile.spo2_scale2 if scale2 else profile.spo2
    systolic_shift = towards(profile.systolic, baseline.systolic)
    shift = Baseline(
        spo2=min(towards(spo2_target, baseline.spo2), 0.0),
        pulse=towards(profile.pulse, baseline.pulse),
        systolic=systolic_shift,
        diastolic=systolic_shift / 2,
        temperature=towards(profile.temperature, baseline.temperature),
        weight=_draw(rng, profile.weight_gain),
    )
    return Episode(kind, (onset - start) // _DAY, onset, duration, shift)


def _local_midnight(start: datetime, day: int) -> datetime:
    """Local midnight `day` calendar days after the date of `start`, in its timezone."""
    return datetime.combine(start.date() + timedelta(days=day), time(), tzinfo=start.tzinfo)


# --- measuring ----------------------------------------------------------------------------------------


def _with_noise(vital: Vital, truth: float, rng: np.random.Generator) -> float:
    noise = NOISE[vital]
    value = truth + float(rng.normal(0.0, noise.sd))
    value = min(max(value, noise.low), noise.high)
    # Half up at the device's resolution; round() again strips the binary tail (36.699999 -> 36.7).
    return round(math.floor(value / noise.resolution + 0.5) * noise.resolution, 1)


def schedule(patient: SyntheticPatient, start: datetime, days: int, seed: int) -> list[ScheduledMeasurement]:
    """When the home-monitoring plan (`profiles.DAILY_PLAN`) asks `patient` to measure over `days`
    calendar days from the date of `start`: the patient's habitual time, a daily jitter, a minute or
    few between devices, and a few percent missed. Measurements before `start` are left out."""
    if start.tzinfo is None:
        raise CohortError("start", start, "must be timezone-aware")
    if days < 0:
        raise CohortError("days", days, "must not be negative")
    if seed < 0:
        raise CohortError("seed", seed, "must not be negative")
    rng = np.random.default_rng([seed, patient.number, 2])
    habit = {s.name: float(rng.uniform(-HABIT_SPREAD_HOURS, HABIT_SPREAD_HOURS)) for s in DAILY_PLAN}
    end = _local_midnight(start, days)
    planned: list[ScheduledMeasurement] = []
    for day in range(days):
        midnight = _local_midnight(start, day)
        for session in DAILY_PLAN:
            limit = 3 * DAY_JITTER_HOURS
            jitter = float(np.clip(rng.normal(0.0, DAY_JITTER_HOURS), -limit, limit))
            at = midnight + timedelta(hours=session.hour + habit[session.name] + jitter)
            skip_session = rng.random() < MISSED_SESSION
            for kind in session.kinds:
                at += timedelta(minutes=float(rng.uniform(1.0, 4.0)))
                missed = rng.random() < MISSED_MEASUREMENT
                if not (skip_session or missed) and start <= at < end:
                    planned.append(ScheduledMeasurement(at.replace(microsecond=0), kind))
    return planned


def take_readings(patient: SyntheticPatient, planned: list[ScheduledMeasurement], seed: int) -> list[Reading]:
    """The SYNTHETIC readings `patient`'s devices give at the planned times."""
    rng = np.random.default_rng([seed, patient.number, 3])
    return [patient.read(item.kind, item.at, rng) for item in planned]
