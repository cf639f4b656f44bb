"""The SYNTHETIC cohort: reproducible, marked synthetic, physiologically plausible, deteriorating patients
reach NEWS2 5 or more by the last day while stable patients stay at 0-2, and the schedule misses a few %."""

from __future__ import annotations

import dataclasses
import statistics
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from models.cohort import (
    CohortError,
    Reading,
    ScheduledMeasurement,
    SyntheticPatient,
    TrueVitals,
    Vital,
    make_cohort,
    schedule,
    take_readings,
)
from models.cohort.profiles import MEASUREMENTS_PER_DAY, NOISE
from models.cohort.synthetic import DEFAULT_START
from models.news2 import Measured, News2Result, VitalSigns, score_news2

SEED = 20250106
N = 120
DAYS = 30


@pytest.fixture(scope="module")
def cohort() -> list[SyntheticPatient]:
    return make_cohort(N, SEED, days=DAYS)


@pytest.fixture(scope="module")
def readings(cohort: list[SyntheticPatient]) -> dict[str, list[Reading]]:
    return {p.id: take_readings(p, schedule(p, p.start, p.days, SEED), SEED) for p in cohort}


def _midnight(patient: SyntheticPatient, day: int) -> datetime:
    return patient.start + timedelta(days=day)


def _daily_news2(
    patient: SyntheticPatient, readings: list[Reading], day: int, max_age: timedelta = timedelta(hours=24)
) -> News2Result:
    """NEWS2 at the end of `day` from the latest reading of each vital, as a server would score a home."""
    end = _midnight(patient, day + 1)
    latest: dict[str, Measured] = {}
    for reading in readings:
        if reading.at >= end:
            break
        for vital, value in reading.values().items():
            latest[vital] = Measured(value, reading.at)
    vitals = VitalSigns(
        spo2=latest.get("spo2"),
        pulse=latest.get("pulse"),
        systolic_bp=latest.get("systolic"),
        temperature=latest.get("temperature"),
        on_oxygen=False,  # no synthetic patient has home oxygen
        scale2=patient.spo2_scale2,
    )
    return score_news2(vitals, end, max_age=max_age)


def _true_news2(patient: SyntheticPatient, t: datetime) -> int:
    truth = patient.vitals_at(t)
    vitals = VitalSigns(
        spo2=Measured(truth.spo2, t),
        pulse=Measured(truth.pulse, t),
        systolic_bp=Measured(truth.systolic, t),
        temperature=Measured(truth.temperature, t),
        on_oxygen=False,
        scale2=patient.spo2_scale2,
    )
    return score_news2(vitals, t).total


# --- reproducibility ----------------------------------------------------------------------------------


def test_same_seed_gives_identical_cohort_schedule_and_readings() -> None:
    first, second = make_cohort(12, 7), make_cohort(12, 7)
    assert first == second
    for a, b in zip(first, second, strict=True):
        plan = schedule(a, a.start, 10, 99)
        assert plan == schedule(b, b.start, 10, 99)
        assert take_readings(a, plan, 5) == take_readings(b, plan, 5)


def test_different_seed_gives_different_cohort_and_schedule() -> None:
    a, b = make_cohort(12, 7), make_cohort(12, 8)
    assert [p.baseline for p in a] != [p.baseline for p in b]
    assert schedule(a[0], a[0].start, 10, 1) != schedule(a[0], a[0].start, 10, 2)


def test_a_patient_depends_only_on_seed_and_number() -> None:
    small, large = make_cohort(5, 3), make_cohort(40, 3)
    for p, q in zip(small, large, strict=False):
        assert dataclasses.replace(p, episode=None) == dataclasses.replace(q, episode=None)


def test_vitals_at_is_a_pure_function_of_time(cohort: list[SyntheticPatient]) -> None:
    t = DEFAULT_START + timedelta(days=3, hours=7)
    assert cohort[0].vitals_at(t) == cohort[0].vitals_at(t)
    assert cohort[0].vitals_at(t) != cohort[0].vitals_at(t + timedelta(hours=6))


# --- everything is marked synthetic -------------------------------------------------------------------


