"""Issue 16: every reference the FHIR API serves can be read back, within the user's municipality.

A RiskAssessment's searchset entry has a ``fullUrl``; before, no RiskAssessment could be read at it (404).
An Observation names its sensor (``Observation.device``) and its hub (the gatewayDevice extension);
before, the hub's ``Device/...`` answered 404.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.riskassessment import RiskAssessment
from seed import World, audit_rows, bearer, device

from fhir_contract.observation import build_bundle, build_observation
from fhir_contract.readings import Quantity, Reading
from fhir_contract.terminology import GATEWAY_DEVICE_EXTENSION
from gateway.api.auth import mint_token
from gateway.settings import GatewaySettings

FHIR_JSON = "application/fhir+json"
HUB_TYPE = "531981"  # MDC_MOC_VMS_MDS_AHD (fhir/devices.json gateway_type)
SENSOR_TYPE = "65573"  # MDC_MOC_VMS_MDS_SIMP


@pytest.fixture
def auth(client: TestClient, world: World) -> dict[str, str]:
    return bearer(client, world.nurse)


def _local(url: str) -> str:
    return url.removeprefix("http://testserver")


def test_a_risk_assessment_is_read_at_the_full_url_of_its_search_entry(
    client: TestClient, world: World, auth: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    bundle = client.get("/fhir/RiskAssessment", params={"patient": "p-low"}, headers=auth).json()
    assert len(bundle["entry"]) == 2
    for entry in bundle["entry"]:
        response = client.get(_local(entry["fullUrl"]), headers=auth)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(FHIR_JSON)
        RiskAssessment.model_validate(response.json())
        assert response.json() == entry["resource"]
        assert entry["fullUrl"].endswith(f"/RiskAssessment/{response.json()['id']}")
    assert audit_rows(db, "fhir-read")[-2:] == [(world.nurse, world.own, "fhir-read", "p-low")] * 2


def test_a_risk_assessment_of_another_municipality_or_unknown_is_not_found(
    client: TestClient, world: World, auth: dict[str, str]
) -> None:
    other = bearer(client, world.other_nurse)
    entry = client.get("/fhir/RiskAssessment", params={"patient": "p-low"}, headers=auth).json()["entry"][0]
    assert client.get(_local(entry["fullUrl"]), headers=other).status_code == 404
    for unknown in ("score-145", "00000000-0000-4000-8000-000000000000"):
        response = client.get(f"/fhir/RiskAssessment/{unknown}", headers=auth)
        assert response.status_code == 404 and response.json()["issue"][0]["code"] == "not-found"


def _post_reading(client: TestClient, settings: GatewaySettings, world: World) -> None:
    """A reading of p-high's enrolled oximeter, posted by p-high's hub as a hub would."""
    observation = build_observation(
        Reading("spo2", Quantity(Decimal("96"), "%")),
        patient_id="p-high",
        device_id="OXI-REF",
        hub_id="hub-p-high",
        effective=datetime.now(UTC) - timedelta(minutes=5),
    )
    token = mint_token(settings, role="hub", municipality_id=world.own, subject="hub-p-high")
    response = client.post(
        "/fhir",
        content=orjson.dumps(build_bundle([observation])),
        headers={"Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON},
    )
    assert response.status_code == 200 and response.json()["entry"][0]["response"]["status"] == "201 Created"


def _device_references(observation: dict[str, Any]) -> list[str]:
    gateways = [
        ext["valueReference"]["reference"]
        for ext in observation.get("extension", [])
        if ext["url"] == GATEWAY_DEVICE_EXTENSION
    ]
    return [observation["device"]["reference"], *gateways]


def test_every_device_an_observation_references_is_readable_the_hub_too(
    client: TestClient,
    world: World,
    settings: GatewaySettings,
    auth: dict[str, str],
    db: psycopg.Connection[Any],
) -> None:
    device(db, world.own, "p-high", "OXI-REF", "pulse-oximeter", "00:1b:dc:0f:33:aa")  # and hub-p-high
    _post_reading(client, settings, world)
    bundle = client.get("/fhir/Observation", params={"patient": "p-high", "code": "59408-5"}, headers=auth)
    (posted,) = [
        e["resource"]
        for e in bundle.json()["entry"]
        if e["resource"]["device"]["reference"].endswith("OXI-REF")
    ]
    references = _device_references(posted)
    assert references == ["Device/OXI-REF", "Device/hub-p-high"]
    served = {}
    for reference in references:
        response = client.get(f"/fhir/{reference}", headers=auth)
        assert response.status_code == 200, response.text
        Device.model_validate(response.json())
        served[reference] = response.json()
    hub = served["Device/hub-p-high"]
    assert hub["id"] == "hub-p-high" and hub["status"] == "active"
    assert hub["type"]["coding"][0]["code"] == HUB_TYPE
    assert hub["patient"] == {"reference": "Patient/p-high"}
    assert hub["identifier"] == [{"system": "urn:homewatch:device", "value": "hub-p-high"}]
    assert served["Device/OXI-REF"]["type"]["coding"][0]["code"] == SENSOR_TYPE


def test_another_municipalitys_hub_is_not_found_like_an_unknown_one(
    client: TestClient, world: World, db: psycopg.Connection[Any]
) -> None:
    device(db, world.own, "p-high", "OXI-REF", "pulse-oximeter")  # enrols hub-p-high in the own municipality
    other = bearer(client, world.other_nurse)
    hidden = client.get("/fhir/Device/hub-p-high", headers=other)
    unknown = client.get("/fhir/Device/hub-nobody", headers=other)
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["issue"][0]["code"] == "not-found"
