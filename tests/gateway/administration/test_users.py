"""Issue 20: users by invitation (``gateway.administration.users``) on a real PostgreSQL.

An invited user exists at once without a password that matches; the link's token is stored only as its
SHA-256; the link sets a password once (the rules and scrypt of every password), not after it expired,
not twice, not from two requests at once; inviting again replaces the link; bad input is one line and
changes nothing; every step is in the audit log.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from gateway.administration.errors import AdministrationError
from gateway.administration.users import (
    INVITATION_LIFETIME,
    InvitationGone,
    accept_invitation,
    invitation_state,
    invite_user,
    token_sha256,
)
from gateway.api.auth import authenticate, create_user, hash_password
from gateway.errors import GatewayFailure
from gateway.settings import GatewaySettings
from gateway.store import invitations
from gateway.store.users import care_teams_of

Conn = psycopg.Connection[Any]
PASSWORD = "correct horse battery"


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as opened:
        opened.execute("INSERT INTO municipalities (id, name) VALUES ('0101', 'København'), ('0147', 'Frb')")
        opened.execute(
            "INSERT INTO care_teams (municipality_id, id, name) VALUES ('0101', '0101-nord', 'Nord'),"
            " ('0147', '0147-vest', 'Vest')"
        )
        create_user(opened, "admin-kbh", "0101", "municipality_admin", PASSWORD)
        yield opened


@pytest.fixture
def settings(database_url: str) -> GatewaySettings:
    return GatewaySettings(database_url=database_url, public_url="https://homewatch.kk.example/")


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _audit(conn: Conn) -> list[tuple[str, str, str | None, str | None]]:
    rows = conn.execute(
        "SELECT username, action, municipality_id, detail FROM audit_log ORDER BY id"
    ).fetchall()
    return [tuple(row) for row in rows]


def _counts(conn: Conn) -> tuple[int, int, int, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM invitations),"
        " (SELECT count(*) FROM audit_log), (SELECT count(*) FROM care_team_members)"
    ).fetchone()
    assert row is not None
    return (row[0], row[1], row[2], row[3])


def test_an_invited_user_exists_without_a_password_and_only_the_tokens_hash_is_stored(
    conn: Conn, settings: GatewaySettings
) -> None:
    invited = invite_user(conn, settings, "0101", "nurse", "Karin.Holm@kk.example", by="admin-kbh")

    assert invited.username == "karin.holm@kk.example"  # the address, lowercased
    assert invited.url.startswith("https://homewatch.kk.example/invite/")
    token = _token(invited.url)
    assert len(token) == 43
    row = conn.execute(
        "SELECT u.role, u.municipality_id, u.email, i.token_sha256, i.expires_at - i.created_at, i.used_at,"
        " i.created_by FROM users u JOIN invitations i USING (username) WHERE u.username = %s",
        (invited.username,),
    ).fetchone()
    assert row is not None
    role, municipality, email, stored, lifetime, used_at, created_by = row
    assert (role, municipality, email, used_at, created_by) == (
        "nurse",
        "0101",
        "Karin.Holm@kk.example",
        None,
        "admin-kbh",
    )
    assert bytes(stored) == hashlib.sha256(token.encode()).digest() and lifetime == INVITATION_LIFETIME
    dump = conn.execute("SELECT i::text FROM invitations i").fetchone()
    assert dump is not None and token not in dump[0]
    assert care_teams_of(conn, invited.username) == ["0101"]  # a nurse without teams: the default one
    for guess in ("", PASSWORD, "!", token):
        assert authenticate(conn, invited.username, guess) is None
    assert invitation_state(conn, token).username == invited.username
    (who, action, where, detail), *_ = reversed(_audit(conn))
    assert (who, action, where) == ("admin-kbh", "invite-user", "0101")
    assert detail is not None and "karin.holm@kk.example as nurse in 0101" in detail and token not in detail


def test_admin_is_a_municipality_administrator_and_a_nurse_joins_the_teams_named(
    conn: Conn, settings: GatewaySettings
) -> None:
    admin = invite_user(conn, settings, "0147", "admin", "it@frb.example", username="it-frb", by="cli:root")
    nurse = invite_user(conn, settings, "0101", "nurse", "n@kk.example", teams=["0101-nord"], by="admin-kbh")

    role = conn.execute("SELECT role FROM users WHERE username = 'it-frb'").fetchone()
    assert admin.username == "it-frb" and role == ("municipality_admin",)
    assert care_teams_of(conn, nurse.username) == ["0101-nord"]
    # The CLI's operator is no user: the row names her and the municipality acted on.
    assert ("cli:root", "invite-user", "0147") in [row[:3] for row in _audit(conn)]


@pytest.mark.parametrize(
    ("municipality", "role", "email", "extra", "words"),
    [
        ("0101", "doctor", "a@kk.example", {}, "role must be nurse, gp or admin"),
        ("0101", "system_admin", "a@kk.example", {}, "role must be nurse, gp or admin"),
        ("0101", "nurse", "not-an-address", {}, "e-mail address"),
        ("0101", "nurse", "a@b@kk.example", {}, "e-mail address"),
        ("0101", "nurse", "a\x00b@kk.example", {}, "e-mail address"),
        ("0101", "nurse", "a" * 250 + "@kk.example", {}, "e-mail address"),
        ("9999", "nurse", "a@kk.example", {}, "no municipality '9999'"),
        ("0101", "nurse", "a@kk.example", {"teams": ["0147-vest"]}, "no care team of municipality 0101"),
        ("0101", "nurse", "a@kk.example", {"teams": ["nowhere"]}, "no care team"),
        ("0101", "gp", "a@kk.example", {"teams": ["0101-nord"]}, "Only a nurse"),
        ("0101", "nurse", "a@kk.example", {"username": "two words"}, "username must be"),
        ("0101", "nurse", "a@kk.example", {"username": "a|b"}, "username must be"),
        ("0101", "nurse", "a@kk.example", {"username": ""}, "username must be"),
        ("0101", "nurse", "a@kk.example", {"username": "admin-kbh"}, "is taken"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    conn: Conn,
    settings: GatewaySettings,
    municipality: str,
    role: str,
    email: str,
    extra: dict[str, Any],
    words: str,
) -> None:
    before = _counts(conn)
    with pytest.raises(AdministrationError) as refused:
        invite_user(conn, settings, municipality, role, email, by="admin-kbh", **extra)
    assert words in str(refused.value) and "\n" not in str(refused.value)
    assert isinstance(refused.value, GatewayFailure)
    assert _counts(conn) == before


def test_inviting_again_before_the_password_is_set_replaces_the_link(
    conn: Conn, settings: GatewaySettings
) -> None:
    first = invite_user(conn, settings, "0101", "gp", "gp@laege.example", by="admin-kbh")
    again = invite_user(conn, settings, "0101", "gp", "GP@laege.example", by="admin-kbh")

    assert again.username == first.username and again.url != first.url
    with pytest.raises(InvitationGone) as gone:
        invitation_state(conn, _token(first.url))
    assert gone.value.reason == "unknown"
    assert conn.execute("SELECT count(*) FROM invitations").fetchone() == (1,)
    with pytest.raises(AdministrationError, match="another municipality, role or e-mail"):
        invite_user(conn, settings, "0101", "nurse", "gp@laege.example", by="admin-kbh")
    assert (
        accept_invitation(conn, _token(again.url), PASSWORD, PASSWORD, client="127.0.0.1") == first.username
    )
    with pytest.raises(AdministrationError, match="is taken"):  # she has a password now
        invite_user(conn, settings, "0101", "gp", "gp@laege.example", by="admin-kbh")


def test_a_link_sets_the_password_once_and_is_audited(conn: Conn, settings: GatewaySettings) -> None:
    invited = invite_user(conn, settings, "0101", "nurse", "sara@kk.example", by="admin-kbh")
    token = _token(invited.url)

    assert accept_invitation(conn, token, PASSWORD, PASSWORD, client="10.0.0.7") == invited.username
    assert authenticate(conn, invited.username, PASSWORD) is not None
    with pytest.raises(InvitationGone) as gone:
        accept_invitation(conn, token, "another password", "another password", client="10.0.0.8")
    assert gone.value.reason == "used"
    assert authenticate(conn, invited.username, PASSWORD) is not None
    assert authenticate(conn, invited.username, "another password") is None
    rows = conn.execute(
        "SELECT username, role, municipality_id, action, client FROM audit_log WHERE action <> 'invite-user'"
        " ORDER BY id"
    ).fetchall()
    assert rows == [
        ("sara@kk.example", "nurse", "0101", "accept-invitation", "10.0.0.7"),
        ("sara@kk.example", "nurse", "0101", "invitation-refused", "10.0.0.8"),
    ]


def test_an_expired_link_sets_nothing(conn: Conn, settings: GatewaySettings) -> None:
    invited = invite_user(conn, settings, "0101", "nurse", "late@kk.example", by="admin-kbh")
    conn.execute(
        "UPDATE invitations SET created_at = now() - interval '8 days', expires_at = now() - interval '1 day'"
    )
    token = _token(invited.url)
    for attempt in (
        lambda: invitation_state(conn, token),
        lambda: accept_invitation(conn, token, PASSWORD, PASSWORD, client=None),
    ):
        with pytest.raises(InvitationGone) as gone:
            attempt()
        assert gone.value.reason == "expired"
    assert authenticate(conn, invited.username, PASSWORD) is None
    assert conn.execute("SELECT used_at FROM invitations").fetchone() == (None,)


@pytest.mark.parametrize(
    ("password", "repeated", "words"),
    [
        ("short", "short", "at least 8"),
        (PASSWORD, PASSWORD + "!", "not the same"),
        ("x" * 1025, "x" * 1025, "at most 1024"),
        ("nul\x00inside", "nul\x00inside", "no keyboard"),
    ],
)
def test_a_password_that_breaks_the_rules_leaves_the_link_open(
    conn: Conn, settings: GatewaySettings, password: str, repeated: str, words: str
) -> None:
    invited = invite_user(conn, settings, "0101", "nurse", "rules@kk.example", by="admin-kbh")
    with pytest.raises(AdministrationError, match=words):
        accept_invitation(conn, _token(invited.url), password, repeated, client=None)
    assert invitation_state(conn, _token(invited.url)).username == invited.username
    assert authenticate(conn, invited.username, password) is None


def test_a_link_in_use_by_another_request_is_waited_for_and_then_found_used(
    database_url: str, conn: Conn, settings: GatewaySettings
) -> None:
    invited = invite_user(conn, settings, "0101", "nurse", "race@kk.example", by="admin-kbh")
    token = _token(invited.url)
    outcome: list[str] = []

    def second_request() -> None:
        with psycopg.connect(database_url, autocommit=True) as own:
            try:
                accept_invitation(own, token, "the second password", "the second password", client=None)
                outcome.append("set")
            except InvitationGone as gone:
                outcome.append(gone.reason)

    with psycopg.connect(database_url) as first:  # a transaction of its own, holding the row
        found = invitations.locked_invitation(first, token_sha256(token))
        assert found is not None and found.state == "open"
        thread = threading.Thread(target=second_request)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive() and outcome == []  # it waits for the first request
        invitations.use_invitation(first, found.id, hash_password("the first password"))
        first.commit()
    thread.join(10)
    assert outcome == ["used"]
    assert authenticate(conn, invited.username, "the first password") is not None
    assert authenticate(conn, invited.username, "the second password") is None


def test_an_invitation_is_removed_with_its_user(conn: Conn, settings: GatewaySettings) -> None:
    invited = invite_user(conn, settings, "0101", "nurse", "gone@kk.example", by="admin-kbh")
    conn.execute("DELETE FROM users WHERE username = %s", (invited.username,))
    with pytest.raises(InvitationGone):
        invitation_state(conn, _token(invited.url))
