"""Issue 20: the administrator's quarantine pages (``/admin/quarantine``) on the real app and database.

The rows come in through the ingest worker's own decide-and-store transaction (``BatchStore``): a reading
of a device assigned to nobody, a hostile entry, a large message that is not JSON, another municipality's
row, and rows of no known municipality. Proves who sees which rows (a municipality administrator hers,
another's is 404; a system administrator hers and, on asking, those of no municipality; nurses 403;
nobody is sent to log in), that the payload is shown escaped and cut, that reading a row is audited, that
re-processing after an enrolment fix stores the reading for the hub's patient (once), that dismissing
needs a reason, and (hypothesis) that no filter or id makes a page fail.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from observation_factory import BASE_TIME, Home, bundle, identifier

from gateway.api.auth import SESSION_COOKIE, User, csrf_token, issue_token
from gateway.api.quarantine_pages import PAYLOAD_CHARS
from gateway.ingest.batch_store import BatchStore
from gateway.settings import GatewaySettings
from gateway.store import quarantine as q
from gateway.store.repository import Device, enroll_device
from gateway.store.users import insert_user

HOME = Home()
ELSEWHERE = Home(
    municipality_id="0147", patient_id="p47", hub_id="hub47", oximeter_id="OXI47", cuff_id="BPC47"
)
NEW_DEVICE = "OXI-NEW"
ADMIN_KBH = User("admin-kbh", "0101", "municipality_admin")
ADMIN_FRB = User("admin-frb", "0147", "municipality_admin")
OPS = User("ops", "0101", "system_admin")
NURSE = User("nurse-kbh", "0101", "nurse")
HOSTILE = "<script>alert('quarantine')</script>"
HOME_LATER = BASE_TIME.replace(minute=30)


@dataclass
class Inbound:
    topic: str
    payload: bytes
    arrived: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Rows:
    """The quarantine's rows by what they hold."""

    held: int  # 0101: a reading of a device assigned to nobody
    hostile: int  # 0101: an impossible value with a script in it
    large: int  # 0101: 60 kB that is not JSON
    theirs: int  # 0147: a reading of a device assigned to nobody
    bad_topic: int  # no municipality
    nobodys: int  # municipality 9999, which nobody enrolled
    held_reading: str  # the identifier of the held reading


@pytest.fixture
def rows(database_url: str) -> Rows:
    with psycopg.connect(database_url, autocommit=True) as conn:
        HOME.enroll(conn)
        ELSEWHERE.enroll(conn)
        for user in (ADMIN_KBH, ADMIN_FRB, OPS, NURSE):
            insert_user(conn, user.username, user.municipality_id, user.role, "no password")
    held = HOME.spo2(91, device_id=NEW_DEVICE)
    hostile = HOME.spo2(95, HOME_LATER)
    hostile["valueQuantity"]["value"] = 140  # the hub would send it as dataAbsentReason; another sender
    hostile["note"] = [{"text": HOSTILE}]
    messages = [
        (HOME.topic, bundle([held])),
        (HOME.topic, bundle([hostile])),
        (HOME.topic, b"<b>not json</b>" + b"x" * 60_000),
        (ELSEWHERE.topic, bundle([ELSEWHERE.spo2(92, device_id="OXI47-NEW")])),
        ("homewatch/v1/0101/hub 1/observations", b"{}"),
        ("homewatch/v1/9999/hub9/observations", bundle([HOME.spo2(90)])),
    ]
    store = BatchStore(GatewaySettings(database_url=database_url), "test-ingest")
    try:
        for topic, payload in messages:  # one batch each: the rows' ids follow this order
            store.handle([Inbound(topic, payload)])
    finally:
        store.close()
    with psycopg.connect(database_url) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM quarantine ORDER BY id").fetchall()]
    assert len(ids) == 6
    held_id, hostile_id, large, theirs, bad_topic, nobodys = ids
    return Rows(held_id, hostile_id, large, theirs, bad_topic, nobodys, identifier(held))


