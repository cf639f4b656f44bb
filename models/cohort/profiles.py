"""The ranges the SYNTHETIC cohort draws its patients from: baselines per condition, deterioration episodes,
daily rhythms, measurement noise and the home-monitoring plan.

Everything here is SYNTHETIC: plausible textbook values for older people living at home with heart
failure, COPD, diabetes or frailty, chosen by hand and not fitted to any real patient or data set. The
generator in `synthetic.py` uses these tables; nothing here is random or does I/O.

The episode targets are chosen so that a patient at the peak of an episode scores NEWS2 5 or more from
SpO2, pulse, systolic BP and temperature alone (what a home measures), with a margin for the daily
rhythm, day-to-day variation and measurement noise; the baselines are chosen so that most stable
patient-days score 0-2, as they do in practice (a COPD patient's SpO2 of 94 % already scores 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Condition = Literal["heart-failure", "copd", "diabetes", "frailty"]
EpisodeKind = Literal["heart-failure-decompensation", "copd-exacerbation", "infection"]
Sex = Literal["female", "male"]
#: One physiological quantity, named as the fields of `TrueVitals`.
Vital = Literal["spo2", "pulse", "systolic", "diastolic", "temperature", "weight"]
#: What one home device measures, named as the reading types of the FHIR contract.
MeasurementKind = Literal["blood-pressure", "spo2", "body-weight", "body-temperature"]

CONDITIONS: Final[tuple[Condition, ...]] = ("heart-failure", "copd", "diabetes", "frailty")
VITALS: Final[tuple[Vital, ...]] = ("spo2", "pulse", "systolic", "diastolic", "temperature", "weight")
MEASUREMENT_KINDS: Final[tuple[MeasurementKind, ...]] = (
    "blood-pressure",
    "spo2",
    "body-weight",
    "body-temperature",
)

#: The vitals each device reports: a blood-pressure cuff and a pulse oximeter both report pulse.
MEASUREMENT_VITALS: Final[dict[MeasurementKind, tuple[Vital, ...]]] = {
    "blood-pressure": ("systolic", "diastolic", "pulse"),
    "spo2": ("spo2", "pulse"),
    "body-weight": ("weight",),
    "body-temperature": ("temperature",),
}


@dataclass(frozen=True, slots=True)
class Span:
    """A closed interval [low, high] to draw a value from uniformly."""

    low: float
    high: float


@dataclass(frozen=True, slots=True)
class ConditionProfile:
    """Where a patient whose main condition this is sits when stable (daily means)."""

    share: float  # share of the cohort with this main condition
    age: Span
    spo2: Span
    pulse: Span
    systolic: Span
    pulse_pressure: Span  # systolic - diastolic
    temperature: Span
    weight_female: Span
    weight_male: Span
    episode_kinds: tuple[tuple[EpisodeKind, float], ...]  # kind, probability
    comorbidities: tuple[tuple[Condition, float], ...]  # extra condition, probability


PROFILES: Final[dict[Condition, ConditionProfile]] = {
    # Beta-blocked, often on diuretics and ACE inhibitors: lowish pulse and pressure.
    "heart-failure": ConditionProfile(
        share=0.3,
        age=Span(65, 92),
        spo2=Span(95, 97.5),
        pulse=Span(60, 80),
        systolic=Span(112, 138),
        pulse_pressure=Span(40, 55),
        temperature=Span(36.5, 36.9),
        weight_female=Span(58, 95),
        weight_male=Span(70, 115),
        episode_kinds=(("heart-failure-decompensation", 0.75), ("infection", 0.25)),
        comorbidities=(("diabetes", 0.35), ("copd", 0.15), ("frailty", 0.2)),
    ),
    # Lower saturation and a faster pulse even when stable; often underweight.
    "copd": ConditionProfile(
        share=0.3,
        age=Span(60, 88),
        spo2=Span(93.5, 96.5),
        pulse=Span(68, 90),
        systolic=Span(118, 145),
        pulse_pressure=Span(45, 60),
        temperature=Span(36.5, 36.9),
        weight_female=Span(45, 80),
        weight_male=Span(55, 95),
        episode_kinds=(("copd-exacerbation", 0.75), ("infection", 0.25)),
        comorbidities=(("heart-failure", 0.2), ("diabetes", 0.15), ("frailty", 0.2)),
    ),
    "diabetes": ConditionProfile(
        share=0.2,
        age=Span(55, 85),
        spo2=Span(95.5, 98.5),
        pulse=Span(64, 84),
        systolic=Span(122, 150),
        pulse_pressure=Span(45, 65),
        temperature=Span(36.5, 36.9),
        weight_female=Span(65, 110),
        weight_male=Span(75, 125),
        episode_kinds=(("infection", 1.0),),
        comorbidities=(("heart-failure", 0.2), ("frailty", 0.15)),
    ),
    # Very old, light, stiff arteries (wide pulse pressure).
    "frailty": ConditionProfile(
        share=0.2,
        age=Span(78, 97),
        spo2=Span(95, 98),
        pulse=Span(62, 82),
        systolic=Span(118, 150),
        pulse_pressure=Span(50, 70),
        temperature=Span(36.5, 36.8),
        weight_female=Span(42, 68),
        weight_male=Span(52, 78),
        episode_kinds=(("infection", 1.0),),
        comorbidities=(("diabetes", 0.2), ("heart-failure", 0.2)),
    ),
}

#: Share of COPD patients with confirmed hypercapnic respiratory failure, scored on SpO2 scale 2.
SCALE2_SHARE_OF_COPD: Final = 0.4
#: Their stable saturation: the 88-92 % target range of scale 2.
SPO2_SCALE2_BASELINE: Final = Span(89.5, 92.0)


@dataclass(frozen=True, slots=True)
class EpisodeProfile:
    """A deterioration episode: how long it takes to peak and where the vitals stand at the peak.

    SpO2, pulse, systolic and temperature are absolute targets at the peak (None: unchanged); weight
    is a gain. The diastolic pressure moves by half the systolic change.
    """

    duration_days: Span
    spo2: Span | None
    spo2_scale2: Span | None
    pulse: Span
    systolic: Span | None
    temperature: Span | None
    weight_gain: Span


EPISODES: Final[dict[EpisodeKind, EpisodeProfile]] = {
    # Fluid overload: 2-4 kg over 3-5 days, tachycardia (often fast atrial fibrillation), desaturation.
    "heart-failure-decompensation": EpisodeProfile(
        duration_days=Span(3, 5),
        spo2=Span(86, 89),
        spo2_scale2=Span(79, 82),
        pulse=Span(120, 132),
        systolic=None,
        temperature=None,
        weight_gain=Span(2.0, 4.0),
    ),
    # Desaturation, tachycardia and a low fever.
    "copd-exacerbation": EpisodeProfile(
        duration_days=Span(2, 5),
        spo2=Span(85, 89),
        spo2_scale2=Span(78, 82),
        pulse=Span(116, 128),
        systolic=None,
        temperature=Span(38.4, 38.9),
        weight_gain=Span(0.0, 0.0),
    ),
    # Infection heading for sepsis: fever, tachycardia, falling pressure, some desaturation.
    "infection": EpisodeProfile(
        duration_days=Span(2, 4),
        spo2=Span(92, 95),
        spo2_scale2=Span(85, 88),
        pulse=Span(118, 130),
        systolic=Span(86, 96),
        temperature=Span(39.3, 39.9),
        weight_gain=Span(-1.0, 0.0),
    ),
}


@dataclass(frozen=True, slots=True)
class Rhythm:
    """The daily rhythm of one vital: a cosine of `amplitude` peaking at `peak_hour` local time."""

    amplitude: float
    peak_hour: float


#: Daily rhythms: pulse and pressure dip at night, temperature peaks late afternoon, weight is lowest
#: in the morning.
RHYTHMS: Final[dict[Vital, Rhythm]] = {
    "spo2": Rhythm(0.4, 14.0),
    "pulse": Rhythm(4.0, 16.0),
    "systolic": Rhythm(6.0, 12.0),
    "diastolic": Rhythm(4.0, 12.0),
    "temperature": Rhythm(0.25, 17.0),
    "weight": Rhythm(0.4, 20.0),
}

#: Day-to-day variation: each vital wanders by the sum of two slow personal waves of this amplitude.
WANDER: Final[dict[Vital, float]] = {
    "spo2": 0.4,
    "pulse": 2.0,
    "systolic": 3.5,
    "diastolic": 2.0,
    "temperature": 0.06,
    "weight": 0.25,
}
#: Periods of the wander waves, in days.
WANDER_PERIOD_DAYS: Final = Span(2.5, 11.0)


@dataclass(frozen=True, slots=True)
class Noise:
    """A device's measurement error (standard deviation), resolution and the range it can display."""

    sd: float
    resolution: float
    low: float
    high: float


