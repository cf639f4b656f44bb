"""docs/configuration.md lists every setting of the gateway with its real default, and every command-line
option that reads a variable: the class and the commands are read when the test runs, so a setting or
an option added without its line in the document fails here."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import pytest
import typer.main

from gateway.settings import GatewaySettings
from homewatch.cli import app

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
SETTINGS_SECTION = "## The gateway's settings"
OPTIONS_SECTION = "## Command-line options read from the environment"
# | `HOMEWATCH_NAME` | default | what it does |
ROW = re.compile(r"^\| `(HOMEWATCH_[A-Z0-9_]+)` \| (.*?) \| (.*) \|$")
UNSET = "unset"


def section(heading: str) -> list[tuple[str, str, str]]:
    """The table rows (variable, second cell, third cell) under ``heading``, up to the next heading."""
    text = DOC.read_text()
    assert heading in text, f"docs/configuration.md lost its section {heading!r}"
    body = text.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in body.splitlines():
        match = ROW.match(line)
        if match:
            rows.append((match[1], match[2].strip(), match[3].strip()))
    return rows


def variable(field: str) -> str:
    return f"HOMEWATCH_{field.upper()}"


def option_variables() -> dict[str, set[str]]:
    """Every environment variable a `homewatch` option reads, with the commands that read it."""
    found: dict[str, set[str]] = {}

    # Typer builds its commands on a copy of click of its own: read them by their attributes.
    def walk(command: Any, path: tuple[str, ...]) -> None:
        for param in command.params:
            names = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or ())
            for name in names:
                found.setdefault(name, set()).add(" ".join(path))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


def test_the_settings_table_lists_exactly_the_settings_class_fields() -> None:
    rows = section(SETTINGS_SECTION)
    documented = [name for name, _, _ in rows]
    fields = [variable(field) for field in GatewaySettings.model_fields]
    assert len(documented) == len(set(documented)), "a variable is listed twice"
    missing = sorted(set(fields) - set(documented))
    stale = sorted(set(documented) - set(fields))
    assert missing == [], f"settings without a line in docs/configuration.md: {missing}"
    assert stale == [], f"lines in docs/configuration.md for settings that do not exist: {stale}"
    assert documented == fields, "keep the table in the class's order"
    assert all(len(what) > 20 for _, _, what in rows), "every setting says what it does"


@pytest.mark.parametrize("field", list(GatewaySettings.model_fields))
def test_each_documented_default_is_the_settings_default(field: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A default written in the table, put into the environment, gives the class's own default."""
    defaults = {name: default for name, default, _ in section(SETTINGS_SECTION)}
    name = variable(field)
    written = defaults.get(name)
    assert written is not None, f"{name} is not in docs/configuration.md"
    info = GatewaySettings.model_fields[field]
    default = info.get_default(call_default_factory=True)
    if written == UNSET:
        assert default is None, f"{name}: documented as unset, but its default is {default!r}"
        return
    assert default is not None, f"{name}: the default is unset, the document says {written}"
    literal = re.fullmatch(r"`([^`]*)`", written)
    assert literal, f"{name}: a default is `code` or {UNSET}, not {written!r}"

    for other in GatewaySettings.model_fields:
        monkeypatch.delenv(variable(other), raising=False)
    # Production needs a real secret; any other setting takes the documented text as it is.
    monkeypatch.setenv("HOMEWATCH_SECRET_KEY", secrets.token_urlsafe(32))
    monkeypatch.setenv(name, literal[1])
    assert getattr(GatewaySettings(), field) == default


def test_the_options_table_lists_every_variable_an_option_reads() -> None:
    documented = [name for name, _, _ in section(OPTIONS_SECTION)]
    read = option_variables()
    assert sorted(documented) == sorted(read), (
        f"options read {sorted(read)}; docs/configuration.md lists {sorted(documented)}"
    )
    # Each line names at least one command that reads the variable, by its words.
    for name, commands, _ in section(OPTIONS_SECTION):
        assert any(command.split()[-1] in commands for command in read[name]), name
