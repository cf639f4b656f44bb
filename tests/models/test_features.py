"""The cohort reader and the daily features: parsing, clear errors, hand-checked values, and the
no-look-ahead property (nothing after day D changes day D's features)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_features_fixtures import (
    START,
    admission,
    blood_pressure,
    change,
    fixture_resources,
    reading,
    write_ndjson,
)

from fhir_contract.observation import build_observation
from models.cohort_reader import CohortReadError, parse_resources, read_cohort
from models.features import (
    COLUMN,
    FEATURE_NAMES,
    FEATURES,
    MODEL_FEATURES,
    day_features,
    day_state,
    news2_from_latest,
    patient_features,
)
from models.news2 import Measured, VitalSigns, score_news2

RESOURCES = fixture_resources()
COHORT = parse_resources(RESOURCES)


def _obs(kind: str, value: float, unit: str, patient: str, day: float) -> dict[str, object]:
    at = START + timedelta(days=day)
    return build_observation(
        reading(kind, value, unit), patient_id=patient, device_id="d", hub_id="h", effective=at
    )


def test_reader_reads_every_resource_type_of_the_fixture(tmp_path: Path) -> None:
    cohort = read_cohort(write_ndjson(tmp_path / "c", RESOURCES))
    assert len(cohort.patients) == 18 and cohort.days == 60 and cohort.origin == START.date()
    p0 = cohort.patients[0]
    assert p0.sex == "male" and p0.conditions == frozenset({"copd"})
    assert set(p0.readings) == {"weight", "systolic", "diastolic", "pulse", "spo2"}
    assert len(p0.admissions) == 1 and p0.admissions[0].end is not None
    assert any(key == "breathing" for _day, key in p0.changes)
    assert not cohort.synthetic  # the fixture carries no SYNTHETIC tag


def test_reader_missing_folder_and_bad_line_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CohortReadError, match="no such folder"):
        read_cohort(tmp_path / "nowhere")
    folder = write_ndjson(tmp_path / "bad", RESOURCES[:5])
    with (folder / "Observation.ndjson").open("a") as f:
        f.write("{not json\n")
    lines = len((folder / "Observation.ndjson").read_text().splitlines())
    with pytest.raises(CohortReadError) as err:
        read_cohort(folder)
    assert err.value.line == lines and "Observation.ndjson" in str(err.value)


def test_reader_skips_unknown_resource_types_and_codes() -> None:
    extra: list[dict[str, Any]] = [
        {"resourceType": "Medication", "id": "m"},
        {"resourceType": "Observation", "code": {}},
    ]
    cohort = parse_resources(RESOURCES[:40] + extra)
    assert len(cohort.patients) == 1


def test_feature_names_are_unique_and_described() -> None:
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert all(f.description and " " in f.description for f in FEATURES)
    assert set(MODEL_FEATURES) < set(FEATURE_NAMES)


def test_weight_gain_and_missed_days_by_hand() -> None:
    weights = [(0, 80.0), (1, 80.0), (2, 80.5), (3, 81.0), (5, 82.3), (8, 82.0)]  # day 4, 6, 7 missed
    resources: list[dict[str, object]] = [
        {"resourceType": "Patient", "id": "w", "gender": "female", "birthDate": "1940-01-01"}
    ]
    resources += [_obs("body-weight", v, "kg", "w", d + 0.3) for d, v in weights]
    cohort = parse_resources(resources)
    x = patient_features(cohort.patients[0], cohort)
    assert x[5, COLUMN["weight_change_3d"]] == pytest.approx(82.3 - 80.5)  # as of day 2
    assert x[8, COLUMN["weight_change_7d"]] == pytest.approx(82.0 - 80.0)  # as of day 1
    assert x[5, COLUMN["missed_days_7d"]] == 1 and x[3, COLUMN["missed_days_7d"]] == 0
    assert np.isnan(x[5, COLUMN["weight_change_7d"]])  # no weight from 7 days before day 5
    assert x[5, COLUMN["female"]] == 1 and 84 < x[5, COLUMN["age"]] < 86


def test_news2_of_the_days_latest_readings_matches_models_news2() -> None:
    spo2, sbp, pulse, temp = 92.0, 105.0, 112.0, 38.4
    expected = score_news2(
        VitalSigns(
            spo2=Measured(spo2, START),
            systolic_bp=Measured(sbp, START),
            pulse=Measured(pulse, START),
            temperature=Measured(temp, START),
        ),
        START,
    ).total
    got = news2_from_latest(*(np.array([v]) for v in (spo2, sbp, pulse, temp)))
    assert got[0] == expected
    assert np.isnan(news2_from_latest(*(np.array([np.nan]) for _ in range(4)))[0])


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


later = st.lists(
    st.tuples(
        st.sampled_from(["weight", "bp", "pulse", "spo2", "temp", "change", "admission"]),
        st.floats(0.0, 20.0),
        st.floats(0.0, 1.0),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(day=st.integers(0, 45), events=later, drop=st.booleans())
def test_nothing_after_day_d_changes_day_d_features(
    day: int, events: list[tuple[str, float, float]], drop: bool
) -> None:
    """Add readings, staff notes and admissions after day D (or remove every resource after it):
    row D of every patient is unchanged."""
    end = START + timedelta(days=day + 1)
    base = [
        r for r in RESOURCES if r["resourceType"] != "Observation" or r["effectiveDateTime"] < end.isoformat()
    ]
    altered = list(base if drop else RESOURCES)
    for kind, offset, u in events:
        t = day + 1 + offset
        at = START + timedelta(days=t)
        if kind == "weight":
            altered.append(_obs("body-weight", 60 + 40 * u, "kg", "p000", t))
        elif kind == "bp":
            altered.append(
                build_observation(
                    blood_pressure(90 + 80 * u, 60),
                    patient_id="p000",
                    device_id="d",
                    hub_id="h",
                    effective=at,
                )
            )
        elif kind == "pulse":
            altered.append(_obs("pulse-rate-cuff", 40 + 100 * u, "/min", "p000", t))
        elif kind == "spo2":
            altered.append(_obs("spo2", 80 + 20 * u, "%", "p000", t))
        elif kind == "temp":
            altered.append(_obs("body-temperature", 35 + 5 * u, "Cel", "p000", t))
        elif kind == "change":
            altered.append(change("p000", "breathing", at))
        else:
            altered.append(admission("p000", at, at + timedelta(days=2)))
    full = parse_resources(RESOURCES)
    other = parse_resources(altered)
    # Compare on the same calendar: the origin is the first reading's day, unchanged by later data.
    assert other.origin == full.origin
    for p_full, p_other in zip(full.patients, other.patients, strict=True):
        a = patient_features(p_full, full, n_days=day + 1)
        b = patient_features(p_other, other, n_days=day + 1)
        assert _same(a[day], b[day]), p_full.patient_id


@pytest.mark.parametrize("day", [3, 20, 44, 59])
def test_the_vectorised_day_matrix_equals_the_per_patient_features(day: int) -> None:
    state = day_state(COHORT.patients, COHORT, day)
    expected = np.vstack([patient_features(p, COHORT, n_days=day + 1)[day] for p in COHORT.patients])
    assert np.allclose(day_features(state), expected, equal_nan=True)


def test_the_usual_news2_is_the_median_of_the_last_14_days_news2() -> None:
    # SpO2 alone, one reading a day: 96 % scores 0, 95 % 1, 93 % 2, 91 % 3 (scale 1).
    spo2 = [96.0] * 10 + [93.0] * 5 + [91.0] * 3 + [95.0] * 2
    resources: list[dict[str, object]] = [{"resourceType": "Patient", "id": "n"}]
    resources += [_obs("spo2", v, "%", "n", d + 0.3) for d, v in enumerate(spo2) if d != 12]  # day 12 missed
    cohort = parse_resources(resources)
    x = patient_features(cohort.patients[0], cohort)
    daily = x[:, COLUMN["news2"]]
    assert np.isnan(daily[12]) and daily[14] == 2 and daily[16] == 3
    for day in range(len(spo2)):
        window = daily[max(0, day - 13) : day + 1]
        assert x[day, COLUMN["news2_usual"]] == np.nanmedian(window), day
    # Days 6-19 (day 12 missed): four 0s, four 2s, three 3s, two 1s; the median of the 13 is 2.
    assert x[19, COLUMN["news2_usual"]] == 2.0 and x[9, COLUMN["news2_usual"]] == 0.0