NOISE: Final[dict[Vital, Noise]] = {
    "spo2": Noise(0.8, 1.0, 70.0, 100.0),  # oximeters show whole percent
    "pulse": Noise(2.0, 1.0, 30.0, 220.0),
    "systolic": Noise(4.0, 1.0, 60.0, 250.0),  # an oscillometric cuff: a few mmHg
    "diastolic": Noise(3.0, 1.0, 30.0, 150.0),
    "temperature": Noise(0.1, 0.1, 34.0, 42.5),
    "weight": Noise(0.15, 0.1, 30.0, 250.0),  # clothing and scale
}


@dataclass(frozen=True, slots=True)
class Session:
    """Measurements a home-monitoring plan asks for at one time of day (local hour)."""

    name: str
    hour: float
    kinds: tuple[MeasurementKind, ...]


#: The daily plan: weight first thing in the morning, then pressure, saturation and temperature;
#: pressure and saturation again in the evening.
DAILY_PLAN: Final[tuple[Session, ...]] = (
    Session("morning", 7.5, ("body-weight", "blood-pressure", "spo2", "body-temperature")),
    Session("evening", 19.5, ("blood-pressure", "spo2")),
)
MEASUREMENTS_PER_DAY: Final = sum(len(session.kinds) for session in DAILY_PLAN)

