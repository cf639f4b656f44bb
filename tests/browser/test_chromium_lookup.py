"""Finding Chromium: the variable, Debian's path, the PATH; without one a skip, under CI a failure."""

from __future__ import annotations

import pytest

from browser import helpers
from browser.helpers import find_chromium, require_chromium


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOMEWATCH_CHROMIUM", raising=False)
    monkeypatch.setattr(helpers, "SYSTEM_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("PATH", "/nonexistent")


def test_the_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMEWATCH_CHROMIUM", "/opt/chromium/chrome")
    assert find_chromium() == "/opt/chromium/chrome"


@pytest.mark.usefixtures("no_chromium")
def test_without_chromium_the_tests_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert find_chromium() is None
    with pytest.raises(pytest.skip.Exception, match="no Chromium"):
        require_chromium()


@pytest.mark.usefixtures("no_chromium")
def test_without_chromium_ci_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser tests"):
        require_chromium()
