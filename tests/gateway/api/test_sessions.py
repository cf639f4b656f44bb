"""Issue 17: session cookies with secure flags (``__Host-`` and ``Secure`` outside development), and an
anti-forgery token on every form, the login form included (login CSRF: signed double-submit of a
pre-session nonce kept in a cookie of its own).

Before: the login form had no token, so another site could post it and log a nurse's browser in as the
attacker's account (what she then typed, notes about a patient, would be his to read).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from seed import PASSWORD, World, login, login_form_token, post_login

from gateway.api.app import create_app
from gateway.api.auth import LOGIN_COOKIE, SESSION_COOKIE, User, create_user, issue_token
from gateway.settings import GatewaySettings

PRODUCTION_SECRET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEF"


@pytest.fixture
def production(
    database_url: str, pool: ConnectionPool[Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The app as production runs it, reached over https (a Secure cookie is sent back only there)."""
    monkeypatch.delenv("HOMEWATCH_ENVIRONMENT")
    settings = GatewaySettings(database_url=database_url, secret_key=PRODUCTION_SECRET)
    with TestClient(create_app(settings, pool), base_url="https://testserver") as client:
        yield client


def _cookie(response: Any, name: str) -> str:
    found = [c for c in response.headers.get_list("set-cookie") if c.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


def _flags(cookie: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}


def test_production_cookies_are_host_prefixed_secure_httponly_and_samesite(
    production: TestClient, world: World
) -> None:
    form = production.get("/login")
    login_cookie = _cookie(form, f"__Host-{LOGIN_COOKIE}")
    assert {"httponly", "secure", "samesite", "path"} <= _flags(login_cookie) and "domain" not in _flags(
        login_cookie
    )
    assert "samesite=strict" in login_cookie.lower() and "path=/" in login_cookie.lower()

    response = post_login(production, world.nurse, PASSWORD)
    assert response.status_code == 303, response.text
    session = _cookie(response, f"__Host-{SESSION_COOKIE}")
    assert {"httponly", "secure", "samesite", "path", "max-age"} <= _flags(session)
    assert (
        "samesite=lax" in session.lower() and "path=/" in session.lower() and "domain" not in _flags(session)
    )
    assert production.get("/").status_code == 200  # the prefixed cookie is the session
    # An unprefixed cookie (one a sibling subdomain could plant) is no session in production.
    token = production.cookies[f"__Host-{SESSION_COOKIE}"]
    production.cookies.clear()
    production.cookies.set(SESSION_COOKIE, token)
    assert production.get("/", follow_redirects=False).status_code == 303


def test_development_cookies_are_plain_http_only_and_unprefixed(client: TestClient, world: World) -> None:
    response = post_login(client, world.nurse, PASSWORD)
    session = _cookie(response, SESSION_COOKIE)
    assert "httponly" in _flags(session) and "secure" not in _flags(session)
    assert "samesite=lax" in session.lower()


# --- login CSRF --------------------------------------------------------------------------------------


def _no_session(response: Any) -> bool:
    return not any(c.startswith(f"{SESSION_COOKIE}=") for c in response.headers.get_list("set-cookie"))


def test_a_login_post_without_the_forms_token_is_refused_unchecked(
    client: TestClient, world: World, db: psycopg.Connection[Any]
) -> None:
    client.get("/login")  # the browser has a nonce, but the post does not carry the form's token
    for token in ("", "forged"):
        data = {"username": world.nurse, "password": PASSWORD, "csrf": token}
        response = client.post("/login", data=data, follow_redirects=False)
        assert response.status_code == 403 and _no_session(response)
        assert re.search(r'name="csrf" value="[^"]+"', response.text)  # a fresh form to try again with
    # Refused before the password was looked at: nothing was counted nor recorded.
    assert db.execute("SELECT count(*) FROM login_throttle").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM audit_log").fetchone() == (0,)


def test_another_sites_form_cannot_log_this_browser_in(client: TestClient, app: Any, world: World) -> None:
    # The attacker loads the login form himself and copies its token into his site's form; the victim's
    # browser posts it with its own (or no) nonce cookie, which another site can neither read nor set.
    with TestClient(app) as attacker:
        token = login_form_token(attacker)
    data = {"username": world.other_nurse, "password": PASSWORD, "csrf": token}
    response = client.post("/login", data=data, follow_redirects=False)
    assert response.status_code == 403 and _no_session(response)
    client.get("/login")  # with a nonce of the victim's own
    response = client.post("/login", data=data, follow_redirects=False)
    assert response.status_code == 403 and _no_session(response)


def test_the_login_form_token_is_bound_to_its_cookie_and_reusable_in_that_browser(
    client: TestClient, world: World
) -> None:
    token = login_form_token(client)
    assert login_form_token(client) == token  # a second tab gets the same nonce
    wrong = client.post("/login", data={"username": world.nurse, "password": "x", "csrf": token})
    assert wrong.status_code == 401
    right = client.post(
        "/login", data={"username": world.nurse, "password": PASSWORD, "csrf": token}, follow_redirects=False
    )
    assert right.status_code == 303 and not _no_session(right)
    assert f'{LOGIN_COOKIE}=""' in ";".join(right.headers.get_list("set-cookie"))  # the nonce is dropped


# --- every form carries a token ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        ("nurse", "/", 200),
        ("nurse", "/review", 200),
        ("nurse", "/patients/p-high", 200),
        ("nurse", "/patients/p-high/readings", 200),
        ("nurse", "/patients/p-high/reviews", 200),
        ("nurse", "/patients/p-high/thresholds", 200),
        ("nurse", "/no-such-page", 404),
        ("municipality_admin", "/admin/audit", 200),
        ("municipality_admin", "/admin/homes", 200),
        ("system_admin", "/admin/homes", 200),
        (None, "/login", 200),
        (None, "/no-such-page", 404),
    ],
)
def test_every_post_form_of_a_page_carries_the_anti_forgery_token(
    client: TestClient,
    settings: GatewaySettings,
    world: World,
    db: psycopg.Connection[Any],
    role: str | None,
    path: str,
    status: int,
) -> None:
    if role == "nurse":
        client.cookies.set(SESSION_COOKIE, issue_token(settings, User(world.nurse, world.own, "nurse")))
    elif role is not None:
        create_user(db, "admin-kbh", world.own, role, PASSWORD)
        client.cookies.set(SESSION_COOKIE, issue_token(settings, User("admin-kbh", world.own, role)))
    page = client.get(path)
    assert page.status_code == status, page.text
    forms = re.findall(r"<form\b([^>]*)>(.*?)</form>", page.text, re.DOTALL)
    posted = [(attrs, body) for attrs, body in forms if re.search(r'method="post"', attrs, re.IGNORECASE)]
    assert posted, f"{path} has no form to check"
    for attrs, body in posted:
        assert re.search(r'<input type="hidden" name="csrf" value="[^"]+"', body), (
            f"{path}: a form without a token: {attrs}"
        )


def test_a_session_form_posted_with_the_login_forms_token_is_refused(
    client: TestClient, world: World
) -> None:
    token = login_form_token(client)
    login(client, world.nurse)
    response = client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert response.status_code == 403
