"""Passwords, session tokens, login and logout."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from seed import PASSWORD, World, login, post_login

from gateway.api.auth import (
    SESSION_COOKIE,
    User,
    authenticate,
    create_user,
    hash_password,
    issue_token,
    mint_token,
    read_token,
    verify_password,
    verify_token,
)
from gateway.api.web import safe_next
from gateway.settings import GatewaySettings

SETTINGS = GatewaySettings(secret_key="unit-test-secret")
ANNA = User("anna", "0101", "nurse")


def test_password_hash_verifies_only_the_right_password() -> None:
    stored = hash_password("s3cret-enough")
    assert stored.startswith("scrypt$")
    assert verify_password("s3cret-enough", stored)
    assert not verify_password("s3cret-enougH", stored)


def test_password_hashes_are_salted() -> None:
    assert hash_password("same password") != hash_password("same password")


def test_malformed_stored_hash_never_matches() -> None:
    assert not verify_password("x", "plain-text-password")
    assert not verify_password("x", "md5$1$2$3$abc$def")


def test_token_round_trips_the_user() -> None:
    assert verify_token(SETTINGS, issue_token(SETTINGS, ANNA)) == ANNA


def test_tampered_token_is_refused() -> None:
    header, payload, signature = issue_token(SETTINGS, ANNA).split(".")
    forged_payload = issue_token(SETTINGS, User("anna", "0147", "nurse")).split(".")[1]
    assert verify_token(SETTINGS, f"{header}.{forged_payload}.{signature}") is None
    # A character inside the signature: each carries 6 bits of it (the last one's lowest 2 bits are padding
    # that base64url decoding ignores, so changing only the end can leave the signature as it was).
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    assert verify_token(SETTINGS, f"{header}.{payload}.{flipped}") is None
    assert verify_token(SETTINGS, "not-a-token") is None


def test_token_signed_with_another_key_is_refused() -> None:
    other = GatewaySettings(secret_key="another-secret")
    assert verify_token(SETTINGS, issue_token(other, ANNA)) is None


def test_token_expires_after_session_hours() -> None:
    issued = datetime(2025, 1, 1, 8, tzinfo=UTC)
    token = issue_token(SETTINGS, ANNA, now=issued)
    assert verify_token(SETTINGS, token, now=issued + timedelta(hours=SETTINGS.session_hours - 1)) == ANNA
    assert verify_token(SETTINGS, token, now=issued + timedelta(hours=SETTINGS.session_hours)) is None


def test_create_user_refuses_separator_unknown_role_and_short_password(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO municipalities (id, name) VALUES ('0101', 'København')")
        with pytest.raises(ValueError, match="'\\|'"):
            create_user(conn, "a|b", "0101", "nurse", "long enough")
        with pytest.raises(ValueError, match="role"):
            create_user(conn, "anna", "0101", "janitor", "long enough")
        with pytest.raises(ValueError, match="8 characters"):
            create_user(conn, "anna", "0101", "nurse", "short")
        create_user(conn, "anna", "0101", "nurse", "long enough")
        assert authenticate(conn, "anna", "long enough") == ANNA
        assert authenticate(conn, "anna", "wrong") is None
        assert authenticate(conn, "nobody", "long enough") is None
        stored = conn.execute("SELECT password_hash FROM users").fetchone()
        assert stored is not None and "long enough" not in stored[0]


def test_login_sets_an_httponly_lax_cookie_and_returns_to_next(client: TestClient, world: World) -> None:
    response = post_login(client, world.nurse, PASSWORD, next="/patients/p-high")
    assert response.status_code == 303
    assert response.headers["location"] == "/patients/p-high"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert client.get("/").status_code == 200


def test_login_with_wrong_password_fails_without_a_session(client: TestClient, world: World) -> None:
    response = post_login(client, world.nurse, "guess")
    assert response.status_code == 401
    assert "Wrong username or password" in response.text
    assert not any(c.startswith(f"{SESSION_COOKIE}=") for c in response.headers.get_list("set-cookie"))
    assert client.get("/", follow_redirects=False).status_code == 303


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(client: TestClient, world: World) -> None:
    response = post_login(client, "mallory", PASSWORD)
    assert response.status_code == 401
    assert "Wrong username or password" in response.text


def test_unauthenticated_page_redirects_to_login_with_next(client: TestClient, world: World) -> None:
    response = client.get("/patients/p-high", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fpatients%2Fp-high"
    form = client.get(response.headers["location"])
    assert form.status_code == 200
    assert 'name="next" value="/patients/p-high"' in form.text


def test_forged_cookie_is_treated_as_no_session(client: TestClient, world: World) -> None:
    client.cookies.set(SESSION_COOKIE, issue_token(GatewaySettings(secret_key="guessed"), ANNA))
    assert client.get("/", follow_redirects=False).status_code == 303


def test_logout_ends_the_session(client: TestClient, world: World) -> None:
    login(client, world.nurse)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/").text)
    assert csrf is not None
    response = client.post("/logout", data={"csrf": csrf[1]}, follow_redirects=False)
    assert response.status_code == 303
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
    assert client.get("/", follow_redirects=False).status_code == 303


def test_access_token_works_as_bearer_and_refuses_wrong_password(client: TestClient, world: World) -> None:
    refused = client.post("/login/access-token", data={"username": world.nurse, "password": "guess"})
    assert refused.status_code == 401
    issued = client.post("/login/access-token", data={"username": world.nurse, "password": PASSWORD})
    body: dict[str, Any] = issued.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 12 * 3600
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/fhir/Patient/p-high", headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/patients/x", "/patients/x"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("", "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_login_returns_only_to_local_paths(given: str, expected: str) -> None:
    assert safe_next(given) == expected


def test_minted_token_names_its_subject_municipality_and_role() -> None:
    token = mint_token(SETTINGS, role="nurse", municipality_id="0101", subject="anna")
    assert verify_token(SETTINGS, token) == ANNA
    hub = mint_token(SETTINGS, role="hub", municipality_id="0147", subject="hub-7")
    assert verify_token(SETTINGS, hub) == User("hub-7", "0147", "hub")


def test_minted_token_lives_the_hours_asked_for() -> None:
    issued = datetime(2025, 1, 1, 8, tzinfo=UTC)
    token = mint_token(
        SETTINGS, role="system_admin", municipality_id="0101", subject="ops", hours=2, now=issued
    )
    assert verify_token(SETTINGS, token, now=issued + timedelta(hours=1, minutes=59)) is not None
    assert verify_token(SETTINGS, token, now=issued + timedelta(hours=2)) is None
    minted = mint_token(SETTINGS, role="nurse", municipality_id="0101", subject="anna", now=issued)
    default = read_token(SETTINGS, minted, issued)
    session = read_token(SETTINGS, issue_token(SETTINGS, ANNA, now=issued), issued)
    assert default is not None and session is not None
    assert (default.user, default.expires) == (session.user, session.expires)
    assert default.session_id != session.session_id


@pytest.mark.parametrize(
    ("role", "municipality", "subject", "hours", "mentions"),
    [
        ("janitor", "0101", "x", None, "role"),
        ("nurse", "0101", "", None, "subject"),
        ("nurse", "01|01", "x", None, "municipality_id"),
        ("hub", "0101", "hub/1", None, "subject"),
        ("hub", "0101", "hub+", None, "subject"),
        ("nurse", "0101", "x", 0, "hours"),
    ],
)
def test_mint_token_refuses_unknown_roles_unsafe_fields_and_no_lifetime(
    role: str, municipality: str, subject: str, hours: float | None, mentions: str
) -> None:
    with pytest.raises(ValueError, match=mentions):
        mint_token(SETTINGS, role=role, municipality_id=municipality, subject=subject, hours=hours)