@pytest.fixture
def raw_client(app: FastAPI) -> Iterator[TestClient]:
    """A client that gets the server's 500 as an answer instead of an exception."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _as(client: TestClient, settings: GatewaySettings, user: User | None) -> str:
    """Make ``client`` ``user``'s browser (None: nobody's); the session's anti-forgery token."""
    client.cookies.clear()
    if user is None:
        return ""
    token = issue_token(settings, user)
    client.cookies.set(SESSION_COOKIE, token)
    return csrf_token(settings, token)


def _row(db: psycopg.Connection[Any], row_id: int) -> q.QuarantineRow:
    found = q.quarantine_row(db, row_id, q.Scope.everything())
    assert found is not None
    return found


def _table(page: str) -> str:
    found = re.search(r'<table class="quarantine-rows".*?</table>', page, re.DOTALL)
    return found[0] if found else ""


def test_the_administrator_lists_her_municipalitys_rows_with_the_held_ones_counted(
    client: TestClient, settings: GatewaySettings, rows: Rows
) -> None:
    _as(client, settings, ADMIN_KBH)
    page = client.get("/admin/quarantine")
    assert page.status_code == 200
    table = _table(page.text)
    assert all(f"/admin/quarantine/{row_id}" in table for row_id in (rows.held, rows.hostile, rows.large))
    assert "hub47" not in page.text and "9999" not in page.text and "bad-topic" not in page.text
    assert "Held: device assigned to nobody" in page.text and 'id="held-hint"' in page.text
    assert 'href="/admin/quarantine?state=open&amp;code=unassigned-device"' in page.text
    assert 'href="/admin/quarantine"' in page.text  # the administrator's menu
    assert HOSTILE not in page.text

    held = _table(client.get("/admin/quarantine", params={"code": "unassigned-device"}).text)
    assert f"/admin/quarantine/{rows.held}" in held and f"/admin/quarantine/{rows.hostile}" not in held
    assert _table(client.get("/admin/quarantine", params={"hub": "hub-none"}).text) == ""
    assert client.get("/admin/quarantine", params={"municipality": "0147"}).status_code == 403


def test_a_system_administrator_picks_a_municipality_and_sees_the_rows_of_none(
    client: TestClient, settings: GatewaySettings, rows: Rows
) -> None:
    _as(client, settings, OPS)
    mixed = _table(client.get("/admin/quarantine", params={"municipality": "0101"}).text)
    assert all(f"/admin/quarantine/{i}" in mixed for i in (rows.held, rows.bad_topic, rows.nobodys))
    assert f"/admin/quarantine/{rows.theirs}" not in mixed and "no known municipality" in mixed
    only_own = _table(
        client.get("/admin/quarantine", params={"municipality": "0101", "rows": "municipality"}).text
    )
    assert (
        f"/admin/quarantine/{rows.held}" in only_own and f"/admin/quarantine/{rows.bad_topic}" not in only_own
    )
    unowned = _table(client.get("/admin/quarantine", params={"rows": "unowned"}).text)
    assert re.findall(r"/admin/quarantine/(\d+)", unowned) == [str(rows.nobodys), str(rows.bad_topic)]
    theirs = _table(
        client.get("/admin/quarantine", params={"municipality": "0147", "rows": "municipality"}).text
    )
    assert re.findall(r"/admin/quarantine/(\d+)", theirs) == [str(rows.theirs)]
    assert client.get(f"/admin/quarantine/{rows.bad_topic}").status_code == 200  # any row is hers to open