def test_every_record_says_it_is_synthetic(
    cohort: list[SyntheticPatient], readings: dict[str, list[Reading]]
) -> None:
    for number, patient in enumerate(cohort, start=1):
        assert patient.synthetic
        assert patient.id == f"p-{number:04d}"
        assert patient.name == f"Synthetic patient {number}"
        assert patient.baseline.synthetic
        assert patient.episode is None or patient.episode.synthetic
        assert patient.vitals_at(patient.start).synthetic
        assert all(r.synthetic for r in readings[patient.id])
    assert all(m.synthetic for m in schedule(cohort[0], cohort[0].start, 3, 1))


def test_synthetic_flag_cannot_be_turned_off() -> None:
    with pytest.raises(TypeError):
        TrueVitals(95, 70, 120, 80, 36.8, 70, synthetic=False)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ScheduledMeasurement(DEFAULT_START, "spo2", synthetic=False)  # type: ignore[call-arg]


# --- who the patients are -----------------------------------------------------------------------------


@pytest.mark.parametrize(("fraction", "expected"), [(0.0, 0), (0.25, 30), (0.5, 60), (1.0, 120)])
def test_deteriorating_fraction_is_respected(fraction: float, expected: int) -> None:
    assert sum(p.deteriorating for p in make_cohort(N, 1, deteriorating_fraction=fraction)) == expected


def test_patients_are_plausible_for_their_conditions(cohort: list[SyntheticPatient]) -> None:
    assert {p.conditions[0] for p in cohort} == {"heart-failure", "copd", "diabetes", "frailty"}
    assert {p.sex for p in cohort} == {"female", "male"}
    for p in cohort:
        age = (p.start.date() - p.birth_date).days / 365.25
        assert 55 <= age <= 98
        assert len(set(p.conditions)) == len(p.conditions)
        b = p.baseline
        assert 88 <= b.spo2 <= 99
        assert 55 <= b.pulse <= 95
        assert 105 <= b.systolic <= 155
        assert 45 <= b.diastolic <= b.systolic - 35
        assert 36.3 <= b.temperature <= 37.2
        assert 40 <= b.weight <= 130


def test_scale2_only_for_some_copd_patients_with_a_hypercapnic_baseline(
    cohort: list[SyntheticPatient],
) -> None:
    scale2 = [p for p in cohort if p.spo2_scale2]
    copd = [p for p in cohort if p.conditions[0] == "copd"]
    assert scale2
    assert len(scale2) < len(copd)
    assert all(p.conditions[0] == "copd" and 88 <= p.baseline.spo2 <= 92 for p in scale2)


# --- episodes -----------------------------------------------------------------------------------------


def test_episodes_build_over_a_few_days_and_peak_within_the_period(cohort: list[SyntheticPatient]) -> None:
    episodes = [p.episode for p in cohort if p.episode is not None]
    assert {e.kind for e in episodes} == {"heart-failure-decompensation", "copd-exacerbation", "infection"}
    for p in cohort:
        if p.episode is None:
            continue
        e = p.episode
        assert timedelta(days=2) <= e.duration <= timedelta(days=5)
        assert p.start <= e.onset < e.peak_at < p.start + timedelta(days=p.days)
        assert e.peak_at >= p.start + timedelta(days=p.days - 4)
        assert e.onset_day == (e.onset - p.start).days
        assert e.progress(e.onset) == 0.0
        assert e.progress(e.peak_at) == 1.0


def test_episode_kinds_move_the_vitals_their_way(cohort: list[SyntheticPatient]) -> None:
    for p in cohort:
        e = p.episode
        if e is None:
            continue
        # Whole days after the onset and past the peak: the same time of day, so the daily rhythm cancels.
        before, same_hour_peak = (
            p.vitals_at(e.onset),
            p.vitals_at(e.onset + timedelta(days=e.duration.days + 1)),
        )
        assert e.progress(e.onset + timedelta(days=e.duration.days + 1)) == 1.0
        assert same_hour_peak.pulse > before.pulse + 20, e.kind
        if e.kind == "heart-failure-decompensation":
            assert 3 <= e.duration.total_seconds() / 86400 <= 5
            assert 2.0 <= e.shift.weight <= 4.0
            assert same_hour_peak.weight - before.weight > 1.0
            assert e.shift.spo2 < -4
        elif e.kind == "copd-exacerbation":
            assert e.shift.spo2 < -3
            assert same_hour_peak.temperature > before.temperature + 1.0
        else:
            assert same_hour_peak.temperature > before.temperature + 2.0
            assert e.shift.systolic < -10


