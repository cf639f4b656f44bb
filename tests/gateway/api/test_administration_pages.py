"""Issue 20: the administrator's homes pages (``/admin/homes``) on the real app, a real PostgreSQL and a
real Mosquitto with hub accounts (``tests/dynsec_broker.py``).

A municipality administrator sees and changes only her municipality's homes (another's hub or device is
404, its patient unknown), a system administrator picks one and may add one; every form takes the
session's anti-forgery token; an error is shown above its form with what was typed; enrolling shows the
hub's password once with the kit as a zip whose password the broker takes; assigning a device publishes
the hub's retained config; revoking asks first, then the broker refuses the hub. Patients are shown by
id, never by name.
"""

from __future__ import annotations

import base64
import io
import re
import ssl
import threading
import tomllib
import zipfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from dynsec_broker import DynsecBroker, available, dynsec_broker
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from gateway.administration import homes
from gateway.api.auth import SESSION_COOKIE, User, create_user, csrf_token, issue_token
from gateway.settings import GatewaySettings

pytestmark = pytest.mark.skipif(
    available() is not None, reason=f"needs Mosquitto with hub accounts: {available()}"
)

Conn = psycopg.Connection[Any]
KBH, FRB = "0101", "0147"
ADMIN_KBH = User("admin-kbh", KBH, "municipality_admin")
ADMIN_FRB = User("admin-frb", FRB, "municipality_admin")
OPS = User("ops", KBH, "system_admin")
NURSE = User("nurse-kbh", KBH, "nurse")
NAMES = ("Astrid Nordlys", "Bent Sydhavn", "Cecilie Frederiks")


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynsecBroker]:
    with dynsec_broker(tmp_path_factory.mktemp("broker")) as running:
        yield running


@pytest.fixture
def settings(database_url: str, mosquitto: DynsecBroker) -> GatewaySettings:
    return mosquitto.settings(
        database_url=database_url, secret_key="test-secret-of-the-homes-pages", default_language="en"
    )


@pytest.fixture
def homes_world(db: Conn, settings: GatewaySettings) -> None:
    """København with a patient and her hub (two devices) and one without a hub, one whose first hub was
    revoked; Frederiksberg with a patient and her hub. Made through the service layer, no broker."""
    for code, name in ((KBH, "København"), (FRB, "Frederiksberg")):
        homes.add_municipality(db, code, name, by="setup")
    homes.add_care_team(db, KBH, "0101-nord", "Team Nord", by="setup")
    for user in (ADMIN_KBH, ADMIN_FRB, OPS, NURSE):
        create_user(db, user.username, user.municipality_id, user.role, "a password of the test")
    for municipality, patient, name in (
        (KBH, "pt-a", NAMES[0]),
        (KBH, "pt-b", NAMES[1]),
        (FRB, "pt-frb", NAMES[2]),
    ):
        homes.add_patient(
            db,
            municipality,
            patient,
            name=name,
            care_team=None,
            phone=None,
            conditions=["copd"],
            birth_date=None,
            by="setup",
        )
    homes.add_patient(
        db,
        KBH,
        "pt-c",
        name="Dorte",
        care_team="0101-nord",
        phone=None,
        conditions=[],
        birth_date=None,
        by="setup",
    )
    for municipality, hub, patient in (
        (KBH, "hub-a", "pt-a"),
        (KBH, "hub-b-old", "pt-b"),
        (KBH, "hub-b", "pt-b"),
        (FRB, "hub-frb", "pt-frb"),
    ):
        homes.enroll_hub(db, settings, municipality, hub, patient, by="setup", accounts=None)
    for hub, patient, kind, address in (
        ("hub-a", "pt-a", "pulse-oximeter", "AA:BB:CC:00:00:01"),
        ("hub-a", "pt-a", "scale", "AA:BB:CC:00:00:02"),
        ("hub-frb", "pt-frb", "thermometer", "AA:BB:CC:00:00:03"),
    ):
        homes.assign_device(db, settings, hub, patient, kind, address, by="setup", publisher=None)
    homes.revoke_hub(db, settings, "hub-b-old", by="setup", accounts=None, publisher=None)


