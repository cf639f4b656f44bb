""" "Contact my nurse" from a hub to the care team's worklist, in a real browser (issue 21).

A patient's press becomes a Task in the hub's real outbox (``edge_agent.outbox.Outbox``); the hub's
real ``MqttPublisher`` sends it through a real broker to the gateway's real ``IngestWorker``, which
stores it and sends the receipt (the outbox is empty only then). In Chromium the nurse sees it at the
top of her worklist, marked urgent, takes it, marks it done, and finds it done on the patient page;
a nurse of another team never sees it. Ids and data attributes, not words, find the elements: the
check holds in Danish and English.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from playwright.sync_api import Page, expect

from browser.helpers import LiveGateway, Screenshots, horizontal_overflow, log_in
from browser.world import BrowserWorld
from edge_agent.config import HubConfig, MqttConfig
from edge_agent.outbox import Outbox
from edge_agent.publish import MqttPublisher
from fhir_contract.contact import build_contact_request
from gateway.broker import BrokerEndpoint
from gateway.ingest.mqtt_ingest import IngestWorker
from gateway.settings import GatewaySettings

PATIENT, HUB = "p-karen", "hub-p-karen"


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def stored_request(database_url: str) -> tuple[int, str] | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT id, status FROM contact_requests WHERE patient_id = %s ORDER BY id DESC LIMIT 1",
            (PATIENT,),
        ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def deliver_from_the_hub(tmp_path: Path, broker: BrokerEndpoint, database_url: str) -> int:
    """The patient presses "contact my nurse" (feeling worse) on the hub; the Task travels to the gateway.
    Returns the stored request's id once the hub got its receipt."""
    settings = GatewaySettings(
        database_url=database_url, mqtt_host=broker.host, mqtt_port=broker.port, mqtt_v5=broker.mqtt5
    )
    worker = IngestWorker(settings, endpoint=broker, client_id=f"ingest-{broker.port}")
    config = HubConfig(
        municipality="0101",
        hub_id=HUB,
        patient_id=PATIENT,
        devices=(),
        mqtt=MqttConfig(host=broker.host, port=broker.port, mqtt5=broker.mqtt5),  # deleted at the receipt
        outbox_path=tmp_path / "outbox.sqlite3",
    )
    outbox = Outbox(config.outbox_path)
    publisher = MqttPublisher(config, outbox)
    worker.start()
    try:
        assert worker.wait_until_subscribed(10)
        task = build_contact_request(
            patient_id=PATIENT, hub_id=HUB, authored=datetime.now(UTC), reason="feeling-worse"
        )
        assert outbox.put([task]) == 1
        publisher.start()
        assert wait_for(lambda: outbox.depth() == 0), "the hub never got the gateway's receipt"
    finally:
        publisher.stop()
        outbox.close()
        worker.stop()
    found = stored_request(database_url)
    assert found is not None and found[1] == "open"
    return found[0]


def test_contact_my_nurse_from_a_hub_reaches_the_worklist_and_the_nurse_takes_and_finishes_it(
    page: Page,
    gateway: LiveGateway[BrowserWorld],
    broker: BrokerEndpoint,
    tmp_path: Path,
    screenshots: Screenshots,
) -> None:
    world = gateway.world
    request_id = deliver_from_the_hub(tmp_path, broker, gateway.database_url)
    item = f"#contact-requests #contact-request-{request_id}"

    log_in(page, world.nurse.username, world.password, "/")
    expect(page.locator(item)).to_have_attribute("data-urgent", "true")
    expect(page.locator(item)).to_have_attribute("data-status", "open")
    expect(page.locator(f"{item} a.contact-patient")).to_have_text(world.patients[PATIENT])
    # The requests stand above the ranked patients.
    box = page.locator("#contact-requests").bounding_box()
    first_card = page.locator("ol.worklist").bounding_box()
    assert box is not None and first_card is not None and box["y"] < first_card["y"]
    assert horizontal_overflow(page) == 0
    screenshots.take(page, "worklist-contact-request-da", page.locator("#contact-requests"))

    page.locator(f"{item} form[action$='/take'] button").click()
    page.wait_for_url(re.compile(r"/\?request=taken"))
    expect(page.locator(item)).to_have_attribute("data-status", "in-progress")
    expect(page.locator(f"{item} .contact-status")).to_contain_text(world.nurse.full_name)
    expect(page.locator(f"{item} form[action$='/take']")).to_have_count(0)

    page.locator(f"{item} form[action$='/done'] button").click()
    page.wait_for_url(re.compile(r"/\?request=done"))
    expect(page.locator(f"#contact-request-{request_id}")).to_have_count(0)  # off the worklist
    assert stored_request(gateway.database_url) == (request_id, "done")

    page.goto(f"/patients/{PATIENT}")
    done = page.locator(f"#contact #contact-request-{request_id}")
    expect(done).to_have_attribute("data-status", "done")
    expect(done.locator("form")).to_have_count(0)
    with psycopg.connect(gateway.database_url) as conn:
        actions = conn.execute(
            "SELECT action FROM audit_log WHERE username = %s AND action LIKE '%%contact-request'"
            " ORDER BY id",
            (world.nurse.username,),
        ).fetchall()
    assert [a for (a,) in actions] == ["take-contact-request", "complete-contact-request"]


def test_a_nurse_of_another_team_never_sees_the_request(
    page: Page, gateway: LiveGateway[BrowserWorld], broker: BrokerEndpoint, tmp_path: Path
) -> None:
    request_id = deliver_from_the_hub(tmp_path, broker, gateway.database_url)
    log_in(page, gateway.world.other_team_nurse.username, gateway.world.password, "/")
    expect(page.locator("ol.worklist")).to_be_visible()
    expect(page.locator(f"#contact-request-{request_id}")).to_have_count(0)
    assert page.goto(f"/patients/{PATIENT}") is not None
    expect(page.locator(f"#contact-request-{request_id}")).to_have_count(0)
