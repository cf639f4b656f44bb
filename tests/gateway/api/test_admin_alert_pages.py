"""Issue 18: the administrator sees her municipality's alert deliveries in trouble and sets its alert
settings (``GET /admin/deliveries``, ``GET``/``POST /admin/alert-settings``).

The deliveries are made by the outbox's own functions (``gateway.store.alert_deliveries``: enqueue,
claim, a failed attempt, giving up), as the dispatcher makes them; the pages are read as an administrator
reads them. An administrator sees no clinical data: the page names an alert and a patient id, never a
name, a reason or a value, and a webhook's URL only by its host.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from seed import PASSWORD, World

from gateway.api.admin_alert_pages import read_settings_form
from gateway.api.app import create_app
from gateway.api.auth import SESSION_COOKIE, User, cookie_name, create_user, csrf_token, issue_token
from gateway.settings import GatewaySettings
from gateway.store import alert_deliveries as outbox
from gateway.store.alert_admin import default_settings
from gateway.store.alerts import add_event

ADMIN_KBH = User("admin-kbh", "0101", "municipality_admin")
ADMIN_FRB = User("admin-frb", "0147", "municipality_admin")
OPS = User("ops", "0101", "system_admin")
# A webhook URL with the receiver's token in its path, as chat and on-call services hand them out.
HOOK = "https://hooks.kbh.example:8443/services/T0KEN-IN-THE-PATH"
PATIENT_NAMES = ("Karen High", "Erik Early", "Lise Late", "Ole Low", "Nina None", "Frede Other")


@pytest.fixture
def admins(db: psycopg.Connection[Any], world: World) -> None:
    for user in (ADMIN_KBH, ADMIN_FRB, OPS):
        create_user(db, user.username, user.municipality_id, user.role, PASSWORD)


def _as(client: TestClient, settings: GatewaySettings, user: User) -> str:
    """Make ``client`` ``user``'s browser; the session's anti-forgery token."""
    client.cookies.clear()
    token = issue_token(settings, user)
    client.cookies.set(SESSION_COOKIE, token)
    return csrf_token(settings, token)


def _queue(db: psycopg.Connection[Any], alert_id: int, recipient: outbox.Recipient, at: datetime) -> None:
    """Queue one delivery of a new event of the alert, due at ``at`` (as routing queues it)."""
    municipality = db.execute("SELECT municipality_id FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert municipality is not None
    event = add_event(db, alert_id, "raised", at=at)
    assert outbox.enqueue(db, municipality[0], alert_id, event, [recipient], now=at) == 1


def _claimed(db: psycopg.Connection[Any], at: datetime) -> outbox.Delivery:
    """The one delivery due at ``at``, claimed as the dispatcher claims it."""
    [delivery] = outbox.claim_due(db, at, 10)
    return delivery


def _failed(
    db: psycopg.Connection[Any], alert_id: int, recipient: outbox.Recipient, at: datetime, error: str
) -> int:
    _queue(db, alert_id, recipient, at)
    delivery = _claimed(db, at)
    assert outbox.mark_failed(db, delivery, at=at + timedelta(seconds=5), error=error)
    return delivery.id


def _retrying(
    db: psycopg.Connection[Any], alert_id: int, recipient: outbox.Recipient, at: datetime, error: str
) -> int:
    _queue(db, alert_id, recipient, at)
    delivery = _claimed(db, at)
    assert outbox.mark_retry(db, delivery, next_attempt_at=at + timedelta(minutes=2), error=error)
    return delivery.id


def _nurse(address: str, username: str) -> outbox.Recipient:
    return outbox.Recipient("email", address, username, "care-team")


def _table_rows(page: str) -> list[str]:
    """The rows of the troubles' table (the second table: the first counts)."""
    bodies = re.findall(r"<tbody>(.*?)</tbody>", page, re.DOTALL)
    return [] if len(bodies) < 2 else re.findall(r"<tr>(.*?)</tr>", bodies[1], re.DOTALL)


