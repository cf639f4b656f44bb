"""The hub's store of shared-device readings no resident has claimed yet (edge_agent.unattributed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.unattributed import (
    NOBODY,
    UnattributedError,
    UnattributedReadings,
    attribute,
    summarise,
)
from fhir_contract.observation import build_observation
from fhir_contract.readings import Component, Quantity, Reading
from fhir_contract.validate import validate_observation

WHEN = datetime(2026, 3, 2, 8, 14, tzinfo=UTC)


def cuff_measurement(systolic: int = 132, diastolic: int = 84, *, minute: int = 14) -> list[dict[str, Any]]:
    """A shared cuff's one measurement (panel + pulse rate), built for nobody, as the session builds it."""
    stamp = datetime(2026, 3, 2, 8, minute)
    panel = Reading(
        "blood-pressure",
        components=(
            Component("systolic", Quantity(Decimal(systolic), "mm[Hg]")),
            Component("diastolic", Quantity(Decimal(diastolic), "mm[Hg]")),
            Component("mean", Quantity(Decimal(100), "mm[Hg]")),
        ),
        device_time=stamp,
    )
    pulse = Reading("pulse-rate-cuff", Quantity(Decimal(72), "/min"), device_time=stamp)
    effective = stamp.replace(tzinfo=UTC)
    return [
        build_observation(r, patient_id=NOBODY, device_id="cuff-1", hub_id="hub-1", effective=effective)
        for r in (panel, pulse)
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[UnattributedReadings]:
    readings = UnattributedReadings(tmp_path / "unattributed.sqlite")
    yield readings
    readings.close()


def test_added_measurement_is_pending_with_its_summary(store: UnattributedReadings) -> None:
    pending_id = store.add("cuff-1", 7, cuff_measurement())
    [pending] = store.pending()
    assert pending.id == pending_id
    assert pending.device_id == "cuff-1"
    assert pending.kind == "blood-pressure"
    assert pending.summary == "132/84 mmHg"
    assert pending.measured_at == WHEN


def test_claim_rewrites_subject_and_identifier_and_removes_it(store: UnattributedReadings) -> None:
    pending_id = store.add("cuff-1", None, cuff_measurement())
    claimed = store.claim(pending_id, "patient-b")
    assert [obs["subject"]["reference"] for obs in claimed] == ["Patient/patient-b"] * 2
    assert all(NOBODY not in str(obs) for obs in claimed)
    # The identifier is the one the session would have built for that resident in the first place.
    direct = [
        build_observation(
            Reading(
                "pulse-rate-cuff", Quantity(Decimal(72), "/min"), device_time=datetime(2026, 3, 2, 8, 14)
            ),
            patient_id="patient-b",
            device_id="cuff-1",
            hub_id="hub-1",
            effective=WHEN,
        )
    ]
    assert claimed[1]["identifier"] == direct[0]["identifier"]
    for obs in claimed:
        validate_observation(obs)  # the gateway's contract takes them
    assert store.pending() == []


def test_claim_twice_or_unknown_is_refused(store: UnattributedReadings) -> None:
    pending_id = store.add("cuff-1", None, cuff_measurement())
    store.claim(pending_id, "patient-a")
    with pytest.raises(UnattributedError):
        store.claim(pending_id, "patient-b")
    with pytest.raises(UnattributedError):
        store.claim(pending_id + 100, "patient-a")


def test_same_measurement_again_is_one_row_even_after_its_claim(store: UnattributedReadings) -> None:
    first = store.add("cuff-1", None, cuff_measurement())
    assert store.add("cuff-1", None, cuff_measurement()) == first
    assert len(store.pending()) == 1
    store.claim(first, "patient-a")
    # A cuff re-sending its stored measurement after a reconnection does not offer it again.
    assert store.add("cuff-1", None, cuff_measurement()) == first
    assert store.pending() == []


def test_pending_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "unattributed.sqlite"
    store = UnattributedReadings(path)
    pending_id = store.add("cuff-1", 3, cuff_measurement())
    store.close()
    again = UnattributedReadings(path)
    try:
        assert [p.id for p in again.pending()] == [pending_id]
        assert again.claim(pending_id, "patient-a")[0]["subject"]["reference"] == "Patient/patient-a"
    finally:
        again.close()


def test_two_residents_claiming_at_once_one_wins(store: UnattributedReadings) -> None:
    pending_id = store.add("cuff-1", None, cuff_measurement())
    results: list[str] = []

    def claim(patient: str) -> None:
        try:
            store.claim(pending_id, patient)
            results.append(patient)
        except UnattributedError:
            results.append("refused")

    threads = [threading.Thread(target=claim, args=(p,)) for p in ("patient-a", "patient-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results)[-1] == "refused" and len(results) == 2


def test_pending_is_oldest_first(store: UnattributedReadings) -> None:
    late = store.add("cuff-1", None, cuff_measurement(minute=40))
    early = store.add("cuff-1", None, cuff_measurement(120, 70, minute=5))
    assert [p.id for p in store.pending()] == [early, late]


def test_claim_for_nobody_is_refused(store: UnattributedReadings) -> None:
    pending_id = store.add("cuff-1", None, cuff_measurement())
    with pytest.raises(ValueError):
        store.claim(pending_id, NOBODY)
    assert len(store.pending()) == 1


def test_summary_of_a_weight() -> None:
    weight = build_observation(
        Reading("body-weight", Quantity(Decimal("82.40"), "kg")),
        patient_id=NOBODY,
        device_id="scale-1",
        hub_id="hub-1",
        effective=WHEN,
    )
    assert summarise(weight) == "82.4 kg"


_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.-]{0,20}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(device_id=_ids, patient_id=_ids, systolic=st.integers(60, 250))
def test_attribute_names_only_the_claimant(device_id: str, patient_id: str, systolic: int) -> None:
    obs = build_observation(
        Reading(
            "blood-pressure",
            components=(
                Component("systolic", Quantity(Decimal(systolic), "mm[Hg]")),
                Component("diastolic", Quantity(Decimal(60), "mm[Hg]")),
            ),
            device_time=datetime(2026, 1, 1),
        ),
        patient_id=NOBODY,
        device_id=device_id,
        hub_id="hub-1",
        effective=WHEN,
    )
    claimed = attribute(obs, device_id, patient_id)
    assert claimed["subject"] == {"reference": f"Patient/{patient_id}"}
    assert claimed["identifier"][0]["value"].startswith(f"{device_id}-{patient_id}-blood-pressure-")
    assert NOBODY not in str(claimed)
    assert obs["subject"]["reference"] == f"Patient/{NOBODY}"  # the stored one is left as it was
