"""Issue 20: the invitation link's page (``/invite/{token}``) on the real app and a real PostgreSQL.

The invited person sets her password once and then logs in; a used link is 410, an expired one 410, an
unknown one 404, and none of them changes anything; the form carries the login form's anti-forgery token
(403 without it, before anything is looked at); guesses at links are throttled on the login's per-address
counters; and any text in the token's place (hypothesis) is a 404 or a 429, never a password set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from seed import login_form_token, post_login

from gateway.administration.users import Invitation, invite_user
from gateway.api.auth import authenticate
from gateway.api.login_throttle import ADDRESS
from gateway.settings import GatewaySettings

Conn = psycopg.Connection[Any]
NEW_PASSWORD = "my own long password"
FORM_TOKEN = re.compile(
    r'<form method="post" action="/invite/[^"]+" class="form">\s*'
    r'<input type="hidden" name="csrf" value="([^"]+)"'
)


@pytest.fixture
def invited(db: Conn, settings: GatewaySettings) -> Invitation:
    db.execute("INSERT INTO municipalities (id, name) VALUES ('0101', 'København')")
    return invite_user(db, settings, "0101", "nurse", "karin@kk.example", by="cli:root")


@pytest.fixture
def browser(client: TestClient) -> Iterator[TestClient]:
    """The client as a browser without a session."""
    client.cookies.clear()
    yield client


def _path(invitation: Invitation) -> str:
    return "/invite/" + invitation.url.rsplit("/", 1)[1]


def _set(client: TestClient, path: str, password: str, repeated: str | None = None) -> httpx.Response:
    """Open the link as a browser does (its form's token and cookie), then post the form."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = FORM_TOKEN.search(page.text)
    assert found is not None, page.text
    data = {"csrf": found[1], "password": password, "password2": password if repeated is None else repeated}
    answer: httpx.Response = client.post(path, data=data, follow_redirects=False)
    return answer


def _post(client: TestClient, path: str, password: str = NEW_PASSWORD) -> httpx.Response:
    """Post the form with this browser's login token (as a form kept open in a tab would)."""
    data = {"csrf": login_form_token(client), "password": password, "password2": password}
    answer: httpx.Response = client.post(path, data=data, follow_redirects=False)
    return answer


def _state(db: Conn) -> list[tuple[Any, ...]]:
    """Every user's password hash and her invitations' use: what no refused request may change."""
    rows = db.execute(
        "SELECT u.username, u.password_hash, i.used_at, i.expires_at FROM users u"
        " LEFT JOIN invitations i USING (username) ORDER BY 1"
    )
    return [tuple(row) for row in rows]


def _actions(db: Conn) -> list[str]:
    return [row[0] for row in db.execute("SELECT action FROM audit_log ORDER BY id")]


def test_the_invited_person_sets_her_password_then_logs_in(
    browser: TestClient, db: Conn, invited: Invitation
) -> None:
    page = browser.get(_path(invited))
    assert page.status_code == 200
    assert 'value="karin@kk.example"' in page.text and 'autocomplete="new-password"' in page.text
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"

    done = _set(browser, _path(invited), NEW_PASSWORD)
    assert done.status_code == 200, done.text
    assert "You can now log in as karin@kk.example" in done.text and 'href="/login"' in done.text
    assert authenticate(db, "karin@kk.example", NEW_PASSWORD) is not None
    login = post_login(browser, "karin@kk.example", NEW_PASSWORD)
    assert login.status_code == 303 and login.headers["location"] == "/"
    assert _actions(db)[-2:] == ["accept-invitation", "login"]


def test_a_used_link_is_410_and_changes_nothing(browser: TestClient, db: Conn, invited: Invitation) -> None:
    assert _set(browser, _path(invited), NEW_PASSWORD).status_code == 200
    before = _state(db)

    again = browser.get(_path(invited))
    assert again.status_code == 410 and "This invitation has been used" in again.text
    assert 'name="password"' not in again.text
    posted = _post(browser, _path(invited), "somebody else's password")
    assert posted.status_code == 410 and "This invitation has been used" in posted.text
    assert _state(db) == before
    assert _actions(db)[-1] == "invitation-refused"


def test_an_expired_link_is_410_and_changes_nothing(
    browser: TestClient, db: Conn, invited: Invitation
) -> None:
    db.execute(
        "UPDATE invitations"
        " SET created_at = now() - interval '9 days', expires_at = now() - interval '2 days'"
    )
    before = _state(db)
    page = browser.get(_path(invited))
    assert page.status_code == 410 and "This invitation has expired" in page.text
    assert "valid for 7 days" in page.text
    assert _post(browser, _path(invited)).status_code == 410
    assert _state(db) == before
    assert authenticate(db, "karin@kk.example", NEW_PASSWORD) is None


def test_an_unknown_link_is_404(browser: TestClient, db: Conn, invited: Invitation) -> None:
    before = _state(db)
    real = _path(invited)
    for path in ("/invite/" + "A" * 43, real[:-1], real + "x", real[:-1] + ("B" if real[-1] != "B" else "C")):
        page = browser.get(path)
        assert page.status_code == 404 and "This invitation link is not valid" in page.text, path
        assert _post(browser, path).status_code == 404
    assert _state(db) == before


def test_a_password_that_breaks_the_rules_shows_the_form_again(
    browser: TestClient, db: Conn, invited: Invitation
) -> None:
    before = _state(db)
    short = _set(browser, _path(invited), "short")
    assert short.status_code == 400 and "at least 8 characters" in short.text
    assert 'name="password"' in short.text and 'value="karin@kk.example"' in short.text
    different = _set(browser, _path(invited), NEW_PASSWORD, NEW_PASSWORD + "!")
    assert different.status_code == 400 and "not the same" in different.text
    assert _state(db) == before


@pytest.mark.parametrize("csrf", ["", "forged", "from another browser"])
def test_a_post_without_this_browsers_form_token_is_refused_unlooked_at(
    browser: TestClient, db: Conn, settings: GatewaySettings, invited: Invitation, csrf: str
) -> None:
    browser.get(_path(invited))  # this browser has a nonce; the form's token is not sent
    if csrf == "from another browser":
        with TestClient(browser.app) as other:
            csrf = login_form_token(other)
    before = _state(db)
    throttle = db.execute("SELECT count(*) FROM login_throttle").fetchone()
    answer = browser.post(
        _path(invited), data={"csrf": csrf, "password": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert answer.status_code == 403 and "The form has expired" in answer.text
    assert _state(db) == before and _actions(db) == ["invite-user"]
    assert db.execute("SELECT count(*) FROM login_throttle").fetchone() == throttle


def test_guessing_links_is_throttled_with_the_logins_counters(
    browser: TestClient, db: Conn, invited: Invitation
) -> None:
    guesses = [browser.get(f"/invite/{n:043d}") for n in range(ADDRESS.free_failures + 1)]
    assert [g.status_code for g in guesses] == [404] * (ADDRESS.free_failures + 1)

    blocked = browser.get(_path(invited))  # even a real link waits while the address is blocked
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
    assert "Too many attempts" in blocked.text
    assert post_login(browser, "karin@kk.example", "whatever it is").status_code == 429  # one counter
    db.execute("UPDATE login_throttle SET blocked_until = NULL")
    assert browser.get(_path(invited)).status_code == 200


def test_opening_a_real_link_again_and_again_is_not_throttled(
    browser: TestClient, invited: Invitation
) -> None:
    for _ in range(ADDRESS.free_failures + 5):
        assert browser.get(_path(invited)).status_code == 200


# Text a link's place may hold: anything printable or not, short or long, and near-misses of a real token.
_ANY_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=120)


@st.composite
def _near_miss(draw: st.DrawFn, token: str) -> str:
    position = draw(st.integers(0, len(token) - 1))
    how = draw(st.sampled_from(["replace", "drop", "insert", "case"]))
    char = draw(st.sampled_from("AZaz09_-=.%/"))
    if how == "replace":
        return token[:position] + (char if char != token[position] else "~") + token[position + 1 :]
    if how == "drop":
        return token[:position] + token[position + 1 :]
    if how == "insert":
        return token[:position] + char + token[position:]
    swapped = token[position].swapcase()
    return token[:position] + (swapped if swapped != token[position] else "~") + token[position + 1 :]


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_text_in_the_links_place_sets_no_password(
    browser: TestClient, db: Conn, invited: Invitation, data: st.DataObject
) -> None:
    token = invited.url.rsplit("/", 1)[1]
    text = data.draw(st.one_of(_ANY_TEXT, _near_miss(token)), label="token")
    password = data.draw(st.one_of(st.just(NEW_PASSWORD), _ANY_TEXT), label="password")
    db.execute("DELETE FROM login_throttle")
    before = _state(db)
    path = "/invite/" + quote(text, safe="").replace(".", "%2E")  # no dot segment for the client to fold
    for answer in (browser.get(path), _post(browser, path, password)):
        # 307: a trailing slash, which Starlette takes off (to another path of the same kind).
        assert answer.status_code in (307, 404, 405, 429), (text, answer.status_code, answer.text[:300])
        assert 'name="password"' not in answer.text
    assert _state(db) == before
