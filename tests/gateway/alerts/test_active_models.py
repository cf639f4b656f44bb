"""Each municipality is scored with its own active model version (``gateway.alerts.active_models``), and
the RiskAssessment names it; a local version whose stored bytes no longer match their sha256 is not
loaded: the municipality falls back to the default, and the score says so. Real PostgreSQL; the local
version is the shipped model's bytes under another name (no training)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from fhir_contract.observation import build_observation
from fhir_contract.readings import Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.alerts.active_models import ActiveModels, register_shipped_default
from gateway.alerts.admission_risk import METHOD, score_everyone
from gateway.alerts.risk_assessment import ADMISSION_RISK_KIND_SYSTEM, ADMISSION_RISK_METHOD_SYSTEM
from gateway.store import model_registry as registry
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.repository import Municipality, Patient, insert_observations
from models.model_bytes import ShippedModel, shipped_model

NOW = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
GOOD = {"methods": {"model": {"auroc": 0.74, "auroc_ci": [0.7, 0.78]}, "news2": {"auroc": 0.61}}}


class Admin:
    username = "ada"
    municipality_id = "0202"
    role = "municipality_admin"


@pytest.fixture(scope="module")
def shipped() -> ShippedModel:
    return shipped_model()


@pytest.fixture
def conn(database_url: str, shipped: ShippedModel) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as c:
        for municipality_id, name in (("0101", "København"), ("0202", "Aarhus")):
            pid = f"p-{municipality_id}"
            home = Home(
                Patient(municipality_id, pid, f"Synthetic {pid}", birth_date=date(1941, 3, 2)),
                f"hub-{pid}",
                (HomeDevice(f"scale-{pid}", "scale"),),
            )
            enroll_homes(c, [Municipality(municipality_id, name)], [home])
            rows = []
            for back in range(20):
                reading = Reading("body-weight", Quantity(Decimal(str(80 + 0.1 * back)), "kg"))
                obs = build_observation(
                    reading,
                    patient_id=pid,
                    device_id=f"scale-{pid}",
                    hub_id=f"hub-{pid}",
                    effective=NOW - timedelta(days=back, hours=12),
                )
                rows.append(validate_observation(obs))
            insert_observations(c, municipality_id, f"hub-{pid}", rows)
        register_shipped_default(c, shipped)
        registry.register_version(
            c,
            version="aarhus-local-1",
            municipality_id="0202",
            kind="local",
            created_by="ada",
            source="database",
            model_bytes=shipped.model_bytes,
            metadata={**shipped.metadata, "training_cohort": {"synthetic": True}},
            card="# aarhus-local-1",
            metrics=GOOD,
        )
        registry.activate(c, "0202", "aarhus-local-1", actor=Admin())
        yield c


def _newest(conn: psycopg.Connection[Any], pid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    row = conn.execute(
        "SELECT resource, detail FROM scores WHERE patient_id = %s AND method = %s ORDER BY id DESC LIMIT 1",
        (pid, METHOD),
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def _codes(resource: dict[str, Any]) -> dict[str, str]:
    return {c["system"]: c["code"] for c in resource["method"]["coding"]}


def test_each_municipality_is_scored_by_its_active_version(
    conn: psycopg.Connection[Any], database_url: str, shipped: ShippedModel
) -> None:
    models = ActiveModels()
    assert score_everyone(database_url, models, now=NOW) == 2
    kbh, kbh_detail = _newest(conn, "p-0101")
    aarhus, aarhus_detail = _newest(conn, "p-0202")
    assert _codes(kbh) == {
        ADMISSION_RISK_METHOD_SYSTEM: shipped.version,
        ADMISSION_RISK_KIND_SYSTEM: "default",
    }
    assert _codes(aarhus) == {
        ADMISSION_RISK_METHOD_SYSTEM: "aarhus-local-1",
        ADMISSION_RISK_KIND_SYSTEM: "local",
    }
    assert f"model {shipped.version}: the day-one default" in kbh["method"]["text"]
    assert "model aarhus-local-1: a local model" in aarhus["method"]["text"]
    assert (kbh_detail["model"], aarhus_detail["model"]) == (shipped.version, "aarhus-local-1")
    assert models.loaded == 1  # the same bytes under two names are unpickled once


def test_a_local_version_whose_bytes_changed_falls_back_to_the_default_and_says_so(
    conn: psycopg.Connection[Any], database_url: str, shipped: ShippedModel
) -> None:
    # Bytes and fingerprint disagree (a row changed behind the registry's back): never unpickled.
    conn.execute("UPDATE model_versions SET sha256 = repeat('0', 64) WHERE version = 'aarhus-local-1'")
    assert score_everyone(database_url, ActiveModels(), now=NOW) == 2
    resource, detail = _newest(conn, "p-0202")
    assert _codes(resource)[ADMISSION_RISK_METHOD_SYSTEM] == shipped.version
    assert "aarhus-local-1 could not be loaded" in detail["model_fallback"]
    fallback = [e for e in resource["extension"] if e["url"] == "urn:homewatch:model-fallback"]
    assert fallback and "sha256" in fallback[0]["valueString"]
