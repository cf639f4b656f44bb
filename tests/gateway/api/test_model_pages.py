"""Issue 19: the administrator's model registry pages (``/admin/models``) on the real app, and what the
nurses see of the registry: the worklist's notice while the day-one default ranks it, gone once a local
version is active and has scored; the RiskAssessment naming the version (``GET /fhir/RiskAssessment``).

Versions are the shipped model's bytes under chosen names with chosen held-out figures (no training).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from seed import World, bearer, device, login, seed_world

from fhir_contract.observation import build_observation
from fhir_contract.readings import Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.alerts.active_models import ActiveModels, register_shipped_default
from gateway.alerts.admission_risk import score_everyone
from gateway.api.auth import SESSION_COOKIE, User, csrf_token, issue_token
from gateway.settings import GatewaySettings
from gateway.store import model_registry as registry
from gateway.store.migrate import migrate
from gateway.store.repository import insert_observations
from gateway.store.users import insert_user
from models.model_bytes import ShippedModel, shipped_model

ADMIN_KBH = User("admin-kbh", "0101", "municipality_admin")
ADMIN_FRB = User("admin-frb", "0147", "municipality_admin")
OPS = User("ops", "0147", "system_admin")
GP = User("dr-gp", "0101", "gp")
GOOD = {
    "held_out": {"patients": 120, "admissions": 40},
    "methods": {
        "model": {"auroc": 0.742, "auroc_ci": [0.701, 0.785]},
        "news2": {"auroc": 0.613, "auroc_ci": [0.57, 0.66]},
    },
}
POOR = {"methods": {"model": {"auroc": 0.62, "auroc_ci": [0.58, 0.66]}, "news2": {"auroc": 0.61}}}
CARD = "# kbh-good\n\nSYNTHETIC test card <script>alert('card')</script>\n"


@pytest.fixture(scope="module")
def shared(pg_admin_url: str) -> Iterator[tuple[str, World, ShippedModel]]:
    """One database for the module (the world, the users, the versions), made once: each test starts
    from no activation (``fresh``). Its URL, world and the shipped model."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    base, _, query = pg_admin_url.partition("?")
    url = f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
            world = seed_world(conn, datetime.now(UTC))
            for user in (ADMIN_KBH, ADMIN_FRB, OPS, GP):  # session tokens only: no password to hash
                insert_user(conn, user.username, user.municipality_id, user.role, "no password")
            shipped = shipped_model()
            register_shipped_default(conn, shipped)
            for version, metrics, card in (("kbh-poor", POOR, "# kbh-poor"), ("kbh-good", GOOD, CARD)):
                registry.register_version(
                    conn,
                    version=version,
                    municipality_id="0101",
                    kind="local",
                    created_by="admin-kbh",
                    source="database",
                    model_bytes=shipped.model_bytes,
                    metadata={**shipped.metadata, "training_cohort": {"synthetic": True}},
                    card=card,
                    metrics=metrics,
                )
        yield url, world, shipped
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(shared: tuple[str, World, ShippedModel]) -> str:
    return shared[0]


@pytest.fixture
def world(shared: tuple[str, World, ShippedModel]) -> World:
    return shared[1]


@pytest.fixture
def models(db: psycopg.Connection[Any], shared: tuple[str, World, ShippedModel]) -> ShippedModel:
    """The shipped default registered, and no version activated anywhere (as each test expects)."""
    db.execute("DELETE FROM model_activations")
    return shared[2]


def _as(client: TestClient, settings: GatewaySettings, user: User) -> str:
    """Make ``client`` ``user``'s browser; the session's anti-forgery token."""
    client.cookies.clear()
    token = issue_token(settings, user)
    client.cookies.set(SESSION_COOKIE, token)
    return csrf_token(settings, token)


def _active(db: psycopg.Connection[Any], municipality: str = "0101") -> str:
    return registry.active_version(db, municipality).version


