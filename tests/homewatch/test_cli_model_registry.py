"""``homewatch models versions | activate | rollback | card`` against a real database: the list with
held-out figures and the active marker, an activation the NEWS2 gate refuses (one line on stderr, exit
2, nothing written) and the same with a recorded override, rollback, and who may act."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from gateway.alerts.active_models import register_shipped_default
from gateway.store import model_registry as registry
from homewatch.cli import app
from models.model_bytes import ShippedModel, shipped_model

runner = CliRunner()
POOR = {
    "held_out": {"patients": 90, "admissions": 31},
    "methods": {"model": {"auroc": 0.6, "auroc_ci": [0.55, 0.65]}, "news2": {"auroc": 0.61}},
}
GOOD = {"methods": {"model": {"auroc": 0.75, "auroc_ci": [0.7, 0.8]}, "news2": {"auroc": 0.6}}}


@pytest.fixture(scope="module")
def shipped() -> ShippedModel:
    return shipped_model()


@pytest.fixture
def db(database_url: str, shipped: ShippedModel) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO municipalities (id, name) VALUES ('0101', 'København'), ('0202', 'Aarhus')")
        for name, municipality, role in (
            ("ada", "0101", "municipality_admin"),
            ("aage", "0202", "municipality_admin"),
            ("nina", "0101", "nurse"),
        ):
            conn.execute(
                "INSERT INTO users (username, municipality_id, role, password_hash) VALUES (%s, %s, %s, 'x')",
                (name, municipality, role),
            )
        register_shipped_default(conn, shipped)
        for version, metrics in (("kbh-poor", POOR), ("kbh-good", GOOD)):
            registry.register_version(
                conn,
                version=version,
                municipality_id="0101",
                kind="local",
                created_by="ada",
                source="database",
                model_bytes=shipped.model_bytes,
                metadata=shipped.metadata,
                card=f"# {version}\n\nSYNTHETIC <b>test</b> card",
                metrics=metrics,
            )
        yield conn


def _run(database_url: str, *args: str) -> Any:
    return runner.invoke(app, ["models", *args, "--database-url", database_url])


def _one_line(result: Any, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_versions_lists_the_local_versions_and_the_default_with_the_active_one_marked(
    db: psycopg.Connection[Any], database_url: str, shipped: ShippedModel
) -> None:
    table = _run(database_url, "versions", "--municipality", "0101")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["version", "kind", "created"]
    active = [line for line in lines if line.startswith("*")]
    assert len(active) == 1 and shipped.version in active[0]
    assert any(
        "kbh-poor" in line and "0.600 [0.550, 0.650]" in line and "not passed" in line for line in lines
    )
    rows = json.loads(_run(database_url, "versions", "--municipality", "0101", "--json").stdout)
    assert [(r["version"], r["active"], r["gate_passed"]) for r in rows] == [
        ("kbh-good", False, True),
        ("kbh-poor", False, False),
        (shipped.version, True, None),
    ]
    aarhus = json.loads(_run(database_url, "versions", "--municipality", "0202", "--json").stdout)
    assert [r["version"] for r in aarhus] == [shipped.version]


def test_activate_refused_by_the_gate_is_one_line_and_exit_2_then_an_override_is_recorded(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    refused = _run(database_url, "activate", "kbh-poor", "--municipality", "0101", "--by", "ada")
    _one_line(refused, "does not beat NEWS2", "override")
    assert registry.activations(db, "0101") == []
    done = _run(
        database_url,
        "activate",
        "kbh-poor",
        "--municipality",
        "0101",
        "--by",
        "ada",
        "--override-reason",
        "pilot agreed with the chief nurse",
    )
    assert done.exit_code == 0, done.output
    assert "override recorded: pilot agreed with the chief nurse" in done.stdout
    [row] = registry.activations(db, "0101")
    assert (row.version, row.actor, row.override_reason) == (
        "kbh-poor",
        "ada",
        "pilot agreed with the chief nurse",
    )


def test_rollback_returns_to_the_version_before(
    db: psycopg.Connection[Any], database_url: str, shipped: ShippedModel
) -> None:
    assert _run(database_url, "activate", "kbh-good", "--municipality", "0101", "--by", "ada").exit_code == 0
    back = _run(database_url, "rollback", "--municipality", "0101", "--by", "ada")
    assert back.exit_code == 0, back.output
    assert f"{shipped.version} (default) is active" in back.stdout
    _one_line(_run(database_url, "rollback", "--municipality", "0101", "--by", "ada"), "nothing to roll back")


def test_only_an_administrator_of_the_municipality_may_activate(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    for who in ("nina", "aage", "nobody"):
        result = _run(database_url, "activate", "kbh-good", "--municipality", "0101", "--by", who)
        _one_line(result, who, "may not change the models of municipality 0101")
    other = _run(database_url, "activate", "kbh-good", "--municipality", "0202", "--by", "aage")
    _one_line(other, "no model version 'kbh-good'")
    _one_line(_run(database_url, "versions", "--municipality", "9999"), "no municipality '9999'")
    assert registry.activations(db, "0101") == [] and registry.activations(db, "0202") == []


def test_card_prints_the_registered_model_card_only_to_its_municipality(
    db: psycopg.Connection[Any], database_url: str
) -> None:
    card = _run(database_url, "card", "kbh-good", "--municipality", "0101")
    assert card.exit_code == 0 and card.stdout == "# kbh-good\n\nSYNTHETIC <b>test</b> card\n"
    _one_line(_run(database_url, "card", "kbh-good", "--municipality", "0202"), "no model version 'kbh-good'")
