"""The measurement-plan form in a real browser (issue 21): a nurse opens it from the patient page, ticks
blood pressure, types its times the way she writes them, ticks weekdays by their labels, is shown the
error beside a time that is no time with what she typed kept, saves, is told what became of it, and sees
the plan on the patient page. Ids, not words, find the elements: the check holds in Danish and English."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from browser.helpers import LiveGateway, Screenshots, horizontal_overflow, log_in
from browser.world import BrowserWorld


def test_a_nurse_sets_a_measurement_plan_from_the_patient_page(
    page: Page, gateway: LiveGateway[BrowserWorld], screenshots: Screenshots
) -> None:
    world = gateway.world
    log_in(page, world.nurse.username, world.password, "/patients/p-karen")
    page.locator("#plan a[href='/patients/p-karen/plan']").click()
    page.wait_for_url(re.compile(r"/patients/p-karen/plan$"))
    expect(page.locator("#blood-pressure-on")).not_to_be_checked()
    page.locator("label[for='blood-pressure-on']").click()  # the label ticks its box
    expect(page.locator("#blood-pressure-on")).to_be_checked()
    expect(page.locator("#blood-pressure-day-6")).to_be_checked()  # every day until she says otherwise
    page.locator("#blood-pressure-times").fill("8.00, 25:00")
    page.locator("label[for='weight-on']").click()
    page.locator("#weight-times").fill("7:30")
    for day in (2, 4, 6, 7):  # Monday, Wednesday and Friday only
        page.locator(f"label[for='weight-day-{day}']").click()
    expect(page.locator("#weight-day-2")).not_to_be_checked()
    page.locator("#weight-grace").fill("240")
    page.locator("form[action$='/plan'] button[type=submit]").click()
    expect(page.locator(".error-summary a[href='#blood-pressure-times']")).to_be_visible()
    expect(page.locator("#blood-pressure-times")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#blood-pressure-times")).to_have_value("8.00, 25:00")  # what she typed, kept
    expect(page.locator("#weight-day-2")).not_to_be_checked()
    expect(page.locator("#weight-day-3")).to_be_checked()
    assert horizontal_overflow(page) == 0
    screenshots.take(page, "plan-form-error-da")
    page.locator("#blood-pressure-times").fill("8.00, 20:00")
    page.locator("form[action$='/plan'] button[type=submit]").click()
    page.wait_for_url(re.compile(r"/patients/p-karen/plan\?done=\w+"))
    expect(page.locator(".alert-success")).to_be_visible()  # saved: sent, or waiting for the broker
    expect(page.locator("#blood-pressure-times")).to_have_value(re.compile(r"08[.:]00, 20[.:]00"))
    expect(page.locator("#weight-day-3")).to_be_checked()
    screenshots.take(page, "plan-form-da")
    page.locator("a[href='/patients/p-karen#plan']").first.click()
    section = page.locator("#plan")
    expect(section.locator("tbody tr")).to_have_count(2)
    expect(section.locator("tbody tr").first).to_contain_text("08")
    screenshots.take(page, "plan-section-da", section)
