"""The systemd units of deploy/systemd: systemd accepts each (the gateway's, the nightly backup's, the
hub's); the gateway's command line is a real `homewatch gateway serve` whose options exist, its guards
refuse a server without a database or broker URL, and it is hardened as the hub's unit is; the backup
runs the shipped script with the gateway's settings."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from homewatch.cli import app

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNIT = DEPLOY / "systemd" / "homewatch-gateway.service"
HUB_UNIT = DEPLOY / "systemd" / "homewatch-hub.service"
# The homewatch command of the environment running the tests (the unit names /opt/homewatch/.venv's).
HOMEWATCH = Path(sys.executable).parent / "homewatch"
# The hub's unit keys that are its own business: Bluetooth. Every other hardening line must be the same.
HUB_ONLY = {"SupplementaryGroups", "RestrictAddressFamilies"}
HARDENING_FROM = "NoNewPrivileges"


def unit_lines(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, in order; keys may repeat (ExecStartPre)."""
    section = ""
    lines: list[tuple[str, str, str]] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        lines.append((section, key.strip(), value.strip()))
    return lines


def values(path: Path, key: str) -> list[str]:
    return [value for _, k, value in unit_lines(path) if k == key]


def hardening(path: Path) -> dict[str, str]:
    """The [Service] lines from NoNewPrivileges on (both units keep their hardening together)."""
    service = [(k, v) for section, k, v in unit_lines(path) if section == "Service"]
    start = [k for k, _ in service].index(HARDENING_FROM)
    return dict(service[start:])


# Where the units expect the installed project, and where it is in this checkout.
INSTALLED = {"/opt/homewatch/.venv/bin/homewatch": str(HOMEWATCH), "/opt/homewatch/src/": f"{DEPLOY.parent}/"}


@pytest.mark.parametrize(
    "units",
    [
        ["homewatch-gateway.service"],
        ["homewatch-backup.service", "homewatch-backup.timer"],
        ["homewatch-hub.service"],
    ],
    ids=["gateway", "backup", "hub"],
)
def test_systemd_analyze_verify_accepts_the_units(units: list[str], tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    # verify checks that each ExecStart program exists: point it at this checkout's.
    for unit in units:
        text = (DEPLOY / "systemd" / unit).read_text()
        for installed, here in INSTALLED.items():
            text = text.replace(f"ExecStart={installed}", f"ExecStart={here}")
        (tmp_path / unit).write_text(text)
    done = subprocess.run(
        [analyze, "verify", *(str(tmp_path / unit) for unit in units)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # An unknown key or a value systemd cannot parse is only a warning (exit code 0): read the output.
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if any(u in line for u in units)]
    assert done.returncode == 0, done.stdout + done.stderr
    assert complaints == []


def test_the_backup_runs_the_shipped_script_with_the_gateways_settings() -> None:
    backup = DEPLOY / "systemd" / "homewatch-backup.service"
    [exec_start] = values(backup, "ExecStart")
    script, out_dir = shlex.split(exec_start)
    assert script.replace("/opt/homewatch/src/", f"{DEPLOY.parent}/") == str(
        DEPLOY / "backup" / "homewatch-backup.sh"
    )
    assert values(backup, "ReadWritePaths") == [out_dir]
    assert values(backup, "EnvironmentFile") == values(UNIT, "EnvironmentFile")
    assert values(backup, "User") == values(UNIT, "User")


def test_exec_start_is_homewatch_gateway_serve_with_options_that_exist() -> None:
    [exec_start] = values(UNIT, "ExecStart")
    argv = shlex.split(exec_start)
    assert argv[0] == "/opt/homewatch/.venv/bin/homewatch"
    assert argv[1:3] == ["gateway", "serve"]
    options = [arg for arg in argv[3:] if arg.startswith("--")]

    shown = subprocess.run(
        [str(HOMEWATCH), "gateway", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    assert shown.returncode == 0, shown.stderr
    for option in options:
        assert f"{option} " in shown.stdout, f"{option} is not an option of `homewatch gateway serve`"

    # The command's own parser takes the arguments (names, types and ranges) as they are.
    group = typer.main.get_command(app)
    serve = group.commands["gateway"].commands["serve"]  # type: ignore[attr-defined]
    with serve.make_context("serve", argv[3:]) as ctx:
        assert ctx.params["host"] == "127.0.0.1"
        assert ctx.params["port"] == 8000
        assert ctx.params["log_level"] in {"DEBUG", "INFO", "WARNING", "ERROR"}


@pytest.mark.parametrize("variable", ["HOMEWATCH_DATABASE_URL", "HOMEWATCH_MQTT_URL"])
def test_the_unit_refuses_to_start_without_database_or_broker_url(variable: str) -> None:
    """Without them `gateway serve` would start an embedded database or broker: the guards stop it."""
    guards = [shlex.split(line.replace("$$", "$")) for line in values(UNIT, "ExecStartPre")]
    [guard] = [argv for argv in guards if variable in argv[-1]]
    given = {"PATH": os.environ["PATH"], "HOMEWATCH_DATABASE_URL": "postgresql://db/homewatch"}
    given["HOMEWATCH_MQTT_URL"] = "mqtts://broker.example:8883"

    assert subprocess.run(guard, env=given, capture_output=True, timeout=10).returncode == 0
    for missing in ({k: v for k, v in given.items() if k != variable}, {**given, variable: ""}):
        refused = subprocess.run(guard, env=missing, capture_output=True, text=True, timeout=10)
        assert refused.returncode == 2
        assert refused.stderr.startswith(f"{variable} is not set")


def test_the_unit_runs_unprivileged_with_its_environment_file_and_restarts() -> None:
    assert values(UNIT, "User") == ["homewatch"]
    assert values(UNIT, "EnvironmentFile") == ["/etc/homewatch/gateway.env"]
    assert values(UNIT, "Restart") == ["on-failure"]
    [after] = values(UNIT, "After")
    assert {"postgresql.service", "mosquitto.service"} <= set(after.split())
    assert values(UNIT, "CapabilityBoundingSet") == [""]


def test_the_unit_is_hardened_as_the_hubs_unit() -> None:
    hub = {k: v for k, v in hardening(HUB_UNIT).items() if k not in HUB_ONLY}
    gateway = hardening(UNIT)
    assert {k: gateway.get(k) for k in hub} == hub
    # No Bluetooth: the gateway speaks to sockets only.
    assert gateway["RestrictAddressFamilies"].split() == ["AF_UNIX", "AF_INET", "AF_INET6"]
