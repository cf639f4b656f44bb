"""Issue 20: the administrator's fleet pages (``/admin/fleet``, ``/admin/fleet/{hub_id}``) on the real app.

Hubs, devices, statuses and readings go in through the gateway's own paths (enrolment, status ingest,
``insert_observations``); the pages are read as an administrator reads them: the most urgent hubs
first, the flag filter, one hub's devices and status history; and who may see what (one line per caller
of the hub page, which the authorisation matrix leaves to this file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fhir_contract.observation import build_observation
from fhir_contract.readings import Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.api.auth import SESSION_COOKIE, User, issue_token, mint_token
from gateway.ingest.status_ingest import store_statuses
from gateway.settings import GatewaySettings
from gateway.store.repository import (
    Device,
    Hub,
    Municipality,
    Patient,
    enroll_device,
    enroll_hub,
    enroll_municipality,
    enroll_patient,
    insert_observations,
)
from gateway.store.users import insert_user

NOW = datetime.now(UTC).replace(microsecond=0)
ADMIN_KBH = User("admin-kbh", "0101", "municipality_admin")
ADMIN_FRB = User("admin-frb", "0147", "municipality_admin")
OPS = User("ops", "0147", "system_admin")
NURSE = User("nurse-kbh", "0101", "nurse")
GP = User("gp-kbh", "0101", "gp")
NAMES = ("Astrid Stille", "Bent Batteri", "Carl Glad", "Dorte Frederiksberg")


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retained: bool = False


def _home(conn: Any, municipality: str, hub: str, name: str, devices: dict[str, str]) -> None:
    patient = f"p-{hub}"
    enroll_patient(conn, Patient(municipality, patient, name))
    enroll_hub(conn, Hub(municipality, hub, patient))
    for device_id, kind in devices.items():
        enroll_device(conn, Device(municipality, device_id, hub, patient, kind))
    conn.execute("UPDATE devices SET assigned_at = %s WHERE hub_id = %s", (NOW - timedelta(days=30), hub))


def _spo2(conn: Any, municipality: str, hub: str, device: str, at: datetime) -> None:
    reading = Reading("spo2", Quantity(Decimal("96"), "%"))
    resource = build_observation(reading, patient_id=f"p-{hub}", device_id=device, hub_id=hub, effective=at)
    insert_observations(conn, municipality, hub, [validate_observation(resource)])


def _status(conn: Any, municipality: str, hub: str, at: datetime, body: dict[str, Any]) -> None:
    message = Message(f"homewatch/v1/{municipality}/{hub}/status", orjson.dumps(body))
    [decision] = store_statuses(conn, [message], received_at=at)
    assert decision.refusal is None


def _online(*devices: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return (
        {"state": "online", "agentVersion": "0.1.0", "queueDepth": 2, "awaitingReceipt": 1}
        | extra
        | {"devices": list(devices)}
    )


@pytest.fixture
def fleet_world(database_url: str, app: FastAPI) -> None:
    """København: hub-quiet (silent thermometer, wrong clock), hub-low (low battery, a failing device),
    hub-fine; Frederiksberg: hub-frb."""
    app.state.clock = lambda: NOW
    with psycopg.connect(database_url, autocommit=True) as conn:
        enroll_municipality(conn, Municipality("0101", "København"))
        enroll_municipality(conn, Municipality("0147", "Frederiksberg"))
        for user in (ADMIN_KBH, ADMIN_FRB, OPS, NURSE, GP):
            insert_user(conn, user.username, user.municipality_id, user.role, "no password")
        _home(conn, "0101", "hub-quiet", NAMES[0], {"q-oxi": "pulse-oximeter", "q-thermo": "thermometer"})
        _home(conn, "0101", "hub-low", NAMES[1], {"l-oxi": "pulse-oximeter"})
        _home(conn, "0101", "hub-fine", NAMES[2], {"f-oxi": "pulse-oximeter"})
        _home(conn, "0147", "hub-frb", NAMES[3], {"frb-oxi": "pulse-oximeter"})
        for municipality, hub, device in (
            ("0101", "hub-quiet", "q-oxi"),
            ("0101", "hub-low", "l-oxi"),
            ("0101", "hub-fine", "f-oxi"),
            ("0147", "hub-frb", "frb-oxi"),
        ):
            _spo2(conn, municipality, hub, device, NOW - timedelta(hours=2))
        quiet = {
            "id": "q-thermo",
            "connected": False,
            "battery": 70,
            "clock": "wrong",
            "clockOffsetS": 5400.0,
        }
        _status(
            conn, "0101", "hub-quiet", NOW - timedelta(hours=2), _online({"id": "q-oxi", "connected": True})
        )
        _status(
            conn,
            "0101",
            "hub-quiet",
            NOW - timedelta(minutes=1),
            _online({"id": "q-oxi", "connected": False}, quiet),
        )
        failing = {"type": "GattError", "message": "read of 2a5e failed"}
        low = {"id": "l-oxi", "connected": True, "battery": 12, "errors": 3, "lastError": failing}
        _status(conn, "0101", "hub-low", NOW - timedelta(minutes=1), _online(low, configVersion="1"))
        conn.execute("UPDATE hubs SET config_version = 2 WHERE id = 'hub-low'")
        _status(
            conn, "0101", "hub-fine", NOW - timedelta(minutes=1), _online({"id": "f-oxi", "connected": True})
        )
        _status(
            conn, "0147", "hub-frb", NOW - timedelta(minutes=1), _online({"id": "frb-oxi", "connected": True})
        )


def _as(client: TestClient, settings: GatewaySettings, user: User | None) -> None:
    client.cookies.clear()
    if user is not None:
        client.cookies.set(SESSION_COOKIE, issue_token(settings, user))


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr id="hub-[^"]+" data-hub="([^"]+)"', html)


def _flags(html: str, hub: str) -> str:
    found = re.search(rf'data-hub="{hub}" data-flags="([^"]*)"', html)
    assert found is not None, hub
    return found[1]


def test_the_administrator_sees_her_hubs_most_urgent_first(
    client: TestClient, settings: GatewaySettings, fleet_world: None
) -> None:
    _as(client, settings, ADMIN_KBH)
    page = client.get("/admin/fleet")
    assert page.status_code == 200
    assert _rows(page.text) == ["hub-quiet", "hub-low", "hub-fine"]
    assert _flags(page.text, "hub-quiet") == "silent-device clock"
    assert _flags(page.text, "hub-low") == "low-battery device-errors config-pending"
    assert _flags(page.text, "hub-fine") == ""
    row = page.text[page.text.index('id="hub-hub-low"') :]
    row = row[: row.index("</tr>")]
    assert "Online" in row and "1 minute ago" in row and "0.1.0" in row and "1 of 2" in row
    assert "Low battery" in row and "battery 12 %" in row
    assert not any(name in page.text for name in NAMES)  # patients by id only
    assert "hub-frb" not in page.text


def test_the_flag_filter_narrows_the_table_and_an_unknown_flag_is_refused(
    client: TestClient, settings: GatewaySettings, fleet_world: None
) -> None:
    _as(client, settings, ADMIN_KBH)
    page = client.get("/admin/fleet?flag=low-battery").text
    assert _rows(page) == ["hub-low"]
    assert '<option value="low-battery" selected>Low battery (1)</option>' in page
    assert _rows(client.get("/admin/fleet?flag=offline").text) == []
    assert client.get("/admin/fleet?flag=bogus").status_code == 400


def test_a_system_administrator_picks_the_municipality(
    client: TestClient, settings: GatewaySettings, fleet_world: None
) -> None:
    _as(client, settings, OPS)
    assert _rows(client.get("/admin/fleet").text) == ["hub-frb"]  # her own by default
    page = client.get("/admin/fleet?municipality=0101").text
    assert _rows(page) == ["hub-quiet", "hub-low", "hub-fine"]
    assert 'name="municipality"' in page and "København (0101)" in page
    assert client.get("/admin/fleet?municipality=9999").status_code == 404


def test_a_hubs_page_shows_its_devices_and_status_history(
    client: TestClient, settings: GatewaySettings, fleet_world: None
) -> None:
    _as(client, settings, ADMIN_KBH)
    page = client.get("/admin/fleet/hub-quiet")
    assert page.status_code == 200
    thermo = page.text[page.text.index('id="device-q-thermo"') :]
    thermo = thermo[: thermo.index("</tr>")]
    assert 'class="silent"' in thermo and "Silent since" in thermo and "never" in thermo
    assert "Wrong, 1.5 h behind" in thermo and "70 %" in thermo and "36 hours" in thermo
    assert "5 minutes without a status" in page.text
    history = re.findall(r'<tr data-changes="([^"]*)"', page.text)
    assert history == ["device-added connected", "first"]  # newest first
    assert not any(name in page.text for name in NAMES)
    low = client.get("/admin/fleet/hub-low").text
    assert "GattError: read of 2a5e failed" in low and '<strong class="battery-low">Low</strong>' in low


@pytest.mark.parametrize(
    ("who", "url", "expected"),
    [
        (None, "/admin/fleet/hub-quiet", 303),  # nobody: to the login page
        ("hub", "/admin/fleet/hub-quiet", 303),  # a hub's token is no session
        (NURSE, "/admin/fleet/hub-quiet", 403),
        (GP, "/admin/fleet/hub-quiet", 403),
        (ADMIN_KBH, "/admin/fleet/hub-quiet", 200),
        (ADMIN_KBH, "/admin/fleet/hub-frb", 404),  # another municipality's hub does not exist for her
        (ADMIN_KBH, "/admin/fleet/hub-quiet?municipality=0147", 403),
        (ADMIN_KBH, "/admin/fleet/no%00such", 404),
        (ADMIN_FRB, "/admin/fleet/hub-quiet", 404),
        (ADMIN_FRB, "/admin/fleet/hub-frb", 200),
        (OPS, "/admin/fleet/hub-quiet", 404),  # her own municipality (0147) by default
        (OPS, "/admin/fleet/hub-quiet?municipality=0101", 200),
        (NURSE, "/admin/fleet", 403),
        (ADMIN_FRB, "/admin/fleet?municipality=0101", 403),
    ],
)
def test_who_may_see_a_hub(
    client: TestClient,
    settings: GatewaySettings,
    fleet_world: None,
    who: User | str | None,
    url: str,
    expected: int,
) -> None:
    if who == "hub":
        client.cookies.clear()
        token = mint_token(settings, role="hub", municipality_id="0101", subject="hub-quiet")
        client.cookies.set(SESSION_COOKIE, token)
    else:
        assert not isinstance(who, str)
        _as(client, settings, who)
    response = client.get(url, follow_redirects=False)
    assert response.status_code == expected
    if expected == 303:
        assert response.headers["location"].startswith("/login")
    if expected == 200:
        assert not any(name in response.text for name in NAMES)
