"""Alerts live in a real browser, in Danish: an alert raised while the GP has her inbox open appears in it
without a reload (the list, the header's badge, a polite notice), and a nurse who acknowledges an alert
with a note sees it leave the open list, while the GP's open inbox loses it live too.

One gateway for the module (``alert_world.seed_alert_world``: the browser tests' world, everyone with an
e-mail address, and alerts for Ole and Inge besides the scorer's own). Alerts are raised from the test as
every scorer raises them (``record_trigger``, committed). Each test raises its own and looks only at
those, so none depends on another having run. With ``HOMEWATCH_SCREENSHOTS=docs/img`` the tests write
the documentation's pictures (alerts-inbox-da.png, alert-da.png, alerts-inbox-phone-da.png).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, expect

from browser.alert_world import AlertWorld, missing_blood_pressure, raise_alert, seed_alert_world, spo2_drop
from browser.helpers import LiveGateway, Screenshots, horizontal_overflow, log_in, serve_world
from gateway.alerts.lifecycle import Trigger

Gateway = LiveGateway[AlertWorld]
PHONE: ViewportSize = {"width": 390, "height": 844}
TABLET_LANDSCAPE: ViewportSize = {"width": 1024, "height": 768}


@pytest.fixture(scope="module")
def gateway(pg_admin_url: str) -> Iterator[Gateway]:
    """This module's own gateway, over the alert world (instead of ``world.seed``)."""
    with serve_world(pg_admin_url, seed_alert_world) as live:
        yield live


def raise_now(gateway: Gateway, trigger: Callable[[datetime, str], Trigger], patient_id: str) -> int:
    """Raise ``trigger``'s alert for the patient now, committed; its id."""
    now = datetime.now(UTC)
    with psycopg.connect(gateway.database_url, autocommit=True) as conn:
        return raise_alert(conn, trigger(now, patient_id), now)


def following(page: Page) -> None:
    """Wait until the page's live stream is open and caught up (alerts-live.js marks #alert-live)."""
    expect(page.locator("#alert-live")).to_have_attribute("data-live", "on")


def badge_count(page: Page) -> int:
    return int(page.locator("#alert-count").inner_text())


def test_a_new_alert_appears_in_the_gps_open_inbox_without_a_reload(
    page: Page, gateway: Gateway, screenshots: Screenshots
) -> None:
    world = gateway.world.base
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if _csp_error(m) else None)
    log_in(page, world.gp.username, world.password, "/alerts")
    expect(page.get_by_role("heading", level=1)).to_have_text("Alarmer")
    following(page)
    before = badge_count(page)
    page.evaluate("window.stillTheSamePage = true")

    alert_id = raise_now(gateway, spo2_drop, "p-jens")  # the GP's patient in team Syd

    new_row = page.locator(f'#alert-list .alert-row[data-alert-id="{alert_id}"]')
    expect(new_row).to_be_visible()
    expect(new_row).to_contain_text("Jens Nielsen")
    expect(new_row).to_contain_text("KOL: SpO₂ under borgerens vanlige niveau")
    expect(page.locator("#alert-count")).to_have_text(str(before + 1))
    notice = page.get_by_role("status").filter(has_text="Ny alarm")
    expect(notice).to_have_text("Ny alarm: Jens Nielsen")
    expect(page.locator("#alert-live")).to_have_attribute("aria-live", "polite")
    assert page.evaluate("window.stillTheSamePage") is True  # no reload: the script did it
    assert refused == []
    screenshots.take(page, "alerts-inbox-da")