def test_the_administrator_sees_the_versions_and_activates_one(
    client: TestClient, settings: GatewaySettings, db: psycopg.Connection[Any], models: ShippedModel
) -> None:
    csrf = _as(client, settings, ADMIN_KBH)
    page = client.get("/admin/models")
    assert page.status_code == 200
    assert "kbh-good" in page.text and "kbh-poor" in page.text and models.version in page.text
    assert "0.742 (0.701\u20130.785)" in page.text and "0.613 (0.570\u20130.660)" in page.text
    assert "Does not beat NEWS2 by the margin" in page.text and "Beats NEWS2 by the margin" in page.text
    assert (
        "default-model-notice" in page.text
        and 'href="/admin/models/monitoring?municipality=0101"' in page.text
    )
    assert 'href="/admin/models"' in page.text  # the navigation

    card = client.get("/admin/models/kbh-good")
    assert card.status_code == 200
    assert (
        "&lt;script&gt;alert(&#39;card&#39;)&lt;/script&gt;" in card.text and "<script>alert" not in card.text
    )
    done = client.post(
        "/admin/models/kbh-good/activate",
        data={"csrf": csrf, "municipality": "0101"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"].startswith("/admin/models?")
    assert _active(db) == "kbh-good"
    shown = client.get(done.headers["location"])
    assert "Version kbh-good is active" in shown.text and "default-model-notice" not in shown.text
    assert re.search(r"<td>Activated</td>\s*<td>kbh-good</td>\s*<td>admin-kbh</td>", shown.text)
    audit = db.execute(
        "SELECT username, role, client, detail FROM audit_log WHERE action = 'model-activate'"
        " ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert audit is not None and audit[:3] == ("admin-kbh", "municipality_admin", "testclient")
    assert audit[3].startswith("0101: kbh-good (was admission-risk")


def test_a_version_below_the_gate_needs_a_reason_which_is_recorded(
    client: TestClient, settings: GatewaySettings, db: psycopg.Connection[Any], models: ShippedModel
) -> None:
    csrf = _as(client, settings, ADMIN_KBH)
    form = client.get("/admin/models/kbh-poor")
    assert 'id="override_reason"' in form.text
    refused = client.post("/admin/models/kbh-poor/activate", data={"csrf": csrf, "municipality": "0101"})
    assert refused.status_code == 400
    assert "does not beat NEWS2 by the margin of 0.02" in refused.text and "0.620" in refused.text
    assert _active(db) == models.version and registry.activations(db, "0101") == []
    done = client.post(
        "/admin/models/kbh-poor/activate",
        data={"csrf": csrf, "municipality": "0101", "override_reason": "Pilot on team Nord, agreed"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and _active(db) == "kbh-poor"
    assert "Pilot on team Nord, agreed" in client.get("/admin/models").text
    assert registry.activations(db, "0101")[0].override_reason == "Pilot on team Nord, agreed"


def test_rollback_returns_to_the_previous_version_and_refuses_when_there_is_none(
    client: TestClient, settings: GatewaySettings, db: psycopg.Connection[Any], models: ShippedModel
) -> None:
    csrf = _as(client, settings, ADMIN_KBH)
    refused = client.post("/admin/models/rollback", data={"csrf": csrf, "municipality": "0101"})
    assert refused.status_code == 400 and "There is nothing to roll back" in refused.text
    client.post("/admin/models/kbh-good/activate", data={"csrf": csrf, "municipality": "0101"})
    back = client.post(
        "/admin/models/rollback", data={"csrf": csrf, "municipality": "0101"}, follow_redirects=False
    )
    assert back.status_code == 303 and _active(db) == models.version
    assert [a.action for a in registry.activations(db, "0101")] == ["rollback", "activate"]
    forged = client.post("/admin/models/rollback", data={"csrf": "forged", "municipality": "0101"})
    assert forged.status_code == 403


def test_nurses_and_gps_get_403_and_nobody_is_sent_to_log_in(
    client: TestClient, settings: GatewaySettings, db: psycopg.Connection[Any], models: ShippedModel
) -> None:
    for user in (User("anna", "0101", "nurse"), GP):
        csrf = _as(client, settings, user)
        assert client.get("/admin/models").status_code == 403
        assert client.get("/admin/models/kbh-good").status_code == 403
        posted = client.post("/admin/models/kbh-good/activate", data={"csrf": csrf, "municipality": "0101"})
        assert posted.status_code == 403
        assert client.post("/admin/models/rollback", data={"csrf": csrf}).status_code == 403
    client.cookies.clear()
    for path in ("/admin/models", "/admin/models/kbh-good"):
        anonymous = client.get(path, follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    assert _active(db) == models.version and registry.activations(db, "0101") == []


def test_another_municipalitys_administrator_can_neither_see_nor_activate(
    client: TestClient, settings: GatewaySettings, db: psycopg.Connection[Any], models: ShippedModel
) -> None:
    csrf = _as(client, settings, ADMIN_FRB)
    own = client.get("/admin/models")
    assert own.status_code == 200 and "kbh-good" not in own.text and models.version in own.text
    assert client.get("/admin/models?municipality=0101").status_code == 403
    assert client.get("/admin/models/kbh-good").status_code == 404
    assert client.get("/admin/models/kbh-good?municipality=0101").status_code == 403
    for municipality in ("0147", "0101", ""):
        posted = client.post(
            "/admin/models/kbh-good/activate", data={"csrf": csrf, "municipality": municipality}
        )
        assert posted.status_code in (403, 404)
    refused = client.post("/admin/models/rollback", data={"csrf": csrf, "municipality": "0101"})
    assert refused.status_code == 403
    assert registry.activations(db, "0101") == [] and registry.activations(db, "0147") == []


def test_a_system_administrator_picks_the_municipality(
    client: TestClient, settings: GatewaySettings, db: psycopg.Connection[Any], models: ShippedModel
) -> None:
    csrf = _as(client, settings, OPS)
    assert "kbh-good" not in client.get("/admin/models").text  # her own municipality's (0147)
    assert "kbh-good" in client.get("/admin/models?municipality=0101").text
    assert client.get("/admin/models?municipality=9999").status_code == 404
    done = client.post(
        "/admin/models/kbh-good/activate",
        data={"csrf": csrf, "municipality": "0101"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and _active(db) == "kbh-good" and _active(db, "0147") == models.version


def test_the_worklist_says_the_default_ranks_it_until_a_local_version_scored(
    client: TestClient, database_url: str, db: psycopg.Connection[Any], world: World, models: ShippedModel
) -> None:
    for pid in ("p-high", "p-low"):  # three weeks of weights, stored as ingest stores them
        device(db, "0101", pid, f"scale-{pid}", "scale")
        rows = [
            validate_observation(
                build_observation(
                    Reading("body-weight", Quantity(Decimal(f"{80 + 0.1 * back:.1f}"), "kg")),
                    patient_id=pid,
                    device_id=f"scale-{pid}",
                    hub_id=f"hub-{pid}",
                    effective=world.now - timedelta(days=back, hours=3),
                )
            )
            for back in range(21)
        ]
        insert_observations(db, "0101", f"hub-{pid}", rows)
    scorer = ActiveModels()
    assert score_everyone(database_url, scorer, now=world.now) == 2
    login(client, world.nurse)
    before = client.get("/")
    assert before.status_code == 200
    assert "default-model-notice" in before.text
    assert "trained only on SYNTHETIC populations, not on this municipality" in before.text
    assert f"model {models.version}" in before.text

    registry.activate(db, "0101", "kbh-good", actor=ADMIN_KBH)
    assert score_everyone(database_url, scorer, now=world.now + timedelta(minutes=1)) == 2
    after = client.get("/")
    assert "default-model-notice" not in after.text and "model kbh-good" in after.text

    found = client.get("/fhir/RiskAssessment?patient=p-high", headers=bearer(client, world.nurse)).json()
    codings = [
        coding["code"]
        for entry in found["entry"]
        for coding in entry["resource"].get("method", {}).get("coding", [])
        if coding["system"] == "urn:homewatch:model"
    ]
    assert codings[:2] == ["kbh-good", models.version]  # newest first