@pytest.fixture
def troubles(db: psycopg.Connection[Any], world: World, admins: None) -> dict[str, int]:
    """Deliveries of both municipalities: failed by e-mail and by webhook, one retrying, one sent."""
    at = world.now - timedelta(hours=1)
    ids = {
        "kbh-email": _failed(
            db, world.alerts["p-high"], _nurse("anna@kbh.example", "anna"), at, "550 5.1.1 no such mailbox"
        ),
        "kbh-webhook": _failed(
            db,
            world.alerts["p-med-late"],
            outbox.Recipient("webhook", HOOK, None, "municipality"),
            at + timedelta(minutes=1),
            f"Server error '503 Service Unavailable' for url '{HOOK}'",
        ),
        "frb-email": _failed(
            db,
            world.alerts["p-other"],
            _nurse("bo@frb.example", "bo"),
            at + timedelta(minutes=2),
            "connection refused",
        ),
        "kbh-retrying": _retrying(
            db,
            world.alerts["p-med-early"],
            outbox.Recipient("email", "vagt@kbh.example", None, "on-call"),
            at + timedelta(minutes=3),
            "421 try again later",
        ),
    }
    _queue(db, world.alerts["p-high"], _nurse("nora@kbh.example", "nora"), at + timedelta(minutes=4))
    sent = _claimed(db, at + timedelta(minutes=4))
    assert outbox.mark_sent(db, sent, at=at + timedelta(minutes=4))
    return ids


# --- the deliveries page -------------------------------------------------------------------------------


def test_a_municipality_administrator_sees_only_her_municipalitys_troubles(
    client: TestClient, settings: GatewaySettings, world: World, troubles: dict[str, int]
) -> None:
    _as(client, settings, ADMIN_KBH)
    page = client.get("/admin/deliveries")
    assert page.status_code == 200
    rows = _table_rows(page.text)
    # Newest first: the retrying on-call e-mail, the failed webhook call, the failed e-mail to Anna.
    assert [re.findall(r"<td>([\w-]+)</td>", row)[:2] for row in rows] == [
        [str(world.alerts[patient]), patient] for patient in ("p-med-early", "p-med-late", "p-high")
    ]
    assert "vagt@kbh.example" in rows[0] and "421 try again later" in rows[0] and "Pending" in rows[0]
    assert "anna@kbh.example" in rows[2] and "(anna)" in rows[2] and "Failed" in rows[2]
    assert "bo@frb.example" not in page.text and "connection refused" not in page.text
    assert "p-other" not in page.text
    # The counts are hers: 2 failed (e-mail, webhook), 1 pending, 1 sent.
    counts = re.findall(
        r"<th scope=\"row\">(\w[\w-]*)</th>\s*((?:<td class=\"number\">\d+</td>)+)", page.text
    )
    assert [(name, re.findall(r"\d+", cells)) for name, cells in counts] == [
        ("E-mail", ["1", "1", "1"]),
        ("Webhook", ["0", "0", "1"]),
    ]

    _as(client, settings, ADMIN_FRB)
    rows = _table_rows(client.get("/admin/deliveries").text)
    assert len(rows) == 1 and "bo@frb.example" in rows[0] and "p-other" in rows[0]


def test_rows_name_the_alert_and_patient_id_only_and_a_webhook_by_its_host(
    client: TestClient, settings: GatewaySettings, world: World, troubles: dict[str, int]
) -> None:
    _as(client, settings, OPS)
    page = client.get("/admin/deliveries").text
    rows = _table_rows(page)
    assert len(rows) == 4
    webhook = next(row for row in rows if "Webhook" in row)
    assert f"<td>{world.alerts['p-med-late']}</td>" in webhook and "<td>p-med-late</td>" in webhook
    assert "hooks.kbh.example:8443" in webhook and "for url &#39;hooks.kbh.example:8443&#39;" in webhook
    assert "T0KEN-IN-THE-PATH" not in page and "/services/" not in page
    reasons = ("NEWS2 8", "emergency assessment", "NEWS2 5", "NEWS2 9")
    assert [text for text in (*PATIENT_NAMES, *reasons) if text in page] == []


