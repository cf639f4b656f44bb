"""The command line: each role is reachable, good input prints FHIR or JSON, bad input exits non-zero
with one line on stderr and no traceback."""

from __future__ import annotations

import json

import psycopg
import pytest
from fhir.resources.R4B.bundle import Bundle
from typer.testing import CliRunner

from homewatch.cli import app

runner = CliRunner()


def test_help_names_every_role() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for role in ("demo", "edge", "gateway", "models"):
        assert role in result.output


def test_edge_decode_prints_a_valid_bundle_with_the_values() -> None:
    # Blood pressure, mmHg, no optional fields: 120 / 80, mean 93 (SFLOAT, exponent 0).
    result = runner.invoke(app, ["edge", "decode", "2a35", "00780050005d00", "--patient", "p-9"])
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.stdout)
    Bundle.model_validate(bundle)
    obs = bundle["entry"][0]["resource"]
    assert obs["subject"] == {"reference": "Patient/p-9"}
    values = {
        c["code"]["coding"][0]["code"]: c.get("valueQuantity", {}).get("value") for c in obs["component"]
    }
    assert values == {"8480-6": 120, "8462-4": 80, "8478-0": 93}


def test_edge_decode_bad_bytes_is_one_line_without_traceback() -> None:
    result = runner.invoke(app, ["edge", "decode", "0x2A35", "1e8000"])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "0x2A35" in lines[0] and "Traceback" not in result.stderr


def test_edge_decode_unknown_characteristic_and_non_hex() -> None:
    unknown = runner.invoke(app, ["edge", "decode", "2aff", "00"])
    not_hex = runner.invoke(app, ["edge", "decode", "2a35", "zz"])
    assert unknown.exit_code == 2 and "2aff" in unknown.stderr.lower()
    assert not_hex.exit_code == 2 and "hexadecimal" in not_hex.stderr


def test_models_news2_prints_total_band_and_points() -> None:
    result = runner.invoke(
        app,
        [
            "models",
            "news2",
            "--rr",
            "18",
            "--spo2",
            "96",
            "--sbp",
            "120",
            "--hr",
            "72",
            "--acvpu",
            "A",
            "--temp",
            "37.0",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["total"], out["band"], out["complete"]) == (0, "low", True)
    hot = json.loads(runner.invoke(app, ["models", "news2", "--spo2", "91", "--hr", "131"]).stdout)
    assert hot["total"] == 6 and hot["complete"] is False


def test_models_news2_refuses_an_impossible_value() -> None:
    result = runner.invoke(app, ["models", "news2", "--spo2", "140"])
    assert result.exit_code == 2 and "spo2" in result.stderr.lower()


def test_gateway_migrate_then_again(empty_database_url: str) -> None:
    first = runner.invoke(app, ["gateway", "migrate", "--database-url", empty_database_url])
    second = runner.invoke(app, ["gateway", "migrate", "--database-url", empty_database_url])
    assert first.exit_code == 0 and "applied migrations" in first.stdout
    assert second.exit_code == 0 and "up to date" in second.stdout
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT to_regclass('observations')").fetchone() == ("observations",)


def test_gateway_migrate_unreachable_database_is_a_clear_error() -> None:
    result = runner.invoke(
        app,
        ["gateway", "migrate", "--database-url", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"],
    )
    assert result.exit_code == 2 and "cannot connect" in result.stderr


def test_gateway_migrate_with_no_postgresql_url_says_so_in_one_line() -> None:
    result = runner.invoke(app, ["gateway", "migrate", "--database-url", "no such thing"])
    assert result.exit_code == 2 and "is not a PostgreSQL URL" in result.stderr


def test_demo_rejects_an_unknown_broker() -> None:
    result = runner.invoke(app, ["demo", "--broker", "rabbit"])
    assert result.exit_code == 2 and "--broker" in result.stderr


def test_gateway_token_is_accepted_by_the_fhir_api_for_its_role_and_municipality(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import secrets

    from gateway.api.auth import verify_token
    from gateway.settings import GatewaySettings

    monkeypatch.setenv("HOMEWATCH_SECRET_KEY", secrets.token_urlsafe(32))  # the gateway's secret
    args = ["gateway", "token", "--role", "nurse", "--municipality", "0147", "--subject", "bo"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    user = verify_token(GatewaySettings(), result.stdout.strip())
    assert user is not None and (user.username, user.role, user.municipality_id) == ("bo", "nurse", "0147")
    hub = runner.invoke(app, ["gateway", "token", "--role", "hub", "--subject", "hub-7", "--hours", "720"])
    hub_user = verify_token(GatewaySettings(), hub.stdout.strip())
    assert hub_user is not None and (hub_user.username, hub_user.role) == ("hub-7", "hub")


def test_gateway_token_bad_role_or_hub_without_id_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMEWATCH_SECRET_KEY", "a-secret-of-the-cli-tests-0123456789abcdef")
    for args, mentions in (
        (["--role", "janitor", "--subject", "x"], "role"),
        (["--role", "hub"], "--subject"),
        (["--role", "nurse"], "--subject"),
        (["--role", "nurse", "--subject", "x", "--hours", "-1"], "hours"),
    ):
        result = runner.invoke(app, ["gateway", "token", *args])
        assert result.exit_code == 2, args
        assert "Traceback" not in result.output and mentions in result.stderr, args
