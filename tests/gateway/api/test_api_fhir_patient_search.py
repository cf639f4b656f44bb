"""Issue 16: ``GET /fhir/Patient`` searches the user's municipality's patients (``_id``, ``_count``,
paging), as the CapabilityStatement declares; before, there was no Patient search at all."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.patient import Patient
from seed import World, audit_rows, bearer

OWN_PATIENTS = ["p-high", "p-low", "p-med-early", "p-med-late", "p-none"]


@pytest.fixture
def auth(client: TestClient, world: World) -> dict[str, str]:
    return bearer(client, world.nurse)


def _bundle(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    Bundle.model_validate(body)
    assert body["type"] == "searchset"
    return body


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


def _next(bundle: dict[str, Any]) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)


def test_patient_search_lists_the_municipalitys_patients_by_id_and_audits_each(
    client: TestClient, world: World, auth: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    bundle = _bundle(client.get("/fhir/Patient", headers=auth))
    assert _ids(bundle) == OWN_PATIENTS and bundle["total"] == len(OWN_PATIENTS)
    for entry in bundle["entry"]:
        Patient.model_validate(entry["resource"])
        assert entry["fullUrl"] == f"http://testserver/fhir/Patient/{entry['resource']['id']}"
    high = bundle["entry"][0]["resource"]
    assert high["name"] == [{"text": "Karen High"}]
    assert high["managingOrganization"] == {"display": "København"}
    assert sorted(row[3] or "" for row in audit_rows(db, "fhir-read")) == OWN_PATIENTS


def test_patient_search_by_id_finds_only_the_municipalitys_patients(
    client: TestClient, world: World, auth: dict[str, str]
) -> None:
    both = _bundle(client.get("/fhir/Patient", params={"_id": "p-low,p-high"}, headers=auth))
    assert _ids(both) == ["p-high", "p-low"] and both["total"] == 2
    other = _bundle(client.get("/fhir/Patient", params={"_id": world.other_patient}, headers=auth))
    assert _ids(other) == [] and other["total"] == 0
    bad = client.get("/fhir/Patient", params={"_id": "not an id!"}, headers=auth)
    assert bad.status_code == 400 and bad.json()["issue"][0]["code"] == "invalid"


def test_patient_search_pages_with_next_links_each_patient_once(
    client: TestClient, world: World, auth: dict[str, str]
) -> None:
    page = _bundle(client.get("/fhir/Patient", params={"_count": 2}, headers=auth))
    seen = _ids(page)
    next_url = _next(page)
    while next_url is not None:
        page = _bundle(client.get(next_url, headers=auth))
        assert page["total"] == len(OWN_PATIENTS)
        seen += _ids(page)
        next_url = _next(page)
    assert seen == OWN_PATIENTS


def test_a_cursor_of_another_resource_type_is_refused(
    client: TestClient, world: World, auth: dict[str, str]
) -> None:
    risks = _bundle(client.get("/fhir/RiskAssessment", params={"_count": 1}, headers=auth))
    cursor = (_next(risks) or "").partition("_cursor=")[2]
    response = client.get(f"/fhir/Patient?_cursor={cursor}", headers=auth)
    assert response.status_code == 400 and response.json()["issue"][0]["code"] == "invalid"
