"""The generator's settings: the defaults give the project's cohorts byte for byte, every setting moves
the cohort the way it says, bad values are refused, and the in-memory reading equals the NDJSON's."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.cohort.history import (
    KINDS,
    CohortHistory,
    PatientHistory,
    baseline_severity,
    simulate_history,
)
from models.cohort.ndjson import FILES, generate_cohort, write_ndjson
from models.cohort.profiles import MeasurementKind
from models.cohort.records import history_cohort
from models.cohort.settings import (
    DEFAULT_SETTINGS,
    ConditionRisk,
    GeneratorSettings,
    VitalShift,
)
from models.cohort.synthetic import CohortError
from models.cohort_reader import read_cohort

N, DAYS, SEED = 120, 90, 31
# SHA-256 of the four NDJSON files (in FILES order) of `homewatch models cohort --patients 12 --days 45
# --seed 11`, written by the generator before it had settings (git 448d1c6): the defaults must keep it.
BEFORE_SETTINGS = "14bc85a628db553095788d49205d666b156a91a97533a356cd69ca51e3b348e0"


def _simulate(**changes: Any) -> CohortHistory:
    return simulate_history(N, DAYS, SEED, settings=replace(DEFAULT_SETTINGS, name="changed", **changes))


@pytest.fixture(scope="module")
def default() -> CohortHistory:
    return simulate_history(N, DAYS, SEED)


def _admissions(cohort: CohortHistory) -> list[tuple[PatientHistory, float, bool]]:
    return [
        (p, a.start_day, a.heralded) for p in cohort.patients for a in p.admissions if 0 <= a.start_day < DAYS
    ]


def _readings(cohort: CohortHistory) -> int:
    return sum(p.reading_days.size for p in cohort.patients)


def _values(cohort: CohortHistory, kind: MeasurementKind, column: int = 0) -> np.ndarray:
    index = KINDS.index(kind)
    return np.concatenate([p.reading_values[p.reading_kinds == index, column] for p in cohort.patients])


def _within_patient_sd(cohort: CohortHistory, kind: MeasurementKind, column: int = 0) -> float:
    index = KINDS.index(kind)
    spreads = []
    for p in cohort.patients:
        values = p.reading_values[p.reading_kinds == index, column]
        if values.size >= 10:
            spreads.append(float(np.median(np.abs(np.diff(values)))))
    return float(np.mean(spreads))


# --- the defaults -----------------------------------------------------------------------------------------


def test_the_default_settings_write_the_cohort_the_generator_wrote_before_it_had_settings(
    tmp_path: Path,
) -> None:
    generate_cohort(tmp_path, 12, 45, 11)
    digest = hashlib.sha256()
    for name in FILES:
        digest.update((tmp_path / name).read_bytes())
    assert digest.hexdigest() == BEFORE_SETTINGS
    assert simulate_history(3, 30, 11).settings == DEFAULT_SETTINGS == GeneratorSettings()


def test_the_in_memory_cohort_equals_the_ndjson_read_back(tmp_path: Path) -> None:
    settings = GeneratorSettings(name="messy", outlier_share=0.1, repeat_share=0.2, clock_error_share=0.5)
    history = simulate_history(15, 40, 4, settings=settings)
    write_ndjson(history, tmp_path)
    assert history_cohort(history) == read_cohort(tmp_path)


# --- every setting moves the cohort the way it says ----------------------------------------------------


def test_more_events_more_admissions_and_unheralded_share_decides_the_prelude(default: CohortHistory) -> None:
    assert len(_admissions(_simulate(event_rate_per_day=0.02))) > 1.5 * len(_admissions(default))
    none_heralded = _simulate(unheralded_share=1.0)
    assert _admissions(none_heralded) and not any(h for _, _, h in _admissions(none_heralded))
    assert not any(p.episodes for p in none_heralded.patients)  # no episode before any admission
    assert all(h for _, _, h in _admissions(_simulate(unheralded_share=0.0)))


def test_the_risk_can_be_tied_to_the_usual_vitals_the_conditions_and_age() -> None:
    linked = _simulate(baseline_risk_link=2.0, event_rate_per_day=0.012)
    severity = np.array([baseline_severity(p.baseline) for p in linked.patients])
    admitted = np.array([len(p.admissions) for p in linked.patients])
    assert np.corrcoef(severity, admitted)[0, 1] > 0.3
    copd_heavy = _simulate(
        condition_risk=ConditionRisk(copd=4.0, heart_failure=0.3, diabetes=0.3, frailty=0.3)
    )
    copd = [len(p.admissions) for p in copd_heavy.patients if p.conditions[0] == "copd"]
    others = [len(p.admissions) for p in copd_heavy.patients if "copd" not in p.conditions]
    assert np.mean(copd) > 2 * np.mean(others)
    aged = _simulate(age_risk_per_decade=2.0)
    ages = np.array([(aged.start.date() - p.birth_date).days / 365.25 for p in aged.patients])
    counts = np.array([len(p.admissions) for p in aged.patients])
    assert counts[ages >= 85].mean() > 2 * counts[ages < 75].mean()


def test_baselines_shift_and_spread(default: CohortHistory) -> None:
    shifted = _simulate(baseline_shift=VitalShift(pulse=12.0, weight=-5.0))
    for before, after in zip(default.patients, shifted.patients, strict=True):
        assert after.baseline.pulse == pytest.approx(before.baseline.pulse + 12.0)
        assert after.baseline.weight == pytest.approx(before.baseline.weight - 5.0)
        assert after.baseline.spo2 == before.baseline.spo2
    wide = _simulate(baseline_spread=2.0)
    assert np.std([p.baseline.pulse for p in wide.patients]) > 1.6 * np.std(
        [p.baseline.pulse for p in default.patients]
    )


def test_more_noise_and_more_wander_spread_the_readings(default: CohortHistory) -> None:
    assert _within_patient_sd(_simulate(noise_scale=3.0), "blood-pressure") > 1.5 * _within_patient_sd(
        default, "blood-pressure"
    )
    assert _within_patient_sd(_simulate(wander_scale=3.0), "blood-pressure") > _within_patient_sd(
        default, "blood-pressure"
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"adherence_beta": (2.0, 3.0)},
        {"lapse_start": 0.08},
        {"missed_one": 0.3},
        {"dropout_per_180_days": 1.0},
    ],
    ids=["adherence", "lapses", "missed-one", "drop-outs"],
)
def test_lower_adherence_fewer_readings(default: CohortHistory, changes: dict[str, object]) -> None:
    assert _readings(_simulate(**changes)) < 0.85 * _readings(default)


def test_unwell_patients_can_measure_more_instead_of_less(default: CohortHistory) -> None:
    def near_peaks(cohort: CohortHistory) -> int:
        return sum(
            int(np.sum((p.reading_days > e.peak_day - 3) & (p.reading_days <= e.peak_day)))
            for p in cohort.patients
            for e in p.episodes
        )

    assert near_peaks(_simulate(unwell_adherence_drop=-0.6)) > near_peaks(
        _simulate(unwell_adherence_drop=0.9)
    )


def test_artefacts_outliers_repeats_clocks_and_the_other_arm(default: CohortHistory) -> None:
    outliers = _simulate(outlier_share=0.2)
    assert np.mean(_values(outliers, "spo2") < 86) > np.mean(_values(default, "spo2") < 86) + 0.03
    repeats = _simulate(repeat_share=0.3)
    assert _readings(repeats) > 1.2 * _readings(default)
    gaps = np.concatenate([np.diff(p.reading_days[p.reading_kinds == 1]) for p in repeats.patients])
    assert np.sum(gaps < 11 / 1440) > 0.1 * gaps.size  # blood pressure again within 10 minutes
    clocks = _simulate(clock_error_share=1.0)
    hours = np.concatenate([(p.reading_days % 1.0) * 24 for p in clocks.patients])
    usual = np.concatenate([(p.reading_days % 1.0) * 24 for p in default.patients])
    assert np.mean((hours > 11) | (hours < 5)) > 0.5 > np.mean((usual > 11) | (usual < 5))
    arm = _simulate(wrong_arm_share=1.0)
    assert _within_patient_sd(arm, "blood-pressure") > 1.3 * _within_patient_sd(default, "blood-pressure")


def test_episode_shape_length_size_curve_and_vitals(default: CohortHistory) -> None:
    def build_up(cohort: CohortHistory) -> float:
        return float(np.median([e.peak_day - e.onset_day for p in cohort.patients for e in p.episodes]))

    assert build_up(_simulate(build_up_scale=2.0)) > 1.6 * build_up(default)
    small = _simulate(severity_scale=0.5)
    assert np.median([e.severity for p in small.patients for e in p.episodes]) < 0.6 * np.median(
        [e.severity for p in default.patients for e in p.episodes]
    )
    for curve, halfway in (("s-curve", 0.5), ("linear", 0.5), ("early", 0.875), ("late", 0.0625)):
        episode = next(e for p in _simulate(episode_curve=curve).patients for e in p.episodes)
        middle = np.array([(episode.onset_day + episode.peak_day) / 2])
        assert episode.curve == curve and episode.progress(middle)[0] == pytest.approx(halfway)
    still = _simulate(episode_vitals=("pulse", "temperature"))
    shifts = [e.shift for p in still.patients for e in p.episodes]
    assert shifts and all(s.spo2 == s.weight == s.systolic == s.diastolic == 0.0 for s in shifts)
    assert any(s.pulse > 0 for s in shifts)


def test_staff_forms_visits_and_what_staff_see(default: CohortHistory) -> None:
    assert not any(p.form_days.size for p in _simulate(staff_forms=False).patients)
    assert all(p.daily_visits for p in _simulate(daily_visits_share=1.0).patients)

    def marked(cohort: CohortHistory) -> float:
        return float(np.mean(np.concatenate([p.form_changes.ravel() for p in cohort.patients])))

    assert marked(_simulate(change_background_scale=3.0)) > 1.5 * marked(default)
    assert marked(_simulate(change_in_episode_scale=0.0)) < marked(default)


# --- bad settings ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"event_rate_per_day": 0.0}, "event_rate_per_day"),
        ({"unheralded_share": 1.5}, "unheralded_share"),
        ({"noise_scale": -1.0}, "noise_scale"),
        ({"adherence_beta": (0.0, 1.0)}, "adherence_beta"),
        ({"episode_curve": "zigzag"}, "episode_curve"),
        ({"episode_vitals": ("pulse", "glucose")}, "episode_vitals"),
        ({"name": "no spaces"}, "name"),
        ({"baseline_risk_link": float("nan")}, "baseline_risk_link"),
        ({"condition_risk": ConditionRisk(copd=0.0)}, "condition_risk"),
        ({"baseline_shift": VitalShift(pulse=float("inf"))}, "baseline_shift"),
    ],
)
def test_unusable_settings_are_refused_naming_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(CohortError) as error:
        GeneratorSettings(**changes)  # type: ignore[arg-type]
    assert error.value.argument == field