def test_pending_deliveries_show_after_a_failed_attempt_or_when_overdue(
    client: TestClient, settings: GatewaySettings, db: psycopg.Connection[Any], world: World, admins: None
) -> None:
    client.app.state.clock = lambda: world.now  # type: ignore[attr-defined]
    # Queued and never picked up: fresh (due a minute ago) and overdue (due 6 minutes ago).
    _queue(db, world.alerts["p-high"], _nurse("fresh@kbh.example", None), world.now - timedelta(minutes=1))
    _queue(db, world.alerts["p-high"], _nurse("stuck@kbh.example", None), world.now - timedelta(minutes=6))
    _as(client, settings, ADMIN_KBH)

    def shown(status: str = "") -> str:
        response = client.get("/admin/deliveries", params={"status": status} if status else {})
        assert response.status_code == 200
        return " ".join(_table_rows(response.text))

    assert "stuck@kbh.example" in shown() and "fresh@kbh.example" not in shown()
    assert "stuck@kbh.example" in shown("pending") and "stuck@kbh.example" not in shown("failed")
    assert client.get("/admin/deliveries", params={"status": "sent"}).status_code == 400


def test_the_deliveries_are_paged_from_the_newest(
    client: TestClient, settings: GatewaySettings, db: psycopg.Connection[Any], world: World, admins: None
) -> None:
    from gateway.api.admin_alert_pages import PAGE_SIZE

    start = world.now - timedelta(hours=3)
    for number in range(PAGE_SIZE + 2):
        recipient = _nurse(f"n{number}@kbh.example", None)
        _failed(db, world.alerts["p-high"], recipient, start + timedelta(seconds=number), "550")
    _as(client, settings, ADMIN_KBH)
    first = client.get("/admin/deliveries", params={"status": "failed"})
    rows = _table_rows(first.text)
    assert len(rows) == PAGE_SIZE and f"n{PAGE_SIZE + 1}@kbh.example" in rows[0]
    older = re.search(r'href="/admin/deliveries\?([^"]*before=\d+[^"]*)"', first.text)
    assert older is not None and "status=failed" in older[1]
    rest = _table_rows(client.get(f"/admin/deliveries?{older[1].replace('&amp;', '&')}").text)
    assert [re.search(r"n\d+@", row)[0] for row in rest] == ["n1@", "n0@"]  # type: ignore[index]


def test_the_system_administrator_sees_every_municipality_or_the_one_she_picks(
    client: TestClient, settings: GatewaySettings, troubles: dict[str, int]
) -> None:
    _as(client, settings, OPS)
    assert len(_table_rows(client.get("/admin/deliveries").text)) == 4
    only = client.get("/admin/deliveries", params={"municipality": "0147"}).text
    assert len(_table_rows(only)) == 1 and "bo@frb.example" in only
    assert client.get("/admin/deliveries", params={"municipality": "9999"}).status_code == 404


