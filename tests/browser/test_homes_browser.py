"""Issue 20: a municipality administrator enrols a home in Chromium: adds a patient, enrols her hub, sees the
broker password once and downloads the kit (a real download of the zip), assigns a device, and revokes
the hub after confirming; the kit's password is the one a real Mosquitto with hub accounts takes, until
the hub is revoked.

The gateway here is the browser tests' (``helpers.serve_world`` with the usual world) with the settings of
that broker (``tests/dynsec_broker.py``). The pages are read in English (the language cookie), so the
words are the source's whatever the state of the Danish catalogue.
"""

from __future__ import annotations

import os
import re
import ssl
import threading
import tomllib
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from dynsec_broker import DynsecBroker, available, dynsec_broker
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from playwright.sync_api import Locator, Page, expect
from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from browser.helpers import SERVER_START_S, LiveGateway, Screenshots, log_in
from browser.world import BrowserWorld, seed
from gateway.api.app import create_app
from gateway.api.language import LANGUAGE_COOKIE
from gateway.broker import free_port
from gateway.http_server import start_http, stop_http
from gateway.store.migrate import migrate

pytestmark = pytest.mark.skipif(
    available() is not None, reason=f"needs Mosquitto with hub accounts: {available()}"
)

SHOTS = Path(os.environ.get("HOMEWATCH_H4_SHOTS", "/tmp/shots-h4"))


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynsecBroker]:
    with dynsec_broker(tmp_path_factory.mktemp("broker")) as running:
        yield running


@pytest.fixture(scope="module")
def gateway(pg_admin_url: str, mosquitto: DynsecBroker) -> Iterator[LiveGateway[BrowserWorld]]:
    """The browser tests' world, served with the settings of the broker above."""
    name = f"browser_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, query = pg_admin_url.partition("?")  # the embedded server's URL ends in '/postgres?host=...'
    database_url = f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            migrate(conn)
            world = seed(conn, datetime.now(UTC))
        settings = mosquitto.settings(
            database_url=database_url, secret_key=SecretStr(f"browser-{uuid.uuid4().hex}")
        )
        pool: ConnectionPool[Any]
        with ConnectionPool(database_url, min_size=1, max_size=4, open=True) as pool:
            port = free_port()
            server, thread = start_http(create_app(settings, pool), "127.0.0.1", port, SERVER_START_S)
            try:
                yield LiveGateway(f"http://127.0.0.1:{port}", world, database_url)
            finally:
                stop_http(server, thread)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _shoot(page: Page, screenshots: Screenshots, name: str, part: Locator | None = None) -> None:
    screenshots.take(page, name, part)
    Screenshots(SHOTS).take(page, name, part)


