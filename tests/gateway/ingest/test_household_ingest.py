"""Ingest on a hub of two residents, with the assignment read from a real PostgreSQL as the household
was set up (``gateway.administration.household``): a device carries only the readings of the residents
it measures; one resident's device never stores the other's reading."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_contract.observation import build_bundle, build_observation
from fhir_contract.readings import Quantity, Reading
from gateway.administration.homes import add_municipality, add_patient, assign_device, enroll_hub
from gateway.administration.household import add_resident, share_device
from gateway.ingest.processing import process_message
from gateway.settings import GatewaySettings
from gateway.store.repository import HubAssignment, hub_assignment

SETTINGS = GatewaySettings(environment="development")
TOPIC = "homewatch/v1/0101/hub-1/observations"
WHEN = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PATIENTS = ("p-ane", "p-bent", "p-carl")


@pytest.fixture
def assignment(database_url: str) -> Iterator[HubAssignment]:
    """Ane's hub; Bent lives with it; a shared scale (1: Ane, 2: Bent) and an oximeter each. Carl is a
    patient of the municipality who lives elsewhere."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        add_municipality(conn, "0101", "København", by="ops")
        for patient in PATIENTS:
            add_patient(
                conn, "0101", patient, name=patient, care_team=None, phone=None, conditions=[],
                birth_date=None, by="ops",
            )  # fmt: skip
        enroll_hub(conn, SETTINGS, "0101", "hub-1", "p-ane", by="ops", accounts=None)
        add_resident(conn, "hub-1", "p-bent", by="ops", publisher=None)
        for index, patient in ((1, "p-ane"), (2, "p-bent")):
            share_device(
                conn, SETTINGS, "hub-1", patient, "scale", "AA:00:00:00:00:01", index, by="ops",
                device_id="scale", publisher=None,
            )  # fmt: skip
        for patient, address in (("p-ane", "AA:00:00:00:00:02"), ("p-bent", "AA:00:00:00:00:03")):
            assign_device(
                conn, SETTINGS, "hub-1", patient, "pulse-oximeter", address, by="ops",
                device_id=f"oxi-{patient}", publisher=None,
            )  # fmt: skip
        found = hub_assignment(conn, "0101", "hub-1")
    assert found is not None
    yield found


MEASURES = {
    "scale": {"p-ane", "p-bent"},
    "oxi-p-ane": {"p-ane"},
    "oxi-p-bent": {"p-bent"},
}


def _reading(device: str, patient: str) -> dict[str, Any]:
    reading = (
        Reading("body-weight", Quantity(Decimal("80.5"), "kg"))
        if device == "scale"
        else Reading("spo2", Quantity(Decimal(96), "%"))
    )
    return build_observation(reading, patient_id=patient, device_id=device, hub_id="hub-1", effective=WHEN)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(st.tuples(st.sampled_from(sorted(MEASURES)), st.sampled_from(PATIENTS)), max_size=8))
def test_a_device_carries_only_its_residents_readings(
    assignment: HubAssignment, entries: list[tuple[str, str]]
) -> None:
    observations = [_reading(device, patient) for device, patient in entries]
    payload = orjson.dumps(build_bundle(observations))
    outcome = process_message(TOPIC, payload, lambda m, h: assignment, 1_000_000, now=WHEN)
    accepted = set(outcome.accepted_positions)
    for index, (device, patient) in enumerate(entries):
        allowed = patient in MEASURES[device]
        assert (index in accepted) == allowed, (device, patient)
    assert all(r.code == "not-authorised" for r in outcome.rejections)
