"""Issue 15, item 2 (logout): logging out ends the session on the server, for every gateway process, and
only a form of the session itself can do it.

Before the fix logout only asked the browser to forget the cookie: a copy of it (or the same token used
as a bearer) went on working until it expired, and any site could post the logout form.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from seed import World, login

from gateway.api.app import create_app
from gateway.api.auth import SESSION_COOKIE
from gateway.settings import GatewaySettings


def _csrf(client: TestClient) -> str:
    """The anti-forgery token of the logout form on the worklist page (base.html)."""
    page = client.get("/").text
    form = re.search(r'<form[^>]*method="post" action="/logout">(.*?)</form>', page, re.DOTALL)
    assert form is not None
    token = re.search(r'name="csrf" value="([^"]+)"', form[1])
    assert token is not None
    return token[1]


def test_logout_revokes_the_session_so_a_copied_cookie_or_bearer_is_refused(
    client: TestClient, settings: GatewaySettings, database_url: str, world: World
) -> None:
    login(client, world.nurse)
    stolen = client.cookies[SESSION_COOKIE]
    response = client.post("/logout", data={"csrf": _csrf(client)}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    with (
        ConnectionPool(database_url, min_size=1, max_size=2) as other_pool,
        TestClient(create_app(settings, other_pool), cookies={SESSION_COOKIE: stolen}) as other_gateway,
    ):
        assert other_gateway.get("/", follow_redirects=False).status_code == 303
        bearer = {"Authorization": f"Bearer {stolen}"}
        assert other_gateway.get("/fhir/Patient/p-high", headers=bearer).status_code == 401


def test_logout_without_the_sessions_form_token_is_refused_and_the_session_lives_on(
    client: TestClient, world: World
) -> None:
    login(client, world.nurse)
    for form in ({}, {"csrf": "forged"}):
        response = client.post("/logout", data=form, follow_redirects=False)
        assert response.status_code == 403
        assert "set-cookie" not in response.headers
    assert client.get("/", follow_redirects=False).status_code == 200


def test_a_form_token_of_another_session_does_not_log_this_one_out(
    client: TestClient, app: FastAPI, world: World
) -> None:
    with TestClient(app) as other:
        login(other, world.other_nurse)
        foreign = _csrf(other)
    login(client, world.nurse)
    assert client.post("/logout", data={"csrf": foreign}, follow_redirects=False).status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200


def test_logout_without_a_session_just_goes_to_the_login_page(client: TestClient) -> None:
    response = client.post("/logout", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"


def test_other_sessions_of_the_same_user_stay_logged_in(
    client: TestClient, app: FastAPI, world: World
) -> None:
    with TestClient(app) as phone:
        login(phone, world.nurse)
        login(client, world.nurse)
        client.post("/logout", data={"csrf": _csrf(client)})
        assert phone.get("/", follow_redirects=False).status_code == 200


def test_revocations_are_kept_only_until_the_token_would_have_expired(
    client: TestClient, world: World, db: psycopg.Connection[Any]
) -> None:
    db.execute(
        "INSERT INTO revoked_sessions (session_id, expires_at) VALUES ('long-gone', %s)",
        (datetime.now(UTC) - timedelta(minutes=1),),
    )
    login(client, world.nurse)
    client.post("/logout", data={"csrf": _csrf(client)})
    rows = db.execute("SELECT session_id, expires_at FROM revoked_sessions").fetchall()
    assert len(rows) == 1 and rows[0][0] != "long-gone"
    assert rows[0][1] > datetime.now(UTC) + timedelta(hours=11)  # the session's own expiry
