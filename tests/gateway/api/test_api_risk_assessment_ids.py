"""Issue 15, item 5: a RiskAssessment's id, and the paging cursor that carries it, say nothing about
other municipalities.

Before the fix the id was ``score-<scores.id>``, one sequence for every municipality, so the gap between
two of a nurse's ids counted another municipality's scores; the base64 cursor carried the same number.
"""

from __future__ import annotations

import base64
import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
from fastapi.testclient import TestClient
from seed import World, bearer, municipality, patient, score

from gateway.store.migrate import MIGRATIONS_DIR, migrate


def _search(client: TestClient, auth: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get("/fhir/RiskAssessment", params=params, headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_risk_assessment_ids_are_random_and_unrelated_to_the_score_sequence(
    client: TestClient, world: World, db: psycopg.Connection[Any]
) -> None:
    auth = bearer(client, world.nurse)
    bundle = _search(client, auth, patient="p-low")
    ids = [entry["resource"]["id"] for entry in bundle["entry"]]
    assert len(ids) == 2
    for found in ids:  # random (version 4), in the form PostgreSQL writes
        assert uuid.UUID(found).version == 4 and str(uuid.UUID(found)) == found
    stored = {str(row[0]) for row in db.execute("SELECT public_id FROM scores WHERE patient_id = 'p-low'")}
    assert set(ids) == stored
    assert all(
        entry["fullUrl"].endswith(f"/RiskAssessment/{entry['resource']['id']}") for entry in bundle["entry"]
    )


def test_the_paging_cursor_carries_the_public_id_not_the_score_number(
    client: TestClient, world: World, db: psycopg.Connection[Any]
) -> None:
    auth = bearer(client, world.nurse)
    first = _search(client, auth, patient="p-low", _count=1)
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    cursor = parse_qs(urlsplit(next_url).query)["_cursor"][0]
    fields = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    shown = first["entry"][0]["resource"]["id"]
    row = db.execute("SELECT computed_at, public_id FROM scores WHERE public_id = %s", (shown,)).fetchone()
    assert row is not None
    assert fields == [row[0].isoformat(), shown]  # the score's time and public id: nothing else
    rest = client.get(next_url, headers=auth).json()
    assert [e["resource"]["id"] for e in rest["entry"]] != [shown]
    assert len(rest["entry"]) == 1 and "next" not in {link["relation"] for link in rest["link"]}


def test_the_migration_gives_every_existing_score_its_own_public_id(
    empty_database_url: str, tmp_path: Path
) -> None:
    for source in sorted(MIGRATIONS_DIR.glob("*.sql"))[:4]:  # the schema before migration 0005
        shutil.copy(source, tmp_path / source.name)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        migrate(conn, tmp_path)
        municipality(conn, "0101", "København")
        patient(conn, "0101", "p1", "Karen")
        for value in (1, 2, 3):
            score(conn, "0101", "p1", value, "low", datetime.now(UTC))
        assert 5 in migrate(conn)  # the real folder: 0005 and anything after it
        score(conn, "0101", "p1", 4, "low", datetime.now(UTC))  # an insert that does not name the column
        public_ids = [row[0] for row in conn.execute("SELECT public_id FROM scores ORDER BY id")]
    assert len(public_ids) == 4 and len(set(public_ids)) == 4
    assert all(isinstance(found, uuid.UUID) and found.version == 4 for found in public_ids)
