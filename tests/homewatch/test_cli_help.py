"""Every command's ``--help`` shows each option's whole help text and its default.

Typer renders help through Rich markup, which takes ``[...]`` for a style tag: a help text written as
"... here [default: a temporary folder]." came out as "... here ." and the default was lost. Defaults
that are no plain value are declared with ``show_default="..."``, which Typer prints itself.
"""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from homewatch.cli import app

runner = CliRunner()


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every leaf command under ``command`` with the words that call it."""
    if isinstance(command, TyperGroup):
        return [
            found for name, sub in sorted(command.commands.items()) for found in _commands(sub, (*path, name))
        ]
    return [(path, command)]


COMMANDS = _commands(typer.main.get_command(app))


def _flat(text: str) -> str:
    """The help as one line of words: Rich's boxes and wrapping removed."""
    return " ".join(text.replace("│", " ").split())


def _expected_default(param: TyperOption) -> str | None:
    """What ``--help`` must say of the default of ``param``, or None when it has none to show."""
    if isinstance(param.show_default, str):
        return f"[default: ({param.show_default})]"
    if param.default in (None, "") or param.is_flag or param.required:
        return None
    return f"[default: {param.default}]"


def test_every_command_is_found() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"demo", "edge run", "edge decode", "gateway serve", "gateway token", "models news2"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(path) for path, _ in COMMANDS])
def test_help_shows_every_help_text_and_default(path: tuple[str, ...], command: Any) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"})
    assert result.exit_code == 0, result.output
    shown = _flat(result.output)
    for param in command.params:
        help_text = getattr(param, "help", None)
        if help_text:
            assert _flat(help_text) in shown, param.name
        if isinstance(param, TyperOption) and param.name != "help":
            default = _expected_default(param)
            if default is not None:
                assert default in shown, param.name
