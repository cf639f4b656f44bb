"""Issue 15, item 1: no published or weak signing secret, no unknown roles, and the audit log names only
users the server knows.

Before the fix a gateway started with no settings signed tokens with a secret written in this
repository, so anyone could forge a token for any user of any municipality; a validly signed token was
believed whatever role or user it named, and the audit log recorded that name.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from pydantic import ValidationError
from seed import World, audit_rows

from gateway.api import auth
from gateway.api.app import create_app
from gateway.api.auth import SESSION_COOKIE, User, mint_token, verify_token
from gateway.settings import PUBLISHED_SECRETS, GatewaySettings

# The default secret this repository shipped before issue 15.
PUBLISHED = "development-only-secret-change-me"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- the secret ------------------------------------------------------------------------------------


def test_a_server_without_settings_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOMEWATCH_ENVIRONMENT")  # what a real server's environment looks like
    with pytest.raises(ValidationError, match="HOMEWATCH_SECRET_KEY is not set"):
        GatewaySettings()


@pytest.mark.parametrize(
    "secret",
    [
        PUBLISHED,
        "too-short-secret-0123456789",  # 27 bytes
        "changeme" * 5,  # long, but 7 distinct characters: typed by hand, not random
        "x" * 64,
    ],
)
def test_production_refuses_a_published_short_or_hand_typed_secret(
    secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOMEWATCH_ENVIRONMENT")
    monkeypatch.setenv("HOMEWATCH_SECRET_KEY", secret)
    with pytest.raises(ValidationError, match="HOMEWATCH_SECRET_KEY"):
        GatewaySettings()
    assert PUBLISHED in PUBLISHED_SECRETS


# Named ids: the secrets are new each run, and pytest-xdist's workers must collect the same test ids.
@pytest.mark.parametrize(
    "secret",
    [secrets.token_urlsafe(32), secrets.token_hex(32), secrets.token_hex(16)],
    ids=["base64url", "hex", "hex-of-16-bytes"],
)
def test_production_accepts_32_random_bytes_however_encoded(
    secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOMEWATCH_ENVIRONMENT")
    monkeypatch.setenv("HOMEWATCH_SECRET_KEY", secret)
    settings = GatewaySettings()
    assert settings.environment == "production" and settings.signing_key == secret.encode()
    assert secret not in repr(settings)  # a logged or printed settings object does not show it


def test_development_without_a_secret_signs_with_a_random_key_of_its_own() -> None:
    first, second = GatewaySettings(environment="development"), GatewaySettings(environment="development")
    assert first.signing_key != second.signing_key
    assert first.signing_key not in {s.encode() for s in PUBLISHED_SECRETS}
    copied = first.model_copy(update={"http_port": 9})  # what `gateway serve` does with its settings
    token = mint_token(first, role="nurse", municipality_id="0101", subject="anna")
    assert verify_token(copied, token) == User("anna", "0101", "nurse")
    assert verify_token(second, token) is None


def test_a_token_forged_with_the_published_secret_reads_no_other_municipalitys_patient(
    database_url: str, pool: ConnectionPool[Any], world: World, db: psycopg.Connection[Any]
) -> None:
    # A gateway started with nothing but HOMEWATCH_ENVIRONMENT=development (set for the whole suite).
    with TestClient(create_app(GatewaySettings(database_url=database_url), pool)) as client:
        forger = GatewaySettings(secret_key=PUBLISHED)
        forged = mint_token(forger, role="nurse", municipality_id=world.other, subject=world.other_nurse)
        response = client.get(f"/fhir/Patient/{world.other_patient}", headers=_bearer(forged))
        assert response.status_code == 401
        client.cookies.set(SESSION_COOKIE, forged)
        assert client.get("/", follow_redirects=False).status_code == 303
    assert audit_rows(db) == []


# --- roles and users -------------------------------------------------------------------------------


def test_a_signed_token_with_an_unknown_role_is_refused(
    client: TestClient, settings: GatewaySettings, world: World
) -> None:
    issued = datetime.now(UTC)
    # Signed with the server's own key, as a bug or a careless script holding the key could.
    for role in ("root", "Nurse", ""):
        user = User(world.nurse, world.own, role)
        token = auth._signed(settings, user, issued, issued + timedelta(hours=1), ("user/*.read",))
        assert verify_token(settings, token) is None, role
        assert client.get("/fhir/Patient/p-high", headers=_bearer(token)).status_code == 401


@pytest.mark.parametrize(
    ("subject", "municipality", "role"),
    [
        ("ghost", "0101", "nurse"),  # no such user
        ("anna", "0147", "nurse"),  # a real user, in another municipality than hers
        ("anna", "0101", "municipality_admin"),  # a real user, with a role she does not have
    ],
)
def test_a_signed_token_of_no_registered_user_reads_nothing_and_is_not_audited(
    client: TestClient,
    settings: GatewaySettings,
    world: World,
    db: psycopg.Connection[Any],
    subject: str,
    municipality: str,
    role: str,
) -> None:
    token = mint_token(settings, role=role, municipality_id=municipality, subject=subject)
    patient = "p-high" if municipality == world.own else world.other_patient
    response = client.get(f"/fhir/Patient/{patient}", headers=_bearer(token))
    assert response.status_code == 401
    assert (
        client.get("/fhir/Observation", params={"patient": patient}, headers=_bearer(token)).status_code
        == 401
    )
    client.cookies.set(SESSION_COOKIE, token)
    assert client.get(f"/patients/{patient}", follow_redirects=False).status_code == 303
    assert audit_rows(db) == []


def test_the_audit_log_names_the_registered_user_a_token_was_checked_against(
    client: TestClient, settings: GatewaySettings, world: World, db: psycopg.Connection[Any]
) -> None:
    token = mint_token(settings, role="nurse", municipality_id=world.own, subject=world.nurse)
    assert client.get("/fhir/Patient/p-high", headers=_bearer(token)).status_code == 200
    assert audit_rows(db) == [(world.nurse, world.own, "fhir-read", "p-high")]
    # The user is removed: the token they still hold reads nothing more and adds no row.
    db.execute("DELETE FROM users WHERE username = %s", (world.nurse,))
    assert client.get("/fhir/Patient/p-high", headers=_bearer(token)).status_code == 401
    assert len(audit_rows(db)) == 1