def test_nurses_gps_and_other_municipalities_are_refused(
    client: TestClient, settings: GatewaySettings, world: World, admins: None, db: psycopg.Connection[Any]
) -> None:
    create_user(db, "dr-jensen", world.own, "gp", PASSWORD)
    for user in (User(world.nurse, world.own, "nurse"), User("dr-jensen", world.own, "gp")):
        csrf = _as(client, settings, user)
        assert client.get("/admin/deliveries").status_code == 403
        assert client.get("/admin/alert-settings").status_code == 403
        form = {**_VALID, "csrf": csrf, "municipality": world.own}
        assert client.post("/admin/alert-settings", data=form).status_code == 403
    csrf = _as(client, settings, ADMIN_KBH)
    assert client.get("/admin/deliveries", params={"municipality": "0147"}).status_code == 403
    assert client.get("/admin/alert-settings", params={"municipality": "0147"}).status_code == 403
    refused = client.post("/admin/alert-settings", data={**_VALID, "csrf": csrf, "municipality": "0147"})
    assert refused.status_code == 403
    assert db.execute("SELECT count(*) FROM alert_settings").fetchone() == (0,)
    client.cookies.clear()
    anonymous = client.get("/admin/deliveries", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


# --- the settings ----------------------------------------------------------------------------------------

_VALID = {
    "webhook_url": "",
    "webhook_secret": "",
    "on_call_email": "vagt@kbh.example",
    "message_detail": "none",
    "escalate_high_minutes": "10",
    "escalate_medium_minutes": "45",
}


def _settings_row(db: psycopg.Connection[Any], municipality: str) -> tuple[Any, ...] | None:
    return db.execute(
        "SELECT webhook_url, webhook_secret, on_call_email, message_detail, escalate_high_minutes,"
        " escalate_medium_minutes, updated_by FROM alert_settings WHERE municipality_id = %s",
        (municipality,),
    ).fetchone()


def _audit(db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT username, municipality_id, role, client, patient_id, detail FROM audit_log"
        " WHERE action = 'set-alert-settings' ORDER BY id"
    ).fetchall()


def test_the_defaults_show_until_the_administrator_saves_and_the_save_is_audited(
    client: TestClient, settings: GatewaySettings, db: psycopg.Connection[Any], world: World, admins: None
) -> None:
    csrf = _as(client, settings, ADMIN_KBH)
    page = client.get("/admin/alert-settings").text
    assert "Alert settings of København" in page and "Never changed: the defaults apply." in page
    assert 'name="escalate_high_minutes" value="15"' in page and 'value="initials" checked' in page

    saved = client.post("/admin/alert-settings", data={**_VALID, "csrf": csrf}, follow_redirects=False)
    assert saved.status_code == 303
    assert saved.headers["location"] == "/admin/alert-settings?municipality=0101&saved=1"
    assert _settings_row(db, "0101") == (None, None, "vagt@kbh.example", "none", 10, 45, "admin-kbh")
    assert _audit(db) == [
        (
            "admin-kbh",
            "0101",
            "municipality_admin",
            "testclient",
            None,
            "municipality 0101: on-call e-mail - -> vagt@kbh.example; message detail initials -> none;"
            " escalate high after min 15 -> 10; escalate medium after min 60 -> 45",
        )
    ]
    page = client.get(saved.headers["location"]).text
    assert "The settings are saved." in page and "Last changed by admin-kbh" in page
    assert 'name="escalate_medium_minutes" value="45"' in page and 'value="none" checked' in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("escalate_high_minutes", "0", "Write whole minutes from 1 to 1440."),
        ("escalate_medium_minutes", "1441", "Write whole minutes from 1 to 1440."),
        ("escalate_high_minutes", "ten", "Write whole minutes from 1 to 1440."),
        ("escalate_high_minutes", "-5", "Write whole minutes from 1 to 1440."),
        ("on_call_email", "vagt at kbh", "Write an e-mail address"),
        ("message_detail", "full-name", "Choose how much a message says."),
        ("webhook_url", "ftp://hooks.kbh.example/x", "must begin with https://"),
        ("webhook_url", "https://user:pw@hooks.kbh.example/x", "no user name or password"),
        ("webhook_url", "https:///no-host", "is not a web address"),
        ("webhook_url", "https://hooks.kbh.example:port/x", "is not a web address"),
    ],
)
def test_a_wrong_field_is_named_nothing_is_stored_and_nothing_audited(
    client: TestClient,
    settings: GatewaySettings,
    db: psycopg.Connection[Any],
    admins: None,
    field: str,
    value: str,
    message: str,
) -> None:
    csrf = _as(client, settings, ADMIN_KBH)
    answer = client.post("/admin/alert-settings", data={**_VALID, field: value, "csrf": csrf})
    assert answer.status_code == 400
    assert "The settings were not saved" in answer.text and message in answer.text.replace("&#39;", "'")
    assert f'href="#{field}' in answer.text
    assert _settings_row(db, "0101") is None and _audit(db) == []


