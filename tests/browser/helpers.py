"""What browser tests share besides fixtures: finding Chromium, the gateway, screenshots, logging in."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import psycopg
import pytest
from playwright.sync_api import Locator, Page, expect
from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from gateway.api.app import create_app
from gateway.http_server import start_http, stop_http
from gateway.settings import GatewaySettings
from gateway.store.migrate import migrate

SYSTEM_CHROMIUM = "/usr/bin/chromium"
# Headless in a container as root: no sandbox (it needs user namespaces), no GPU, and nothing that
# phones home or updates itself while a test runs.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NO_CHROMIUM = (
    "no Chromium: install it (apt-get install -y chromium, which `make install` does as root) "
    "or set HOMEWATCH_CHROMIUM"
)


def find_chromium() -> str | None:
    """The Chromium to drive: ``HOMEWATCH_CHROMIUM``, Debian's, or one on the PATH; None when none."""
    named = os.environ.get("HOMEWATCH_CHROMIUM")
    if named:
        return named
    if os.access(SYSTEM_CHROMIUM, os.X_OK):
        return SYSTEM_CHROMIUM
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    """``find_chromium``'s answer; without one the test skips, or fails under CI (``CI`` set)."""
    executable = find_chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail(f"{NO_CHROMIUM}; CI must run the browser tests")
        pytest.skip(NO_CHROMIUM)
    return executable


# Seconds a server has to start on a loaded 2-core machine.
SERVER_START_S = 30.0
World = TypeVar("World")


@dataclass(frozen=True, slots=True)
class LiveGateway(Generic[World]):
    """A running gateway: its base URL, what its database holds (``world``), and the database's URL."""

    url: str
    world: World
    database_url: str


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _database(admin_url: str, name: str) -> str:
    # The embedded server listens on a Unix socket: its URL ends in '/postgres?host=...'.
    base, _, query = admin_url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


@contextmanager
def serve_world(
    pg_admin_url: str, seed: Callable[[psycopg.Connection[Any], datetime], World]
) -> Iterator[LiveGateway[World]]:
    """A new database in the embedded PostgreSQL, migrated and filled by ``seed(conn, now)``, served by
    ``create_app`` (default settings: Danish, Europe/Copenhagen) through uvicorn on a free port; the
    database is dropped afterwards."""
    name = f"browser_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    database_url = _database(pg_admin_url, name)
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            migrate(conn)
            world = seed(conn, datetime.now(UTC))
        secret = SecretStr(f"browser-tests-{uuid.uuid4().hex}")
        settings = GatewaySettings(database_url=database_url, secret_key=secret)
        pool: ConnectionPool[Any]
        with ConnectionPool(database_url, min_size=1, max_size=4, open=True) as pool:
            port = _free_port()
            server, thread = start_http(create_app(settings, pool), "127.0.0.1", port, SERVER_START_S)
            try:
                yield LiveGateway(f"http://127.0.0.1:{port}", world, database_url)
            finally:
                stop_http(server, thread)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Screenshots:
    """Writes full-page PNGs of pages into one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def take(self, page: Page, name: str, part: Locator | None = None) -> Path:
        """Save the whole of ``page`` (or only ``part`` of it) as ``<folder>/<name>.png``; return the path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{name}.png"
        if part is None:
            page.screenshot(path=str(path), full_page=True)
        else:
            part.screenshot(path=str(path))
        return path


def log_in(page: Page, username: str, password: str, path: str = "/") -> None:
    """Log in through the form (in whichever language it is shown) and wait for ``path``."""
    page.goto(f"/login?next={path}")
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_url(f"**{path}")
    expect(page.locator("form[action='/logout']")).to_be_visible()


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the window (0: nothing to scroll sideways)."""
    overflow: int = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    return overflow