def test_before_the_onset_a_deteriorating_patient_is_their_stable_self(
    cohort: list[SyntheticPatient],
) -> None:
    for p in cohort:
        if p.episode is None:
            continue
        stable = dataclasses.replace(p, episode=None)
        t = p.episode.onset - timedelta(hours=1)
        assert p.vitals_at(t) == stable.vitals_at(t)


# --- NEWS2 on the cohort ------------------------------------------------------------------------------


def test_deteriorating_patients_score_news2_5_or_more_on_the_last_day(
    cohort: list[SyntheticPatient], readings: dict[str, list[Reading]]
) -> None:
    deteriorating = [p for p in cohort if p.deteriorating]
    assert deteriorating
    for p in deteriorating:
        # 48 h so that one missed morning thermometer reading does not blank the last day's temperature
        result = _daily_news2(p, readings[p.id], p.days - 1, max_age=timedelta(hours=48))
        assert result.total >= 5, (p.id, result.reasons())
        assert result.band in {"medium", "high"}


def test_deteriorating_patients_true_vitals_stay_at_news2_5_or_more_after_the_peak(
    cohort: list[SyntheticPatient],
) -> None:
    for p in cohort:
        if p.episode is None:
            continue
        t, end = p.episode.peak_at, p.start + timedelta(days=p.days)
        while t < end:
            assert _true_news2(p, t) >= 5, (p.id, t)
            t += timedelta(hours=2)


def test_stable_patients_daily_news2_stays_mostly_0_to_2(
    cohort: list[SyntheticPatient], readings: dict[str, list[Reading]]
) -> None:
    daily = {
        p.id: [_daily_news2(p, readings[p.id], day).total for day in range(p.days)]
        for p in cohort
        if not p.deteriorating
    }
    days = [total for totals in daily.values() for total in totals]
    assert sum(total <= 2 for total in days) >= 0.8 * len(days)
    assert sum(max(totals) <= 2 for totals in daily.values()) >= 0.8 * len(daily)
    assert max(days) <= 4


def test_deteriorating_patients_are_stable_before_their_episode(
    cohort: list[SyntheticPatient], readings: dict[str, list[Reading]]
) -> None:
    days = [
        _daily_news2(p, readings[p.id], day).total
        for p in cohort
        if p.episode is not None
        for day in range(p.episode.onset_day)
    ]
    assert sum(total <= 2 for total in days) >= 0.8 * len(days)


# --- measurements -------------------------------------------------------------------------------------

PLAUSIBLE = {
    "spo2": (75.0, 100.0),
    "pulse": (40.0, 150.0),
    "systolic": (70.0, 190.0),
    "diastolic": (30.0, 115.0),
    "temperature": (35.0, 41.0),
    "weight": (38.0, 135.0),
}


def test_every_measurement_is_plausible_and_at_device_resolution(readings: dict[str, list[Reading]]) -> None:
    for patient_readings in readings.values():
        for r in patient_readings:
            values = r.values()
            assert values
            for vital, value in values.items():
                low, high = PLAUSIBLE[vital]
                assert low <= value <= high, (r.patient_id, r.at, vital, value)
                steps = value / NOISE[vital].resolution
                assert abs(steps - round(steps)) < 1e-6, (vital, value)
            if r.kind == "blood-pressure":
                assert r.diastolic is not None and r.systolic is not None
                assert r.diastolic <= r.systolic - 10
                assert r.pulse is not None


def test_each_device_reports_its_own_vitals(readings: dict[str, list[Reading]]) -> None:
    expected = {
        "blood-pressure": {"systolic", "diastolic", "pulse"},
        "spo2": {"spo2", "pulse"},
        "body-weight": {"weight"},
        "body-temperature": {"temperature"},
    }
    for patient_readings in readings.values():
        for r in patient_readings:
            assert set(r.values()) == expected[r.kind]