def test_a_typed_secret_is_stored_and_never_shown_again(
    client: TestClient, settings: GatewaySettings, db: psycopg.Connection[Any], admins: None
) -> None:
    secret = "typed-secret-Xq7Lp2Vz9Rw4Ns8K"
    csrf = _as(client, settings, ADMIN_KBH)
    form = {**_VALID, "webhook_url": HOOK, "webhook_secret": secret, "csrf": csrf}
    wrong = client.post("/admin/alert-settings", data={**form, "escalate_high_minutes": "0"})
    assert wrong.status_code == 400 and secret not in wrong.text
    assert HOOK in wrong.text  # the rest of what she typed is shown again

    saved = client.post("/admin/alert-settings", data=form)
    assert saved.status_code == 200 and secret not in saved.text and len(saved.history) == 1
    assert outbox.webhook_secret(db, "0101") == secret
    page = client.get("/admin/alert-settings").text
    assert secret not in page and "A secret is set; it is never shown." in page
    assert 'type="password" id="webhook_secret" name="webhook_secret" value=""' in page
    assert all(secret not in str(row) for row in _audit(db))
    assert "webhook - -> hooks.kbh.example:8443; webhook secret replaced" in _audit(db)[0][5]

    # Saved again without a secret, the webhook keeps it.
    again = client.post(
        "/admin/alert-settings", data={**form, "webhook_secret": "", "message_detail": "initials"}
    )
    assert again.status_code == 200 and outbox.webhook_secret(db, "0101") == secret
    short = client.post("/admin/alert-settings", data={**form, "webhook_secret": "short"})
    assert short.status_code == 400 and "A secret has 16 to 200 characters" in short.text


def test_a_generated_secret_is_shown_once_and_a_removed_webhook_drops_it(
    client: TestClient, settings: GatewaySettings, db: psycopg.Connection[Any], admins: None
) -> None:
    csrf = _as(client, settings, ADMIN_KBH)
    # A new webhook without a secret gets one, shown in the answer to the form only.
    first = client.post("/admin/alert-settings", data={**_VALID, "webhook_url": HOOK, "csrf": csrf})
    assert first.status_code == 200 and "it is not shown again" in first.text
    stored = outbox.webhook_secret(db, "0101")
    assert stored is not None and len(stored) >= 43 and f'<code id="new-secret">{stored}</code>' in first.text
    assert stored not in client.get("/admin/alert-settings").text

    replaced = client.post(
        "/admin/alert-settings", data={**_VALID, "webhook_url": HOOK, "generate_secret": "1", "csrf": csrf}
    )
    new = outbox.webhook_secret(db, "0101")
    assert new not in (None, stored) and f">{new}</code>" in replaced.text

    removed = client.post("/admin/alert-settings", data={**_VALID, "csrf": csrf}, follow_redirects=False)
    assert removed.status_code == 303
    assert outbox.webhook_secret(db, "0101") is None and _settings_row(db, "0101")[:2] == (None, None)  # type: ignore[index]


def test_the_system_administrator_sets_the_municipality_she_picks(
    client: TestClient, settings: GatewaySettings, db: psycopg.Connection[Any], admins: None
) -> None:
    csrf = _as(client, settings, OPS)
    page = client.get("/admin/alert-settings", params={"municipality": "0147"}).text
    assert "Alert settings of Frederiksberg" in page and '<option value="0147" selected>' in page
    saved = client.post(
        "/admin/alert-settings", data={**_VALID, "municipality": "0147", "csrf": csrf}, follow_redirects=False
    )
    assert saved.status_code == 303 and "municipality=0147" in saved.headers["location"]
    assert _settings_row(db, "0147") is not None and _settings_row(db, "0101") is None
    assert _audit(db)[0][:3] == ("ops", "0101", "system_admin") and "municipality 0147:" in _audit(db)[0][5]
    assert client.get("/admin/alert-settings", params={"municipality": "9999"}).status_code == 404


def test_a_form_without_the_sessions_token_is_refused(
    client: TestClient, settings: GatewaySettings, db: psycopg.Connection[Any], admins: None
) -> None:
    _as(client, settings, ADMIN_KBH)
    for forged in ("", "forged"):
        assert client.post("/admin/alert-settings", data={**_VALID, "csrf": forged}).status_code == 403
    assert _settings_row(db, "0101") is None


