"""SYNTHETIC cohorts of people monitored at home: seeded patients, their vitals, schedules and readings.

Nothing in this package describes a real person; see `synthetic` for the generator and `profiles` for
the ranges it draws from.
"""

from models.cohort.profiles import Condition, EpisodeKind, MeasurementKind, Vital
from models.cohort.synthetic import (
    DEFAULT_START,
    Baseline,
    CohortError,
    Episode,
    Reading,
    ScheduledMeasurement,
    SyntheticPatient,
    TrueVitals,
    make_cohort,
    schedule,
    take_readings,
)

__all__ = [
    "DEFAULT_START",
    "Baseline",
    "CohortError",
    "Condition",
    "Episode",
    "EpisodeKind",
    "MeasurementKind",
    "Reading",
    "ScheduledMeasurement",
    "SyntheticPatient",
    "TrueVitals",
    "Vital",
    "make_cohort",
    "schedule",
    "take_readings",
]
