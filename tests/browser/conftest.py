"""Fixtures of the browser tests: a real gateway on a free port, Debian's Chromium, a fresh page per test.

- ``gateway`` (one per test module): its own database in the session's embedded PostgreSQL, migrated
  and seeded (``world.seed``: municipalities, care teams, nurses, a GP, an administrator, patients with
  scored readings); the web app of ``create_app`` with the default settings (Danish, Europe/Copenhagen),
  served by uvicorn through ``gateway.http_server`` as ``gateway serve`` does.
- ``browser`` (one per run of this package): Chromium found at ``HOMEWATCH_CHROMIUM``, /usr/bin/chromium
  or on the PATH, launched by Playwright (never a downloaded browser). None found: the tests skip with
  the reason, except under CI (``CI`` set), where that is a failure. Package-scoped, not
  session-scoped: the sync API keeps its event loop marked as running on the main thread while it is
  open, and every asyncio test after it would fail ("Cannot run the event loop while another loop is
  running"); the package ends before any other test runs.
- ``page``: a new browser context per test (no cookies carried over), a Danish workstation (locale
  da-DK, zone Europe/Copenhagen), a tablet held sideways (1024 x 768) unless the test sets the size.
- ``screenshots``: ``screenshots.take(page, "name")`` writes ``name.png`` to the test's tmp folder, or to
  ``HOMEWATCH_SCREENSHOTS`` when set (``HOMEWATCH_SCREENSHOTS=docs/img make test ARGS="-m browser"``
  renews the documentation's pictures).

Every test in this folder is marked ``browser`` (``-m "not browser"`` leaves them out).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from psycopg_pool import ConnectionPool

from browser.helpers import CHROMIUM_ARGS, LiveGateway, Screenshots, require_chromium
from browser.world import seed
from gateway.api.app import create_app
from gateway.http_server import start_http, stop_http
from gateway.settings import GatewaySettings
from gateway.store.migrate import migrate

HERE = Path(__file__).parent
# Seconds a server has to start on a loaded 2-core machine.
SERVER_START_S = 30.0
# Milliseconds Playwright waits for an element or a navigation before it fails the test.
PAGE_TIMEOUT_MS = 15_000
TABLET_LANDSCAPE = {"width": 1024, "height": 768}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    executable = require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _database(admin_url: str, name: str) -> str:
    # The embedded server listens on a Unix socket: its URL ends in '/postgres?host=...'.
    base, _, query = admin_url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="module")
def gateway(pg_admin_url: str) -> Iterator[LiveGateway]:
    name = f"browser_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    database_url = _database(pg_admin_url, name)
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            migrate(conn)
            world = seed(conn, datetime.now(UTC))
        settings = GatewaySettings(database_url=database_url, secret_key=f"browser-tests-{uuid.uuid4().hex}")
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


@pytest.fixture
def page(browser: Browser, gateway: LiveGateway) -> Iterator[Page]:
    context = browser.new_context(
        base_url=gateway.url,
        locale="da-DK",
        timezone_id="Europe/Copenhagen",
        viewport=TABLET_LANDSCAPE,
    )
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Screenshots:
    folder = os.environ.get("HOMEWATCH_SCREENSHOTS")
    return Screenshots(Path(folder) if folder else tmp_path / "screenshots")