#: A patient's habitual time differs from the plan's by up to this many hours, and a day's from the
#: habit by up to this many.
HABIT_SPREAD_HOURS: Final = 1.0
DAY_JITTER_HOURS: Final = 0.5
#: Chance that a whole session is skipped (away, forgot) and that one measurement in it is.
MISSED_SESSION: Final = 0.015
MISSED_MEASUREMENT: Final = 0.025


# --- the long cohort (`history.py`): events, adherence and staff change observations -----------------
# Every number below is an ASSUMPTION chosen by hand for a frail home-care population; docs/cohort.md
# lists each with its source where one exists ("assumption, not sourced" where none does).

#: Ages of the long cohort (home-care recipients): every condition's age range is clipped to this.
HISTORY_AGE: Final = Span(65.0, 95.0)
#: At most this many chronic conditions per patient (main condition first).
MAX_CONDITIONS: Final = 3

#: Events (deterioration episodes and unheralded admissions) per patient-day at home, before the
#: personal multiplier; chosen so that 10-20 % of patients are admitted in any 30-day window.
EVENT_RATE_PER_DAY: Final = 0.0068
#: Multiplier of the event rate by the number of chronic conditions (1, 2, 3).
CONDITION_COUNT_RATE: Final = (0.8, 1.1, 1.4)
#: Shape of the gamma-distributed personal multiplier (mean 1): some patients are admitted again and again.
PERSONAL_RATE_SHAPE: Final = 1.5
#: A patient's baseline severity (`history.baseline_severity`): how far their usual SpO2 lies below, and
#: their usual pulse above and systolic pressure below, the population's usual (mean, sd of the default
#: population, per vital), averaged and scaled to about unit variance. The settings' `baseline_risk_link`
#: raises the event rate by exp(link x severity) (the default population has no such link).
SEVERITY_REFERENCE: Final[dict[Vital, tuple[float, float]]] = {
    "spo2": (95.6, -2.0),  # lower is worse
    "pulse": (74.0, 7.0),
    "systolic": (131.0, -9.0),  # lower is worse
}
SEVERITY_SD: Final = 0.63
#: Share of events that are admissions with no physiological prelude (falls, sudden events); with the
#: episode admission probabilities below this makes about a quarter of all admissions unheralded.
UNHERALDED_SHARE: Final = 0.19
#: Of the unheralded admissions, the share that are falls (the rest: sudden events such as a stroke).
FALL_SHARE: Final = 0.6
#: Days simulated before the cohort starts, so the first weeks already hold episodes in progress.
BURN_IN_DAYS: Final = 30
#: Length of stay in days: log-normal with this median and spread, clipped to [low, high].
STAY_MEDIAN_DAYS: Final = 4.5
STAY_SIGMA: Final = 0.45
STAY_DAYS: Final = Span(2.0, 10.0)
#: Local hours at which an admission happens.
ADMISSION_HOURS: Final = Span(8.0, 22.0)


@dataclass(frozen=True, slots=True)
class EpisodeCourse:
    """How one kind of deterioration runs in the long cohort."""

    build_up_days: Span  # onset to peak (the admission, if there is one)
    admitted: float  # probability that the episode ends in an admission
    recovery_days: Span  # peak back to baseline when it resolves at home
    fever_share: float  # share of episodes with the kind's fever (others: a tenth of it)