def test_measurement_noise_is_small_and_centred(cohort: list[SyntheticPatient]) -> None:
    patient, t = cohort[0], DEFAULT_START + timedelta(days=2, hours=8)
    truth = patient.vitals_at(t)
    rng = np.random.default_rng(1)
    checks: list[tuple[Vital, float]] = [
        ("systolic", 6.0),
        ("spo2", 1.5),
        ("weight", 0.3),
        ("temperature", 0.2),
    ]
    for vital, sd_max in checks:
        values = [patient.measure(vital, t, rng) for _ in range(400)]
        assert abs(statistics.fmean(values) - truth.get(vital)) < sd_max / 3
        assert 0 < statistics.stdev(values) < sd_max
    assert all(patient.measure("spo2", t, rng).is_integer() for _ in range(50))


# --- the schedule -------------------------------------------------------------------------------------


def test_missed_measurement_rate_is_a_few_percent(cohort: list[SyntheticPatient]) -> None:
    planned = sum(len(schedule(p, p.start, p.days, SEED)) for p in cohort)
    asked = sum(p.days for p in cohort) * MEASUREMENTS_PER_DAY
    missed = 1 - planned / asked
    assert 0.01 <= missed <= 0.08


def test_schedule_follows_the_plan_with_jitter(cohort: list[SyntheticPatient]) -> None:
    patient = cohort[0]
    plan = schedule(patient, patient.start, 14, SEED)
    assert plan == sorted(plan, key=lambda m: m.at)
    assert all(patient.start <= m.at < patient.start + timedelta(days=14) for m in plan)
    tz = patient.start.tzinfo
    hours: dict[str, list[float]] = {
        kind: [] for kind in ("blood-pressure", "spo2", "body-weight", "body-temperature")
    }
    for m in plan:
        local = m.at.astimezone(tz)
        hours[m.kind].append(local.hour + local.minute / 60)
    for kind in ("body-weight", "body-temperature"):
        assert all(4.5 <= h <= 11.0 for h in hours[kind]), kind
    for kind in ("blood-pressure", "spo2"):
        morning = [h for h in hours[kind] if h < 13]
        evening = [h for h in hours[kind] if h >= 13]
        assert morning and evening
        assert all(16.0 <= h <= 23.5 for h in evening)
    assert len({round(h, 2) for h in hours["body-weight"]}) > 5  # times vary from day to day


def test_schedule_from_a_later_start_and_in_another_timezone(cohort: list[SyntheticPatient]) -> None:
    start = datetime(2025, 6, 2, tzinfo=timezone(timedelta(hours=2)))
    plan = schedule(cohort[1], start, 3, 4)
    assert plan
    assert all(start <= m.at < start + timedelta(days=3) for m in plan)
    assert schedule(cohort[1], start, 0, 4) == []


# --- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"n": -1}, "n"),
        ({"seed": -5}, "seed"),
        ({"deteriorating_fraction": 1.5}, "deteriorating_fraction"),
        ({"days": 3}, "days"),
        ({"start": datetime(2025, 1, 6)}, "start"),
    ],
)
def test_make_cohort_refuses_unusable_arguments(kwargs: dict[str, object], argument: str) -> None:
    arguments: dict[str, object] = {"n": 4, "seed": 1}
    arguments.update(kwargs)
    with pytest.raises(CohortError) as caught:
        make_cohort(**arguments)  # type: ignore[arg-type]
    assert caught.value.argument == argument


def test_naive_times_are_refused(cohort: list[SyntheticPatient]) -> None:
    with pytest.raises(CohortError):
        cohort[0].vitals_at(datetime(2025, 1, 7, 8))
    with pytest.raises(CohortError):
        schedule(cohort[0], datetime(2025, 1, 7), 2, 1)


def test_a_short_cohort_still_peaks_inside_its_period() -> None:
    for p in make_cohort(20, 11, deteriorating_fraction=1.0, days=7):
        assert p.episode is not None
        assert p.start <= p.episode.onset
        assert p.episode.peak_at < p.start + timedelta(days=7)
