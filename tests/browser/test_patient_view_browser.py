"""The hub's patient view in Debian's Chromium (issue 21): a resident types the household PIN, sees
today's plan and what arrived, answers the daily symptom check one large button at a time, presses
"contact my nurse", reads the nurse's message, looks at 30 days of blood pressure, and switches to
English; large type, nothing wider than the screen, on a laptop-sized TV browser and an upright tablet.
The real app (``edge_agent.patient_view``) on uvicorn, a real outbox and local history behind it.

Screenshots (Danish) go to ``HOMEWATCH_SCREENSHOTS`` when set (docs/img/patient-view-*.png)."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import psycopg
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from browser.helpers import Screenshots, horizontal_overflow, log_in
from browser.world import KOBENHAVN, seed
from edge_agent.config import (
    DeviceConfig,
    EmulationConfig,
    HubConfig,
    MqttConfig,
    NurseMessage,
    PatientViewConfig,
    ResidentConfig,
)
from edge_agent.outbox import Outbox
from edge_agent.patient_view import HubPort, LocalHistory, create_app
from edge_agent.service import HubService
from fhir_contract.contact import validate_contact_request
from fhir_contract.observation import build_observation
from fhir_contract.questionnaire import current, validate_response
from fhir_contract.readings import Component, Quantity, Reading
from gateway.broker import BrokerEndpoint, free_port
from gateway.http_server import start_http, stop_http
from gateway.service import Gateway, GatewayOptions

PIN = "1357"
TV: ViewportSize = {"width": 1280, "height": 800}
TABLET_UPRIGHT: ViewportSize = {"width": 800, "height": 1280}
ZONE = "Europe/Copenhagen"


@dataclass
class ServedHub:
    url: str
    outbox: Outbox
    history: LocalHistory

    def queued(self) -> list[dict[str, Any]]:
        return [orjson.loads(row.resource) for row in self.outbox.after(0, 100)]


def _bp(patient: str, at: datetime, systolic: int, diastolic: int) -> dict[str, Any]:
    reading = Reading(
        "blood-pressure",
        components=(
            Component("systolic", Quantity(Decimal(systolic), "mm[Hg]")),
            Component("diastolic", Quantity(Decimal(diastolic), "mm[Hg]")),
        ),
    )
    return build_observation(reading, patient_id=patient, device_id="cuff-1", hub_id="hub-b", effective=at)


def _weight(patient: str, at: datetime, kg: float) -> dict[str, Any]:
    reading = Reading("body-weight", value=Quantity(Decimal(f"{kg:.1f}"), "kg"))
    return build_observation(reading, patient_id=patient, device_id="scale-1", hub_id="hub-b", effective=at)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedHub]:
    folder = tmp_path_factory.mktemp("hub")
    now = datetime.now(UTC).replace(microsecond=0)
    config = HubConfig(
        municipality="0101",
        hub_id="hub-b",
        patient_id="p-karen",
        devices=(DeviceConfig(id="cuff-1", address="AA:BB:CC:DD:EE:01", kind="blood-pressure-cuff"),),
        outbox_path=folder / "outbox.sqlite3",
        timezone=ZONE,
        plan=(
            {"measurement": "blood-pressure", "times": ["08:00", "20:00"], "grace_minutes": 120},
            {"measurement": "weight", "times": ["07:30"], "grace_minutes": 240},
        ),
        residents=(ResidentConfig(patient_id="p-karen", name="Karen", questionnaire="heart-failure-daily"),),
        messages=(
            NurseMessage(
                id="m-1",
                patient_id="p-karen",
                sent_at=now - timedelta(hours=3),
                text="Godt at se dine målinger, Karen. Husk at veje dig hver morgen før morgenmaden.",
            ),
        ),
        patient_view=PatientViewConfig(enabled=True, pin=PIN),
    )
    outbox = Outbox(config.outbox_path)
    history = LocalHistory(LocalHistory.path_next_to(config.outbox_path))
    rng = random.Random(21)  # SYNTHETIC readings
    readings = []
    for days in range(30, 0, -1):
        morning = now - timedelta(days=days)
        readings.append(_bp("p-karen", morning, 128 + rng.randint(-6, 10), 80 + rng.randint(-4, 6)))
        readings.append(_weight("p-karen", morning - timedelta(minutes=30), 78 + days * -0.03 + rng.random()))
    readings.append(_bp("p-karen", now - timedelta(minutes=20), 134, 86))
    # This morning's weight (07.25) and blood pressure (08.14), once the morning has come: shown done.
    weighed = now.astimezone(ZoneInfo(ZONE)).replace(hour=7, minute=25, second=0)
    if weighed + timedelta(minutes=49) < now - timedelta(minutes=20):
        readings += [
            _weight("p-karen", weighed, 78.4),
            _bp("p-karen", weighed + timedelta(minutes=49), 131, 84),
        ]
    history.add(readings, now=now)

    async def send(resources: list[dict[str, Any]]) -> int:
        return await asyncio.to_thread(outbox.put, resources)

    port = HubPort(config=lambda: config, send=send, history=history)
    number = free_port()
    server, thread = start_http(create_app(port, PIN), "127.0.0.1", number, 30)
    try:
        yield ServedHub(f"http://127.0.0.1:{number}", outbox, history)
    finally:
        stop_http(server, thread)
        outbox.close()
        history.close()


@pytest.fixture
def screen(browser: Browser, hub: ServedHub) -> Iterator[Page]:
    context = browser.new_context(base_url=hub.url, locale="da-DK", timezone_id=ZONE, viewport=TV)
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _log_in(page: Page) -> None:
    page.goto("/")
    expect(page.locator("#pin")).to_be_visible()
    page.locator("#pin").fill(PIN)
    page.locator("#login").click()
    page.wait_for_url("**/")


def _font_px(page: Page, selector: str) -> float:
    size: str = page.locator(selector).first.evaluate("e => getComputedStyle(e).fontSize")
    return float(size.removesuffix("px"))


def test_a_resident_logs_in_answers_the_check_and_asks_for_a_call(
    screen: Page, hub: ServedHub, screenshots: Screenshots
) -> None:
    page = screen
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "da")
    page.locator("#pin").fill("0000")
    page.locator("#login").click()
    expect(page.locator("#error")).to_contain_text("Koden var forkert")
    screenshots.take(page, "patient-view-pin-da")
    page.locator("#pin").fill(PIN)
    page.locator("#login").click()
    page.wait_for_url("**/")
    expect(page.locator("h1")).to_contain_text("Hej Karen")
    expect(page.locator("#arrived .reading").first).to_contain_text("Blodtryk modtaget")
    expect(page.locator("#plan .occurrence")).to_have_count(3)
    assert _font_px(page, "body") >= 24 and _font_px(page, "#contact") >= 24
    assert horizontal_overflow(page) == 0
    screenshots.take(page, "patient-view-today-da")

    page.locator("#nav-questionnaire").click()
    page.locator("#start").click()
    for number in range(1, 6):
        page.wait_for_url(f"**/questionnaire/{number}")
        expect(page.locator("#progress")).to_contain_text(f"Spørgsmål {number} af 5")
        if number == 1:
            assert horizontal_overflow(page) == 0
            screenshots.take(page, "patient-view-question-da")
        page.locator("form button.option").first.click()
    expect(page.locator("#notice")).to_contain_text("Tak for dine svar")
    page.locator("#home").click()
    expect(page.locator("#answered")).to_contain_text("Du har svaret i dag")

    page.locator("#contact").click()
    expect(page.locator("#call-me")).to_be_visible()
    screenshots.take(page, "patient-view-contact-da")
    page.locator("#reason-feeling-worse").click()
    expect(page.locator("#sent")).to_have_text("Din sygeplejerske har fået besked.")
    screenshots.take(page, "patient-view-contact-sent-da")

    kinds = [r["resourceType"] for r in hub.queued()]
    assert kinds == ["QuestionnaireResponse", "Task"]
    response, task = hub.queued()
    now = datetime.now(UTC)
    assert validate_response(response, now=now).patient_id == "p-karen"
    assert validate_contact_request(task, now=now).urgent


def test_messages_and_trends_and_the_language_switch(
    screen: Page, hub: ServedHub, screenshots: Screenshots
) -> None:
    page = screen
    _log_in(page)
    page.locator("#nav-messages").click()
    expect(page.locator("#message-1")).to_contain_text("Husk at veje dig")
    screenshots.take(page, "patient-view-messages-da")
    page.locator("#home").click()
    page.locator("#nav-trends").click()
    expect(page.locator("#trend-blood-pressure svg.plot")).to_be_visible()
    expect(page.locator("#trend-blood-pressure polyline.series")).to_have_count(2)
    expect(page.locator("#trend-weight polyline.series")).to_have_count(1)
    assert horizontal_overflow(page) == 0
    screenshots.take(page, "patient-view-trends-da")
    page.locator("#language").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_contain_text("My readings of the last 30 days")
    page.locator("#home").click()
    expect(page.locator("#contact")).to_have_text("Contact my nurse")
    page.locator("#language").click()
    expect(page.locator("html")).to_have_attribute("lang", "da")


def test_the_view_fits_an_upright_tablet(screen: Page, screenshots: Screenshots) -> None:
    page = screen
    page.set_viewport_size(TABLET_UPRIGHT)
    _log_in(page)
    expect(page.locator("#contact")).to_be_visible()
    assert horizontal_overflow(page) == 0
    screenshots.take(page, "patient-view-today-tablet-da")


# --- end to end: Chromium on the hub's view -> outbox -> broker -> gateway ingest -> the nurse's page ---


@contextmanager
def _running(service: HubService) -> Iterator[HubService]:
    """``service`` on an event loop of its own in a thread (the sync Playwright API owns this one)."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(service.run(stop),), name="hub")
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while service.patient_view is None or service.patient_view.port is None:
            assert thread.is_alive() and time.monotonic() < deadline, "the hub's patient view did not start"
            time.sleep(0.05)
        yield service
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


