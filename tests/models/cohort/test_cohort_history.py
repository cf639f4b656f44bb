"""The long SYNTHETIC cohort: reproducible, patient i a function of (seed, i), admissions with and without
a prelude, no readings in hospital, adherence gaps, staff changes before admissions and base rates in the
ranges docs/cohort.md documents."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from models.codes import CHANGE_OBSERVATIONS
from models.cohort.history import (
    CHANGE_KEYS,
    KINDS,
    CohortHistory,
    PatientHistory,
    simulate_history,
    simulate_patient,
)
from models.cohort.profiles import (
    CHANGE_AFTER_DISCHARGE,
    CHANGE_IN_EPISODE,
    MEASUREMENT_VITALS,
    NOISE,
)
from models.cohort.synthetic import DEFAULT_START, CohortError

SEED = 20250106
N = 400
DAYS = 180


@pytest.fixture(scope="module")
def cohort() -> CohortHistory:
    return simulate_history(N, DAYS, SEED)


def _admissions_in_period(cohort: CohortHistory) -> list[tuple[PatientHistory, float, bool, str]]:
    return [
        (p, a.start_day, a.heralded, a.cause)
        for p in cohort.patients
        for a in p.admissions
        if 0.0 <= a.start_day < cohort.days
    ]


def _same(a: PatientHistory, b: PatientHistory) -> bool:
    arrays = ("reading_days", "reading_kinds", "reading_values", "form_days", "form_changes")
    return (
        (a.id, a.birth_date, a.sex, a.conditions, a.baseline, a.episodes, a.admissions, a.away)
        == (b.id, b.birth_date, b.sex, b.conditions, b.baseline, b.episodes, b.admissions, b.away)
    ) and all(np.array_equal(getattr(a, n), getattr(b, n), equal_nan=n == "reading_values") for n in arrays)


# --- reproducibility ----------------------------------------------------------------------------------


def test_same_seed_gives_the_same_history_and_another_seed_another() -> None:
    first, second, other = simulate_history(8, 60, 3), simulate_history(8, 60, 3), simulate_history(8, 60, 4)
    assert all(_same(a, b) for a, b in zip(first.patients, second.patients, strict=True))
    assert not any(_same(a, b) for a, b in zip(first.patients, other.patients, strict=True))


def test_a_patient_depends_only_on_seed_and_number() -> None:
    small, large = simulate_history(3, 60, 5), simulate_history(12, 60, 5)
    assert all(_same(a, b) for a, b in zip(small.patients, large.patients, strict=False))
    assert _same(simulate_patient(7, 60, 5), large.patients[6])


# --- who ----------------------------------------------------------------------------------------------


def test_patients_are_old_with_one_to_three_conditions_and_labelled_synthetic(cohort: CohortHistory) -> None:
    assert cohort.synthetic
    for number, p in enumerate(cohort.patients, start=1):
        assert p.synthetic and p.baseline.synthetic
        assert p.name == f"Synthetic patient {number}"
        age = (cohort.start.date() - p.birth_date).days / 365.25
        assert 64.9 <= age <= 95.1
        assert 1 <= len(p.conditions) <= 3
        assert len(set(p.conditions)) == len(p.conditions)
    counts = np.bincount([len(p.conditions) for p in cohort.patients])
    assert counts[1] > 0 and counts[2] > 0 and counts[3] > 0
    assert {p.conditions[0] for p in cohort.patients} == {"heart-failure", "copd", "diabetes", "frailty"}


# --- readings -----------------------------------------------------------------------------------------


def test_readings_are_plausible_at_device_resolution(cohort: CohortHistory) -> None:
    for p in cohort.patients[:60]:
        for reading in cohort.readings(p):
            assert reading.synthetic
            assert set(reading.values) == set(MEASUREMENT_VITALS[reading.kind])
            for vital, value in reading.values.items():
                noise = NOISE[vital]
                assert noise.low <= value <= noise.high
                assert abs(value / noise.resolution - round(value / noise.resolution)) < 1e-6
            if reading.kind == "blood-pressure":
                assert reading.values["diastolic"] <= reading.values["systolic"] - 10


def test_no_readings_or_staff_forms_during_an_admission_or_a_holiday(cohort: CohortHistory) -> None:
    for p in cohort.patients:
        blocked = [(a.start_day, a.end_day) for a in p.admissions] + list(p.away)
        for low, high in blocked:
            assert not np.any((p.reading_days >= low) & (p.reading_days < high)), p.id
            assert not np.any((p.form_days >= low) & (p.form_days < high)), p.id
        assert np.all((p.reading_days >= 0) & (p.reading_days < cohort.days))
        assert np.all(np.diff(p.reading_days) >= 0)


def test_the_plan_follows_the_conditions(cohort: CohortHistory) -> None:
    weight, spo2 = KINDS.index("body-weight"), KINDS.index("spo2")
    for p in cohort.patients:
        weighed_days = len(set(p.reading_days[p.reading_kinds == weight].astype(int)))
        if "heart-failure" in p.conditions:
            assert weighed_days > 0 or not p.reading_days.size
        elif "frailty" not in p.conditions:
            assert weighed_days == 0
    copd = [p for p in cohort.patients if "copd" in p.conditions]
    others = [p for p in cohort.patients if not {"copd", "heart-failure"} & set(p.conditions)]
    daily_spo2 = np.mean([np.sum(p.reading_kinds == spo2) / cohort.days for p in copd])
    other_spo2 = np.mean([np.sum(p.reading_kinds == spo2) / cohort.days for p in others])
    assert daily_spo2 > 0.4 > 0.1 > other_spo2


def test_adherence_leaves_gaps_runs_and_differs_between_patients(cohort: CohortHistory) -> None:
    weight = KINDS.index("body-weight")
    missing, longest = [], []
    for p in cohort.patients:
        if "heart-failure" not in p.conditions:
            continue
        home = np.ones(cohort.days, dtype=bool)
        for low, high in [(a.start_day, a.end_day) for a in p.admissions] + list(p.away):
            home[max(0, int(low)) : max(0, min(cohort.days, int(np.ceil(high))))] = False
        weighed = np.zeros(cohort.days, dtype=bool)
        weighed[p.reading_days[p.reading_kinds == weight].astype(int)] = True
        gap = home & ~weighed
        missing.append(gap.sum() / max(home.sum(), 1))
        run = best = 0
        for day_missing in gap:
            run = run + 1 if day_missing else 0
            best = max(best, run)
        longest.append(best)
    assert 0.1 <= float(np.mean(missing)) <= 0.45
    assert float(np.percentile(missing, 90)) - float(np.percentile(missing, 10)) > 0.2
    assert sum(run >= 3 for run in longest) >= 0.5 * len(longest)
    assert any(p.away for p in cohort.patients)


# --- episodes and admissions --------------------------------------------------------------------------


def test_admissions_last_two_to_ten_days_and_follow_their_episode(cohort: CohortHistory) -> None:
    for p in cohort.patients:
        for a in p.admissions:
            assert a.synthetic
            assert 2.0 - 1e-9 <= a.end_day - a.start_day <= 10.0 + 1e-9
            if a.episode is not None:
                assert a.cause == a.episode.kind
                assert a.start_day == a.episode.peak_day
                # 3-14 days to the day of the admission, whose hour is drawn on its own
                assert 2.0 <= a.episode.peak_day - a.episode.onset_day <= 15.0
        for earlier, later in zip(p.admissions, p.admissions[1:], strict=False):
            assert earlier.end_day <= later.start_day


def test_some_admissions_have_no_prelude_and_some_episodes_resolve_at_home(cohort: CohortHistory) -> None:
    admissions = _admissions_in_period(cohort)
    unheralded = [cause for _, _, heralded, cause in admissions if not heralded]
    assert 0.18 <= len(unheralded) / len(admissions) <= 0.35
    assert set(unheralded) == {"fall", "sudden"}
    episodes = [e for p in cohort.patients for e in p.episodes if 0 <= e.onset_day < cohort.days]
    resolved = [e for e in episodes if not e.admitted]
    assert 0.15 <= len(resolved) / len(episodes) <= 0.45
    assert {e.kind for e in episodes} == {"heart-failure-decompensation", "copd-exacerbation", "infection"}


def _weight_gain_before(p: PatientHistory, start: float) -> float | None:
    weight = p.reading_kinds == KINDS.index("body-weight")
    days, values = p.reading_days, p.reading_values[:, 0]
    late = weight & (days >= start - 2) & (days < start)
    early = weight & (days >= start - 14) & (days < start - 7)
    if not late.any() or not early.any():
        return None
    return float(values[late].mean() - values[early].mean())


def test_heart_failure_patients_gain_weight_in_the_week_before_a_decompensation_admission(
    cohort: CohortHistory,
) -> None:
    gains = [
        gain
        for p, start, _, cause in _admissions_in_period(cohort)
        if cause == "heart-failure-decompensation" and (gain := _weight_gain_before(p, start)) is not None
    ]
    assert len(gains) >= 15
    assert sum(gain >= 1.0 for gain in gains) >= 0.75 * len(gains)


def test_vitals_move_before_heralded_admissions_but_not_before_unheralded_ones(cohort: CohortHistory) -> None:
    def pulse_rise(p: PatientHistory, start: float) -> float | None:
        pulse_rows = np.isin(p.reading_kinds, [KINDS.index("blood-pressure"), KINDS.index("spo2")])
        column = np.where(p.reading_kinds == KINDS.index("blood-pressure"), 2, 1)
        pulse = p.reading_values[np.arange(len(column)), column]
        late = pulse_rows & (p.reading_days >= start - 3) & (p.reading_days < start)
        early = pulse_rows & (p.reading_days >= start - 30) & (p.reading_days < start - 16)
        return float(pulse[late].mean() - pulse[early].mean()) if late.any() and early.any() else None

    heralded: list[float] = []
    unheralded: list[float] = []
    for p, start, warned, _ in _admissions_in_period(cohort):
        rise = pulse_rise(p, start)
        if rise is not None:
            (heralded if warned else unheralded).append(rise)
    assert len(heralded) >= 30 and len(unheralded) >= 10
    assert np.median(heralded) > 10.0
    assert abs(float(np.median(unheralded))) < 5.0


# --- staff change observations ------------------------------------------------------------------------


def test_change_items_are_the_shared_codes(cohort: CohortHistory) -> None:
    assert set(CHANGE_KEYS) == set(CHANGE_OBSERVATIONS)
    for table in [*CHANGE_IN_EPISODE.values(), CHANGE_AFTER_DISCHARGE]:
        assert set(table) <= set(CHANGE_OBSERVATIONS)
    assert all(p.form_changes.shape == (len(p.form_days), len(CHANGE_KEYS)) for p in cohort.patients)


def test_changes_are_more_frequent_in_the_week_before_an_admission(cohort: CohortHistory) -> None:
    before, other = [], []
    for p in cohort.patients:
        window = np.zeros(len(p.form_days), dtype=bool)
        for a in p.admissions:
            window |= (p.form_days >= a.start_day - 7) & (p.form_days < a.start_day)
        before.append(p.form_changes[window])
        other.append(p.form_changes[~window])
    rate_before, rate_other = np.concatenate(before).mean(), np.concatenate(other).mean()
    assert rate_before > 3 * rate_other
    assert 0.01 <= rate_other <= 0.05  # false positives at a background rate


def test_some_patients_get_daily_visits_and_others_weekly(cohort: CohortHistory) -> None:
    daily = [p for p in cohort.patients if p.daily_visits]
    weekly = [p for p in cohort.patients if not p.daily_visits]
    assert 0.2 <= len(daily) / len(cohort.patients) <= 0.5
    assert np.mean([len(p.form_days) for p in daily]) > 100
    assert max(len(p.form_days) for p in weekly) <= cohort.days // 7 + 1


# --- base rates ---------------------------------------------------------------------------------------


def test_ten_to_twenty_percent_are_admitted_in_a_30_day_window(cohort: CohortHistory) -> None:
    shares = [
        np.mean([any(start <= a.start_day < start + 30 for a in p.admissions) for p in cohort.patients])
        for start in range(0, cohort.days - 29, 30)
    ]
    assert all(0.08 <= share <= 0.22 for share in shares), shares
    assert 0.10 <= float(np.mean(shares)) <= 0.20


# --- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"n_patients": -1}, "n_patients"),
        ({"days": 5}, "days"),
        ({"seed": -1}, "seed"),
        ({"start": datetime(2025, 1, 6)}, "start"),
    ],
)
def test_simulate_history_refuses_unusable_arguments(kwargs: dict[str, object], argument: str) -> None:
    arguments: dict[str, object] = {"n_patients": 2, "days": 30, "seed": 1}
    arguments.update(kwargs)
    with pytest.raises(CohortError) as caught:
        simulate_history(**arguments)  # type: ignore[arg-type]
    assert caught.value.argument == argument


def test_times_are_in_the_start_timezone(cohort: CohortHistory) -> None:
    assert cohort.start == DEFAULT_START
    assert cohort.at(1.5) == DEFAULT_START + timedelta(days=1, hours=12)
