"""Issue 20: an invited nurse follows her link in Chromium, sets her password, and logs in with it; the link
then says it has been used.

The pages are read in English (the language cookie, as the header's button sets it): the words are the
source's, whatever the state of the Danish catalogue; the Danish pages are test_danish_pages.py's."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from playwright.sync_api import Page, expect

from browser.helpers import LiveGateway, Screenshots
from browser.world import BrowserWorld
from gateway.administration.users import invite_user
from gateway.api.language import LANGUAGE_COOKIE
from gateway.settings import GatewaySettings

# The pictures the author looks at (H4); a test run leaves them where it always does too.
SHOTS = Path(os.environ.get("HOMEWATCH_H4_SHOTS", "/tmp/shots-h4"))
PASSWORD = "en lang og god adgangskode"


def _shoot(page: Page, screenshots: Screenshots, name: str) -> None:
    screenshots.take(page, name)
    Screenshots(SHOTS).take(page, name)


def test_an_invited_nurse_sets_her_password_and_logs_in(
    page: Page, gateway: LiveGateway[BrowserWorld], screenshots: Screenshots
) -> None:
    with psycopg.connect(gateway.database_url, autocommit=True) as conn:
        invited = invite_user(
            conn,
            GatewaySettings(database_url=gateway.database_url),
            "0101",
            "nurse",
            "ny.sygeplejerske@kk.example",
            teams=["0101-nord"],
            by="lis",
        )
    link = urlsplit(invited.url).path
    page.context.add_cookies([{"name": LANGUAGE_COOKIE, "value": "en", "url": gateway.url}])

    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose your password")
    expect(page.get_by_label("Username")).to_have_value("ny.sygeplejerske@kk.example")
    _shoot(page, screenshots, "invitation-form")
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill("en anden adgangskode")
    page.get_by_role("button", name="Set my password").click()
    expect(page.get_by_role("alert")).to_contain_text("The two passwords are not the same.")
    _shoot(page, screenshots, "invitation-error")

    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Set my password").click()
    expect(page.get_by_role("status")).to_contain_text("ny.sygeplejerske@kk.example")
    _shoot(page, screenshots, "invitation-done")

    page.get_by_role("link", name="Go to the login page").click()
    page.wait_for_url(re.compile(r"/login$"))
    page.get_by_label("Username").fill(invited.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{gateway.url}/")
    expect(page.locator("header.site-header")).to_contain_text("Nurse")
    menu = page.get_by_role("navigation", name="Main menu")
    expect(menu.get_by_role("link", name="Worklist")).to_have_attribute("aria-current", "page")

    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("This invitation has been used")
    _shoot(page, screenshots, "invitation-used")
