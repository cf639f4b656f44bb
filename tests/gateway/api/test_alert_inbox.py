"""The alert inbox and an alert's page: tabs of the viewer's patients' alerts, the header's count, and
the forms (acknowledge with a note, snooze, assign, resolve) on the alert's page, in the inbox and on the
patient page; each audited and in the alert's history, each refused without the session's form token,
for another municipality's alert a 404, for bad input the form again (422), never a 500. Real
PostgreSQL, the real app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg_pool import ConnectionPool
from seed import PASSWORD, World, audit_rows, login

from gateway.alerts.lifecycle import Trigger, record_trigger
from gateway.api.app import create_app
from gateway.api.auth import create_user
from gateway.settings import GatewaySettings
from gateway.store.alert_actions import OUTCOMES
from gateway.store.repository import Municipality, Patient, enroll_municipality, enroll_patient

Conn = psycopg.Connection[Any]
COPENHAGEN = ZoneInfo("Europe/Copenhagen")
GP = "dr-gp"
# The alerts people act on; delivery's events (nobody here has an e-mail address) are the routing's.
LIFECYCLE = ("raised", "severity-raised", "acknowledged", "snoozed", "assigned", "resolved")


@pytest.fixture
def gp(db: Conn, world: World) -> str:
    """A GP of Frederiksberg whose patients are Karen High (København) and Frede Other (Frederiksberg)."""
    create_user(db, GP, world.other, "gp", PASSWORD)
    db.execute("UPDATE patients SET gp_username = %s WHERE id IN ('p-high', 'p-other')", (GP,))
    return GP


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found[1]


def _token(client: TestClient) -> str:
    return _csrf(client.get("/alerts").text)


def _post(client: TestClient, alert_id: int, action: str, **fields: str) -> Any:
    data = {"csrf": _token(client), **fields}
    return client.post(f"/alerts/{alert_id}/{action}", data=data, follow_redirects=False)


def _alert(db: Conn, alert_id: int, columns: str) -> tuple[Any, ...]:
    row = db.execute(f"SELECT {columns} FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert row is not None
    return tuple(row)


def _events(db: Conn, alert_id: int) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT action, actor, note FROM alert_events WHERE alert_id = %s AND action = ANY(%s) ORDER BY id",
        (alert_id, list(LIFECYCLE)),
    ).fetchall()


def _rows(page: str) -> list[int]:
    """The alert ids of the inbox's list, in order."""
    listed = page[page.index('id="alert-list"') :]
    listed = listed[: listed.index("</ul>")]
    return [
        int(i)
        for i in re.findall(r'<li class="alert-row [a-z]+" id="alert-\d+" data-alert-id="(\d+)"', listed)
    ]


def _count(page: str) -> int:
    found = re.search(r'<span class="badge nav-count" id="alert-count" data-count="(\d+)">\1</span>', page)
    assert found is not None, "no alert count in the header"
    return int(found[1])


def _trigger(db: Conn, patient: str, at: datetime, severity: str = "medium") -> int:
    """A scorer's trigger (a disease rule), recorded through the lifecycle; the alert's id."""
    trigger = Trigger("0101", patient, "disease-rule", "copd-spo2-drop", severity, "SpO2 below baseline", at)
    with db.transaction():
        outcome = record_trigger(db, trigger, now=at)
    assert outcome.alert_id is not None
    return outcome.alert_id


# --- the inbox ---------------------------------------------------------------------------------------


