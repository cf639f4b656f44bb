"""The FHIR API: CapabilityStatement, Observation search and read, Patient read, RiskAssessment search."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from seed import World, audit_rows, bearer, observation

from gateway.api.fhir_model import observation_id
from gateway.api.fhir_search import COUNT_PARAM, SEARCH_PARAMS, SORT_KEYS, SORT_PARAM

FHIR_JSON = "application/fhir+json"


@pytest.fixture
def auth(client: TestClient, world: World) -> dict[str, str]:
    return bearer(client, world.nurse)


def _outcome(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    outcome = OperationOutcome.model_validate(response.json())
    assert outcome.issue[0].code == code
    return str(outcome.issue[0].diagnostics)


def _bundle(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = response.json()
    Bundle.model_validate(body)
    assert body["type"] == "searchset"
    return body


def _resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle.get("entry", [])]


def _next(bundle: dict[str, Any]) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)


# --- metadata ------------------------------------------------------------------------------------


def test_metadata_is_a_valid_r4_capability_statement(client: TestClient) -> None:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(FHIR_JSON)
    statement = CapabilityStatement.model_validate(response.json())
    assert statement.fhirVersion == "4.0.1"
    assert statement.status == "active" and statement.kind == "instance"
    assert statement.format == ["json"]
    assert statement.software is not None and statement.software.name == "homewatch"
    assert statement.implementation is not None and statement.implementation.url == "http://testserver/fhir"


def test_metadata_lists_exactly_the_implemented_interactions_and_parameters(client: TestClient) -> None:
    rest = client.get("/fhir/metadata").json()["rest"]
    assert [r["mode"] for r in rest] == ["server"]
    declared = {r["type"]: {i["code"] for i in r["interaction"]} for r in rest[0]["resource"]}
    assert declared == {
        "Observation": {"read", "search-type"},
        "Patient": {"read", "search-type"},
        "Device": {"read"},
        "RiskAssessment": {"read", "search-type"},
        "ClinicalImpression": {"read", "search-type"},
        # The alerts (alert_fhir.py).
        "Flag": {"read", "search-type"},
        "Task": {"read", "search-type"},
        "Communication": {"read", "search-type"},
        # What patients send from home (request_fhir.py; contact requests are Tasks).
        "QuestionnaireResponse": {"read", "search-type"},
    }
    assert [i["code"] for i in rest[0]["interaction"]] == ["batch"]
    params = {
        r["type"]: {p["name"]: p["type"] for p in r.get("searchParam", [])} for r in rest[0]["resource"]
    }
    for resource_type, table in SEARCH_PARAMS.items():
        expected = {name: param.type for name, param in table.items()} | {COUNT_PARAM: "number"}
        if SORT_KEYS[resource_type]:
            expected[SORT_PARAM] = "string"
        assert params[resource_type] == expected
    assert params["Device"] == {}
    assert not any("operation" in r for r in rest[0]["resource"])


def test_every_declared_interaction_has_a_route_and_no_route_is_undeclared(
    app: FastAPI, client: TestClient
) -> None:
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    routes = {(path, method.upper()) for path, methods in paths.items() for method in methods}
    fhir_routes = {
        (re.sub(r"\{\w+\}", "{id}", path), method)
        for path, method in routes
        if path == "/fhir" or path.startswith("/fhir/")
    }
    (rest,) = client.get("/fhir/metadata").json()["rest"]
    declared = {("/fhir/metadata", "GET")}
    declared |= {("/fhir", "POST") for i in rest["interaction"] if i["code"] == "batch"}
    for resource in rest["resource"]:
        for interaction in resource["interaction"]:
            suffix = {"read": "/{id}", "search-type": ""}[interaction["code"]]
            declared.add((f"/fhir/{resource['type']}{suffix}", "GET"))
    assert fhir_routes == declared
    assert ("/fhir/ClinicalImpression", "GET") in declared  # the weekly reviews (review_fhir.py)


# --- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Observation",
        "/fhir/Observation/abc",
        "/fhir/Patient/p-high",
        "/fhir/Device/dev-p-high-spo2",
        "/fhir/RiskAssessment",
    ],
)
def test_fhir_reads_without_a_token_are_401(client: TestClient, world: World, path: str) -> None:
    response = client.get(path)
    _outcome(response, 401, "login")
    assert response.headers["www-authenticate"] == "Bearer"


def test_invalid_token_is_401_and_the_session_cookie_is_not_enough(client: TestClient, world: World) -> None:
    _outcome(
        client.get("/fhir/Patient/p-high", headers={"Authorization": "Bearer forged.token"}), 401, "login"
    )
    client.post("/login", data={"username": world.nurse, "password": "correct horse"})
    _outcome(client.get("/fhir/Patient/p-high"), 401, "login")


# --- Patient -------------------------------------------------------------------------------------


def test_patient_read_builds_a_valid_patient(
    client: TestClient, world: World, auth: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    response = client.get("/fhir/Patient/p-high", headers=auth)
    assert response.status_code == 200
    patient = Patient.model_validate(response.json())
    assert patient.id == "p-high"
    assert patient.name is not None and patient.name[0].text == "Karen High"
    assert str(patient.birthDate) == "1948-03-14"
    assert audit_rows(db, "fhir-read") == [(world.nurse, world.own, "fhir-read", "p-high")]


def test_other_municipalitys_patient_is_404_like_an_unknown_one(
    client: TestClient, world: World, auth: dict[str, str]
) -> None:
    other = _outcome(client.get(f"/fhir/Patient/{world.other_patient}", headers=auth), 404, "not-found")
    unknown = _outcome(client.get("/fhir/Patient/nobody", headers=auth), 404, "not-found")
    assert other.replace(world.other_patient, "X") == unknown.replace("nobody", "X")


# --- Observation search --------------------------------------------------------------------------


def test_observation_search_by_patient_returns_their_observations_newest_first(
    client: TestClient, world: World, auth: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    bundle = _bundle(client.get("/fhir/Observation", params={"patient": "Patient/p-high"}, headers=auth))
    observations = [Observation.model_validate(r) for r in _resources(bundle)]
    assert len(observations) == 6
    assert {o.subject.reference for o in observations if o.subject} == {"Patient/p-high"}
    times = [r["effectiveDateTime"] for r in _resources(bundle)]
    assert times == sorted(times, reverse=True)
    for entry in bundle["entry"]:
        assert entry["fullUrl"] == f"http://testserver/fhir/Observation/{entry['resource']['id']}"
        assert entry["search"] == {"mode": "match"}
    assert _next(bundle) is None
    assert audit_rows(db, "fhir-read") == [(world.nurse, world.own, "fhir-read", "p-high")]


def test_observation_search_by_code_matches_loinc_with_or_without_system_and_mdc(
    client: TestClient, world: World, auth: dict[str, str]
) -> None:
    def count(code: str) -> int:
        params = {"patient": "p-high", "code": code}
        return len(_resources(_bundle(client.get("/fhir/Observation", params=params, headers=auth))))

    assert count("http://loinc.org|29463-7") == 2  # body weight
    assert count("29463-7") == 2
    assert count("urn:iso:std:iso:11073:10101|150456") == 1  # SpO2 by its MDC code
    assert count("http://loinc.org|150456") == 0  # a code in the wrong system
    assert count("29463-7,85354-9") == 3  # comma means OR


def test_observation_search_by_date_range(client: TestClient, world: World, auth: dict[str, str]) -> None:
    times = world.paged_times  # newest first, an hour apart
    params = [
        ("patient", world.paged_patient),
        ("code", "59408-5"),
        ("date", f"ge{times[3].isoformat()}"),
        ("date", f"lt{times[0].isoformat()}"),
    ]
    bundle = _bundle(client.get("/fhir/Observation", params=params, headers=auth))
    assert [r["valueQuantity"]["value"] for r in _resources(bundle)] == [92, 93, 94]


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("2024-05-01", [36.6]),
        ("eq2024-05", [37.9, 36.6]),
        ("gt2024-05-01", [37.9]),
        ("le2024-05-01", [36.6]),
        ("lt2024-05-01T10:00:00Z", []),
        ("ge2024-05-01T12:00:00+02:00", [37.9, 36.6]),
        ("2024-05-02T10:00", [37.9]),
    ],
)
def test_observation_search_by_date_of_any_precision(
    client: TestClient,
    world: World,
    auth: dict[str, str],
    db: psycopg.Connection[Any],
    date: str,
    expected: list[float],
) -> None:
    observation(db, world.own, "p-none", "body-temperature", datetime(2024, 5, 1, 10, tzinfo=UTC), 36.6)
    observation(db, world.own, "p-none", "body-temperature", datetime(2024, 5, 2, 10, tzinfo=UTC), 37.9)
    params = {"patient": "p-none", "date": date}
    bundle = _bundle(client.get("/fhir/Observation", params=params, headers=auth))
    assert [r["valueQuantity"]["value"] for r in _resources(bundle)] == expected


def test_observation_search_pages_with_next_links(
    client: TestClient, world: World, auth: dict[str, str]
) -> None:
    url: str | None = f"/fhir/Observation?patient={world.paged_patient}&code=59408-5&_count=2"
    seen: list[float] = []
    pages = 0
    while url is not None:
        bundle = _bundle(client.get(url, headers=auth))
        resources = _resources(bundle)
        assert len(resources) <= 2
        seen.extend(r["valueQuantity"]["value"] for r in resources)
        url = _next(bundle)
        if url is not None:
            query = parse_qs(urlsplit(url).query)
            assert query["patient"] == [world.paged_patient] and query["_count"] == ["2"]
        pages += 1
    assert pages == 3
    assert seen == [91, 92, 93, 94, 95]


def test_other_municipalitys_observations_are_never_found(
    client: TestClient, world: World, auth: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    bundle = _bundle(client.get("/fhir/Observation", params={"patient": world.other_patient}, headers=auth))
    assert _resources(bundle) == []
    everything = _bundle(client.get("/fhir/Observation", params={"_count": 100}, headers=auth))
    assert world.other_patient not in str(everything)
    row = db.execute(
        "SELECT municipality_id, device_id, identifier FROM observations WHERE patient_id = %s",
        (world.other_patient,),
    ).fetchone()
    assert row is not None
    _outcome(client.get(f"/fhir/Observation/{observation_id(*row)}", headers=auth), 404, "not-found")


# --- Observation read ----------------------------------------------------------------------------


def test_observation_read_by_the_id_search_gave(
    client: TestClient, world: World, auth: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    bundle = _bundle(client.get("/fhir/Observation", params={"patient": "p-high", "_count": 1}, headers=auth))
    (found,) = _resources(bundle)
    response = client.get(f"/fhir/Observation/{found['id']}", headers=auth)
    assert response.status_code == 200
    assert response.json() == found
    Observation.model_validate(response.json())
    stored = db.execute(
        "SELECT municipality_id, device_id, identifier FROM observations"
        " WHERE resource -> 'identifier' -> 0 ->> 'value' = %s",
        (found["identifier"][0]["value"],),
    ).fetchone()
    assert stored is not None and found["id"] == observation_id(*stored)
    assert len(found["id"]) <= 64


def test_unknown_observation_is_404_and_a_malformed_id_400(
    client: TestClient, world: World, auth: dict[str, str]
) -> None:
    _outcome(client.get(f"/fhir/Observation/{'0' * 64}", headers=auth), 404, "not-found")
    _outcome(client.get("/fhir/Observation/not_a_valid_id!", headers=auth), 400, "invalid")


# --- RiskAssessment ------------------------------------------------------------------------------


def test_risk_assessment_search_by_patient(client: TestClient, world: World, auth: dict[str, str]) -> None:
    bundle = _bundle(client.get("/fhir/RiskAssessment", params={"patient": "p-low"}, headers=auth))
    resources = _resources(bundle)
    assert len(resources) == 2
    assert all(r["resourceType"] == "RiskAssessment" and UUID(r["id"]).version == 4 for r in resources)
    assert {r["subject"]["reference"] for r in resources} == {"Patient/p-low"}
    other = _bundle(client.get("/fhir/RiskAssessment", params={"patient": world.other_patient}, headers=auth))
    assert _resources(other) == []
    paged = _bundle(
        client.get("/fhir/RiskAssessment", params={"patient": "p-low", "_count": 1}, headers=auth)
    )
    next_url = _next(paged)
    assert next_url is not None
    rest = _bundle(client.get(next_url, headers=auth))
    assert [r["id"] for r in _resources(paged) + _resources(rest)] == [r["id"] for r in resources]


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "code", "mentions"),
    [
        ("date=yesterday", "invalid", "date"),
        ("date=2024-13-01", "invalid", "date"),
        ("date=ne2024-01-01", "not-supported", "prefix"),
        ("_count=many", "invalid", "_count"),
        ("_count=0", "invalid", "_count"),
        ("patient=Group/1", "invalid", "patient"),
        ("patient=", "invalid", "patient"),
        ("_cursor=garbage", "invalid", "_cursor"),
        ("_sort=code", "not-supported", "_sort"),
        ("_sort=date,-date", "not-supported", "_sort"),
        ("_sort=date&_sort=-date", "invalid", "_sort"),
    ],
)
def test_bad_search_parameters_are_400_operation_outcomes(
    client: TestClient, world: World, auth: dict[str, str], query: str, code: str, mentions: str
) -> None:
    diagnostics = _outcome(client.get(f"/fhir/Observation?{query}", headers=auth), 400, code)
    assert mentions in diagnostics


def test_unknown_fhir_path_is_an_operation_outcome(
    client: TestClient, world: World, auth: dict[str, str]
) -> None:
    _outcome(client.get("/fhir/Encounter", headers=auth), 404, "not-found")
    _outcome(client.post("/fhir/Observation", headers=auth, json={}), 405, "not-supported")
