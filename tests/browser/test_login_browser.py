"""Logging in and out in a real browser: Danish first, English on request, errors, keyboard only, widths."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from browser.helpers import LiveGateway, Screenshots, horizontal_overflow, log_in
from browser.world import Person

PHONE = {"width": 375, "height": 740}
TABLET_UPRIGHT = {"width": 768, "height": 1024}


def _named(person: Person) -> re.Pattern[str]:
    """The header names the user: by full name where the session's user carries one, else username."""
    return re.compile(f"{re.escape(person.full_name)}|{re.escape(person.username)}")


def test_log_in_in_danish_switch_to_english_and_log_out(
    page: Page, gateway: LiveGateway, screenshots: Screenshots
) -> None:
    world = gateway.world
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))  # no session: the login page
    expect(page.locator("html")).to_have_attribute("lang", "da")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log ind")
    expect(page.get_by_label("Brugernavn")).to_be_visible()
    expect(page.get_by_label("Adgangskode")).to_be_visible()
    screenshots.take(page, "login-da")

    page.get_by_label("Brugernavn").fill(world.nurse.username)
    page.get_by_label("Adgangskode").fill(world.password)
    page.get_by_role("button", name="Log ind").click()
    page.wait_for_url(f"{gateway.url}/")
    header = page.locator("header.site-header")
    expect(header).to_contain_text(_named(world.nurse))
    expect(header).to_contain_text("Sygeplejerske")
    menu = page.get_by_role("navigation", name="Hovedmenu")
    expect(menu.get_by_role("link", name="Arbejdsliste")).to_have_attribute("aria-current", "page")
    expect(menu.get_by_role("link", name="Ugentlig gennemgang")).to_have_attribute("href", "/review")
    expect(menu.get_by_role("link")).to_have_count(3)  # a nurse has no audit log
    alerts = menu.get_by_role("link", name=re.compile(r"^Alarmer \d+ ikke kvitteret$"))
    expect(alerts).to_have_attribute("href", "/alerts")  # with her patients' alerts not yet acknowledged
    screenshots.take(page, "header-da", header)

    page.get_by_role("button", name="English").click()
    page.wait_for_load_state()
    expect(page).to_have_url(f"{gateway.url}/")  # the same page, now in English
    expect(page.locator("html")).to_have_attribute("lang", "en")
    english_menu = page.get_by_role("navigation", name="Main menu")
    expect(english_menu.get_by_role("link", name="Worklist")).to_be_visible()
    expect(header).to_contain_text("Nurse")
    expect(page.get_by_role("button", name="Dansk")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")  # the choice outlives the session
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next="))  # the session is gone


def test_a_wrong_password_is_told_above_the_form(
    page: Page, gateway: LiveGateway, screenshots: Screenshots
) -> None:
    page.goto("/login")
    page.get_by_label("Brugernavn").fill(gateway.world.nurse.username)
    page.get_by_label("Adgangskode").fill("not the password")
    with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as answer:
        page.get_by_role("button", name="Log ind").click()
    assert answer.value.status == 401
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Der er et problem")
    expect(summary).to_contain_text("Forkert brugernavn eller adgangskode.")
    expect(page.get_by_label("Brugernavn")).to_have_attribute("aria-describedby", "login-error")
    screenshots.take(page, "login-error-da")


def test_log_in_with_the_keyboard_only(page: Page, gateway: LiveGateway) -> None:
    world = gateway.world
    page.goto("/login")
    expect(page.get_by_label("Brugernavn")).to_be_focused()  # autofocus: type straight away
    page.keyboard.type(world.nurse.username)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Adgangskode")).to_be_focused()
    page.keyboard.type(world.password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{gateway.url}/")

    page.keyboard.press("Tab")  # the first stop is the skip link, shown while it has focus
    skip = page.get_by_role("link", name="Gå til sidens indhold")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    outline = skip.evaluate("e => [getComputedStyle(e).outlineStyle, getComputedStyle(e).outlineWidth]")
    assert outline == ["solid", "3px"]  # a visible focus ring
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()

    page.reload()  # from the top again: skip link, brand, language, log out, in reading order
    for name in ("Gå til sidens indhold", "homewatch"):
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name=name)).to_be_focused()
    for name in ("Sprog: English", "Log ud"):
        page.keyboard.press("Tab")
        expect(page.get_by_role("button", name=name)).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/login$"))


def test_a_gp_sees_the_role_in_words(page: Page, gateway: LiveGateway) -> None:
    log_in(page, gateway.world.gp.username, gateway.world.password)
    header = page.locator("header.site-header")
    expect(header).to_contain_text("Praktiserende læge")
    expect(header).to_contain_text(_named(gateway.world.gp))


def test_login_page_and_header_fit_a_tablet_and_a_phone(
    page: Page, gateway: LiveGateway, screenshots: Screenshots
) -> None:
    for name, size in (("tablet", TABLET_UPRIGHT), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.goto("/login")
        assert horizontal_overflow(page) == 0, name
        expect(page.get_by_role("button", name="Log ind")).to_be_in_viewport()
    screenshots.take(page, "login-phone-da")
    log_in(page, gateway.world.nurse.username, gateway.world.password)
    for name, size in (("tablet", TABLET_UPRIGHT), ("phone", PHONE)):
        page.set_viewport_size(size)
        header_overflow = page.locator("header.site-header").evaluate("e => e.scrollWidth - e.clientWidth")
        assert header_overflow == 0, name
        expect(page.get_by_role("button", name="Log ud")).to_be_visible()
    screenshots.take(page, "header-phone-da", page.locator("header.site-header"))