def _responses(database_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT patient_id, hub_id FROM questionnaire_responses").fetchall()
    return [(str(p), str(h)) for p, h in rows]


def test_an_answer_given_on_the_hub_reaches_the_nurses_patient_page(
    browser: Browser, broker: BrokerEndpoint, database_url: str, tmp_path: Path, screenshots: Screenshots
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        world = seed(conn, datetime.now(UTC))
    config = HubConfig(
        municipality=KOBENHAVN,
        hub_id="hub-p-karen",
        patient_id="p-karen",
        devices=(DeviceConfig(id="blood-pressure-monitor-p-karen", address="-", kind="blood-pressure-cuff"),),
        mqtt=MqttConfig(host=broker.host, port=broker.port, mqtt5=broker.mqtt5),
        outbox_path=tmp_path / "hub" / "outbox.sqlite3",
        timezone=ZONE,
        emulation=EmulationConfig(interval_s=30),
        residents=(ResidentConfig(patient_id="p-karen", name="Karen", questionnaire="heart-failure-daily"),),
        patient_view=PatientViewConfig(enabled=True, host="127.0.0.1", port=0, pin=PIN),
    )
    gateway = Gateway(GatewayOptions(database_url=database_url, broker=broker, port=free_port(), workers=0))
    gateway.start()
    try:
        with _running(HubService(config)) as hub:
            assert hub.patient_view is not None
            context = browser.new_context(
                base_url=f"http://127.0.0.1:{hub.patient_view.port}", locale="da-DK", timezone_id=ZONE
            )
            context.set_default_timeout(15_000)
            page = context.new_page()
            _log_in(page)
            page.locator("#nav-questionnaire").click()
            page.locator("#start").click()
            q = current("heart-failure-daily")
            chosen = {item.link_id: item.options[0].code for item in q.questions}
            chosen["ankle-swelling"] = next(o.code for o in q.questions[1].options if o.worse)
            for number, item in enumerate(q.questions, start=1):
                page.wait_for_url(f"**/questionnaire/{number}")
                page.locator(f"#answer-{chosen[item.link_id]}").click()
            expect(page.locator("#notice")).to_contain_text("Tak for dine svar")
            context.close()
            deadline = time.monotonic() + 30
            while not _responses(database_url):
                assert time.monotonic() < deadline, "the answers never reached the gateway"
                time.sleep(0.2)
            assert _responses(database_url) == [("p-karen", "hub-p-karen")]
        nurse = browser.new_context(base_url=gateway.url, locale="da-DK", timezone_id=ZONE, viewport=TV)
        nurse.set_default_timeout(15_000)
        page = nurse.new_page()
        log_in(page, world.nurse.username, world.password, "/patients/p-karen")
        section = page.locator("#symptoms")
        expect(section).to_contain_text(q.title.da)
        expect(section).to_contain_text(q.questions[1].text.da)
        worse = q.questions[1].option(chosen["ankle-swelling"])
        assert worse is not None
        expect(section.locator(".triage").first).to_contain_text(worse.text.da)
        screenshots.take(page, "patient-view-answers-on-the-nurses-page-da", section)
        nurse.close()
    finally:
        gateway.stop()


def _contact_requests(database_url: str) -> list[tuple[str, str, str | None]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT patient_id, status, reason FROM contact_requests").fetchall()
    return [(str(p), str(s), r) for p, s, r in rows]


def test_contact_my_nurse_reaches_the_worklist_and_the_nurses_message_reaches_the_hub(
    browser: Browser, broker: BrokerEndpoint, database_url: str, tmp_path: Path, screenshots: Screenshots
) -> None:
    """The whole round: the resident presses "contact my nurse" (I feel worse) on the hub's view; the Task
    travels the outbox, the broker and ingest to the care team's worklist, where the nurse takes it and
    writes back; her message reaches the hub in its retained config and shows on the resident's view."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        world = seed(conn, datetime.now(UTC))
    config = HubConfig(
        municipality=KOBENHAVN,
        hub_id="hub-p-karen",
        patient_id="p-karen",
        devices=(DeviceConfig(id="blood-pressure-monitor-p-karen", address="-", kind="blood-pressure-cuff"),),
        mqtt=MqttConfig(host=broker.host, port=broker.port, mqtt5=broker.mqtt5),
        outbox_path=tmp_path / "hub" / "outbox.sqlite3",
        timezone=ZONE,
        emulation=EmulationConfig(interval_s=30),
        residents=(ResidentConfig(patient_id="p-karen", name="Karen"),),
        patient_view=PatientViewConfig(enabled=True, host="127.0.0.1", port=0, pin=PIN),
    )
    gateway = Gateway(GatewayOptions(database_url=database_url, broker=broker, port=free_port(), workers=0))
    gateway.start()
    try:
        with _running(HubService(config)) as hub:
            assert hub.patient_view is not None
            home = browser.new_context(
                base_url=f"http://127.0.0.1:{hub.patient_view.port}", locale="da-DK", timezone_id=ZONE
            )
            home.set_default_timeout(15_000)
            resident = home.new_page()
            _log_in(resident)
            resident.locator("#contact").click()
            resident.locator("#reason-feeling-worse").click()
            expect(resident.locator("#sent")).to_be_visible()
            deadline = time.monotonic() + 30
            while not _contact_requests(database_url):
                assert time.monotonic() < deadline, "the request never reached the gateway"
                time.sleep(0.2)
            assert _contact_requests(database_url) == [("p-karen", "open", "feeling-worse")]

            staff = browser.new_context(base_url=gateway.url, locale="da-DK", timezone_id=ZONE, viewport=TV)
            staff.set_default_timeout(15_000)
            nurse = staff.new_page()
            log_in(nurse, world.nurse.username, world.password, "/")
            asking = nurse.locator("#contact-requests")
            expect(asking).to_contain_text("Patienter, der beder om at blive kontaktet (1)")
            expect(asking).to_contain_text("Har det dårligere")
            asking.get_by_role("button", name="Tag henvendelsen").click()
            nurse.goto("/patients/p-karen")
            nurse.locator("#message-text").fill("Jeg ringer til dig kl. 14. Hilsen Mette")
            nurse.get_by_role("button", name="Send til patienten").click()
            expect(nurse.locator("#contact")).to_contain_text("Jeg ringer til dig kl. 14")
            staff.close()

            deadline = time.monotonic() + 30
            while not hub.config.messages:
                assert time.monotonic() < deadline, "the message never reached the hub"
                time.sleep(0.2)
            resident.goto("/messages")
            expect(resident.locator("#message-1")).to_contain_text("Jeg ringer til dig kl. 14. Hilsen Mette")
            home.close()
        assert _contact_requests(database_url) == [("p-karen", "in-progress", "feeling-worse")]
    finally:
        gateway.stop()
