"""Issue 17: the audit log records who, what, when, from where and in which role; logins (both ways),
logouts, reads and acknowledgements are in it; the application cannot change it; the municipality
administrator reads and filters her municipality's rows in the browser (``GET /admin/audit``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from seed import PASSWORD, World, login, post_login

from gateway.api.admin_pages import PAGE_SIZE
from gateway.api.auth import SESSION_COOKIE, User, create_user, csrf_token, issue_token
from gateway.settings import GatewaySettings
from gateway.store.audit import Attempt, record_audit

ADMIN_KBH = User("admin-kbh", "0101", "municipality_admin")
ADMIN_FRB = User("admin-frb", "0147", "municipality_admin")
OPS = User("ops", "0101", "system_admin")


def _rows(db: psycopg.Connection[Any], action: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT username, municipality_id, role, client, patient_id, detail FROM audit_log"
        " WHERE action = %s ORDER BY id",
        (action,),
    ).fetchall()


def _as(client: TestClient, settings: GatewaySettings, user: User) -> None:
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, issue_token(settings, user))


@pytest.fixture
def admins(db: psycopg.Connection[Any], world: World) -> None:
    for user in (ADMIN_KBH, ADMIN_FRB, OPS):
        create_user(db, user.username, user.municipality_id, user.role, PASSWORD)


# --- what is recorded --------------------------------------------------------------------------------


def test_logins_both_ways_and_logouts_are_recorded_with_role_and_client(
    client: TestClient, world: World, db: psycopg.Connection[Any]
) -> None:
    assert post_login(client, world.nurse, "wrong password").status_code == 401
    assert post_login(client, "nobody-at-all", PASSWORD).status_code == 401
    login(client, world.nurse)
    page = client.get("/").text
    csrf = re.search(r'action="/logout">\s*<input type="hidden" name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    client.post("/logout", data={"csrf": csrf[1]}, follow_redirects=False)
    assert (
        client.post("/login/access-token", data={"username": world.nurse, "password": PASSWORD}).status_code
        == 200
    )

    assert _rows(db, "login-failed") == [
        (world.nurse, world.own, "nurse", "testclient", None, "web: wrong username or password"),
        ("nobody-at-all", None, None, "testclient", None, "web: wrong username or password"),
    ]
    assert _rows(db, "login") == [
        (world.nurse, world.own, "nurse", "testclient", None, "web"),
        (world.nurse, world.own, "nurse", "testclient", None, "access-token"),
    ]
    assert _rows(db, "logout") == [(world.nurse, world.own, "nurse", "testclient", None, None)]


def test_a_throttled_login_is_recorded_as_failed(
    client: TestClient, world: World, db: psycopg.Connection[Any]
) -> None:
    statuses = [post_login(client, world.nurse, "wrong").status_code for _ in range(8)]
    assert 429 in statuses
    details = [row[5] for row in _rows(db, "login-failed")]
    assert details.count("web: throttled") == statuses.count(429)


def test_reads_and_acknowledgements_record_role_client_and_the_patients_municipality(
    client: TestClient, settings: GatewaySettings, world: World, db: psycopg.Connection[Any]
) -> None:
    _as(client, settings, User(world.nurse, world.own, "nurse"))
    token = client.cookies[SESSION_COOKIE]
    acknowledged = client.post(
        f"/alerts/{world.alerts['p-high']}/acknowledge",
        data={"csrf": csrf_token(settings, token), "note": "Ringede."},
        follow_redirects=False,
    )
    assert acknowledged.status_code == 303
    client.get("/fhir/Patient/p-high", headers={"Authorization": f"Bearer {token}"})
    rows = db.execute(
        "SELECT action, username, role, client, patient_id, patient_municipality_id FROM audit_log"
        " WHERE action IN ('acknowledge-alert', 'fhir-read') ORDER BY id"
    ).fetchall()
    assert rows == [
        ("acknowledge-alert", world.nurse, "nurse", "testclient", "p-high", world.own),
        ("fhir-read", world.nurse, "nurse", "testclient", "p-high", world.own),
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET username = 'someone-else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ],
)
def test_the_application_cannot_change_or_delete_the_audit_log(
    pool: ConnectionPool[Any], world: World, statement: str
) -> None:
    with pool.connection() as conn:  # the app's own connection, as a route gets it
        record_audit(conn, Attempt("someone"), "login-failed", [], "test", client="203.0.113.9")
        conn.commit()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(statement)
        conn.rollback()
        assert conn.execute("SELECT username FROM audit_log").fetchall() == [("someone",)]


# --- the administrator's page ------------------------------------------------------------------------


def _table_rows(page: str) -> list[str]:
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.DOTALL)
    return [] if body is None else re.findall(r"<tr>(.*?)</tr>", body[1], re.DOTALL)


def test_nurses_and_gps_may_not_read_the_audit_log(
    client: TestClient, settings: GatewaySettings, world: World, db: psycopg.Connection[Any]
) -> None:
    create_user(db, "dr-jensen", world.own, "gp", PASSWORD)
    for user in (User(world.nurse, world.own, "nurse"), User("dr-jensen", world.own, "gp")):
        _as(client, settings, user)
        assert client.get("/admin/audit").status_code == 403
    client.cookies.clear()
    refused = client.get("/admin/audit", follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"] == "/login?next=%2Fadmin%2Faudit"


def test_the_municipality_administrator_reads_only_her_municipalitys_rows(
    client: TestClient, settings: GatewaySettings, world: World, admins: None, db: psycopg.Connection[Any]
) -> None:
    nurse, other_nurse = User(world.nurse, world.own, "nurse"), User(world.other_nurse, world.other, "nurse")
    record_audit(db, nurse, "view-patient", ["p-high"], client="10.0.0.1")
    record_audit(db, other_nurse, "view-patient", [world.other_patient], client="10.0.0.2")
    # A GP of her municipality whose patient lives in the other one: both administrators see it.
    create_user(db, "dr-jensen", world.own, "gp", PASSWORD)
    record_audit(
        db, User("dr-jensen", world.own, "gp"), "view-patient", [world.other_patient], client="10.0.0.3"
    )

    _as(client, settings, ADMIN_KBH)
    page = client.get("/admin/audit")
    assert page.status_code == 200
    shown = _table_rows(page.text)
    assert (
        len(shown) == 2 and "10.0.0.2" not in page.text and f"<td>{world.other_nurse}</td>" not in page.text
    )
    assert "10.0.0.1" in page.text and "dr-jensen" in page.text

    _as(client, settings, ADMIN_FRB)
    shown = _table_rows(client.get("/admin/audit").text)
    assert (
        len(shown) == 2
        and any("dr-jensen" in row for row in shown)
        and not any(f"<td>{world.nurse}</td>" in r for r in shown)
    )

    _as(client, settings, OPS)  # the system administrator reads every municipality's rows
    assert len(_table_rows(client.get("/admin/audit").text)) == 3


def test_the_administrator_filters_by_user_patient_action_and_days_in_her_time_zone(
    client: TestClient, settings: GatewaySettings, world: World, admins: None, db: psycopg.Connection[Any]
) -> None:
    nurse = User(world.nurse, world.own, "nurse")
    record_audit(db, nurse, "view-patient", ["p-high"], client="10.0.0.1")
    record_audit(db, nurse, "view-patient", ["p-low"], client="10.0.0.1")
    record_audit(db, ADMIN_KBH, "login", [], "web", client="10.0.0.9")
    # 23:30 UTC on 1 March is 00:30 on 2 March in Copenhagen: the administrator's 2 March.
    db.execute(
        "INSERT INTO audit_log (at, username, municipality_id, role, client, action, patient_id)"
        " VALUES (%s, %s, %s, 'nurse', '10.0.0.7', 'view-patient', 'p-med-late')",
        (datetime(2026, 3, 1, 23, 30, tzinfo=UTC), world.nurse, world.own),
    )
    _as(client, settings, ADMIN_KBH)

    def shown(**params: str) -> list[str]:
        response = client.get("/admin/audit", params=params)
        assert response.status_code == 200, response.text
        return _table_rows(response.text)

    assert len(shown()) == 4
    assert len(shown(username=world.nurse)) == 3
    assert len(shown(patient="p-low")) == 1
    assert len(shown(action="login")) == 1
    assert len(shown(since="2026-03-02", until="2026-03-02")) == 1
    assert shown(since="2026-03-01", until="2026-03-01") == []
    assert len(shown(username=world.nurse, action="view-patient", since="2026-03-03")) == 2
    assert client.get("/admin/audit", params={"since": "2026-02-30"}).status_code == 400


def test_the_audit_log_is_paged_from_the_newest_row(
    client: TestClient, settings: GatewaySettings, world: World, admins: None, db: psycopg.Connection[Any]
) -> None:
    nurse = User(world.nurse, world.own, "nurse")
    for number in range(PAGE_SIZE + 5):
        record_audit(db, nurse, "view-patient", ["p-high"], f"view {number}", client="10.0.0.1")
    _as(client, settings, ADMIN_KBH)
    first = client.get("/admin/audit", params={"username": world.nurse})
    rows = _table_rows(first.text)
    assert len(rows) == PAGE_SIZE and f"view {PAGE_SIZE + 4}" in rows[0]
    older = re.search(r'href="/admin/audit\?([^"]*before=\d+[^"]*)"', first.text)
    assert older is not None
    second = client.get(f"/admin/audit?{older[1].replace('&amp;', '&')}")
    rest = _table_rows(second.text)
    assert len(rest) == 5 and "view 0<" in rest[-1].replace("</td>", "<")
    assert "before=" not in re.sub(
        r'href="/admin/audit\?username=[^"]*"', "", second.text.split("</table>")[1]
    )


def test_an_administrator_logging_in_lands_on_the_audit_log(
    client: TestClient, world: World, admins: None
) -> None:
    response = post_login(client, ADMIN_KBH.username, PASSWORD)
    assert response.status_code == 303 and response.headers["location"] == "/admin/audit"
    assert client.get("/admin/audit").status_code == 200
