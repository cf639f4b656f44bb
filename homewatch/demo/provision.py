"""Enrol the demo's municipalities, SYNTHETIC patients, hubs and devices, and create nurse logins.

What an administrator does in production before a hub is switched on: the gateway accepts readings only
from enrolled hubs, for their own patient and devices.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import psycopg

from gateway.api.auth import create_user
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.repository import Municipality, Patient
from homewatch.demo.home import SimulatedHome

#: Danish municipality codes and names used by the demo.
MUNICIPALITIES: tuple[Municipality, ...] = (
    Municipality("0101", "København"),
    Municipality("0147", "Frederiksberg"),
)


@dataclass(frozen=True, slots=True)
class Login:
    municipality: str
    username: str
    password: str


def _enrolment(home: SimulatedHome) -> Home:
    """What the gateway enrols of a simulated home: its patient, hub and emulated devices."""
    p = home.patient
    patient = Patient(
        home.municipality,
        p.id,
        p.name,
        birth_date=p.birth_date,
        conditions=tuple(p.conditions),
        spo2_scale2=p.spo2_scale2,
        synthetic=p.synthetic,
    )
    devices = tuple(
        HomeDevice(device_id, kind, home.devices[kind].address) for kind, device_id in home.device_ids.items()
    )
    return Home(patient, home.hub_id, devices)


def provision(conn: psycopg.Connection[Any], homes: list[SimulatedHome]) -> list[Login]:
    """Enrol everything the homes report on; one nurse login per municipality (fresh random password)."""
    logins: list[Login] = []
    with conn.transaction():
        enroll_homes(conn, MUNICIPALITIES, [_enrolment(home) for home in homes])
        conn.execute("DELETE FROM users WHERE username LIKE 'nurse.%%'")
        for municipality in MUNICIPALITIES:
            username = f"nurse.{municipality.id}"
            password = secrets.token_urlsafe(9)
            create_user(conn, username, municipality.id, "nurse", password)
            logins.append(Login(municipality.name, username, password))
    return logins
