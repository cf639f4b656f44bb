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


def provision(conn: psycopg.Connection[Any], homes: list[SimulatedHome]) -> list[Login]:
    """Enrol everything the homes report on; one nurse login per municipality (fresh random password)."""
    logins: list[Login] = []
    with conn.transaction():
        for municipality in MUNICIPALITIES:
            enroll_municipality(conn, municipality)
        for home in homes:
            p = home.patient
            enroll_patient(
                conn,
                Patient(
                    home.municipality,
                    p.id,
                    p.name,
                    birth_date=p.birth_date,
                    conditions=tuple(p.conditions),
                    spo2_scale2=p.spo2_scale2,
                ),
            )
            enroll_hub(conn, Hub(home.municipality, home.hub_id, p.id))
            for kind, device_id in home.device_ids.items():
                enroll_device(
                    conn,
                    Device(home.municipality, device_id, home.hub_id, p.id, kind, home.devices[kind].address),
                )
        conn.execute("DELETE FROM users WHERE username LIKE 'nurse.%%'")
        for municipality in MUNICIPALITIES:
            username = f"nurse.{municipality.id}"
            password = secrets.token_urlsafe(9)
            create_user(conn, username, municipality.id, "nurse", password)
            logins.append(Login(municipality.name, username, password))
    return logins