def test_the_nurse_acknowledges_with_a_note_and_the_alert_leaves_the_open_lists(
    browser: Browser, page: Page, gateway: Gateway, screenshots: Screenshots
) -> None:
    world = gateway.world.base
    # The GP follows her inbox in another browser meanwhile.
    gp_context = browser.new_context(
        base_url=gateway.url,
        locale="da-DK",
        timezone_id="Europe/Copenhagen",
        viewport={"width": 1024, "height": 768},
    )
    try:
        gp_page = gp_context.new_page()
        log_in(gp_page, world.gp.username, world.password, "/alerts")
        following(gp_page)

        alert_id = raise_now(gateway, spo2_drop, "p-karen")  # team Nord's patient, and the GP's
        gp_row = gp_page.locator(f'#alert-list .alert-row[data-alert-id="{alert_id}"]')
        expect(gp_row).to_be_visible()
        gp_badge = badge_count(gp_page)
        gp_page.evaluate("window.stillTheSamePage = true")

        log_in(page, world.nurse.username, world.password, "/alerts")
        following(page)
        nurse_row = page.locator(f'#alert-list .alert-row[data-alert-id="{alert_id}"]')
        expect(nurse_row).to_contain_text("Karen Holm")
        badge = badge_count(page)
        nurse_row.locator(f'a[href^="/alerts/{alert_id}"]').click()
        page.wait_for_url(re.compile(rf"/alerts/{alert_id}(\?|$)"))
        expect(page.get_by_role("heading", level=1)).to_contain_text("Karen Holm")

        note = "Ringet til Karen: mere åndenød i nat. Hjemmebesøg kl. 14 i dag."
        page.locator(f"#ack-note-{alert_id}").fill(note)
        page.locator(".acknowledge-form button[type=submit]").click()

        # Back in her open list, which no longer has it; the acknowledged tab does.
        page.wait_for_url(re.compile(r"/alerts\?tab=open&done="))
        expect(page.locator("#alert-list")).to_have_attribute("data-tab", "open")
        expect(page.locator(f'#alert-list .alert-row[data-alert-id="{alert_id}"]')).to_have_count(0)
        expect(page.locator("#alert-count")).to_have_text(str(badge - 1))
        page.locator('.alert-tabs a[data-tab="acknowledged"]').click()
        acknowledged_row = page.locator(f'#alert-list .alert-row[data-alert-id="{alert_id}"]')
        expect(acknowledged_row).to_be_visible()

        # The alert's page: its history, with her note.
        acknowledged_row.locator(f'a[href^="/alerts/{alert_id}"]').click()
        page.wait_for_url(re.compile(rf"/alerts/{alert_id}(\?|$)"))
        acknowledged = page.locator('.alert-history li[data-action="acknowledged"]')
        expect(acknowledged).to_contain_text(note)
        expect(acknowledged).to_contain_text(world.nurse.full_name)
        expect(page.locator('.alert-history li[data-action="raised"]')).to_have_count(1)
        screenshots.take(page, "alert-da")

        # The GP's open inbox lost it live, and her badge counts one less, without a reload.
        expect(gp_row).to_have_count(0)
        expect(gp_page.locator("#alert-count")).to_have_text(str(gp_badge - 1))
        assert gp_page.evaluate("window.stillTheSamePage") is True
    finally:
        gp_context.close()


def test_the_inbox_on_a_phone(page: Page, gateway: Gateway, screenshots: Screenshots) -> None:
    world = gateway.world.base
    page.set_viewport_size(PHONE)
    log_in(page, world.nurse.username, world.password, "/alerts")
    following(page)
    expect(page.locator("#alert-list .alert-row").first).to_be_visible()
    screenshots.take(page, "alerts-inbox-phone-da")
    assert horizontal_overflow(page) == 0  # nothing to scroll sideways: the menu and the list fit


def test_without_javascript_the_inbox_works_and_nothing_is_live(browser: Browser, gateway: Gateway) -> None:
    world = gateway.world.base
    context = browser.new_context(base_url=gateway.url, locale="da-DK", java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, world.gp.username, world.password, "/alerts")
        expect(page.locator("#alert-list .alert-row").first).to_be_visible()
        expect(page.locator("#alert-live")).not_to_have_attribute("data-live", "on")
        count = badge_count(page)
        raise_now(gateway, missing_blood_pressure, "p-jens")
        page.reload()  # what a page without the script needs
        expect(page.locator("#alert-count")).to_have_text(str(count + 1))
    finally:
        context.close()


def _csp_error(message: ConsoleMessage) -> bool:
    return message.type == "error" and "Content Security Policy" in message.text