def _broker_takes(broker: DynsecBroker, hub_id: str, password: str) -> bool:
    """Whether the broker lets ``hub_id`` in with ``password`` on the hubs' TLS listener."""
    answered = threading.Event()
    outcome: list[bool] = []

    def on_connect(_c: object, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        outcome.append(not reason.is_failure)
        answered.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"browser-{hub_id}", protocol=mqtt.MQTTv5)
    client.username_pw_set(hub_id, password)
    client.tls_set(ca_certs=str(broker.ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.on_connect = on_connect
    client.connect("127.0.0.1", broker.hub_port)
    client.loop_start()
    try:
        assert answered.wait(10), "no CONNACK"
        return outcome[0]
    finally:
        client.disconnect()
        client.loop_stop()


def test_an_administrator_enrols_a_home_downloads_the_kit_and_revokes_the_hub(
    page: Page,
    gateway: LiveGateway[BrowserWorld],
    mosquitto: DynsecBroker,
    screenshots: Screenshots,
    tmp_path: Path,
) -> None:
    page.context.add_cookies([{"name": LANGUAGE_COOKIE, "value": "en", "url": gateway.url}])
    log_in(page, gateway.world.admin.username, gateway.world.password, "/admin/homes")
    expect(page.get_by_role("heading", level=1)).to_have_text("Homes of København")
    expect(
        page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Homes")
    ).to_have_attribute("aria-current", "page")
    _shoot(page, screenshots, "homes")

    form = page.locator("form[action='/admin/homes/patients#add-patient']")
    form.get_by_label("Patient id").fill("pt-browser")
    form.get_by_label("Name").fill("Grethe Browser")
    form.get_by_label("Care team").select_option("0101-nord")
    form.get_by_label("Heart failure").check()
    form.get_by_role("button", name="Add the patient").click()
    expect(page.get_by_role("status")).to_contain_text("Patient pt-browser is saved.")
    expect(page.locator("#patient-pt-browser")).to_contain_text("No hub in service.")

    enrol = page.locator("form[action='/admin/homes/hubs#enrol-hub']")
    enrol.get_by_label("Patient id").fill("pt-browser")
    enrol.get_by_label("Hub id").fill("hub 1")  # a space: no id
    enrol.get_by_role("button", name="Enrol the hub").click()
    problem = page.locator("#error-hub")
    expect(problem).to_contain_text("hub 1")
    expect(page.locator("form[action='/admin/homes/hubs#enrol-hub']").get_by_label("Hub id")).to_have_value(
        "hub 1"
    )
    _shoot(page, screenshots, "homes-enrol-error", page.locator("section[aria-labelledby=enrol-hub]"))

    enrol = page.locator("form[action='/admin/homes/hubs#enrol-hub']")
    enrol.get_by_label("Hub id").fill("hub-browser-1")
    enrol.get_by_role("button", name="Enrol the hub").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("The kit of hub hub-browser-1")
    password = page.locator("#kit-password").inner_text()
    assert len(password) >= 32
    _shoot(page, screenshots, "homes-kit")
    with page.expect_download() as downloading:
        page.get_by_role("link", name=re.compile(r"^Download the kit")).click()
    download = downloading.value
    assert download.suggested_filename == "homewatch-kit-hub-browser-1.zip"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with zipfile.ZipFile(saved) as kit:
        assert sorted(kit.namelist()) == [
            "hub-browser-1/ca.crt",
            "hub-browser-1/hub.toml",
            "hub-browser-1/mqtt-password",
            "hub-browser-1/patient-view-pin",
        ]
        assert kit.read("hub-browser-1/mqtt-password").decode().strip() == password
        toml = tomllib.loads(kit.read("hub-browser-1/hub.toml").decode())
    assert (toml["hub_id"], toml["patient_id"], toml["mqtt"]["port"]) == (
        "hub-browser-1",
        "pt-browser",
        mosquitto.hub_port,
    )
    assert _broker_takes(mosquitto, "hub-browser-1", password)

    page.get_by_role("link", name="Back to the homes").click()
    assign = page.locator("form[action='/admin/homes/devices#assign-device']")
    assign.get_by_label("Hub").select_option("hub-browser-1")
    assign.get_by_label("Kind").select_option("pulse-oximeter")
    assign.get_by_label("Bluetooth address").fill("a4:c1:38:00:11:22")
    assign.get_by_role("button", name="Assign the device").click()
    expect(page.get_by_role("status")).to_contain_text("Device dev-a4c138001122 is assigned")
    row = page.locator("#patient-pt-browser")
    expect(row).to_contain_text("A4:C1:38:00:11:22")
    expect(row).to_contain_text("Configuration 1 sent")
    _shoot(page, screenshots, "homes-assigned", row)

    row.get_by_role("link", name="Revoke hub hub-browser-1").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Revoke hub hub-browser-1")
    _shoot(page, screenshots, "homes-revoke-confirm")
    assert _broker_takes(mosquitto, "hub-browser-1", password)  # nothing happens before the confirmation
    page.get_by_role("button", name="Revoke the hub").click()
    expect(page.get_by_role("status")).to_contain_text("Hub hub-browser-1 is revoked")
    expect(page.locator("#patient-pt-browser .revoked-hub")).to_contain_text("hub-browser-1")
    assert not _broker_takes(mosquitto, "hub-browser-1", password)
    _shoot(page, screenshots, "homes-revoked", page.locator("#patient-pt-browser"))
