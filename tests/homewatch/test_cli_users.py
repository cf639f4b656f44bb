"""``homewatch gateway user add`` and ``gateway team add``: an administrator adds people and care teams
without Python; ``gateway token`` prints a JWT. Bad input is one line on stderr and exit code 2."""

from __future__ import annotations

import secrets

import jwt
import psycopg
import pytest
from typer.testing import CliRunner

from gateway.api.auth import authenticate, verify_token
from gateway.settings import GatewaySettings
from gateway.store.users import care_teams_of, user_by_name
from homewatch.cli import app

runner = CliRunner()


@pytest.fixture
def municipality(database_url: str) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO municipalities (id, name) VALUES ('0101', 'København'), ('0147', 'Frederiksberg')"
        )
    return database_url


def _run(database_url: str, *args: str, stdin: str | None = None) -> object:
    return runner.invoke(app, ["gateway", *args, "--database-url", database_url], input=stdin)


def test_an_administrator_adds_a_team_and_a_nurse_in_it_who_can_then_log_in(municipality: str) -> None:
    team = runner.invoke(
        app,
        ["gateway", "team", "add", "0101-nord", "--municipality", "0101", "--name", "Team Nord"],
        env={"HOMEWATCH_DATABASE_URL": municipality},
    )
    assert team.exit_code == 0, team.output
    added = runner.invoke(
        app,
        [
            "gateway",
            "user",
            "add",
            "karin",
            "--municipality",
            "0101",
            "--role",
            "nurse",
            "--team",
            "0101-nord",
            "--team",
            "0101",
            "--password-stdin",
            "--database-url",
            municipality,
        ],
        input="a long enough password\n",
    )
    assert added.exit_code == 0, added.output
    assert "added nurse karin of municipality 0101" in added.stdout
    with psycopg.connect(municipality, autocommit=True) as conn:
        assert care_teams_of(conn, "karin") == ["0101", "0101-nord"]
        user = authenticate(conn, "karin", "a long enough password")
        assert user is not None and (user.role, user.municipality_id) == ("nurse", "0101")


def test_the_password_is_asked_twice_when_not_given_on_stdin(municipality: str) -> None:
    args = [
        "gateway",
        "user",
        "add",
        "dr-holm",
        "--municipality",
        "0147",
        "--role",
        "gp",
        "--database-url",
        municipality,
    ]
    mismatch = runner.invoke(app, args, input="first password\nsecond password\n")
    assert mismatch.exit_code != 0
    added = runner.invoke(app, args, input="a good password\na good password\n")
    assert added.exit_code == 0, added.output
    with psycopg.connect(municipality, autocommit=True) as conn:
        assert authenticate(conn, "dr-holm", "a good password") is not None


def test_a_single_sign_on_user_has_no_password_that_works(municipality: str) -> None:
    result = _run(
        municipality, "user", "add", "ops", "--municipality", "0101", "--role", "system_admin", "--sso-only"
    )
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    with psycopg.connect(municipality, autocommit=True) as conn:
        stored = user_by_name(conn, "ops")
        assert stored is not None and stored.role == "system_admin"
        assert authenticate(conn, "ops", "") is None and authenticate(conn, "ops", "!") is None


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["user", "add", "x", "--municipality", "0101", "--role", "janitor", "--sso-only"], "role"),
        (["user", "add", "x", "--municipality", "9999", "--role", "gp", "--sso-only"], "refused"),
        (
            ["user", "add", "x", "--municipality", "0101", "--role", "nurse", "--team", "0147", "--sso-only"],
            "refused",
        ),
        (
            ["user", "add", "x", "--municipality", "0101", "--role", "gp", "--team", "0101", "--sso-only"],
            "only a nurse",
        ),
        (
            ["user", "add", "x", "--municipality", "0101", "--role", "gp", "--sso-only", "--password-stdin"],
            "exclude",
        ),
        (["team", "add", "0101", "--municipality", "0147", "--name", "Stolen"], "another municipality"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(municipality: str, args: list[str], mentions: str) -> None:
    result = _run(municipality, *args)
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    error = result.stderr.strip()  # type: ignore[attr-defined]
    assert error.startswith("error:") and "\n" not in error and mentions in error


def test_a_name_taken_is_a_clear_error(municipality: str) -> None:
    args = ("user", "add", "anna", "--municipality", "0101", "--role", "nurse", "--sso-only")
    assert _run(municipality, *args).exit_code == 0  # type: ignore[attr-defined]
    again = _run(municipality, *args)
    assert again.exit_code == 2 and "refused" in again.stderr  # type: ignore[attr-defined]


def test_gateway_token_prints_a_jwt_with_the_scopes_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMEWATCH_SECRET_KEY", secrets.token_urlsafe(32))
    args = ["gateway", "token", "--role", "gp", "--subject", "dr-holm", "--scope", "user/Patient.read"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["sub"], claims["role"], claims["scope"]) == ("dr-holm", "gp", "user/Patient.read")
    assert verify_token(GatewaySettings(), token) is not None
