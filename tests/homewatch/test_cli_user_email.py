"""Issue 18: a user has the e-mail address alerts reach her at; ``homewatch gateway user add --email``
sets it, and an address the table would refuse is one line on stderr (exit code 2), no user added."""

from __future__ import annotations

import psycopg
import pytest
from typer.testing import CliRunner

from gateway.api.auth import create_user
from homewatch.cli import app

runner = CliRunner()


@pytest.fixture
def municipality(database_url: str) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO municipalities (id, name) VALUES ('0101', 'København')")
    return database_url


def _email(database_url: str, username: str) -> tuple[str | None] | None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute("SELECT email FROM users WHERE username = %s", (username,)).fetchone()


def _add(database_url: str, username: str, *options: str) -> object:
    args = ["gateway", "user", "add", username, "--municipality", "0101", "--role", "nurse", "--sso-only"]
    return runner.invoke(app, [*args, *options, "--database-url", database_url])


def test_user_add_stores_the_email_address(municipality: str) -> None:
    added = _add(municipality, "karin", "--email", "karin@kbh.example")
    assert added.exit_code == 0, added.output  # type: ignore[attr-defined]
    assert _email(municipality, "karin") == ("karin@kbh.example",)
    without = _add(municipality, "lone")
    assert without.exit_code == 0 and _email(municipality, "lone") == (None,)  # type: ignore[attr-defined]


@pytest.mark.parametrize("address", ["karin", "karin@", "@kbh.example", "karin @kbh.example", "a@b@c"])
def test_an_address_that_is_none_adds_nobody(municipality: str, address: str) -> None:
    refused = _add(municipality, "karin", "--email", address)
    assert refused.exit_code == 2  # type: ignore[attr-defined]
    assert "email must be an address" in refused.stderr  # type: ignore[attr-defined]
    assert _email(municipality, "karin") is None


def test_create_user_passes_the_address_to_the_table(municipality: str) -> None:
    with psycopg.connect(municipality, autocommit=True) as conn:
        create_user(conn, "dr-holm", "0101", "gp", "long enough password", email="holm@laege.example")
        with pytest.raises(ValueError, match="email"):
            create_user(conn, "dr-bad", "0101", "gp", "long enough password", email="not an address")
    assert _email(municipality, "dr-holm") == ("holm@laege.example",)
    assert _email(municipality, "dr-bad") is None
