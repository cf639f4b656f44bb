"""Fixtures of the browser tests: a real gateway on a free port, Debian's Chromium, a fresh page per test.

- ``gateway`` (one per test module): its own database in the session's embedded PostgreSQL, migrated
  and seeded (``world.seed``: municipalities, care teams, nurses, a GP, an administrator, patients with
  scored readings); the web app of ``create_app`` with the default settings (Danish, Europe/Copenhagen),
  served by uvicorn through ``gateway.http_server`` as ``gateway serve`` does (``helpers.serve_world``).
  A module that needs another world overrides ``gateway`` with its own seed function
  (``test_weekly_review_browser.py``: ``review_world.seed_review_world``).
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from browser.helpers import CHROMIUM_ARGS, LiveGateway, Screenshots, require_chromium, serve_world
from browser.world import BrowserWorld, seed

HERE = Path(__file__).parent
# Milliseconds Playwright waits for an element or a navigation before it fails the test.
PAGE_TIMEOUT_MS = 15_000
TABLET_LANDSCAPE: ViewportSize = {"width": 1024, "height": 768}


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


@pytest.fixture(scope="module")
def gateway(pg_admin_url: str) -> Iterator[LiveGateway[BrowserWorld]]:
    with serve_world(pg_admin_url, seed) as live:
        yield live


@pytest.fixture
def page(browser: Browser, gateway: LiveGateway[Any]) -> Iterator[Page]:
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