def test_a_row_shows_its_payload_escaped_and_cut_and_reading_it_is_audited(
    client: TestClient, settings: GatewaySettings, db: psycopg.Connection[Any], rows: Rows
) -> None:
    _as(client, settings, ADMIN_KBH)
    hostile = client.get(f"/admin/quarantine/{rows.hostile}")
    assert hostile.status_code == 200 and "impossible-value" in hostile.text
    assert (
        HOSTILE not in hostile.text
        and "&lt;script&gt;alert(&#39;quarantine&#39;)&lt;/script&gt;" in hostile.text
    )
    large = client.get(f"/admin/quarantine/{rows.large}").text
    shown = re.search(r'<pre class="quarantine-payload">(.*?)</pre>', large, re.DOTALL)
    assert shown is not None and shown[1].startswith("&lt;b&gt;not json&lt;/b&gt;xxx")
    assert len(shown[1]) < PAYLOAD_CHARS + 100 and "60015 characters" in large
    assert "the first 20000 are shown" in large
    audited = db.execute(
        "SELECT username, action, patient_id, detail FROM audit_log"
        " WHERE action = 'view-quarantine' ORDER BY id"
    ).fetchall()
    assert [(a[0], a[2]) for a in audited] == [("admin-kbh", "p1"), ("admin-kbh", None)]
    assert audited[0][3] == f"quarantine row {rows.hostile} (impossible-value)"


def test_reprocessing_after_the_device_is_assigned_stores_the_reading_for_the_hubs_patient_once(
    client: TestClient, settings: GatewaySettings, db: psycopg.Connection[Any], rows: Rows
) -> None:
    csrf = _as(client, settings, ADMIN_KBH)
    url = f"/admin/quarantine/{rows.held}/reprocess"
    assert client.post(url, data={"csrf": "forged"}, follow_redirects=False).status_code == 403
    assert _row(db, rows.held).is_open
    # Not assigned yet: refused again, and a new row holds it under today's reason.
    done = client.post(url, data={"csrf": csrf}, follow_redirects=False)
    assert (
        done.status_code == 303
        and done.headers["location"] == f"/admin/quarantine/{rows.held}?done=reprocessed"
    )
    assert "Re-processed: refused again" in client.get(done.headers["location"]).text
    [successor] = q.successors(db, rows.held)
    assert successor.code == "unassigned-device" and successor.is_open

    enroll_device(db, Device("0101", NEW_DEVICE, HOME.hub_id, HOME.patient_id, "pulse-oximeter"))
    stored = client.post(
        f"/admin/quarantine/{successor.id}/reprocess", data={"csrf": csrf}, follow_redirects=False
    )
    assert stored.status_code == 303
    page = client.get(stored.headers["location"]).text
    assert 'id="quarantine-done"' in page and "Re-processed: stored" in page
    assert db.execute("SELECT identifier, patient_id, device_id FROM observations").fetchall() == [
        (rows.held_reading, HOME.patient_id, NEW_DEVICE)
    ]
    again = client.post(f"/admin/quarantine/{successor.id}/reprocess", data={"csrf": csrf})
    assert again.status_code == 409 and "resolved this row already" in again.text
    assert db.execute("SELECT count(*) FROM observations").fetchone() == (1,)
    actions = [row[0] for row in db.execute("SELECT action FROM audit_log WHERE action <> 'view-quarantine'")]
    assert actions == ["reprocess-quarantine", "reprocess-quarantine"]


def test_dismissing_needs_a_reason_and_happens_once(
    client: TestClient, settings: GatewaySettings, db: psycopg.Connection[Any], rows: Rows
) -> None:
    csrf = _as(client, settings, ADMIN_KBH)
    url = f"/admin/quarantine/{rows.large}/dismiss"
    empty = client.post(url, data={"csrf": csrf, "reason": "  "})
    assert empty.status_code == 400 and "Write why the row is dismissed" in empty.text
    assert 'aria-invalid="true"' in empty.text and _row(db, rows.large).is_open
    too_long = client.post(url, data={"csrf": csrf, "reason": "x" * 1001})
    assert too_long.status_code == 400
    done = client.post(
        url, data={"csrf": csrf, "reason": "A test sender; not a hub."}, follow_redirects=False
    )
    assert done.status_code == 303
    row = _row(db, rows.large)
    assert (row.resolution, row.resolved_by, row.resolution_note) == (
        "dismissed",
        "admin-kbh",
        "A test sender; not a hub.",
    )
    assert client.post(url, data={"csrf": csrf, "reason": "again"}).status_code == 409
    assert client.post(f"/admin/quarantine/{rows.large}/reprocess", data={"csrf": csrf}).status_code == 409
    assert (
        _table(client.get("/admin/quarantine").text).count("/admin/quarantine/") == 2
    )  # open: held, hostile
    assert [r[0] for r in db.execute("SELECT action FROM audit_log WHERE action = 'dismiss-quarantine'")] == [
        "dismiss-quarantine"
    ]


