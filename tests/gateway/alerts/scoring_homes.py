"""Homes for the scorer's tests: patients with a heart-rate monitor, an oximeter, a cuff and a scale, and
their readings as a hub sends them (the contract's builder), through real ingest (``BatchStore``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import psycopg

from fhir_contract.observation import build_bundle, build_observation
from fhir_contract.readings import Component, Quantity, Reading
from gateway.ingest.batch_store import BatchStore
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.repository import Municipality, Patient

MUNICIPALITY = "0101"
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
# Each kind of reading comes from its own device: (device prefix, unit).
DEVICES = {
    "heart-rate": ("hrm", "/min"),
    "spo2": ("oxi", "%"),
    "pulse-rate-oximeter": ("oxi", "/min"),
    "blood-pressure": ("bpc", "mm[Hg]"),
    "body-temperature": ("thm", "Cel"),
    "body-weight": ("scl", "kg"),
}


def enroll(conn: psycopg.Connection[Any], *patients: str, conditions: tuple[str, ...] = ()) -> None:
    """Enrol each patient with a hub and one device of every prefix in ``DEVICES``."""
    prefixes = sorted({prefix for prefix, _ in DEVICES.values()})
    homes = [
        Home(
            Patient(MUNICIPALITY, pid, f"Synthetic {pid}", conditions=conditions),
            f"hub-{pid}",
            tuple(HomeDevice(f"{prefix}-{pid}", "sensor") for prefix in prefixes),
        )
        for pid in patients
    ]
    enroll_homes(conn, [Municipality(MUNICIPALITY, "København")], homes)


def reading(pid: str, kind: str, value: float | tuple[float, float], at: datetime) -> dict[str, Any]:
    """One Observation of ``pid``'s device for ``kind`` (a blood pressure: (systolic, diastolic))."""
    prefix, unit = DEVICES[kind]
    if isinstance(value, tuple):
        systolic, diastolic = value
        built = Reading(
            kind,
            components=(
                Component("systolic", Quantity(Decimal(str(systolic)), unit)),
                Component("diastolic", Quantity(Decimal(str(diastolic)), unit)),
            ),
        )
    else:
        built = Reading(kind, Quantity(Decimal(str(value)), unit))
    return build_observation(
        built, patient_id=pid, device_id=f"{prefix}-{pid}", hub_id=f"hub-{pid}", effective=at
    )


@dataclass(frozen=True, slots=True)
class Arrived:
    """A message as an ingest worker hands it to its ``BatchStore``."""

    topic: str
    payload: bytes
    arrived: float = 0.0


def send(store: BatchStore, pid: str, observations: Sequence[dict[str, Any]]) -> None:
    """One Bundle of ``pid``'s hub through ingest (decided, stored and announced in one transaction)."""
    topic = f"homewatch/v1/{MUNICIPALITY}/hub-{pid}/observations"
    [outcome] = store.handle([Arrived(topic, orjson.dumps(build_bundle(list(observations))))]).outcomes
    assert outcome.rejections == (), outcome.rejections


def alerts(conn: psycopg.Connection[Any], pid: str) -> list[tuple[str, str, str, datetime, int]]:
    """The patient's alerts, oldest first: (kind, key, severity, as_of, trigger count)."""
    rows = conn.execute(
        "SELECT kind, key, severity, as_of, trigger_count FROM alerts WHERE patient_id = %s ORDER BY id",
        (pid,),
    ).fetchall()
    return [(str(k), str(key), str(s), t, int(n)) for k, key, s, t, n in rows]
