"""Issue 15, item 1 at the command line: ``homewatch gateway serve`` and ``gateway token`` refuse to run
without a real secret unless development is asked for explicitly; one line on stderr, exit code 2.

Before the fix both ran with no settings at all and signed with the secret published in the repository.
"""

from __future__ import annotations

import secrets

import pytest
from typer.testing import CliRunner

from gateway.broker import free_port
from homewatch.cli import app

runner = CliRunner()
# Nothing is started before the settings are read: these would fail later, and differently, if it were.
UNREACHABLE = ["--database-url", "postgresql://nobody@127.0.0.1:1/none", "--mqtt-url", "mqtt://127.0.0.1:1"]


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server's environment: no HOMEWATCH_ENVIRONMENT (the suite sets development)."""
    monkeypatch.delenv("HOMEWATCH_ENVIRONMENT")


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize("secret", [None, "development-only-secret-change-me", "short"])
def test_serve_without_a_real_secret_is_one_line_and_exit_2(
    secret: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if secret is not None:
        monkeypatch.setenv("HOMEWATCH_SECRET_KEY", secret)
    result = runner.invoke(app, ["gateway", "serve", *UNREACHABLE, "--port", str(free_port())])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "HOMEWATCH_SECRET_KEY" in lines[0], result.stderr
    assert "cannot connect" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.usefixtures("production")
def test_token_without_a_secret_is_one_line_and_exit_2() -> None:
    result = runner.invoke(app, ["gateway", "token", "--role", "nurse", "--subject", "anna"])
    assert result.exit_code == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "HOMEWATCH_SECRET_KEY" in result.stderr


def test_token_in_development_still_needs_the_gateways_secret() -> None:
    """A random development key would make a token no gateway accepts: say so instead of printing one."""
    result = runner.invoke(app, ["gateway", "token", "--role", "nurse", "--subject", "anna"])
    assert result.exit_code == 2 and "HOMEWATCH_SECRET_KEY" in result.stderr


@pytest.mark.usefixtures("production")
def test_an_unknown_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMEWATCH_ENVIRONMENT", "prod")
    monkeypatch.setenv("HOMEWATCH_SECRET_KEY", secrets.token_urlsafe(32))
    result = runner.invoke(app, ["gateway", "token", "--role", "nurse", "--subject", "anna"])
    assert result.exit_code == 2 and "HOMEWATCH_ENVIRONMENT" in result.stderr


@pytest.mark.usefixtures("production")
def test_token_with_a_real_secret_in_production_is_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMEWATCH_SECRET_KEY", secrets.token_urlsafe(32))
    result = runner.invoke(app, ["gateway", "token", "--role", "nurse", "--subject", "anna"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count(".") == 2  # a JWT: header.payload.signature