def _as(client: TestClient, settings: GatewaySettings, user: User | None) -> str:
    """Make ``client`` ``user``'s browser (None: nobody's); the session's anti-forgery token."""
    client.cookies.clear()
    if user is None:
        return ""
    token = issue_token(settings, user)
    client.cookies.set(SESSION_COOKIE, token)
    return csrf_token(settings, token)


def _post(client: TestClient, path: str, data: dict[str, str]) -> httpx.Response:
    answer: httpx.Response = client.post(path, data=data, follow_redirects=False)
    return answer


def _audit(db: Conn, action: str) -> list[tuple[Any, ...]]:
    rows = db.execute(
        "SELECT username, municipality_id, role, client, patient_id, detail FROM audit_log WHERE action = %s"
        " ORDER BY id",
        (action,),
    )
    return [tuple(row) for row in rows]


# --- the broker, as a hub sees it ---------------------------------------------------------------------


class Hub:
    """A hub's MQTT connection over TLS with its kit's password: whether the broker took it, and the
    retained configs it was sent."""

    def __init__(self, broker: DynsecBroker, hub_id: str, password: str, municipality: str = KBH) -> None:
        self.municipality = municipality
        self.refused: str | None = None
        self.connected = threading.Event()
        self.configs: list[bytes] = []
        self._got = threading.Condition()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{hub_id}", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(hub_id, password)
        self.client.tls_set(ca_certs=str(broker.ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.hub_id = hub_id
        self.client.connect("127.0.0.1", broker.hub_port)
        self.client.loop_start()
        assert self.connected.wait(10), "no CONNACK"

    def _on_connect(self, _c: object, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        if reason.is_failure:
            self.refused = str(reason)
        else:
            self.client.subscribe(f"homewatch/v1/{self.municipality}/{self.hub_id}/config", qos=1)
        self.connected.set()

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._got:
            self.configs.append(bytes(message.payload))
            self._got.notify_all()

    def config_with(self, text: str, timeout: float = 10.0) -> bytes:
        with self._got:
            assert self._got.wait_for(lambda: any(text.encode() in c for c in self.configs), timeout), (
                self.configs
            )
            return next(c for c in self.configs if text.encode() in c)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _accepted(broker: DynsecBroker, hub_id: str, password: str) -> bool:
    hub = Hub(broker, hub_id, password)
    try:
        return hub.refused is None
    finally:
        hub.close()


# --- the kit ------------------------------------------------------------------------------------------

_ZIP = re.compile(r'href="data:application/zip;base64,([A-Za-z0-9+/=]+)" download="([^"]+)"')


def _kit(page: str) -> tuple[str, zipfile.ZipFile, str]:
    """The password shown, the zip offered, and its file name."""
    password = re.search(r'<code id="kit-password">([^<]+)</code>', page)
    offered = _ZIP.search(page)
    assert password is not None and offered is not None, page
    return password[1], zipfile.ZipFile(io.BytesIO(base64.b64decode(offered[1]))), offered[2]


# --- the page ------------------------------------------------------------------------------------------


def _problem(page: str, form: str) -> str:
    """The error summary above the form ``form``."""
    found = re.search(
        f'<div class="error-summary" role="alert"[^>]*id="error-{form}">.*?</div>', page, re.DOTALL
    )
    assert found is not None, page
    return found[0]


def _table(page: str) -> str:
    found = re.search(r'<table class="homes">.*?</table>', page, re.DOTALL)
    assert found is not None, page
    return found[0]


def test_a_municipality_administrator_sees_her_patients_hubs_and_devices_by_id(
    client: TestClient, settings: GatewaySettings, homes_world: None
) -> None:
    _as(client, settings, ADMIN_KBH)
    page = client.get("/admin/homes")
    assert page.status_code == 200
    text = page.text
    for shown in (
        "pt-a",
        "pt-b",
        "pt-c",
        "hub-a",
        "hub-b",
        "AA:BB:CC:00:00:01",
        "AA:BB:CC:00:00:02",
        "Team Nord",
    ):
        assert shown in text, shown
    revoked = re.search(r'<p class="revoked-hub">.*?</p>', text, re.DOTALL)
    assert revoked is not None and "hub-b-old" in revoked[0] and "Revoked" in revoked[0]
    assert 'href="/admin/homes/revoke?hub=hub-a"' in text and "hub-b-old" not in re.sub(
        r'<p class="revoked-hub">.*?</p>', "", text, flags=re.DOTALL
    )
    for hidden in ("pt-frb", "hub-frb", "AA:BB:CC:00:00:03", *NAMES):
        assert hidden not in text, hidden
    nav = re.search(r'<nav class="main-nav".*?</nav>', text, re.DOTALL)
    assert nav is not None and 'href="/admin/homes" aria-current="page"' in nav[0]
    assert (
        'action="/admin/homes/municipalities#add-municipality"' not in text
    )  # a system administrator's form
    assert client.get("/admin/homes", params={"municipality": FRB}).status_code == 403
    found = _table(client.get("/admin/homes", params={"q": "00:02"}).text)
    assert "pt-a" in found and "pt-b" not in found


def test_a_system_administrator_picks_a_municipality_and_adds_one(
    client: TestClient, settings: GatewaySettings, db: Conn, homes_world: None
) -> None:
    csrf = _as(client, settings, OPS)
    page = client.get("/admin/homes", params={"municipality": FRB})
    assert page.status_code == 200 and "pt-frb" in page.text and "pt-a" not in page.text
    assert (
        'id="homes-municipality"' in page.text
        and 'action="/admin/homes/municipalities#add-municipality"' in page.text
    )

    added = _post(
        client,
        "/admin/homes/municipalities",
        {"csrf": csrf, "municipality": FRB, "code": "0151", "name": "Ballerup"},
    )
    assert (
        added.status_code == 303
        and added.headers["location"] == "/admin/homes?municipality=0151&done=municipality&subject=0151#done"
    )
    assert "Municipality 0151 is saved." in client.get(added.headers["location"]).text
    assert db.execute("SELECT name FROM municipalities WHERE id = '0151'").fetchone() == ("Ballerup",)
    refused = _post(
        client,
        "/admin/homes/municipalities",
        {"csrf": csrf, "municipality": FRB, "code": "12", "name": "Nowhere"},
    )
    assert refused.status_code == 400 and "12" in _problem(refused.text, "municipality")
    assert 'value="Nowhere"' in refused.text  # what was typed, kept

    for user, expected in ((ADMIN_KBH, 403), (NURSE, 403)):
        token = _as(client, settings, user)
        answer = _post(
            client, "/admin/homes/municipalities", {"csrf": token, "code": "0153", "name": "Brøndby"}
        )
        assert answer.status_code == expected
    _as(client, settings, None)
    anonymous = _post(client, "/admin/homes/municipalities", {"code": "0153", "name": "Brøndby"})
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    assert db.execute("SELECT count(*) FROM municipalities WHERE id = '0153'").fetchone() == (0,)


def test_adding_a_patient_is_audited_and_an_error_keeps_what_was_typed(
    client: TestClient, settings: GatewaySettings, db: Conn, homes_world: None
) -> None:
    csrf = _as(client, settings, ADMIN_KBH)
    form = {
        "csrf": csrf,
        "municipality": KBH,
        "patient": "pt-new",
        "name": "Eva Ny",
        "care_team": "0101-nord",
        "phone": "+45 00 00 12 34",
        "birth_date": "1941-05-04",
        "condition-heart-failure": "yes",
    }
    added = _post(client, "/admin/homes/patients", form)
    assert added.status_code == 303 and "done=patient&subject=pt-new" in added.headers["location"]
    row = db.execute(
        "SELECT municipality_id, name, care_team_id, phone, conditions, birth_date FROM patients"
        " WHERE id = 'pt-new'"
    ).fetchone()
    assert row == (KBH, "Eva Ny", "0101-nord", "+45 00 00 12 34", ["heart-failure"], date(1941, 5, 4))
    assert _audit(db, "patient-add")[-1][:5] == (
        "admin-kbh",
        KBH,
        "municipality_admin",
        "testclient",
        "pt-new",
    )

    bad = _post(client, "/admin/homes/patients", {**form, "patient": "pt new", "name": "Frida <b>Fed</b>"})
    assert bad.status_code == 400
    problem = re.search(
        r'<div class="error-summary" role="alert"[^>]*id="error-patient">.*?</div>', bad.text, re.DOTALL
    )
    assert problem is not None and "&#39;pt new&#39;" in problem[0]
    assert 'value="pt new"' in bad.text and 'value="Frida &lt;b&gt;Fed&lt;/b&gt;"' in bad.text
    assert 'id="condition-heart-failure" name="condition-heart-failure" value="yes" checked' in bad.text
    assert db.execute("SELECT count(*) FROM patients WHERE name LIKE 'Frida%'").fetchone() == (0,)
    born = _post(client, "/admin/homes/patients", {**form, "birth_date": "4/5/41"})
    assert born.status_code == 400 and "YYYY-MM-DD" in _problem(born.text, "patient")


def test_enrolling_shows_the_password_once_with_a_kit_the_broker_takes(
    client: TestClient, settings: GatewaySettings, db: Conn, mosquitto: DynsecBroker, homes_world: None
) -> None:
    csrf = _as(client, settings, ADMIN_KBH)
    page = _post(
        client, "/admin/homes/hubs", {"csrf": csrf, "municipality": KBH, "hub": "hub-c", "patient": "pt-c"}
    )
    assert page.status_code == 200, page.text
    password, kit, name = _kit(page.text)
    assert name == "homewatch-kit-hub-c.zip"
    names = ["hub-c/ca.crt", "hub-c/hub.toml", "hub-c/mqtt-password", "hub-c/patient-view-pin"]
    assert sorted(kit.namelist()) == names
    assert kit.read("hub-c/mqtt-password").decode() == password + "\n"
    assert kit.getinfo("hub-c/mqtt-password").external_attr >> 16 & 0o777 == 0o600
    # the household's PIN: shown once on the page, in a private file of the kit
    pin = kit.read("hub-c/patient-view-pin").decode().strip()
    assert f'id="kit-pin">{pin}<' in page.text and len(pin) == 6
    assert kit.getinfo("hub-c/patient-view-pin").external_attr >> 16 & 0o777 == 0o600
    assert kit.read("hub-c/ca.crt") == mosquitto.ca_file.read_bytes()
    toml = tomllib.loads(kit.read("hub-c/hub.toml").decode())
    assert (toml["hub_id"], toml["patient_id"], toml["municipality"]) == ("hub-c", "pt-c", KBH)
    assert toml["mqtt"]["username"] == "hub-c" and toml["mqtt"]["port"] == mosquitto.hub_port
    assert _accepted(mosquitto, "hub-c", password)
    assert _audit(db, "hub-enrol")[-1][:5] == ("admin-kbh", KBH, "municipality_admin", "testclient", "pt-c")
    stored = db.execute("SELECT h::text FROM hubs h WHERE id = 'hub-c'").fetchone()
    assert stored is not None and password not in stored[0]
    assert not [r for r in db.execute("SELECT detail FROM audit_log") if r[0] and password in r[0]]

    again = _post(
        client, "/admin/homes/hubs", {"csrf": csrf, "municipality": KBH, "hub": "hub-c", "patient": "pt-c"}
    )
    new_password, _, _ = _kit(again.text)
    assert "has new credentials" in again.text and new_password != password
    assert _accepted(mosquitto, "hub-c", new_password) and not _accepted(mosquitto, "hub-c", password)

    taken = _post(
        client, "/admin/homes/hubs", {"csrf": csrf, "municipality": KBH, "hub": "hub-a", "patient": "pt-c"}
    )
    assert (
        taken.status_code == 400 and "pt-a" in _problem(taken.text, "hub") and 'value="hub-a"' in taken.text
    )


def test_assigning_and_removing_a_device_publishes_the_hubs_retained_config(
    client: TestClient, settings: GatewaySettings, db: Conn, mosquitto: DynsecBroker, homes_world: None
) -> None:
    csrf = _as(client, settings, ADMIN_KBH)
    password, _, _ = _kit(
        _post(
            client,
            "/admin/homes/hubs",
            {"csrf": csrf, "municipality": KBH, "hub": "hub-a", "patient": "pt-a"},
        ).text
    )
    hub = Hub(mosquitto, "hub-a", password)
    try:
        assigned = _post(
            client,
            "/admin/homes/devices",
            {
                "csrf": csrf,
                "municipality": KBH,
                "hub": "hub-a",
                "kind": "blood-pressure",
                "address": "aa:bb:cc:00:00:09",
                "interval": "24",
            },
        )
        assert (
            assigned.status_code == 303
            and "done=device&subject=dev-aabbcc000009" in assigned.headers["location"]
        )
        config = hub.config_with("AA:BB:CC:00:00:09")
        assert b'"kind":"blood-pressure-cuff"' in config
        assert db.execute(
            "SELECT config_version = config_published FROM hubs WHERE id = 'hub-a'"
        ).fetchone() == (True,)
        shown = client.get(assigned.headers["location"]).text
        assert "Device dev-aabbcc000009 is assigned" in shown and "AA:BB:CC:00:00:09" in shown

        removed = _post(client, "/admin/homes/devices/remove", {"csrf": csrf, "device": "dev-aabbcc000009"})
        assert removed.status_code == 303 and "done=removed" in removed.headers["location"]
        latest = db.execute("SELECT config_version FROM hubs WHERE id = 'hub-a'").fetchone()
        assert latest is not None
        hub.config_with(f'"version":"{latest[0]}"')
        assert b"AA:BB:CC:00:00:09" not in hub.configs[-1]
        assert [r[4] for r in _audit(db, "device-remove")] == ["pt-a"]
    finally:
        hub.close()

    bad = _post(
        client,
        "/admin/homes/devices",
        {"csrf": csrf, "municipality": KBH, "hub": "hub-a", "kind": "toaster", "address": "AA:BB"},
    )
    assert bad.status_code == 400 and "&#39;toaster&#39;" in _problem(bad.text, "device")
    assert 'value="AA:BB"' in bad.text and '<option value="hub-a" selected>' in bad.text


def test_revoking_asks_first_then_the_broker_refuses_the_hub(
    client: TestClient, settings: GatewaySettings, db: Conn, mosquitto: DynsecBroker, homes_world: None
) -> None:
    csrf = _as(client, settings, ADMIN_KBH)
    password, _, _ = _kit(
        _post(
            client,
            "/admin/homes/hubs",
            {"csrf": csrf, "municipality": KBH, "hub": "hub-a", "patient": "pt-a"},
        ).text
    )
    assert _accepted(mosquitto, "hub-a", password)
    confirm = client.get("/admin/homes/revoke", params={"hub": "hub-a"})
    assert confirm.status_code == 200 and "Revoke hub hub-a" in confirm.text and "pt-a" in confirm.text
    assert 'action="/admin/homes/hubs/revoke"' in confirm.text and NAMES[0] not in confirm.text
    assert db.execute("SELECT revoked_at FROM hubs WHERE id = 'hub-a'").fetchone() == (None,)

    revoked = _post(client, "/admin/homes/hubs/revoke", {"csrf": csrf, "hub": "hub-a"})
    assert revoked.status_code == 303 and "done=revoked&subject=hub-a" in revoked.headers["location"]
    assert db.execute("SELECT revoked_by FROM hubs WHERE id = 'hub-a'").fetchone() == ("admin-kbh",)
    assert not _accepted(mosquitto, "hub-a", password)
    page = client.get(revoked.headers["location"]).text
    assert "Hub hub-a is revoked" in page and "<del>hub-a</del>" in page
    assert _audit(db, "hub-revoke")[-1][:5] == ("admin-kbh", KBH, "municipality_admin", "testclient", "pt-a")


def test_another_municipalitys_hubs_devices_and_patients_look_unknown(
    client: TestClient, settings: GatewaySettings, db: Conn, homes_world: None
) -> None:
    before = (
        db.execute("SELECT h::text FROM hubs h ORDER BY id").fetchall(),
        db.execute("SELECT d::text FROM devices d ORDER BY id").fetchall(),
    )
    csrf = _as(client, settings, ADMIN_FRB)
    assert client.get("/admin/homes/revoke", params={"hub": "hub-a"}).status_code == 404
    assert client.get("/admin/homes/revoke", params={"hub": "no-such-hub"}).status_code == 404
    assert _post(client, "/admin/homes/hubs/revoke", {"csrf": csrf, "hub": "hub-a"}).status_code == 404
    assert (
        _post(client, "/admin/homes/devices/remove", {"csrf": csrf, "device": "dev-aabbcc000001"}).status_code
        == 404
    )
    assign = _post(
        client,
        "/admin/homes/devices",
        {"csrf": csrf, "hub": "hub-a", "kind": "scale", "address": "AA:BB:CC:00:00:0A"},
    )
    assert assign.status_code == 400 and "There is no hub hub-a." in _problem(assign.text, "device")
    enrol = _post(
        client, "/admin/homes/hubs", {"csrf": csrf, "municipality": FRB, "hub": "hub-x", "patient": "pt-a"}
    )
    assert enrol.status_code == 400 and "pt-a" in _problem(enrol.text, "hub")
    assert (
        _post(
            client,
            "/admin/homes/hubs",
            {"csrf": csrf, "municipality": KBH, "hub": "hub-x", "patient": "pt-a"},
        ).status_code
        == 403
    )
    taken = _post(
        client,
        "/admin/homes/patients",
        {"csrf": csrf, "municipality": FRB, "patient": "pt-a", "name": "X", "care_team": FRB},
    )
    assert taken.status_code == 400 and "pt-a" in _problem(taken.text, "patient")
    after = (
        db.execute("SELECT h::text FROM hubs h ORDER BY id").fetchall(),
        db.execute("SELECT d::text FROM devices d ORDER BY id").fetchall(),
    )
    assert after == before
    # A system administrator acts on any municipality's.
    ops = _as(client, settings, OPS)
    assert client.get("/admin/homes/revoke", params={"hub": "hub-frb"}).status_code == 200
    assert (
        _post(client, "/admin/homes/devices/remove", {"csrf": ops, "device": "dev-aabbcc000003"})
        .headers["location"]
        .startswith("/admin/homes?municipality=0147")
    )


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/admin/homes/patients", {"municipality": KBH, "patient": "pt-z", "name": "Z"}),
        ("/admin/homes/hubs", {"municipality": KBH, "hub": "hub-z", "patient": "pt-c"}),
        (
            "/admin/homes/devices",
            {"municipality": KBH, "hub": "hub-a", "kind": "scale", "address": "AA:BB:CC:00:00:0B"},
        ),
        ("/admin/homes/devices/remove", {"device": "dev-aabbcc000001"}),
        ("/admin/homes/hubs/revoke", {"hub": "hub-a"}),
        ("/admin/homes/users", {"municipality": KBH, "role": "nurse", "email": "z@kk.example"}),
        ("/admin/homes/municipalities", {"code": "0159", "name": "Gladsaxe"}),
    ],
)
def test_a_form_without_the_sessions_token_changes_nothing(
    client: TestClient,
    settings: GatewaySettings,
    db: Conn,
    homes_world: None,
    path: str,
    fields: dict[str, str],
) -> None:
    def everything() -> list[Any]:
        tables = ("municipalities", "patients", "hubs", "devices", "users", "audit_log")
        return [db.execute(f"SELECT t::text FROM {t} t ORDER BY 1").fetchall() for t in tables]

    before = everything()
    _as(client, settings, OPS)
    for csrf in ("", "forged", csrf_token(settings, issue_token(settings, ADMIN_KBH))):
        answer = _post(client, path, {**fields, "csrf": csrf})
        assert answer.status_code == 403 and "The form has expired" in answer.text
    assert everything() == before


def test_inviting_from_the_page_shows_the_link_once_and_it_opens(
    client: TestClient, settings: GatewaySettings, db: Conn, homes_world: None
) -> None:
    csrf = _as(client, settings, ADMIN_KBH)
    invited = _post(
        client,
        "/admin/homes/users",
        {"csrf": csrf, "municipality": KBH, "role": "nurse", "email": "Ny@KK.example", "team": "0101-nord"},
    )
    assert invited.status_code == 200, invited.text
    link = re.search(r'id="invitation-link" value="([^"]+)"', invited.text)
    assert link is not None and link[1].startswith(settings.web_base_url + "/invite/")
    assert db.execute(
        "SELECT role, municipality_id FROM users WHERE username = 'ny@kk.example'"
    ).fetchone() == ("nurse", KBH)
    assert _audit(db, "invite-user")[-1][:4] == ("admin-kbh", KBH, "municipality_admin", "testclient")
    client.cookies.clear()
    assert client.get(httpx.URL(link[1]).path).status_code == 200

    csrf = _as(client, settings, ADMIN_KBH)
    bad = _post(
        client,
        "/admin/homes/users",
        {"csrf": csrf, "municipality": KBH, "role": "gp", "email": "dr@laege.example", "team": "0101-nord"},
    )
    assert bad.status_code == 400 and "Only a nurse belongs to care teams." in _problem(bad.text, "user")
    assert 'value="dr@laege.example"' in bad.text and '<option value="gp" selected>' in bad.text


def test_nurses_may_not_open_the_homes(
    client: TestClient, settings: GatewaySettings, homes_world: None
) -> None:
    _as(client, settings, NURSE)
    assert client.get("/admin/homes").status_code == 403
    assert client.get("/admin/homes/revoke", params={"hub": "hub-a"}).status_code == 403


def test_the_kit_zip_unpacks_as_write_kit_writes_the_folder(tmp_path: Path) -> None:
    from gateway.api.administration_pages import kit_zip

    kit = homes.HubKit(KBH, "hub-q", "pt-q", 'hub_id = "hub-q"\n', "secret-password", b"CA", pin="024680")
    written = homes.write_kit(kit, tmp_path / "written")
    assert sorted(p.name for p in written) == ["ca.crt", "hub.toml", "mqtt-password", "patient-view-pin"]
    with zipfile.ZipFile(io.BytesIO(kit_zip(kit))) as archive:
        archive.extractall(tmp_path / "unzipped")
        for entry in archive.infolist():
            (tmp_path / "unzipped" / entry.filename).chmod(entry.external_attr >> 16 & 0o777)
    for path in written:
        unpacked = tmp_path / "unzipped" / "hub-q" / path.name
        assert unpacked.read_bytes() == path.read_bytes()
        assert unpacked.stat().st_mode & 0o777 == path.stat().st_mode & 0o777


def test_hub_settings_from_the_page_reach_the_hub_and_a_bad_value_keeps_what_was_typed(
    client: TestClient, settings: GatewaySettings, db: Conn, mosquitto: DynsecBroker, homes_world: None
) -> None:
    csrf = _as(client, settings, ADMIN_KBH)
    password, _, _ = _kit(
        _post(
            client,
            "/admin/homes/hubs",
            {"csrf": csrf, "municipality": KBH, "hub": "hub-a", "patient": "pt-a"},
        ).text
    )
    hub = Hub(mosquitto, "hub-a", password)
    try:
        fields = {
            "csrf": csrf,
            "municipality": KBH,
            "hub": "hub-a",
            "status_interval": "300",
            "bundle_size": "20",
        }
        saved = _post(client, "/admin/homes/hubs/settings", fields)
        assert saved.status_code == 303 and "done=configured&subject=hub-a" in saved.headers["location"]
        config = hub.config_with('"status_interval_s":300')
        assert b'"bundle_size":20' in config
        assert "Hub hub-a has new settings" in client.get(saved.headers["location"]).text
        again = _post(client, "/admin/homes/hubs/settings", fields)
        assert "done=unchanged" in again.headers["location"]
        assert [r[4] for r in _audit(db, "hub-configure")] == ["pt-a"]
    finally:
        hub.close()
    bad = _post(
        client,
        "/admin/homes/hubs/settings",
        {
            "csrf": csrf,
            "municipality": KBH,
            "hub": "hub-a",
            "status_interval": "5",
            "timezone": "Europe/Paris",
        },
    )
    assert bad.status_code == 400 and "10" in _problem(bad.text, "settings")
    assert 'value="Europe/Paris"' in bad.text
    other = _post(
        client,
        "/admin/homes/hubs/settings",
        {"csrf": csrf, "municipality": KBH, "hub": "hub-frb", "bundle_size": "9"},
    )
    assert other.status_code == 400 and "hub-frb" in _problem(other.text, "settings")
    assert db.execute("SELECT settings FROM hubs WHERE id = 'hub-frb'").fetchone() == ({},)
