"""SYNTHETIC cohorts of people monitored at home: seeded patients, their vitals, schedules and readings.

Nothing in this package describes a real person; see `synthetic` for the short generator, `history` for
the long cohort with admissions and staff observations, `ndjson` for writing that as FHIR Bulk Data NDJSON
and `profiles` for the ranges they draw from.
"""

from models.cohort.history import (
    Admission,
    AdmissionCause,
    CohortHistory,
    HistoryEpisode,
    HomeReading,
    PatientHistory,
    simulate_history,
    simulate_patient,
)
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
    "Admission",
    "AdmissionCause",
    "Baseline",
    "CohortError",
    "CohortHistory",
    "Condition",
    "Episode",
    "EpisodeKind",
    "HistoryEpisode",
    "HomeReading",
    "MeasurementKind",
    "PatientHistory",
    "Reading",
    "ScheduledMeasurement",
    "SyntheticPatient",
    "TrueVitals",
    "Vital",
    "make_cohort",
    "schedule",
    "simulate_history",
    "simulate_patient",
    "take_readings",
]
