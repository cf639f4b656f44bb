"""Every stored reading also holds its value in the canonical unit (migration 0006): filled by ingest from
what validation computed, back-filled for rows stored before, with the factors of the contract's one
table (``fhir_contract.units``) in both places."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from observation_factory import BASE_TIME, Home
from psycopg.types.json import Jsonb

from fhir_contract.observation import build_observation
from fhir_contract.readings import Absent, Component, Quantity, Reading
from fhir_contract.units import CONVERSIONS, to_canonical
from fhir_contract.validate import validate_observation
from gateway.alerts.home_rules import load_series
from gateway.store.migrate import MIGRATIONS_DIR, load_migrations, migrate
from gateway.store.repository import insert_observations

HOME = Home()
# A value in each unit the contract converts, of a reading type that allows it.
SENT_IN_EACH_UNIT = {
    "[degF]": ("body-temperature", "8310-5", 101.3),
    "[lb_av]": ("body-weight", "29463-7", 176.37),
    "[in_i]": ("body-height", "8302-2", 66.5),
    "kPa": ("blood-pressure", "85354-9", 16.0),  # no panel in kPa passes the contract; a hand-written row
    "mmol/L": ("glucose-capillary-plasma", "14749-6", 5.4),
}

Conn = psycopg.Connection[Any]


def _canonical_columns(conn: Conn) -> dict[str, tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT kind, value, unit, canonical_value, canonical_unit, components, canonical_components"
        " FROM observations ORDER BY effective"
    ).fetchall()
    return {str(row[0]): tuple(row[1:]) for row in rows}


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as c:
        HOME.enroll(c)
        yield c


def test_the_sql_conversions_of_migration_0006_are_the_contract_table(conn: Conn) -> None:
    assert set(SENT_IN_EACH_UNIT) == set(CONVERSIONS)  # a unit added to the table needs a migration
    for unit in [*CONVERSIONS, "%", "Cel", "kg"]:
        for value in (0.0, 1.0, -40.0, 98.6, 176.37, 1234.5678):
            row = conn.execute(
                "SELECT ucum_canonical_value(%s, %s), ucum_canonical_unit(%s)", (value, unit, unit)
            ).fetchone()
            assert row == to_canonical(value, unit), (value, unit)


def test_ingest_stores_each_reading_as_sent_and_in_its_canonical_unit(conn: Conn) -> None:
    readings = [
        Reading("body-weight", Quantity(Decimal("176.37"), "[lb_av]")),
        Reading("body-temperature", Quantity(Decimal("101.3"), "[degF]")),
        Reading("glucose-capillary-plasma", Quantity(Decimal("5.4"), "mmol/L")),
        Reading("spo2", Quantity(Decimal("96"), "%")),
        Reading("pulse-rate-oximeter", Absent("unknown")),
        Reading(
            "blood-pressure",
            components=(
                Component("systolic", Quantity(Decimal("128"), "mm[Hg]")),
                Component("diastolic", Quantity(Decimal("80"), "mm[Hg]")),
                Component("mean", Absent("not-a-number")),
            ),
        ),
    ]
    rows = [
        validate_observation(
            build_observation(
                reading,
                patient_id=HOME.patient_id,
                device_id=HOME.oximeter_id,
                hub_id=HOME.hub_id,
                effective=BASE_TIME + timedelta(minutes=i),
            )
        )
        for i, reading in enumerate(readings)
    ]
    assert insert_observations(conn, HOME.municipality_id, HOME.hub_id, rows).inserted == len(rows)
    stored = _canonical_columns(conn)
    panel = {"systolic": 128.0, "diastolic": 80.0, "mean": None}
    assert stored == {
        "body-weight": (176.37, "[lb_av]", 176.37 * 0.45359237, "kg", None, None),
        "body-temperature": (101.3, "[degF]", (101.3 - 32) * (5 / 9), "Cel", None, None),
        "glucose-capillary-plasma": (5.4, "mmol/L", 5.4 * 18.0156, "mg/dL", None, None),
        "spo2": (96.0, "%", 96.0, "%", None, None),
        "pulse-rate-oximeter": (None, None, None, None, None, None),
        "blood-pressure": (None, "mm[Hg]", None, "mm[Hg]", panel, panel),
    }
    # Exactly what validation computed: nothing converts a second time.
    assert [r.canonical_value for r in rows[:4]] == [stored[r.kind][2] for r in rows[:4]]


def test_migration_0006_back_fills_rows_stored_before_it(empty_database_url: str, tmp_path: Path) -> None:
    before = [m for m in sorted(MIGRATIONS_DIR.glob("*.sql")) if int(m.name[:4]) < 6]
    for source in before:
        shutil.copy(source, tmp_path)
    with psycopg.connect(empty_database_url, autocommit=True) as c:
        assert migrate(c, tmp_path) == [1, 2, 3, 4, 5]
        HOME.enroll(c)
        sent: list[tuple[str, str, float | None, str | None]] = [
            (kind, loinc, value, unit) for unit, (kind, loinc, value) in SENT_IN_EACH_UNIT.items()
        ]
        sent += [("spo2", "2708-6", 96.0, "%"), ("pulse-rate-oximeter", "8867-4", None, None)]
        for i, (kind, loinc, value, unit) in enumerate(sent):
            panel = (
                {"systolic": value, "diastolic": 10.7, "note": "kept"} if kind == "blood-pressure" else None
            )
            c.execute(
                "INSERT INTO observations (municipality_id, identifier, patient_id, hub_id, device_id, kind,"
                " loinc, effective, value, unit, components, resource) VALUES (%s, %s, %s, %s, %s, %s, %s,"
                " %s, %s, %s, %s, %s)",
                (
                    HOME.municipality_id,
                    f"old-{i}",
                    HOME.patient_id,
                    HOME.hub_id,
                    HOME.oximeter_id,
                    kind,
                    loinc,
                    BASE_TIME + timedelta(days=i),
                    None if panel else value,
                    unit,
                    Jsonb(panel) if panel else None,
                    Jsonb({"resourceType": "Observation", "status": "final"}),
                ),
            )
        assert migrate(c) == [m.version for m in load_migrations()][5:]
        stored = _canonical_columns(c)
        weights = load_series(c, HOME.municipality_id, HOME.patient_id, BASE_TIME + timedelta(days=30))
    for unit, (kind, _loinc, value) in SENT_IN_EACH_UNIT.items():
        canonical, canonical_unit = to_canonical(value, unit)
        if kind == "blood-pressure":  # each number of the panel converted, anything else kept
            panel = {"systolic": value, "diastolic": 10.7, "note": "kept"}
            converted = {"systolic": canonical, "diastolic": to_canonical(10.7, unit)[0], "note": "kept"}
            assert stored[kind] == (None, unit, None, canonical_unit, panel, converted)
        else:
            assert stored[kind] == (value, unit, canonical, canonical_unit, None, None), unit
    assert stored["spo2"] == (96.0, "%", 96.0, "%", None, None)
    assert stored["pulse-rate-oximeter"] == (None, None, None, None, None, None)
    # The rules read the back-filled kilograms of the scale that reported pounds.
    assert weights["weight"].values == (to_canonical(176.37, "[lb_av]")[0],)
