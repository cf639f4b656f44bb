"""The knobs of the long SYNTHETIC cohort (`history.py`): one frozen value per population.

`GeneratorSettings()` (`DEFAULT_SETTINGS`) is the population the project has always simulated: every
field defaults to the constant of `profiles.py` it replaces, and with it `simulate_history` gives the
same cohort, byte for byte, as before the settings existed (a test holds the NDJSON's hash). Other
values describe other SYNTHETIC populations, so that a model can be trained over many of them and
measured on some it never saw (`models.cohort.populations`, `models.default_model`):

- prevalence: the event rate, how unequal it is between patients (the gamma shape of the personal
  multiplier, and how much a patient's usual vitals, conditions and age say about it:
  `baseline_risk_link`, `condition_risk`, `age_risk_per_decade`) and the share of admissions that come
  without warning (falls, sudden events);
- baselines: shifts of every condition profile's baseline vitals, and how widely patients spread
  around the profile's centre;
- noise: the device noise and the day-to-day physiological wander, as multiples of `NOISE`/`WANDER`;
- adherence: the usual chance to measure (beta distribution), lapses, single missed measurements, how
  much being unwell changes measuring, and drop-outs (patients who stop measuring for good);
- artefacts: implausible outliers, readings taken twice, device clocks that are off, and a blood
  pressure cuff sometimes worn on the other arm;
- episode shape: build-up length, size, the curve from onset to peak, and which vitals move;
- staff forms: whether there are any, how many patients get daily visits, and how much the staff
  see of an episode or note with none;
- issue 21: how many patients answer a daily symptom check and how many have a measurement plan
  (`symptoms.py`; none by default).

The new mechanisms (drop-outs, artefacts) draw from random streams of their own, so at their defaults
(none) they change nothing else. Every value is validated here; a bad one is a `CohortError` naming
the field. Nothing in this module simulates anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Final, Literal, get_args

from models.cohort.profiles import (
    ADHERENCE_BETA,
    DAILY_VISITS_SHARE,
    EVENT_RATE_PER_DAY,
    LAPSE_START,
    MISSED_ONE,
    PERSONAL_RATE_SHAPE,
    UNHERALDED_SHARE,
    UNWELL_ADHERENCE_DROP,
    VITALS,
    Vital,
)
from models.cohort.synthetic import CohortError

#: How an episode's shift grows from its onset (0) to its peak (1): the S-curve of the project's
#: generator; a straight line; most of it early ("early": 1 - (1 - x)^3); or most of it in the last
#: part ("late": x^4, an abrupt deterioration after a quiet build-up).
EpisodeCurve = Literal["s-curve", "linear", "early", "late"]
EPISODE_CURVES: Final[tuple[EpisodeCurve, ...]] = get_args(EpisodeCurve)


@dataclass(frozen=True, slots=True)
class VitalShift:
    """A shift of every condition profile's baseline, per vital (the diastolic follows the systolic)."""

    spo2: float = 0.0  # percentage points
    pulse: float = 0.0  # /min
    systolic: float = 0.0  # mmHg
    temperature: float = 0.0  # °C
    weight: float = 0.0  # kg

    def get(self, vital: str) -> float:
        """The shift of one vital by name (0 for the diastolic: it moves with the systolic)."""
        value: float = getattr(self, vital, 0.0) if vital != "diastolic" else 0.0
        return value

    @property
    def zero(self) -> bool:
        """True when nothing is shifted."""
        return all(getattr(self, f.name) == 0.0 for f in fields(self))


@dataclass(frozen=True, slots=True)
class ConditionRisk:
    """A multiplier of the event rate per chronic condition; a patient's rate is multiplied by the mean
    of their conditions' multipliers (1 everywhere: the project's population)."""

    heart_failure: float = 1.0
    copd: float = 1.0
    diabetes: float = 1.0
    frailty: float = 1.0

    def get(self, condition: str) -> float:
        """The multiplier of one condition by its name ("heart-failure", ...)."""
        value: float = getattr(self, condition.replace("-", "_"))
        return value

    @property
    def neutral(self) -> bool:
        """True when no condition changes the rate."""
        return all(getattr(self, f.name) == 1.0 for f in fields(self))


