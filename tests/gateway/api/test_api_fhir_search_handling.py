"""Issue 16: how a search treats parameters it does not know, and the ``total`` of every searchset.

FHIR R4 search (3.1.1.5): a server ignores parameters it does not understand unless the client asks for
``Prefer: handling=strict``; the ``self`` link then shows only the parameters that were used. Before,
``_summary`` or ``_format`` was a 400 whatever the client asked for, and no searchset carried a total.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from seed import World, bearer

STRICT = {"Prefer": "handling=strict"}


@pytest.fixture
def auth(client: TestClient, world: World) -> dict[str, str]:
    return bearer(client, world.nurse)


def _bundle(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    Bundle.model_validate(body)
    return body


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == relation), None)


def test_unknown_parameters_are_ignored_and_left_out_of_the_self_link(
    client: TestClient, world: World, auth: dict[str, str]
) -> None:
    plain = _bundle(client.get("/fhir/Observation", params={"patient": "p-high"}, headers=auth))
    noisy_params = {"patient": "p-high", "_summary": "true", "_format": "json", "code:text": "pulse"}
    noisy = _bundle(client.get("/fhir/Observation", params=noisy_params, headers=auth))
    assert _ids(noisy) == _ids(plain) and noisy["total"] == plain["total"]
    self_url = _link(noisy, "self")
    assert self_url is not None
    assert parse_qs(urlsplit(self_url).query) == {"patient": ["p-high"], "_count": ["20"]}
    lenient = {**auth, "Prefer": "handling=lenient"}
    for resource_type in ("RiskAssessment", "Patient"):
        response = client.get(f"/fhir/{resource_type}", params={"_elements": "id"}, headers=lenient)
        assert "_elements" not in (_link(_bundle(response), "self") or "")


@pytest.mark.parametrize(
    ("query", "mentions"),
    [("_summary=true", "_summary"), ("subject=Patient/p-high", "subject"), ("code:text=pulse", "code:text")],
)
def test_unknown_parameters_are_a_400_when_the_client_asks_for_strict_handling(
    client: TestClient, world: World, auth: dict[str, str], query: str, mentions: str
) -> None:
    response = client.get(f"/fhir/Observation?{query}", headers={**auth, **STRICT})
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["code"] == "not-supported" and mentions in issue["diagnostics"]


def test_a_malformed_value_of_a_known_parameter_is_a_400_either_way(
    client: TestClient, world: World, auth: dict[str, str]
) -> None:
    for headers in (auth, {**auth, **STRICT}):
        assert client.get("/fhir/Observation?date=yesterday", headers=headers).status_code == 400


def test_every_page_of_a_searchset_carries_the_total_of_matches_in_the_users_municipality(
    client: TestClient, world: World, auth: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    first = _bundle(client.get("/fhir/Observation", params={"patient": "p-low", "_count": 2}, headers=auth))
    assert first["total"] == 6  # five SpO2 readings and a pulse
    seen = _ids(first)
    next_url = _link(first, "next")
    while next_url is not None:
        page = _bundle(client.get(next_url, headers=auth))
        assert page["total"] == 6
        seen += _ids(page)
        next_url = _link(page, "next")
    assert len(seen) == len(set(seen)) == 6
    everything = _bundle(client.get("/fhir/Observation", params={"_count": 1}, headers=auth))
    own = db.execute("SELECT count(*) FROM observations WHERE municipality_id = %s", (world.own,)).fetchone()
    assert own is not None and everything["total"] == own[0] and len(everything["entry"]) == 1
    risks = _bundle(client.get("/fhir/RiskAssessment", params={"patient": "p-low"}, headers=auth))
    assert risks["total"] == 2
    hidden = _bundle(client.get("/fhir/Observation", params={"patient": world.other_patient}, headers=auth))
    assert hidden["total"] == 0 and "entry" not in hidden