COURSES: Final[dict[EpisodeKind, EpisodeCourse]] = {
    # LINK-HF: median 6.5 (4.2-13.7) days from first alert to readmission; Chaudhry 2007: weight rises
    # in the week before admission.
    "heart-failure-decompensation": EpisodeCourse(Span(3, 14), 0.75, Span(4, 10), 0.0),
    # Aaron 2012: gradual-onset exacerbations take a median of 4 days from symptom onset.
    "copd-exacerbation": EpisodeCourse(Span(3, 10), 0.65, Span(5, 12), 0.4),
    "infection": EpisodeCourse(Span(3, 7), 0.65, Span(3, 8), 0.9),
}
#: Severity (share of the way from baseline to the `EPISODES` peak) of admitted and resolved episodes.
ADMITTED_SEVERITY: Final = Span(0.6, 1.0)
RESOLVED_SEVERITY: Final = Span(0.25, 0.55)
#: Weight gained by the admission of a heart-failure decompensation, and by the peak of one that resolves.
HF_ADMITTED_WEIGHT_GAIN: Final = Span(1.0, 4.0)
HF_RESOLVED_WEIGHT_GAIN: Final = Span(0.4, 1.5)
#: Share of an episode's shift still present at discharge, fading over this many days.
RESIDUAL_AT_DISCHARGE: Final = 0.3
RESIDUAL_DAYS: Final = 7.0

#: Adherence: a patient's usual chance to measure on a day (beta distribution), its slow drift (a random
#: walk on the logit scale, sd per day), and a decline over the period (logit units per 180 days).
ADHERENCE_BETA: Final = (7.0, 1.6)
ADHERENCE_DRIFT_SD: Final = 0.08
ADHERENCE_DECLINE_PER_180_DAYS: Final = 0.6
#: Chance per day of starting a lapse (all devices untouched) and the mean lapse length in days.
LAPSE_START: Final = 0.012
LAPSE_MEAN_DAYS: Final = 3.0
#: Chance of one holiday (away from home: no readings, no visits) in 180 days, and its length.
HOLIDAY_PER_180_DAYS: Final = 0.3
HOLIDAY_DAYS: Final = Span(5, 14)
#: How much an episode's progress lowers the chance to measure (at the peak: by this share).
UNWELL_ADHERENCE_DROP: Final = 0.4
#: Chance that one planned measurement of a measuring day is missed anyway.
MISSED_ONE: Final = 0.04
#: Above this episode progress a patient feels unwell and also takes temperature (and SpO2).
UNWELL_PROGRESS: Final = 0.3
UNWELL_EXTRA_MEASUREMENT: Final = 0.7
#: Chance per day that a patient takes temperature without being unwell.
ROUTINE_TEMPERATURE: Final = 0.02
#: Local hour of the morning measurements and how far a patient's habit and a day's jitter move it.
MORNING_HOUR: Final = 7.5

#: Share of patients with home-care visits every day (1-3 a day; the change form filled once a day);
#: the others are visited weekly.
DAILY_VISITS_SHARE: Final = 0.35
#: Background chance per filled-in form that an item is marked changed with no deterioration behind it
#: (false positives), before a personal multiplier (log-normal, sd below).
CHANGE_BACKGROUND: Final[dict[str, float]] = {
    "appetite": 0.02,
    "mobility": 0.03,
    "confusion": 0.01,
    "mood": 0.02,
    "skin": 0.02,
    "breathing": 0.015,
    "urination": 0.015,
    "pain": 0.03,
    "sleep": 0.025,
    "general": 0.02,
}
CHANGE_PERSONAL_SD: Final = 0.5
#: Extra chance that an item is marked changed at the peak of an episode of each kind (scaled by progress).
CHANGE_IN_EPISODE: Final[dict[EpisodeKind, dict[str, float]]] = {
    "heart-failure-decompensation": {
        "breathing": 0.55,
        "skin": 0.45,
        "mobility": 0.4,
        "general": 0.45,
        "appetite": 0.3,
        "sleep": 0.3,
        "urination": 0.15,
    },
    "copd-exacerbation": {
        "breathing": 0.65,
        "general": 0.45,
        "mobility": 0.35,
        "sleep": 0.3,
        "appetite": 0.25,
        "mood": 0.15,
    },
    "infection": {
        "general": 0.55,
        "confusion": 0.4,
        "appetite": 0.45,
        "mobility": 0.35,
        "urination": 0.3,
        "breathing": 0.15,
        "pain": 0.15,
    },
}
#: Extra chance after a discharge (fading over RESIDUAL_DAYS): the patient is weaker for a while.
CHANGE_AFTER_DISCHARGE: Final[dict[str, float]] = {"mobility": 0.3, "general": 0.15, "appetite": 0.1}
