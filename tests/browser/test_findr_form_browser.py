"""The early-detection form in a real browser (issue 19): a nurse opens it from the patient page, picks
answers by their labels, is shown the error beside the time she left empty, saves, and sees the changes
in words on the patient page. Ids, not words, find the elements: the check holds in Danish and English."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from browser.helpers import LiveGateway, Screenshots, log_in
from browser.world import BrowserWorld


def test_a_nurse_records_an_early_detection_observation_from_the_patient_page(
    page: Page, gateway: LiveGateway[BrowserWorld], screenshots: Screenshots
) -> None:
    world = gateway.world
    log_in(page, world.nurse.username, world.password, "/patients/p-karen")
    page.locator("a[href='/patients/p-karen/early-detection']").click()
    page.wait_for_url(re.compile(r"/patients/p-karen/early-detection$"))
    breathing = page.locator("fieldset").filter(has=page.locator("#item-breathing-seen"))
    expect(breathing.locator("legend")).to_be_visible()
    expect(page.locator("#item-breathing-unchecked")).to_be_checked()  # not checked until she says so
    breathing.locator("label[for='item-breathing-seen']").click()  # the label picks its radio
    expect(page.locator("#item-breathing-seen")).to_be_checked()
    page.locator("label[for='item-sleep-none']").click()
    expect(page.locator("#effective")).not_to_have_value("")  # now, by default
    page.locator("#effective").fill("")
    page.locator("form[action$='/early-detection'] button[type=submit]").click()
    expect(page.locator(".error-summary a[href='#effective']")).to_be_visible()
    expect(page.locator("#effective")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#item-breathing-seen")).to_be_checked()  # her answers are kept
    screenshots.take(page, "early-detection-error")
    earlier = datetime.now(ZoneInfo("Europe/Copenhagen")) - timedelta(hours=3)
    page.locator("#effective").fill(earlier.strftime("%Y-%m-%dT%H:%M"))
    page.locator("form[action$='/early-detection'] button[type=submit]").click()
    page.wait_for_url(re.compile(r"/patients/p-karen#staff-hospital$"))
    row = page.locator("#staff-hospital tbody tr").first
    expect(row).to_contain_text(world.nurse.full_name)
    expect(row.locator("td").nth(2)).not_to_be_empty()  # the change seen, in words
    screenshots.take(page, "early-detection-listed", page.locator("#staff-hospital"))