def test_a_production_gateway_refuses_a_plain_http_webhook(
    database_url: str, pool: ConnectionPool[Any], db: psycopg.Connection[Any], admins: None
) -> None:
    production = GatewaySettings(
        environment="production",
        database_url=database_url,
        secret_key="test-secret-of-production-0123456789",
        default_language="en",
    )
    with TestClient(create_app(production, pool), base_url="https://testserver") as client:
        csrf = _as(client, production, ADMIN_KBH)
        cookie = client.cookies.get(SESSION_COOKIE)
        client.cookies.clear()
        client.cookies.set(cookie_name(production, SESSION_COOKIE), cookie or "")
        form = {**_VALID, "webhook_url": "http://hooks.kbh.example/x", "csrf": csrf}
        answer = client.post("/admin/alert-settings", data=form)
    assert answer.status_code == 400 and "must begin with https://" in answer.text
    assert _settings_row(db, "0101") is None


def test_plain_http_webhooks_are_for_development_only() -> None:
    form = {**_VALID, "webhook_url": "http://127.0.0.1:9000/hook", "webhook_secret": "a-long-enough-secret"}
    stored = default_settings("0101")
    assert read_settings_form(form, stored, development=False).change is None
    change = read_settings_form(form, stored, development=True).change
    assert change is not None and change.webhook_url == "http://127.0.0.1:9000/hook"
    assert change.new_webhook_secret == "a-long-enough-secret"


# --- in Danish -------------------------------------------------------------------------------------------


@pytest.fixture
def danish(database_url: str, pool: ConnectionPool[Any], troubles: dict[str, int]) -> Iterator[TestClient]:
    settings = GatewaySettings(database_url=database_url, secret_key="test-secret-of-the-danish-admin")
    with TestClient(create_app(settings, pool), headers={"Accept-Language": ""}) as client:
        _as(client, settings, ADMIN_KBH)
        yield client


def test_the_pages_speak_danish(danish: TestClient) -> None:
    from test_danish_pages import _english_left

    deliveries = danish.get("/admin/deliveries")
    assert deliveries.status_code == 200 and deliveries.headers["content-language"] == "da"
    assert "Alarmafsendelser" in deliveries.text and "Fejlet" in deliveries.text
    assert _english_left(deliveries.text.replace("550 5.1.1 no such mailbox", "")) == []
    page = danish.get("/admin/alert-settings")
    assert "Alarmindstillinger for København" in page.text
    assert _english_left(page.text) == []
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    wrong = danish.post(
        "/admin/alert-settings", data={**_VALID, "escalate_high_minutes": "0", "csrf": csrf[1]}
    )
    assert wrong.status_code == 400 and "Skriv hele minutter fra 1 til 1440." in wrong.text
    assert _english_left(wrong.text) == []


def test_the_administrators_menu_links_both_pages(
    client: TestClient, settings: GatewaySettings, admins: None
) -> None:
    _as(client, settings, ADMIN_FRB)
    page = client.get("/admin/audit").text
    nav = re.search(r'<nav class="main-nav".*?</nav>', page, re.DOTALL)
    assert nav is not None
    assert re.findall(r'href="([^"]+)"', nav[0]) == [
        "/admin/audit",
        "/admin/deliveries",
        "/admin/alert-settings",
        "/admin/models",
        "/admin/homes",
        "/admin/quarantine",
        "/admin/fleet",
    ]


def test_a_clock_behind_is_no_reason_to_show_a_fresh_delivery(
    client: TestClient, settings: GatewaySettings, db: psycopg.Connection[Any], world: World, admins: None
) -> None:
    # The demo's simulated clock may lag the rows' times: nothing is overdue then.
    client.app.state.clock = lambda: datetime(2020, 1, 1, tzinfo=UTC)  # type: ignore[attr-defined]
    _queue(db, world.alerts["p-high"], _nurse("fresh@kbh.example", None), world.now)
    _as(client, settings, ADMIN_KBH)
    assert _table_rows(client.get("/admin/deliveries").text) == []
