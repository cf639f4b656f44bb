"""`homewatch models train / replay / evaluate` end to end on a small fixture cohort."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from test_features_fixtures import fixture_resources, write_ndjson
from typer.testing import CliRunner

from homewatch.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cohorts")
    train = write_ndjson(root / "train", fixture_resources(18, 60, seed=3))
    test = write_ndjson(root / "test", fixture_resources(12, 60, seed=4))
    return train, test


def test_train_then_replay_writes_every_patient_day(cohorts: tuple[Path, Path], tmp_path: Path) -> None:
    train, test = cohorts
    model = tmp_path / "model.joblib"
    result = runner.invoke(app, ["models", "train", "--ndjson", str(train), "--out", str(model)])
    assert result.exit_code == 0, result.output
    assert model.is_file() and (tmp_path / "model.joblib.json").is_file()
    out = tmp_path / "scores.csv"
    result = runner.invoke(
        app, ["models", "replay", "--ndjson", str(test), "--out", str(out), "--model", str(model)]
    )
    assert result.exit_code == 0, result.output
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["patient_id", "date", "news2", "risk_30d", "alert", "top_reasons"]
    assert len(rows) == 12 * 60
    assert all(0 < float(r["risk_30d"]) < 1 and r["alert"] in ("0", "1") for r in rows)
    assert any(r["alert"] == "1" for r in rows) and any(r["top_reasons"] for r in rows)


def test_evaluate_writes_the_table_and_the_reliability_png(
    cohorts: tuple[Path, Path], tmp_path: Path
) -> None:
    train, test = cohorts
    result = runner.invoke(
        app, ["models", "evaluate", "--train", str(train), "--test", str(test), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    report = (tmp_path / "report.md").read_text()
    for method in ("Learned model", "NEWS2 alone", "Weight-gain rule alone"):
        assert method in report
    assert (tmp_path / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "metrics.json").is_file()


def test_replay_of_a_missing_folder_is_one_line_on_stderr(tmp_path: Path) -> None:
    result = runner.invoke(app, ["models", "replay", "--ndjson", str(tmp_path / "no"), "--out", "x.csv"])
    assert result.exit_code == 2 and "no such folder" in result.stderr and "Traceback" not in result.stderr


def test_the_shipped_model_loads_and_replays(cohorts: tuple[Path, Path], tmp_path: Path) -> None:
    _train, test = cohorts
    result = runner.invoke(app, ["models", "replay", "--ndjson", str(test), "--out", str(tmp_path / "s.csv")])
    assert result.exit_code == 0, result.output


def test_cohort_writes_a_synthetic_cohort_the_shipped_model_replays(tmp_path: Path) -> None:
    from models.cohort.history import MIN_HISTORY_DAYS

    days = max(MIN_HISTORY_DAYS, 30)
    folder = tmp_path / "cohort"
    args = ["models", "cohort", "--out", str(folder), "--patients", "3", "--days", str(days), "--seed", "5"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (folder / "Observation.ndjson").is_file() and "SYNTHETIC" in result.output
    out = tmp_path / "s.csv"
    result = runner.invoke(app, ["models", "replay", "--ndjson", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert {r["patient_id"] for r in rows} and len(rows) % 3 == 0


def test_cohort_simulates_a_named_setting_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    args = ["models", "cohort", "--patients", "4", "--days", "30", "--seed", "5"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "h"), "--setting", "heavy-artefacts"])
    assert result.exit_code == 0 and "setting heavy-artefacts" in result.output, result.output
    default = (tmp_path / "d" / "Observation.ndjson").read_bytes()
    assert (tmp_path / "h" / "Observation.ndjson").read_bytes() != default
    assert (tmp_path / "h" / "Patient.ndjson").read_bytes() == (
        tmp_path / "d" / "Patient.ndjson"
    ).read_bytes()
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "x"), "--setting", "nowhere"])
    assert result.exit_code == 2 and "unknown" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()