def test_the_inbox_lists_the_viewers_open_alerts_most_severe_first_and_is_audited(
    client: TestClient, world: World, db: Conn
) -> None:
    login(client, world.nurse)
    response = client.get("/alerts")
    assert response.status_code == 200
    page = response.text
    assert '<ul id="alert-list" class="alerts alert-inbox" data-tab="open"' in page
    alerts = world.alerts
    assert _rows(page) == [alerts["p-high"], alerts["p-med-late"], alerts["p-med-early"]]
    assert "Frede Other" not in page and f'data-alert-id="{alerts["p-other"]}"' not in page
    assert _count(page) == 3 and '<span class="tab-count" data-count="3">(3)</span>' in page
    assert "NEWS2 8: emergency assessment" in page and "Karen High" in page
    assert [row[3] for row in audit_rows(db, "view-alerts")] == ["p-high", "p-med-late", "p-med-early"]
    # The other tabs are empty until someone acts; a tab that is none is a 400, never a 500.
    for tab in ("acknowledged", "mine", "snoozed", "resolved"):
        assert _rows(client.get(f"/alerts?tab={tab}").text) == []
    assert client.get("/alerts?tab=everything").status_code == 400
    assert client.get("/alerts?page=0").status_code == 400


def test_the_header_counts_open_alerts_on_every_clinical_page(client: TestClient, world: World) -> None:
    login(client, world.nurse)
    for path in ("/", "/review", "/patients/p-high", "/patients/p-high/readings", "/alerts"):
        page = client.get(path).text
        assert '<a href="/alerts"' in page and _count(page) == 3, path
    assert _count(client.get(f"/alerts/{world.alerts['p-high']}").text) == 3


def test_another_municipalitys_nurse_sees_none_of_the_alerts_and_gets_404_for_each(
    client: TestClient, world: World, db: Conn
) -> None:
    login(client, world.other_nurse)
    page = client.get("/alerts").text
    assert _rows(page) == [world.alerts["p-other"]] and _count(page) == 1
    assert "Karen High" not in page
    alert = world.alerts["p-high"]
    assert client.get(f"/alerts/{alert}").status_code == 404
    for action, fields in (
        ("acknowledge", {"note": "Set."}),
        ("snooze", {"for": "1h", "reason": "Senere"}),
        ("assign", {"assignee": world.other_nurse}),
        ("resolve", {"outcome": "false-alarm"}),
    ):
        response = _post(client, alert, action, **fields)
        assert response.status_code == 404 and "Karen High" not in response.text, action
    assert _alert(db, alert, "status, assigned_to") == ("open", None)
    assert [row for row in audit_rows(db) if row[2].endswith("-alert")] == []
    for path in ("/alerts/0", "/alerts/99999999999999999999999", "/alerts/abc", "/alerts/-1"):
        assert client.get(path).status_code == 404, path


def test_the_gp_sees_her_patients_alerts_in_both_municipalities(
    client: TestClient, world: World, gp: str
) -> None:
    login(client, gp)
    page = client.get("/alerts").text
    assert sorted(_rows(page)) == sorted([world.alerts["p-high"], world.alerts["p-other"]])
    assert "Erik Early" not in page and _count(page) == 2


def test_an_administrator_gets_no_alerts(client: TestClient, world: World, db: Conn) -> None:
    create_user(db, "admin", world.own, "municipality_admin", PASSWORD)
    login(client, "admin")
    assert client.get("/alerts").status_code == 403
    assert client.get(f"/alerts/{world.alerts['p-high']}").status_code == 403
    assert 'id="alert-count"' not in client.get("/admin/audit").text


# --- acknowledge ----------------------------------------------------------------------------------------


def test_acknowledging_needs_a_note_and_returns_to_the_inbox_with_a_confirmation(
    client: TestClient, world: World, db: Conn
) -> None:
    login(client, world.nurse)
    alert = world.alerts["p-high"]
    for note in ("", "   "):
        refused = _post(client, alert, "acknowledge", note=note, back="open")
        assert refused.status_code == 422
        page = refused.text
        assert 'class="error-summary"' in page
        assert f'<a href="#ack-note-{alert}">Write a note: what you did, or will do</a>' in page
        assert f'id="ack-note-{alert}" name="note"' in page and 'aria-invalid="true"' in page
        assert 'name="back" value="open"' in page  # the form still returns where it came from
    assert _alert(db, alert, "status") == ("open",) and audit_rows(db, "acknowledge-alert") == []
    done = _post(client, alert, "acknowledge", note="Ringede; hun har det godt.", back="open")
    assert done.status_code == 303 and done.headers["location"] == "/alerts?tab=open&done=acknowledged"
    assert _alert(db, alert, "status, acknowledged_by, acknowledgement_note") == (
        "acknowledged",
        world.nurse,
        "Ringede; hun har det godt.",
    )
    assert audit_rows(db, "acknowledge-alert") == [(world.nurse, world.own, "acknowledge-alert", "p-high")]
    page = client.get(done.headers["location"]).text
    assert "The alert is acknowledged." in page and alert not in _rows(page) and _count(page) == 2
    assert _rows(client.get("/alerts?tab=acknowledged").text) == [alert]
    history = client.get(f"/alerts/{alert}").text
    history = history[history.index('id="history-h"') :]
    assert "Acknowledged" in history and world.nurse in history and "Ringede; hun har det godt." in history


