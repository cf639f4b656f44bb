"""Enrolling whole homes: a patient, the hub in their home and the hub's devices, in one transaction.

What an administrator does before a hub is switched on, and what the demo, the tests and the benchmarks
do before they send readings: the gateway accepts a reading only from an enrolled hub, for its own
patient and devices. Each row is written by ``repository``'s ``enroll_*`` functions (which hold the SQL
and the municipality checks); this module only says in which order, so that every caller enrols a home
the same way. Logins and nurses are ``users``'.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

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


@dataclass(frozen=True, slots=True)
class HomeDevice:
    """A device paired with a home's hub: its FHIR Device id, its kind and (when known) its address."""

    id: str
    kind: str
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Home:
    """One patient's home as the gateway knows it: the patient, their hub and the hub's devices.

    The hub and the devices belong to the patient's municipality (``patient.municipality_id``).
    """

    patient: Patient
    hub_id: str
    devices: tuple[HomeDevice, ...] = ()


def enroll_homes(
    conn: psycopg.Connection[Any], municipalities: Iterable[Municipality], homes: Iterable[Home]
) -> None:
    """Enrol (create or update) ``municipalities``, then each home's patient, hub and devices.

    All or nothing: one transaction (a savepoint inside the caller's). A home whose municipality is
    neither listed nor enrolled already, or whose ids another municipality holds, raises (an
    ``EnrolmentConflict`` for the latter) and enrols nothing.
    """
    with conn.transaction():
        for municipality in municipalities:
            enroll_municipality(conn, municipality)
        for home in homes:
            patient = home.patient
            enroll_patient(conn, patient)
            enroll_hub(conn, Hub(patient.municipality_id, home.hub_id, patient.id))
            for device in home.devices:
                enroll_device(
                    conn,
                    Device(
                        patient.municipality_id,
                        device.id,
                        home.hub_id,
                        patient.id,
                        device.kind,
                        device.address,
                    ),
                )