@pytest.mark.parametrize(
    ("user", "row", "expected"),
    [
        (ADMIN_FRB, "held", 404),  # another municipality's row does not exist for her
        (ADMIN_KBH, "theirs", 404),
        (ADMIN_KBH, "bad_topic", 404),  # a row of no municipality is a system administrator's
        (NURSE, "held", 403),
        (None, "held", 303),  # nobody: to the login
    ],
)
def test_who_may_open_reprocess_or_dismiss_a_row(
    client: TestClient,
    settings: GatewaySettings,
    db: psycopg.Connection[Any],
    rows: Rows,
    user: User | None,
    row: str,
    expected: int,
) -> None:
    csrf = _as(client, settings, user)
    row_id = getattr(rows, row)
    form = {"csrf": csrf, "reason": "not mine"}
    for method, url in (
        ("GET", f"/admin/quarantine/{row_id}"),
        ("POST", f"/admin/quarantine/{row_id}/reprocess"),
        ("POST", f"/admin/quarantine/{row_id}/dismiss"),
    ):
        response = client.request(
            method, url, data=form if method == "POST" else None, follow_redirects=False
        )
        assert response.status_code == expected, (method, url)
        if expected == 303:
            assert response.headers["location"].startswith("/login")
    assert _row(db, row_id).is_open
    assert db.execute("SELECT count(*) FROM audit_log WHERE action LIKE '%%quarantine'").fetchone() == (0,)
    if user is not None and user.role == "municipality_admin":
        assert client.get("/admin/quarantine").status_code == 200


_TEXT = st.text(st.characters(codec="utf-8"), max_size=60)  # no lone surrogate: no URL carries one
_PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "municipality": st.one_of(st.sampled_from(["0101", "0147", "9999", ""]), _TEXT),
        "rows": st.one_of(st.sampled_from(["", "municipality", "unowned"]), _TEXT),
        "code": st.one_of(st.sampled_from(["unassigned-device", "unknown-hub", "bad-topic"]), _TEXT),
        "hub": st.one_of(st.sampled_from(["hub1", "hub47", "hub 1"]), _TEXT),
        "since": st.one_of(st.dates().map(str), _TEXT),
        "until": st.one_of(st.dates().map(str), _TEXT),
        "state": st.one_of(st.sampled_from(["open", "resolved", "all"]), _TEXT),
        "before": st.one_of(st.integers(min_value=-(2**70), max_value=2**70).map(str), _TEXT),
    },
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(params={"until": "9999-12-31"}, row_id="1", system=True)
@example(params={"before": str(2**63)}, row_id=str(2**64), system=False)
@example(params={"code": HOSTILE, "hub": HOSTILE}, row_id="0", system=True)
@given(
    params=_PARAMS,
    row_id=st.one_of(st.integers(min_value=-5, max_value=2**70).map(str), _TEXT),
    system=st.booleans(),
)
def test_no_filter_or_id_makes_a_page_fail(
    raw_client: TestClient,
    settings: GatewaySettings,
    rows: Rows,
    params: dict[str, str],
    row_id: str,
    system: bool,
) -> None:
    _as(raw_client, settings, OPS if system else ADMIN_KBH)
    listed = raw_client.get("/admin/quarantine", params=params)
    assert listed.status_code in (200, 400, 403, 404, 422), listed.text[:300]
    assert HOSTILE not in listed.text
    one = raw_client.get(f"/admin/quarantine/{quote(row_id, safe='')}", follow_redirects=False)
    assert one.status_code in ((307,) if row_id == "" else (200, 404)), one.text[:300]
    assert HOSTILE not in one.text
