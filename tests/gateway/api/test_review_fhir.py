"""The reviews over FHIR: ``GET /fhir/ClinicalImpression`` (searchset, paged) and ``.../{id}``, with a
bearer token, only the viewer's own patients' reviews, every export audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.clinicalimpression import ClinicalImpression
from review_world import RankedWorld, ranked_world
from seed import audit_rows, bearer

from gateway.api.auth import User
from gateway.store.reviews import Review, record_review

ANNA = User("anna", "0101", "nurse")
GP = User("dr-gp", "0147", "gp")
NORA = User("nora", "0101", "nurse")


@pytest.fixture
def reviewed(database_url: str) -> dict[str, Review]:
    """The ranked world with three reviews of p-risk-mid (one by its GP), one of p-nord."""
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(database_url, autocommit=True) as conn:
        world: RankedWorld = ranked_world(conn, now)
        mid = world.risk_ids["p-risk-mid"]
        made = {
            "oldest": record_review(
                conn, ANNA, "p-risk-mid", "no-action", "", "green", now=now - timedelta(days=14)
            ),
            "middle": record_review(
                conn,
                ANNA,
                "p-risk-mid",
                "phone-call",
                "Breathless",
                "yellow",
                seen_risk_id=mid,
                now=now - timedelta(days=7),
            ),
            "newest": record_review(
                conn, GP, "p-risk-mid", "gp-contacted", "Seen", "red", now=now - timedelta(hours=1)
            ),
            "nord": record_review(conn, NORA, "p-nord", "home-visit", "Visited", "red", now=now),
        }
    return made


def search(client: TestClient, headers: dict[str, str], query: str) -> dict[str, Any]:
    response = client.get(f"/fhir/ClinicalImpression?{query}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    Bundle.model_validate(body)
    return body


def test_search_by_patient_is_a_searchset_of_valid_clinical_impressions_newest_first(
    client: TestClient, reviewed: dict[str, Review]
) -> None:
    headers = bearer(client, "anna")
    bundle = search(client, headers, "patient=Patient/p-risk-mid")
    assert bundle["type"] == "searchset" and bundle["total"] == 3
    ids = [entry["resource"]["id"] for entry in bundle["entry"]]
    assert ids == [reviewed[k].public_id for k in ("newest", "middle", "oldest")]
    for entry in bundle["entry"]:
        ClinicalImpression.model_validate(entry["resource"])
        assert entry["fullUrl"].endswith(f"/fhir/ClinicalImpression/{entry['resource']['id']}")
        assert entry["resource"]["subject"] == {"reference": "Patient/p-risk-mid"}
    middle = bundle["entry"][1]["resource"]
    assert (
        middle["summary"] == "Phone call"
        and middle["finding"][0]["itemCodeableConcept"]["coding"][0]["code"] == "yellow"
    )
    assert (
        middle["prognosisReference"][0]["reference"]
        == f"RiskAssessment/{reviewed['middle'].risk_assessment_id}"
    )


def test_a_review_is_read_by_its_id(client: TestClient, reviewed: dict[str, Review]) -> None:
    headers = bearer(client, "anna")
    review = reviewed["newest"]
    response = client.get(f"/fhir/ClinicalImpression/{review.public_id.upper()}", headers=headers)
    assert response.status_code == 200
    resource = response.json()
    assert resource["id"] == review.public_id and resource["assessor"]["identifier"]["value"] == "dr-gp"


def test_only_the_viewers_patients_reviews_are_served(
    client: TestClient, reviewed: dict[str, Review]
) -> None:
    anna = bearer(client, "anna")
    assert {e["resource"]["id"] for e in search(client, anna, "")["entry"]} == {
        reviewed[k].public_id for k in ("oldest", "middle", "newest")
    }
    assert "entry" not in search(client, anna, "patient=p-nord")
    assert (
        client.get(f"/fhir/ClinicalImpression/{reviewed['nord'].public_id}", headers=anna).status_code == 404
    )
    nora = bearer(client, "nora")
    assert [e["resource"]["id"] for e in search(client, nora, "")["entry"]] == [reviewed["nord"].public_id]
    gp = bearer(client, "dr-gp")  # the GP of p-risk-mid (København) and p-frb (Frederiksberg)
    assert search(client, gp, "patient=p-risk-mid")["total"] == 3


def test_pages_follow_the_next_link(client: TestClient, reviewed: dict[str, Review]) -> None:
    headers = bearer(client, "anna")
    seen: list[str] = []
    bundle = search(client, headers, "patient=p-risk-mid&_count=2")
    while True:
        assert bundle["total"] == 3
        seen.extend(entry["resource"]["id"] for entry in bundle["entry"])
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            break
        bundle = search(client, headers, following[0].split("?", 1)[1])
    assert seen == [reviewed[k].public_id for k in ("newest", "middle", "oldest")]


def test_patients_and_or_and_and(client: TestClient, reviewed: dict[str, Review]) -> None:
    headers = bearer(client, "anna")
    assert search(client, headers, "patient=p-risk-mid,p-lagging")["total"] == 3
    assert search(client, headers, "patient=p-risk-mid&patient=p-lagging")["total"] == 0


@pytest.mark.parametrize(
    "query",
    ["patient=", "patient=Observation/x", "_count=0", "_count=abc", "_count=1&_count=2", "_cursor=bm9wZQ"],
)
def test_malformed_searches_are_a_400_operation_outcome(
    client: TestClient, reviewed: dict[str, Review], query: str
) -> None:
    response = client.get(f"/fhir/ClinicalImpression?{query}", headers=bearer(client, "anna"))
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_an_unknown_parameter_is_ignored_unless_strict(
    client: TestClient, reviewed: dict[str, Review]
) -> None:
    headers = bearer(client, "anna")
    assert search(client, headers, "status=completed")["total"] == 3
    strict = client.get(
        "/fhir/ClinicalImpression?status=completed", headers={**headers, "Prefer": "handling=strict"}
    )
    assert strict.status_code == 400


def test_reads_of_what_is_no_review_id(client: TestClient, reviewed: dict[str, Review]) -> None:
    headers = bearer(client, "anna")
    assert client.get("/fhir/ClinicalImpression/not-a-uuid", headers=headers).status_code == 404
    assert client.get("/fhir/ClinicalImpression/a%00b", headers=headers).status_code == 400


def test_a_token_is_needed_and_an_administrator_reads_no_review(
    client: TestClient, reviewed: dict[str, Review]
) -> None:
    assert client.get("/fhir/ClinicalImpression").status_code == 401
    assert client.get("/fhir/ClinicalImpression", headers=bearer(client, "admin")).status_code == 403


def test_every_export_is_audited_per_patient(
    client: TestClient, reviewed: dict[str, Review], db: psycopg.Connection[Any]
) -> None:
    headers = bearer(client, "anna")
    search(client, headers, "patient=p-risk-mid")
    client.get(f"/fhir/ClinicalImpression/{reviewed['middle'].public_id}", headers=headers)
    rows = [r for r in audit_rows(db, "fhir-read") if r[0] == "anna"]
    assert [r[3] for r in rows] == ["p-risk-mid", "p-risk-mid"]
