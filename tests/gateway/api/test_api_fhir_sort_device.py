"""The FHIR API's _sort with keyset paging in both directions, its absolute links, and Device read."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.device import Device
from seed import World, audit_rows, bearer, device, observation

FHIR_JSON = "application/fhir+json"
PHD_DEVICE = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"


@pytest.fixture
def auth(client: TestClient, world: World) -> dict[str, str]:
    return bearer(client, world.nurse)


def _bundle(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "searchset"
    return body


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == relation), None)


def _all_pages(client: TestClient, url: str, auth: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
    """Every resource of a search, following ``next`` links as given; and how many pages it took."""
    resources: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url is not None:
        bundle = _bundle(client.get(next_url, headers=auth))
        resources.extend(entry["resource"] for entry in bundle.get("entry", []))
        next_url = _link(bundle, "next")
        pages += 1
    return resources, pages


# --- _sort ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "expected"),
    [("", [91, 92, 93, 94, 95]), ("-date", [91, 92, 93, 94, 95]), ("date", [95, 94, 93, 92, 91])],
)
def test_sort_by_date_pages_in_either_direction(
    client: TestClient, world: World, auth: dict[str, str], sort: str, expected: list[float]
) -> None:
    url = f"/fhir/Observation?patient={world.paged_patient}&code=59408-5&_count=2"
    resources, pages = _all_pages(client, url + (f"&_sort={sort}" if sort else ""), auth)
    assert [r["valueQuantity"]["value"] for r in resources] == expected
    assert pages == 3


def test_paging_through_readings_that_share_a_time_returns_each_once_in_both_directions(
    client: TestClient, world: World, auth: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    same = world.now - timedelta(days=10)
    for kind, value in (("spo2", 97), ("pulse-rate-oximeter", 61), ("body-temperature", 36.9)):
        observation(db, world.own, "p-none", kind, same, value)
    observation(db, world.own, "p-none", "body-weight", same - timedelta(minutes=1), 70)
    observation(db, world.own, "p-none", "body-weight", same + timedelta(minutes=1), 71)
    newest, _ = _all_pages(client, "/fhir/Observation?patient=p-none&_count=2", auth)
    oldest, pages = _all_pages(client, "/fhir/Observation?patient=p-none&_count=2&_sort=date", auth)
    assert pages == 3
    assert len({r["id"] for r in newest}) == len(newest) == 5
    assert [r["id"] for r in oldest] == [r["id"] for r in reversed(newest)]
    assert [r["effectiveDateTime"] for r in oldest] == sorted(r["effectiveDateTime"] for r in oldest)


def test_self_and_next_links_are_absolute_and_reproduce_the_search(
    client: TestClient, world: World, auth: dict[str, str]
) -> None:
    query = f"patient=Patient/{world.paged_patient}&code=http://loinc.org|59408-5&_sort=date&_count=2"
    first = _bundle(client.get(f"/fhir/Observation?{query}", headers=auth))
    self_url, next_url = _link(first, "self"), _link(first, "next")
    assert self_url is not None and next_url is not None
    for url in (self_url, next_url):
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc, parts.path) == ("http", "testserver", "/fhir/Observation")
        params = parse_qs(parts.query)
        assert params["patient"] == [f"Patient/{world.paged_patient}"]
        assert params["code"] == ["http://loinc.org|59408-5"]
        assert params["_sort"] == ["date"] and params["_count"] == ["2"]
    again = _bundle(client.get(self_url, headers=auth))
    assert again["entry"] == first["entry"] and _link(again, "self") == self_url
    second = _bundle(client.get(next_url, headers=auth))
    assert [e["resource"]["valueQuantity"]["value"] for e in second["entry"]] == [93, 92]
    assert _link(second, "self") == next_url


def test_default_order_is_not_written_into_links(
    client: TestClient, world: World, auth: dict[str, str]
) -> None:
    bundle = _bundle(client.get(f"/fhir/Observation?patient={world.paged_patient}&_count=1", headers=auth))
    self_url = _link(bundle, "self")
    assert self_url is not None and "_sort" not in self_url


def test_risk_assessment_has_no_sort(client: TestClient, world: World, auth: dict[str, str]) -> None:
    response = client.get("/fhir/RiskAssessment?_sort=date", headers=auth)
    assert response.status_code == 400 and response.json()["issue"][0]["code"] == "not-supported"


# --- Device --------------------------------------------------------------------------------------


def test_device_read_is_a_phd_device_of_its_patient_and_is_audited(
    client: TestClient, world: World, auth: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    device(db, world.own, "p-high", "dev-p-high-bp", "blood-pressure-cuff", "00:e5:de:ad:77:c3")
    response = client.get("/fhir/Device/dev-p-high-bp", headers=auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    Device.model_validate(body)
    assert body["id"] == "dev-p-high-bp" and body["status"] == "active"
    assert body["meta"]["profile"] == [PHD_DEVICE]
    assert body["type"]["coding"][0]["code"] == "65573"  # MDC_MOC_VMS_MDS_SIMP
    assert body["specialization"][0]["systemType"]["coding"][0]["code"] == "528391"  # BP profile
    assert body["patient"] == {"reference": "Patient/p-high"}
    values = {i["system"]: i["value"] for i in body["identifier"]}
    assert values == {
        "http://hl7.org/fhir/sid/eui-48/bluetooth": "00-E5-DE-AD-77-C3",
        "urn:homewatch:device": "dev-p-high-bp",
    }
    assert audit_rows(db, "fhir-read") == [(world.nurse, world.own, "fhir-read", "p-high")]


def test_device_without_an_address_is_served_without_the_phd_profile(
    client: TestClient, world: World, auth: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    device(db, world.own, "p-low", "dev-p-low-scale", "scale")
    body = client.get("/fhir/Device/dev-p-low-scale", headers=auth).json()
    Device.model_validate(body)
    assert "meta" not in body
    assert body["identifier"] == [{"system": "urn:homewatch:device", "value": "dev-p-low-scale"}]
    assert body["type"]["coding"][0]["code"] == "65573"
    assert body["patient"] == {"reference": "Patient/p-low"}


def test_other_municipalitys_device_is_404_like_an_unknown_one(
    client: TestClient, world: World, auth: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    device(db, world.other, world.other_patient, "dev-other", "pulse-oximeter", "00:11:22:33:44:55")
    other = client.get("/fhir/Device/dev-other", headers=auth)
    unknown = client.get("/fhir/Device/nothing", headers=auth)
    assert other.status_code == unknown.status_code == 404
    assert other.json()["issue"][0]["code"] == "not-found"
    diagnostics = [r.json()["issue"][0]["diagnostics"] for r in (other, unknown)]
    assert diagnostics[0].replace("dev-other", "X") == diagnostics[1].replace("nothing", "X")
    assert audit_rows(db, "fhir-read") == []
    own_view = client.get("/fhir/Device/dev-other", headers=bearer(client, world.other_nurse))
    assert own_view.status_code == 200