def test_the_inbox_row_acknowledges_in_place(client: TestClient, world: World) -> None:
    login(client, world.nurse)
    page = client.get("/alerts").text
    alert = world.alerts["p-med-late"]
    row = page[page.index(f'data-alert-id="{alert}"') :]
    row = row[: row.index("</li>")]
    assert f'action="/alerts/{alert}/acknowledge"' in row and 'name="back" value="open"' in row
    assert f'href="/alerts/{alert}?back=open"' in row


def test_an_acknowledgement_on_the_patient_page_returns_there_and_shows_in_the_history(
    client: TestClient, world: World, db: Conn
) -> None:
    login(client, world.nurse)
    alert = world.alerts["p-high"]
    page = client.get("/patients/p-high").text
    section = page[page.index('id="alerts-h"') : page.index('id="score-h"')]
    assert f'id="alert-{alert}"' in section and f'action="/alerts/{alert}/acknowledge"' in section
    assert f'action="/alerts/{alert}/resolve"' in section and 'name="back" value="patient"' in section
    data = {"csrf": _csrf(page), "note": "Aftalt hjemmebesøg kl. 14.", "back": "patient"}
    done = client.post(f"/alerts/{alert}/acknowledge", data=data, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/patients/p-high?done=acknowledged#alert-{alert}"
    page = client.get(done.headers["location"]).text
    section = page[page.index('id="alerts-h"') : page.index('id="score-h"')]
    assert "The alert is acknowledged." in section
    assert "Aftalt hjemmebesøg kl. 14." in section and world.nurse in section
    assert f'action="/alerts/{alert}/acknowledge"' not in section  # acknowledged: resolve is what is left
    assert f'action="/alerts/{alert}/resolve"' in section


def test_an_acknowledged_alert_stays_acknowledged_while_its_rule_keeps_firing(
    client: TestClient, world: World, db: Conn
) -> None:
    now = datetime.now(UTC)
    alert = _trigger(db, "p-low", now - timedelta(minutes=30))
    login(client, world.nurse)
    assert alert in _rows(client.get("/alerts").text)
    assert _post(client, alert, "acknowledge", note="Ringer i eftermiddag.").status_code == 303
    for minutes in (20, 10, 1):  # new readings, the same rule again
        assert _trigger(db, "p-low", now - timedelta(minutes=minutes)) == alert
    assert _alert(db, alert, "status, trigger_count") == ("acknowledged", 4)
    page = client.get("/alerts").text
    assert alert not in _rows(page) and _count(page) == 3
    shown = client.get(f"/alerts/{alert}").text
    assert "Disease rule: COPD: SpO2 below personal baseline" in shown and ">4 <small>" in shown


# --- snooze ---------------------------------------------------------------------------------------------


def test_a_snooze_for_an_hour_until_tomorrow_morning_or_a_time_of_ones_own(
    client: TestClient, world: World, db: Conn
) -> None:
    login(client, world.nurse)
    alerts = world.alerts
    before = datetime.now(UTC)
    assert (
        _post(client, alerts["p-high"], "snooze", **{"for": "1h", "reason": "Ny måling kommer"}).status_code
        == 303
    )
    [(until, reason)] = [_alert(db, alerts["p-high"], "snoozed_until, snooze_reason")]
    assert reason == "Ny måling kommer" and timedelta(minutes=59) < until - before < timedelta(minutes=61)

    assert (
        _post(
            client, alerts["p-med-late"], "snooze", **{"for": "tomorrow", "reason": "Dagvagten"}
        ).status_code
        == 303
    )
    (morning,) = _alert(db, alerts["p-med-late"], "snoozed_until")
    local = morning.astimezone(COPENHAGEN)
    assert (local.hour, local.minute) == (8, 0)
    assert local.date() == (datetime.now(COPENHAGEN) + timedelta(days=1)).date()

    own = (datetime.now(COPENHAGEN) + timedelta(days=2)).replace(hour=13, minute=30, second=0, microsecond=0)
    typed = own.strftime("%Y-%m-%dT%H:%M")
    done = _post(
        client,
        alerts["p-med-early"],
        "snooze",
        **{"for": "until", "until": typed, "reason": "Efter weekenden"},
    )
    assert (
        done.status_code == 303
        and done.headers["location"] == f"/alerts/{alerts['p-med-early']}?done=snoozed"
    )
    assert _alert(db, alerts["p-med-early"], "status, snoozed_until") == ("snoozed", own)  # Danish time
    page = client.get("/alerts?tab=snoozed").text
    assert _rows(page) == [alerts["p-high"], alerts["p-med-late"], alerts["p-med-early"]]  # soonest first
    assert _count(page) == 0
    assert [row[3] for row in audit_rows(db, "snooze-alert")] == ["p-high", "p-med-late", "p-med-early"]
    [*_, snoozed] = _events(db, alerts["p-med-early"])
    assert snoozed == ("snoozed", world.nurse, "Efter weekenden")


@pytest.mark.parametrize(
    ("fields", "field_id", "message"),
    [
        ({"for": "1h", "reason": " "}, "snooze-reason", "Write why the alert can wait"),
        ({"reason": "Senere"}, "snooze-for-1h", "Choose for how long the alert can wait"),
        (
            {"for": "until", "until": "i morgen", "reason": "Senere"},
            "snooze-until",
            "Write the date and time as",
        ),
        (
            {"for": "until", "until": "2020-01-01T08:00", "reason": "Senere"},
            "snooze-until",
            "Choose a time in the future",
        ),
        (
            {"for": "until", "until": "9999-12-31T23:59", "reason": "Senere"},
            "snooze-until",
            "An alert can be snoozed for at most 7 days",
        ),
        (
            {"for": "until", "until": "2026-02-30T08:00", "reason": "Senere"},
            "snooze-until",
            "Write the date and time as",
        ),
    ],
)
def test_a_snooze_the_form_cannot_take_shows_the_form_again_with_why(
    client: TestClient, world: World, db: Conn, fields: dict[str, str], field_id: str, message: str
) -> None:
    login(client, world.nurse)
    alert = world.alerts["p-high"]
    refused = _post(client, alert, "snooze", **fields)
    assert refused.status_code == 422
    summary = refused.text[refused.text.index('class="error-summary"') :]
    assert f'<a href="#{field_id}-{alert}">{message}' in summary
    assert _alert(db, alert, "status") == ("open",) and audit_rows(db, "snooze-alert") == []


# --- assign ---------------------------------------------------------------------------------------------


def test_an_alert_is_assigned_to_someone_who_may_see_the_patient_by_default_oneself(
    client: TestClient, world: World, db: Conn, gp: str
) -> None:
    login(client, world.nurse)
    alert = world.alerts["p-high"]
    form = client.get(f"/alerts/{alert}").text
    options = re.findall(r'<option value="([^"]+)"( selected)?>', form)
    assert options == [(world.nurse, " selected"), (gp, "")]  # the care team and the GP; oneself first chosen
    assert _post(client, alert, "assign").status_code == 303
    assert _alert(db, alert, "assigned_to") == (world.nurse,)
    assert _rows(client.get("/alerts?tab=mine").text) == [alert]
    for stranger in (world.other_nurse, "nobody", "admin\x00"):
        refused = _post(client, alert, "assign", assignee=stranger)
        assert refused.status_code == 422 and "Choose someone who may see this patient" in refused.text
    assert _alert(db, alert, "assigned_to") == (world.nurse,)
    assert (
        _post(client, alert, "assign", assignee=gp, back="mine").headers["location"]
        == "/alerts?tab=mine&done=assigned"
    )
    assert _alert(db, alert, "assigned_to") == (gp,)
    assert [row[3] for row in audit_rows(db, "assign-alert")] == ["p-high", "p-high"]
    login(client, gp)
    assert _rows(client.get("/alerts?tab=mine").text) == [alert]


# --- resolve --------------------------------------------------------------------------------------------


def test_an_alert_is_resolved_with_an_outcome_and_cannot_be_resolved_again(
    client: TestClient, world: World, db: Conn
) -> None:
    login(client, world.nurse)
    alert = world.alerts["p-med-early"]
    refused = _post(client, alert, "resolve", note="noget")
    assert refused.status_code == 422 and "Choose how the alert was resolved" in refused.text
    refused = _post(client, alert, "resolve", outcome="other", note="")
    assert refused.status_code == 422 and "the outcome “Other” needs a note" in refused.text
    assert 'value="other" checked' in refused.text  # what was chosen is shown again
    done = _post(client, alert, "resolve", outcome="home-visit", note="Besøgt; væske givet.")
    assert done.status_code == 303
    assert _alert(db, alert, "status, outcome, resolution_note, resolved_by, escalate_at") == (
        "resolved",
        "home-visit",
        "Besøgt; væske givet.",
        world.nurse,
        None,
    )
    again = _post(client, alert, "resolve", outcome="false-alarm")
    assert again.status_code == 409 and "This alert is already resolved; nothing was changed." in again.text
    assert _post(client, alert, "acknowledge", note="for sent").status_code == 409
    page = client.get("/alerts?tab=resolved").text
    assert _rows(page) == [alert] and "Home visit" in page and "Besøgt; væske givet." in page
    assert [row[3] for row in audit_rows(db, "resolve-alert")] == ["p-med-early"]
    shown = client.get(f"/alerts/{alert}").text
    assert 'action="/alerts/' not in shown.split('id="history-h"')[0].split("</header>")[1]  # no forms left


def test_every_action_is_in_the_alerts_history_with_who_and_the_note(
    client: TestClient, world: World, db: Conn, gp: str
) -> None:
    alert = world.alerts["p-high"]
    login(client, world.nurse)
    _post(client, alert, "assign", assignee=gp)
    _post(client, alert, "snooze", **{"for": "4h", "reason": "Lægen ringer"})
    login(client, gp)
    _post(client, alert, "acknowledge", note="Jeg ringer hende.")
    _post(client, alert, "resolve", outcome="treatment-adjusted", note="Øget diuretika.")
    assert _events(db, alert) == [
        ("assigned", world.nurse, None),
        ("snoozed", world.nurse, "Lægen ringer"),
        ("acknowledged", gp, "Jeg ringer hende."),
        ("resolved", gp, "Øget diuretika."),
    ]
    page = client.get("/patients/p-high").text
    item = page[page.index(f'id="alert-{alert}"') :]
    item = item[: item.index("</li>\n    \n  </ul>") if "</li>\n    \n  </ul>" in item else len(item)]
    for text in (
        "Assigned",
        f"to {gp}",
        "Snoozed",
        "Lægen ringer",
        "Jeg ringer hende.",
        "Treatment adjusted",
        "Øget diuretika.",
    ):
        assert text in item, text
    actions = [row[2] for row in audit_rows(db) if row[2].endswith("-alert")]
    assert actions == ["assign-alert", "snooze-alert", "acknowledge-alert", "resolve-alert"]


# --- the form token -----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["acknowledge", "snooze", "assign", "resolve"])
def test_an_action_without_the_sessions_form_token_is_refused(
    client: TestClient, world: World, db: Conn, action: str
) -> None:
    login(client, world.nurse)
    alert = world.alerts["p-high"]
    fields = {"note": "x", "reason": "x", "for": "1h", "outcome": "false-alarm", "assignee": world.nurse}
    for csrf in (None, "", "forged"):
        data = fields if csrf is None else {**fields, "csrf": csrf}
        assert client.post(f"/alerts/{alert}/{action}", data=data).status_code == 403
    assert _alert(db, alert, "status, assigned_to") == ("open", None)
    assert [row for row in audit_rows(db) if row[2].endswith("-alert")] == []


def test_an_action_without_a_session_goes_to_the_login(client: TestClient, world: World) -> None:
    response = client.post(
        f"/alerts/{world.alerts['p-high']}/acknowledge", data={"note": "x"}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


# --- any form ----------------------------------------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)
_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "note": st.one_of(_TEXT, st.just("x" * 4001)),
        "reason": _TEXT,
        "for": st.one_of(st.sampled_from(["1h", "4h", "tomorrow", "until"]), _TEXT),
        "until": st.one_of(
            _TEXT,
            st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
                lambda moment: moment.strftime("%Y-%m-%dT%H:%M")
            ),
        ),
        "assignee": st.one_of(st.sampled_from(["anna", "bo", "dr-gp", ""]), _TEXT),
        "outcome": st.one_of(st.sampled_from(OUTCOMES), _TEXT),
        "back": st.one_of(st.sampled_from(["alert", "patient", "open", "mine", "resolved"]), _TEXT),
    },
)


