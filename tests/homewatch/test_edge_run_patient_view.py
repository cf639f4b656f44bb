"""``homewatch edge run --patient-view HOST:PORT``: the patient view served where the operator says (a trial
on one machine), and an address that is none refused in one line before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_agent.config import HubConfig
from homewatch.cli import _serving_patient_view_on, app

BASE_TOML = (
    'municipality = "0101"\nhub_id = "hub-1"\npatient_id = "p-1"\noutbox_path = "o.sqlite3"\ndevices = []\n'
)
HUB = HubConfig.from_mapping(
    {
        "municipality": "0101",
        "hub_id": "hub-1",
        "patient_id": "p-1",
        "devices": [],
        "outbox_path": "/tmp/never-opened.sqlite3",
        "patient_view": {"enabled": True, "pin": "2468"},
    },
    source="test",
)


@pytest.mark.parametrize(
    ("address", "host", "port"),
    [("127.0.0.1:8090", "127.0.0.1", 8090), ("[::1]:0", "::1", 0), ("localhost:8080", "localhost", 8080)],
)
def test_the_view_is_served_where_the_operator_says(address: str, host: str, port: int) -> None:
    view = _serving_patient_view_on(HUB, address).patient_view
    assert (view.host, view.port, view.enabled, view.pin) == (host, port, True, "2468")


@pytest.mark.parametrize("address", ["8090", "127.0.0.1:", ":8090", "127.0.0.1:http", "127.0.0.1:70000"])
def test_an_address_that_is_none_is_one_line_and_nothing_starts(tmp_path: Path, address: str) -> None:
    (tmp_path / "hub.toml").write_text(BASE_TOML)
    result = CliRunner().invoke(
        app, ["edge", "run", "--config", str(tmp_path / "hub.toml"), "--patient-view", address]
    )
    assert result.exit_code == 2 and "--patient-view" in result.stderr
    assert not (tmp_path / "o.sqlite3").exists()


def test_an_unreadable_pin_file_stops_the_hub_at_start(tmp_path: Path) -> None:
    (tmp_path / "hub.toml").write_text(
        BASE_TOML + '[patient_view]\nenabled = true\npin_file = "no-such-pin"\n'
    )
    result = CliRunner().invoke(app, ["edge", "run", "--config", str(tmp_path / "hub.toml")])
    assert result.exit_code == 2 and "pin_file" in result.stderr
