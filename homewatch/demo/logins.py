"""How a person gets into the running demo: the logins table, and bearer tokens for its FHIR API.

The demo's gateway signs sessions and tokens with a secret of its own, new on every run: a token signed
with any other secret is refused, so ``homewatch gateway token`` needs this run's secret. The demo writes
it to ``secret_key`` in its working folder (mode 0600: only its owner reads it; the folder is a private
temporary one unless ``--data-dir`` names another) and prints the one command line that mints a nurse's
token with it (``homewatch gateway token`` reads the secret from ``HOMEWATCH_SECRET_KEY``), and a
``curl`` that uses the token. A temporary folder and its secret are deleted when the demo stops, and its
tokens stop working with it.

Left to others: the users themselves (``provision``), how tokens are signed (``gateway.api.auth``).
"""

from __future__ import annotations

import os
import secrets
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gateway.store import access
from homewatch.demo.provision import Login

SECRET_FILE = "secret_key"
# secrets.token_urlsafe(32): 32 random bytes, what gateway.settings asks of a secret outside development.
_SECRET_BYTES = 32
_ROLE_NAMES = {
    access.NURSE: "nurse",
    access.GP: "GP",
    access.MUNICIPALITY_ADMIN: "municipality admin",
    access.SYSTEM_ADMIN: "system administrator",
}


def write_secret(folder: Path) -> tuple[str, Path]:
    """A new random signing secret, written to ``folder/secret_key`` readable by its owner only."""
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    path = folder / SECRET_FILE
    # Created 0600 (never readable by others, not even for a moment), and 0600 again when it existed.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, f"{secret}\n".encode())
    finally:
        os.close(fd)
    return secret, path


def homewatch_command() -> str:
    """The ``homewatch`` beside this Python (the venv's), so the printed line works without activating it."""
    beside = Path(sys.executable).with_name("homewatch")
    return str(beside) if beside.exists() else "homewatch"


def token_command(login: Login, secret_path: Path) -> str:
    """A shell line that puts a token for ``login``'s user, signed with the demo's secret, in $TOKEN."""
    mint = [
        homewatch_command(),
        "gateway",
        "token",
        "--role",
        login.role,
        "--municipality",
        login.municipality_id,
        "--subject",
        login.username,
    ]
    secret = f'HOMEWATCH_SECRET_KEY="$(cat {shlex.quote(str(secret_path))})"'
    return f"TOKEN=$({secret} {shlex.join(mint)})"


def logins_table(logins: list[Login], url: str) -> Table:
    table = Table(
        title=f"Log in at {url}/login  (SYNTHETIC demo data, not for clinical use)", title_justify="left"
    )
    for column in ("role", "municipality", "sees", "username", "password", "e-mail"):
        table.add_column(column, no_wrap=column in ("username", "password"))
    for login in logins:
        role = _ROLE_NAMES.get(login.role, login.role)
        table.add_row(
            role, login.municipality, login.sees, login.username, login.password, login.email or "-"
        )
    return table


@dataclass(frozen=True, slots=True)
class PatientViewLogin:
    """A home's patient view: where the hub serves it, its household PIN, whose it is."""

    url: str
    pin: str
    patient_id: str
    name: str
    hub_id: str


def patient_views_table(views: list[PatientViewLogin], shown: int = 5) -> Table:
    """The first ``shown`` homes' patient views (every home serves one; the rest are alike)."""
    more = f"; {len(views) - shown} more homes serve one too" if len(views) > shown else ""
    table = Table(
        title=f"The patient view each hub serves on the home network (PIN-protected, Danish{more})",
        title_justify="left",
    )
    for column in ("patient view", "PIN", "patient", "hub"):
        table.add_column(column, no_wrap=True)
    for view in views[:shown]:
        table.add_row(view.url, view.pin, f"{view.name} ({view.patient_id})", view.hub_id)
    return table


def print_logins(
    console: Console,
    logins: list[Login],
    url: str,
    secret_path: Path,
    views: list[PatientViewLogin] | None = None,
) -> None:
    """The logins table, the homes' patient views, then how to get a bearer token for the FHIR API (as
    the first nurse)."""
    console.print(logins_table(logins, url))
    if views:
        console.print(patient_views_table(views))
    nurse = next((login for login in logins if login.role == access.NURSE), None)
    if nurse is None:
        return
    console.print(
        f"FHIR API as {nurse.username}: a token signed with this demo's secret ({secret_path}, readable by "
        "you only; tokens signed with any other secret are refused):",
        markup=False,
        highlight=False,
    )
    # soft_wrap: a command line must not be broken into lines by the console's width.
    for line in (
        token_command(nurse, secret_path),
        f'curl -H "Authorization: Bearer $TOKEN" {url}/fhir/Patient',
    ):
        console.print(Text(f"  {line}"), soft_wrap=True, highlight=False)
