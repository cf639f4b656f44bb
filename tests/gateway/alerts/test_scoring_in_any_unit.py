"""Scores do not depend on the unit a device reports in: readings go through real ingest (decision,
validation, storing in PostgreSQL) and the real scorer, once in the canonical unit and once in the other
unit the contract allows, and the two patients are scored alike.

A scale that reports pounds (``[lb_av]``, as ``edge_agent.gatt.weight_scale`` sends for an imperial
scale) must fire the heart-failure weight rules on the same readings as one reporting kilograms, and a
thermometer in Fahrenheit must score NEWS2 as one in Celsius."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
import psycopg
import pytest

from fhir_contract.observation import build_bundle, build_observation
from fhir_contract.readings import Quantity, Reading
from gateway.alerts.scorer import score_patient
from gateway.ingest.batch_store import BatchStore
from gateway.settings import GatewaySettings
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.repository import Municipality, Patient

MUNICIPALITY = "0101"
DAY0 = datetime(2026, 11, 1, 7, 30, tzinfo=UTC)
# The heart-failure weight gain of tests/gateway/alerts/test_home_rules.py: +2.3 kg in 3 days on day 6.
KILOS = ("80.0", "80.1", "79.9", "80.0", "80.6", "81.4", "82.3", "82.2")
LB_PER_KG = 1 / Decimal("0.45359237")
# An imperial scale resolves 0.01 lb (Weight Scale service, imperial resolution).
LB_STEP = Decimal("0.01")
# Two heart-failure patients (a scale in kg, one in lb) and two without (a thermometer in Cel, one in F).
CONDITIONS = {"kg": ("heart-failure",), "lb": ("heart-failure",), "cel": (), "f": ()}


@dataclass(frozen=True, slots=True)
class Arrived:
    """A message as an ingest worker hands it to its ``BatchStore``."""

    topic: str
    payload: bytes
    arrived: float = 0.0


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as c:
        homes = [
            Home(
                Patient(MUNICIPALITY, pid, f"Synthetic {pid}", conditions=conditions),
                f"hub-{pid}",
                (HomeDevice(f"dev-{pid}", "sensor"),),
            )
            for pid, conditions in CONDITIONS.items()
        ]
        enroll_homes(c, [Municipality(MUNICIPALITY, "København")], homes)
        yield c


@pytest.fixture
def ingest(database_url: str) -> Iterator[BatchStore]:
    store = BatchStore(GatewaySettings(database_url=database_url), "units-test")
    yield store
    store.close()


def _send(store: BatchStore, pid: str, reading: Reading, at: datetime) -> None:
    """One reading of patient ``pid``'s device, through ingest as its hub would publish it."""
    observation = build_observation(
        reading, patient_id=pid, device_id=f"dev-{pid}", hub_id=f"hub-{pid}", effective=at
    )
    topic = f"homewatch/v1/{MUNICIPALITY}/hub-{pid}/observations"
    [outcome] = store.handle([Arrived(topic, orjson.dumps(build_bundle([observation])))]).outcomes
    assert outcome.rejections == () and len(outcome.accepted) == 1


def _rule_scores(c: psycopg.Connection[Any], pid: str) -> list[tuple[str, datetime, str]]:
    rows = c.execute(
        "SELECT method, as_of, detail->>'reason' FROM scores WHERE patient_id = %s AND method <> 'news2'"
        " ORDER BY as_of, method",
        (pid,),
    ).fetchall()
    return [(str(m), t, str(r)) for m, t, r in rows]


def _pounds(kilos: str) -> Decimal:
    return (Decimal(kilos) * LB_PER_KG).quantize(LB_STEP, rounding=ROUND_HALF_UP)


def test_a_scale_in_pounds_fires_the_weight_rules_exactly_when_the_same_weights_in_kg_do(
    conn: psycopg.Connection[Any], ingest: BatchStore
) -> None:
    fired: dict[str, list[int]] = {"kg": [], "lb": []}
    for day, kilos in enumerate(KILOS):
        at = DAY0 + timedelta(days=day)
        _send(ingest, "kg", Reading("body-weight", Quantity(Decimal(kilos), "kg")), at)
        _send(ingest, "lb", Reading("body-weight", Quantity(_pounds(kilos), "[lb_av]")), at)
        for pid, days in fired.items():
            outcome = score_patient(conn, MUNICIPALITY, pid)
            if outcome is not None and outcome.alert is not None:
                days.append(day)
    # The gain of 2.3 kg in 3 days on day 6, and the 3-day average 1.5 kg above its low on day 7.
    assert fired["kg"] == fired["lb"] == [6, 7]
    in_kg, in_lb = _rule_scores(conn, "kg"), _rule_scores(conn, "lb")
    assert [(m, t) for m, t, _ in in_lb] == [(m, t) for m, t, _ in in_kg]
    assert [(m, t) for m, t, _ in in_kg] == [
        ("hf-weight-gain-3d", DAY0 + timedelta(days=6)),
        ("hf-weight-gain-ma", DAY0 + timedelta(days=7)),
    ]
    # The reasons a nurse reads are in kilograms for both, to the same figures.
    assert [r for _, _, r in in_lb] == [r for _, _, r in in_kg]
    assert in_lb[0][2] == "Weight up 2.3 kg in 3 days (80.0 -> 82.3 kg)"


@pytest.mark.parametrize(
    ("celsius", "fahrenheit", "points"),
    [
        ("34.9", "94.82", 3),
        ("35.8", "96.44", 1),
        ("37.0", "98.60", 0),
        ("38.5", "101.30", 1),
        ("39.2", "102.56", 2),
    ],
)
def test_a_thermometer_in_fahrenheit_scores_news2_as_one_in_celsius(
    conn: psycopg.Connection[Any], ingest: BatchStore, celsius: str, fahrenheit: str, points: int
) -> None:
    _send(ingest, "cel", Reading("body-temperature", Quantity(Decimal(celsius), "Cel")), DAY0)
    _send(ingest, "f", Reading("body-temperature", Quantity(Decimal(fahrenheit), "[degF]")), DAY0)
    in_celsius = score_patient(conn, MUNICIPALITY, "cel")
    in_fahrenheit = score_patient(conn, MUNICIPALITY, "f")
    assert in_celsius is not None and in_fahrenheit is not None
    assert in_celsius.news2 == in_fahrenheit.news2 == points
    details = {
        pid: conn.execute(
            "SELECT detail FROM scores WHERE patient_id = %s AND method = 'news2'", (pid,)
        ).fetchone()
        for pid in ("cel", "f")
    }
    temperatures = {
        pid: next(p for p in row[0]["parameters"] if p["name"] == "temperature")
        for pid, row in details.items()
        if row is not None
    }
    assert temperatures["f"]["points"] == temperatures["cel"]["points"] == points
    assert temperatures["f"]["value"] == pytest.approx(float(celsius), abs=1e-9)
