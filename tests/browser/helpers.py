"""What browser tests share besides fixtures: finding Chromium, the gateway, screenshots, logging in."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from browser.world import BrowserWorld

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


@dataclass(frozen=True, slots=True)
class LiveGateway:
    """A running gateway: its base URL, what its database holds, and the database's URL."""

    url: str
    world: BrowserWorld
    database_url: str


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