@dataclass(frozen=True, slots=True)
class GeneratorSettings:
    """One SYNTHETIC population's settings; the defaults reproduce the project's cohorts exactly."""

    name: str = "default"
    # Prevalence.
    event_rate_per_day: float = EVENT_RATE_PER_DAY
    personal_rate_shape: float = PERSONAL_RATE_SHAPE
    unheralded_share: float = UNHERALDED_SHARE
    baseline_risk_link: float = 0.0  # log event rate per unit of baseline severity (sicker: more events)
    condition_risk: ConditionRisk = field(default_factory=ConditionRisk)  # the case mix's weight
    age_risk_per_decade: float = 0.0  # log event rate per 10 years of age above 80
    # Baselines.
    baseline_shift: VitalShift = field(default_factory=VitalShift)
    baseline_spread: float = 1.0  # patients' spread around each profile range's centre (x the range)
    # Noise.
    noise_scale: float = 1.0  # x NOISE[vital].sd
    wander_scale: float = 1.0  # x WANDER[vital]
    # Adherence.
    adherence_beta: tuple[float, float] = ADHERENCE_BETA
    lapse_start: float = LAPSE_START
    missed_one: float = MISSED_ONE
    unwell_adherence_drop: float = UNWELL_ADHERENCE_DROP  # negative: unwell patients measure more
    dropout_per_180_days: float = 0.0  # chance of stopping for good (per 180 days of follow-up)
    # Artefacts.
    outlier_share: float = 0.0  # share of readings with one implausible value
    repeat_share: float = 0.0  # share of readings taken again a few minutes later
    clock_error_share: float = 0.0  # share of patients whose devices' clock is off (hours)
    wrong_arm_share: float = 0.0  # share of patients who sometimes wear the cuff on the other arm
    # Episode shape.
    build_up_scale: float = 1.0  # x the course's onset-to-peak days
    severity_scale: float = 1.0  # x the episode's size (share of the way to the EPISODES peak)
    episode_curve: EpisodeCurve = "s-curve"
    episode_vitals: tuple[Vital, ...] = VITALS  # the vitals an episode moves (others stay put)
    # Staff change forms.
    staff_forms: bool = True
    daily_visits_share: float = DAILY_VISITS_SHARE
    change_background_scale: float = 1.0  # x CHANGE_BACKGROUND (notes with nothing behind them)
    change_in_episode_scale: float = 1.0  # x CHANGE_IN_EPISODE (what staff see of an episode)
    # Issue 21 (`symptoms.py`): none by default, so the project's own cohorts stay as they were.
    questionnaire_share: float = 0.0  # share of heart-failure and COPD patients answering a daily check
    plan_share: float = 0.0  # share of patients whose nurse set a measurement plan

    def __post_init__(self) -> None:
        _check_name(self.name)
        _positive("event_rate_per_day", self.event_rate_per_day)
        _positive("personal_rate_shape", self.personal_rate_shape)
        if not -3.0 <= self.baseline_risk_link <= 3.0:  # also refuses NaN
            raise CohortError("baseline_risk_link", self.baseline_risk_link, "must be between -3 and 3")
        if not -3.0 <= self.age_risk_per_decade <= 3.0:
            raise CohortError("age_risk_per_decade", self.age_risk_per_decade, "must be between -3 and 3")
        for f in fields(self.condition_risk):
            _positive("condition_risk", getattr(self.condition_risk, f.name))
        _positive("noise_scale", self.noise_scale, allow_zero=True)
        _positive("wander_scale", self.wander_scale, allow_zero=True)
        _positive("baseline_spread", self.baseline_spread, allow_zero=True)
        _positive("build_up_scale", self.build_up_scale)
        _positive("severity_scale", self.severity_scale, allow_zero=True)
        _positive("change_background_scale", self.change_background_scale, allow_zero=True)
        _positive("change_in_episode_scale", self.change_in_episode_scale, allow_zero=True)
        for name in (
            "unheralded_share",
            "lapse_start",
            "missed_one",
            "dropout_per_180_days",
            "outlier_share",
            "repeat_share",
            "clock_error_share",
            "wrong_arm_share",
            "daily_visits_share",
            "questionnaire_share",
            "plan_share",
        ):
            _share(name, getattr(self, name))
        if not -1.0 <= self.unwell_adherence_drop <= 1.0 or math.isnan(self.unwell_adherence_drop):
            raise CohortError("unwell_adherence_drop", self.unwell_adherence_drop, "must be between -1 and 1")
        if len(self.adherence_beta) != 2 or not all(math.isfinite(a) and a > 0 for a in self.adherence_beta):
            raise CohortError("adherence_beta", self.adherence_beta, "must be two positive numbers (a, b)")
        if self.episode_curve not in EPISODE_CURVES:
            raise CohortError("episode_curve", self.episode_curve, f"must be one of {EPISODE_CURVES}")
        if not set(self.episode_vitals) <= set(VITALS):
            raise CohortError("episode_vitals", self.episode_vitals, f"must be among {VITALS}")
        for vital in ("spo2", "pulse", "systolic", "temperature", "weight"):
            if not math.isfinite(self.baseline_shift.get(vital)):
                raise CohortError("baseline_shift", self.baseline_shift, "must be finite numbers")

    @property
    def adherence_mean(self) -> float:
        """The mean usual chance to measure on a day (of the beta distribution)."""
        a, b = self.adherence_beta
        return a / (a + b)


def _check_name(name: str) -> None:
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise CohortError("name", name, "must be letters, digits, '-', '_' or '.'")


def _positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise CohortError(name, value, "must be a positive number" if not allow_zero else "must be >= 0")


def _share(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise CohortError(name, value, "must be between 0 and 1")


#: The project's own population (what `homewatch models cohort` has always written).
DEFAULT_SETTINGS: Final = GeneratorSettings()
