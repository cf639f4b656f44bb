"""Test data for the gateway: enrolled homes and the Observations/Bundles their hubs send.

Observations are built with the contract's own builder (``fhir_contract.observation``), so the gateway is
tested against exactly what a hub sends. ``Home`` enrols a municipality, patient, hub and devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg

from fhir_contract.observation import build_bundle, build_observation
from fhir_contract.readings import Component, Quantity, Reading
from gateway.store import users
from gateway.store.repository import (
    Device,
    Hub,
    Municipality,
    Patient,
    enroll_device,
    enroll_hub,
    enroll_municipality,
    enroll_patient,
)

BASE_TIME = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _has_column(conn: psycopg.Connection[Any], table: str, column: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_name = %s AND column_name = %s", (table, column)
    ).fetchone()
    return row is not None


@dataclass(frozen=True)
class Home:
    """One patient's home: municipality, patient, hub, an oximeter and a blood-pressure cuff."""

    municipality_id: str = "0101"
    patient_id: str = "p1"
    hub_id: str = "hub1"
    oximeter_id: str = "OXI1"
    cuff_id: str = "BPC1"

    @property
    def topic(self) -> str:
        return f"homewatch/v1/{self.municipality_id}/{self.hub_id}/observations"

    @property
    def errors_topic(self) -> str:
        return f"homewatch/v1/{self.municipality_id}/{self.hub_id}/errors"

    def enroll(self, conn: psycopg.Connection[Any]) -> None:
        """Enrol the home; on any schema version, since the migration tests enrol before migrating."""
        enroll_municipality(conn, Municipality(self.municipality_id, f"Municipality {self.municipality_id}"))
        if _has_column(conn, "patients", "care_team_id"):  # migration 0008
            enroll_patient(conn, Patient(self.municipality_id, self.patient_id, f"Patient {self.patient_id}"))
        else:
            conn.execute(
                "INSERT INTO patients (municipality_id, id, name) VALUES (%s, %s, %s)",
                (self.municipality_id, self.patient_id, f"Patient {self.patient_id}"),
            )
        enroll_hub(conn, Hub(self.municipality_id, self.hub_id, self.patient_id))
        for device_id, kind in ((self.oximeter_id, "pulse-oximeter"), (self.cuff_id, "blood-pressure-cuff")):
            if _has_column(conn, "devices", "removed_at"):  # migration 0015
                enroll_device(
                    conn, Device(self.municipality_id, device_id, self.hub_id, self.patient_id, kind)
                )
            else:
                conn.execute(
                    "INSERT INTO devices (municipality_id, id, hub_id, patient_id, kind)"
                    " VALUES (%s, %s, %s, %s, %s)"
                    " ON CONFLICT (id) DO NOTHING",
                    (self.municipality_id, device_id, self.hub_id, self.patient_id, kind),
                )

    def spo2(
        self,
        value: float,
        at: datetime = BASE_TIME,
        *,
        patient_id: str | None = None,
        device_id: str | None = None,
        hub_id: str | None = None,
    ) -> dict[str, Any]:
        return build_observation(
            Reading("spo2", Quantity(Decimal(str(value)), "%")),
            patient_id=patient_id or self.patient_id,
            device_id=device_id or self.oximeter_id,
            hub_id=hub_id or self.hub_id,
            effective=at,
        )

    def pulse(self, value: float, at: datetime = BASE_TIME) -> dict[str, Any]:
        return build_observation(
            Reading("pulse-rate-oximeter", Quantity(Decimal(str(value)), "/min")),
            patient_id=self.patient_id,
            device_id=self.oximeter_id,
            hub_id=self.hub_id,
            effective=at,
        )

    def blood_pressure(self, systolic: float, diastolic: float, at: datetime = BASE_TIME) -> dict[str, Any]:
        reading = Reading(
            "blood-pressure",
            components=(
                Component("systolic", Quantity(Decimal(str(systolic)), "mm[Hg]")),
                Component("diastolic", Quantity(Decimal(str(diastolic)), "mm[Hg]")),
            ),
        )
        return build_observation(
            reading, patient_id=self.patient_id, device_id=self.cuff_id, hub_id=self.hub_id, effective=at
        )

    def readings(
        self, count: int, start: datetime = BASE_TIME, step: timedelta = timedelta(minutes=1)
    ) -> list[dict[str, Any]]:
        """``count`` distinct valid SpO2 Observations one ``step`` apart."""
        return [self.spo2(90 + i % 10, start + i * step) for i in range(count)]


def bundle(observations: list[dict[str, Any]]) -> bytes:
    """The JSON payload a hub publishes."""
    return orjson.dumps(build_bundle(observations))


def identifier(observation: dict[str, Any]) -> str:
    value: str = observation["identifier"][0]["value"]
    return value


@dataclass(frozen=True)
class Nurse:
    """A viewer (``gateway.store.access.Viewer``) who sees the patients of her municipality's default team."""

    username: str
    municipality_id: str
    role: str = "nurse"


def nurse_of(conn: psycopg.Connection[Any], home: Home) -> Nurse:
    """A nurse of the home's municipality, in its default care team (where the home's patient is)."""
    nurse = Nurse(f"nurse-{home.municipality_id}", home.municipality_id)
    if not users.user_exists(conn, nurse.username, nurse.municipality_id, nurse.role):
        users.insert_user(conn, nurse.username, nurse.municipality_id, nurse.role, "!")
        users.join_care_team(conn, nurse.municipality_id, nurse.municipality_id, nurse.username)
    return nurse