@pytest.fixture
def raw_client(app: FastAPI) -> Iterator[TestClient]:
    """A client that gets the server's 500 as an answer instead of an exception."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(action="acknowledge", patient="p-high", fields={"note": "Ringede.", "back": "patient"})
@example(
    action="snooze", patient="p-high", fields={"for": "until", "until": "0001-01-01T00:00", "reason": "x"}
)
@example(
    action="snooze", patient="p-high", fields={"for": "until", "until": "9999-12-31T23:59", "reason": "x"}
)
@example(action="assign", patient="p-med-early", fields={"assignee": "anna\x00"})
@example(action="resolve", patient="p-med-early", fields={"outcome": "other", "note": "\x00"})
@example(action="resolve", patient="p-high", fields={"outcome": "false-alarm"})
@example(action="resolve", patient="p-other", fields={"outcome": "false-alarm"})
@given(
    action=st.sampled_from(["acknowledge", "snooze", "assign", "resolve"]),
    patient=st.sampled_from(["p-high", "p-med-early", "p-other"]),
    fields=_FIELDS,
)
def test_any_form_is_done_or_shown_again_never_a_server_error(
    raw_client: TestClient, world: World, action: str, patient: str, fields: dict[str, str]
) -> None:
    if not raw_client.cookies:
        login(raw_client, world.nurse)
    token = _token(raw_client)
    response = raw_client.post(
        f"/alerts/{world.alerts[patient]}/{action}", data={**fields, "csrf": token}, follow_redirects=False
    )
    expected = {404} if patient == "p-other" else {303, 409, 422}
    assert response.status_code in expected, response.text[:2000]
    if response.status_code == 303:
        assert response.headers["location"].startswith(("/alerts", "/patients/"))


# --- in Danish ------------------------------------------------------------------------------------------

# The models' sentences, as the scorers and jobs store them (gateway.api.model_words words them in Danish).
_REASONS = {
    "news2": "NEWS2 8 (high, aggregate 8): SpO2 90 % (scale 1): 3 points; Pulse 125 /min: 2 points",
    "disease-rule": "Heart-failure weight gain: Weight up 2.3 kg in 3 days (80.0 -> 82.3 kg)",
    "threshold": "Heart-failure weight gain: Weight up 2.3 kg in 3 days (80.0 -> 82.3 kg)",
    "missing": "No weight received since 2026-12-06 08:00 UTC (expected every 24 h)",
    "risk-rise": "30-day admission risk rose from 12 % to 25 % in 3 days"
    " (model trained on SYNTHETIC data only)",
}
_KEYS = {"disease-rule": "hf-weight-gain-3d", "threshold": "spo2", "missing": "weight"}


@pytest.fixture
def danish(database_url: str, pool: ConnectionPool[Any]) -> Iterator[tuple[TestClient, dict[str, int]]]:
    """An app in Danish (the default) over a world with an alert of every kind, in every state."""
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(database_url, autocommit=True) as conn:
        enroll_municipality(conn, Municipality("0101", "København"))
        create_user(conn, "anna", "0101", "nurse", PASSWORD)
        create_user(conn, GP, "0101", "gp", PASSWORD)
        enroll_patient(conn, Patient("0101", "p-hf", "Karen Høj", gp_username=GP))
        alerts = {}
        for minutes, (kind, reason) in enumerate(_REASONS.items()):
            at = now - timedelta(minutes=minutes)
            trigger = Trigger("0101", "p-hf", kind, _KEYS.get(kind, ""), "high", reason, at)  # type: ignore[arg-type]
            with conn.transaction():
                outcome = record_trigger(conn, trigger, now=at)
            assert outcome.alert_id is not None
            alerts[kind] = outcome.alert_id
    settings = GatewaySettings(database_url=database_url, secret_key="test-secret-of-the-danish-alerts")
    app = create_app(settings, pool)
    with TestClient(app, headers={"Accept-Language": ""}) as client:
        login(client, "anna")
        _post(client, alerts["disease-rule"], "acknowledge", note="Ringede; hun tager vanddrivende.")
        _post(client, alerts["threshold"], "snooze", **{"for": "tomorrow", "reason": "Måler igen i morgen."})
        _post(client, alerts["missing"], "assign", assignee=GP)
        _post(client, alerts["risk-rise"], "resolve", outcome="other", note="Drøftet med egen læge.")
        yield client, alerts


def test_the_alert_pages_speak_danish_with_no_english_left(danish: tuple[TestClient, dict[str, int]]) -> None:
    from test_danish_pages import _danish_page, _english_left, _visible

    client, alerts = danish
    pages = {f"/alerts?tab={tab}": 200 for tab in ("open", "acknowledged", "mine", "snoozed", "resolved")}
    pages |= {f"/alerts/{alert}": 200 for alert in alerts.values()}
    pages |= {"/patients/p-hf": 200, f"/alerts/{alerts['news2']}?back=patient": 200}
    problems = {
        path: left for path in pages if (left := _english_left(_danish_page(client.get(path), pages[path])))
    }
    refused = _post(client, alerts["news2"], "snooze", **{"for": "until", "until": "i går", "reason": ""})
    left = _english_left(_danish_page(refused, 422))
    again = _post(client, alerts["risk-rise"], "resolve", outcome="false-alarm")
    left += _english_left(_danish_page(again, 409))
    assert not problems and not left, (problems, left)
    # The world reaches what the check is about: each kind, state, outcome and action in Danish.
    shown = " ".join(_visible(client.get(path).text) for path in pages)
    for danish_text in (
        "Alarmer",
        "Åbne",
        "Ikke kvitteret",
        "Kvitteret",
        "Udsat",
        "Afsluttet",
        "Sygdomsregel: Vægtøgning ved hjertesvigt",
        "Egne tærskelværdier overskredet: SpO₂",
        "Måling mangler: Vægt",
        "Stigende indlæggelsesrisiko inden for 30 dage",
        "NEWS2 8 (høj, samlet score 8)",
        "Andet",
        "Drøftet med egen læge.",
        "Kvittér for alarm",
        "Afslut alarmen",
        "Til i morgen kl. 08.00",
        "Hvem håndterer alarmen?",
        "Udløst",
        "tildelt",
    ):
        assert danish_text in shown, danish_text
