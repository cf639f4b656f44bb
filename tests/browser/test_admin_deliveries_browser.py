"""The administrator's alert pages in a real browser, in Danish: the deliveries that failed (the picture
in docs/alerts.md) and the municipality's alert settings, saved with the keyboard-reachable form."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import psycopg
from playwright.sync_api import Page, expect

from browser.helpers import LiveGateway, Screenshots, horizontal_overflow, log_in
from browser.world import KOBENHAVN, BrowserWorld
from gateway.alerts.lifecycle import Trigger, record_trigger
from gateway.store import alert_deliveries as outbox
from gateway.store.alerts import add_event

HOOK = "https://vagt.kk.example/hooks/SECRET-PATH-TOKEN"


def _fail(conn: psycopg.Connection[Any], alert_id: int, recipient: outbox.Recipient, error: str) -> None:
    """One delivery of a new event of the alert, queued, claimed and given up, as the dispatcher does."""
    at = conn.execute("SELECT raised_at FROM alerts WHERE id = %s", (alert_id,)).fetchone()[0]  # type: ignore[index]
    event = add_event(conn, alert_id, "raised", at=at)
    outbox.enqueue(conn, KOBENHAVN, alert_id, event, [recipient], now=at)
    for delivery in outbox.claim_due(conn, at, 10):
        outbox.mark_failed(conn, delivery, at=at + timedelta(seconds=40 * delivery.attempts), error=error)


def _troubles(gateway: LiveGateway[BrowserWorld]) -> int:
    """Failed deliveries of two of København's alerts; the id of the first alert."""
    now = gateway.world.now
    with psycopg.connect(gateway.database_url, autocommit=True) as conn:
        ids = []
        for patient, minutes in (("p-karen", 50), ("p-jens", 20)):
            trigger = Trigger(KOBENHAVN, patient, "threshold", "spo2", "high", "SpO2 below own limit", now)
            with conn.transaction():
                ids.append(record_trigger(conn, trigger, now=now - timedelta(minutes=minutes)).alert_id)
        assert all(ids)
        _fail(conn, ids[0], outbox.Recipient("email", "anna@kk.example", "anna", "care-team"),
              "550 5.1.1 <anna@kk.example>: Recipient address rejected")  # fmt: skip
        _fail(conn, ids[0], outbox.Recipient("webhook", HOOK, None, "municipality"),
              f"Server error '503 Service Unavailable' for url '{HOOK}'")  # fmt: skip
        _fail(conn, ids[1], outbox.Recipient("email", "mette.lund@laege.example", "dr_lund", "gp"),
              "timed out connecting to the SMTP server")  # fmt: skip
    return int(ids[0])  # type: ignore[arg-type]


def test_the_administrator_reads_the_failed_deliveries_in_danish(
    page: Page, gateway: LiveGateway[BrowserWorld], screenshots: Screenshots
) -> None:
    world = gateway.world
    _troubles(gateway)
    log_in(page, world.admin.username, world.password, "/admin/audit")
    menu = page.get_by_role("navigation", name="Hovedmenu")
    menu.get_by_role("link", name="Alarmafsendelser").click()
    page.wait_for_url(re.compile(r"/admin/deliveries$"))
    expect(menu.get_by_role("link", name="Alarmafsendelser")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("heading", level=1)).to_have_text("Alarmafsendelser")

    rows = page.locator("table").nth(1).locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("mette.lund@laege.example")
    expect(rows.first).to_contain_text("Egen læge")
    expect(rows.first).to_contain_text("Fejlet")
    expect(page.get_by_text("vagt.kk.example", exact=True)).to_be_visible()
    text = page.locator("main").inner_text()
    assert "SECRET-PATH-TOKEN" not in text and "SpO2 below own limit" not in text
    assert [name for name in world.patients.values() if name in page.content()] == []
    assert horizontal_overflow(page) == 0  # a wide table scrolls inside its own frame
    screenshots.take(page, "admin-deliveries-da")

    page.get_by_label("Vis").select_option("pending")
    page.get_by_role("button", name="Filtrér").click()
    page.wait_for_url(re.compile(r"status=pending"))
    expect(page.get_by_text("Ingen afsendelser med problemer.")).to_be_visible()


def test_the_administrator_sets_the_alert_settings(
    page: Page, gateway: LiveGateway[BrowserWorld], screenshots: Screenshots
) -> None:
    world = gateway.world
    log_in(page, world.admin.username, world.password, "/admin/alert-settings")
    expect(page.get_by_role("heading", level=1)).to_have_text("Alarmindstillinger for København")
    page.get_by_label("Webhookens adresse").fill("https://vagt.kk.example/hooks/abc")
    page.get_by_label("Vagtens e-mailadresse").fill("vagt@kk.example")
    page.get_by_label("Høje alarmer, efter minutter").fill("0")
    page.get_by_role("button", name="Gem indstillingerne").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Indstillingerne blev ikke gemt")
    summary.get_by_role("link", name="Skriv hele minutter fra 1 til 1440.").click()
    expect(page.get_by_label("Høje alarmer, efter minutter")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("10")
    page.get_by_role("button", name="Gem indstillingerne").click()
    secret = page.locator("#new-secret")
    expect(secret).to_have_text(re.compile(r"^[\w-]{43}$"))  # made for the new webhook, shown once
    shown = secret.inner_text()
    screenshots.take(page, "admin-alert-settings-da")
    page.goto("/admin/alert-settings")
    expect(page.get_by_text("Der er sat en hemmelighed; den vises aldrig.", exact=False)).to_be_visible()
    assert shown not in page.content()
    expect(page.get_by_label("Høje alarmer, efter minutter")).to_have_value("10")
