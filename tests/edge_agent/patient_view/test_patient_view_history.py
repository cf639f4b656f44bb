"""The hub's memory of its residents' readings for the patient view: what it keeps of an Observation,
per patient, and its bounds."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from view_helpers import HUB, NOW, blood_pressure, weight

from edge_agent.patient_view.history import LocalHistory, reading_of
from fhir_contract.observation import build_observation
from fhir_contract.readings import Absent, Quantity, Reading


def test_a_blood_pressure_is_kept_with_its_two_numbers_and_plan_key() -> None:
    kept = reading_of(blood_pressure("p-anna", NOW, 132, 84))
    assert kept is not None
    assert kept.group == "blood-pressure" and kept.plan_key == "blood-pressure"
    assert kept.numbers == {"systolic": 132, "diastolic": 84} and kept.summary() == "132/84 mmHg"
    assert kept.taken == NOW and kept.patient_id == "p-anna"


def test_what_a_patient_would_not_recognise_is_not_kept() -> None:
    def obs(reading: Reading, preliminary: bool = False) -> dict[str, object]:
        return build_observation(
            reading, patient_id="p", device_id="d", hub_id=HUB, effective=NOW, preliminary=preliminary
        )

    assert reading_of(obs(Reading("battery-level", value=Quantity(Decimal(80), "%")))) is None
    assert reading_of(obs(Reading("spo2", value=Absent("error")))) is None
    assert reading_of(obs(Reading("body-impedance", value=Quantity(Decimal(500), "Ohm")))) is None
    assert reading_of({"resourceType": "Observation"}) is None
    pulse = reading_of(obs(Reading("pulse-rate-cuff", value=Quantity(Decimal(71), "/min"))))
    assert pulse is not None and pulse.group == "pulse" and pulse.plan_key is None


def test_reads_are_per_patient_and_a_reading_sent_again_is_kept_once(tmp_path: Path) -> None:
    history = LocalHistory(tmp_path / "h.sqlite3")
    try:
        anna = blood_pressure("p-anna", NOW - timedelta(hours=1), 120, 80)
        assert history.add([anna, weight("p-bent", NOW, "90")], now=NOW) == 2
        assert history.add([anna], now=NOW) == 0
        assert [r.patient_id for r in history.readings("p-anna", NOW - timedelta(days=1))] == ["p-anna"]
        assert [r.group for r in history.readings("p-bent", NOW - timedelta(days=1))] == ["weight"]
        assert history.readings("p-anna", NOW) == []  # taken before "since"
    finally:
        history.close()


def test_it_forgets_after_its_time_and_beyond_its_rows(tmp_path: Path) -> None:
    history = LocalHistory(tmp_path / "h.sqlite3", keep=timedelta(days=90), max_rows=3)
    try:
        old = blood_pressure("p-anna", NOW - timedelta(days=91), 120, 80)
        assert history.add([old], now=NOW) == 1
        assert history.readings("p-anna", NOW - timedelta(days=365)) == []
        history.add(
            [blood_pressure("p-anna", NOW - timedelta(hours=h), 120 + h, 80) for h in range(5)], now=NOW
        )
        kept = history.readings("p-anna", NOW - timedelta(days=1))
        assert [r.numbers["systolic"] for r in kept] == [122, 121, 120]  # the newest three, oldest first
    finally:
        history.close()


def test_answers_are_remembered_per_patient_and_questionnaire(tmp_path: Path) -> None:
    history = LocalHistory(tmp_path / "h.sqlite3")
    try:
        history.answered("p-anna", "copd-daily", NOW)
        assert history.last_answer("p-anna", "copd-daily") == NOW
        assert history.last_answer("p-bent", "copd-daily") is None
        assert history.last_answer("p-anna", "heart-failure-daily") is None
    finally:
        history.close()
