"""What people do with alerts, in the store: acknowledge with a note (and it holds), snooze, assign to
someone who may see the patient, resolve with an outcome; each only on the actor's patients, refused
transitions refused, every action audited and in the alert's history; and the inbox over all of it.
Real PostgreSQL; alerts raised through the lifecycle (``record_trigger``) as the scorers raise them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from gateway.alerts.lifecycle import REALERT_AFTER, Trigger, record_trigger
from gateway.api.auth import User, create_user
from gateway.store import alert_actions, alert_inbox
from gateway.store.alert_actions import ActionRefused, TransitionRefused
from gateway.store.alerts import UnknownAlert
from gateway.store.repository import Municipality, Patient, enroll_municipality, enroll_patient
from gateway.store.users import create_care_team

T0 = datetime(2026, 12, 9, 10, 0, tzinfo=UTC)
PASSWORD = "correct horse"
Conn = psycopg.Connection[Any]


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def people(conn: Conn) -> dict[str, User]:
    """København with a second care team (Nord), Frederiksberg; a nurse of each team, a GP whose
    patients live in both municipalities, an administrator."""
    enroll_municipality(conn, Municipality("0101", "København"))
    enroll_municipality(conn, Municipality("0147", "Frederiksberg"))
    create_care_team(conn, "0101", "nord", "Hjemmeplejen Nord")
    found = {
        "anna": create_user(conn, "anna", "0101", "nurse", PASSWORD),
        "nora": create_user(conn, "nora", "0101", "nurse", PASSWORD, care_teams=("nord",)),
        "bo": create_user(conn, "bo", "0147", "nurse", PASSWORD),
        "gp": create_user(conn, "dr-gp", "0147", "gp", PASSWORD),
        "admin": create_user(conn, "admin", "0101", "municipality_admin", PASSWORD),
    }
    conn.execute("UPDATE users SET full_name = 'Anna Holm' WHERE username = 'anna'")
    enroll_patient(conn, Patient("0101", "p1", "Karen", gp_username="dr-gp"))
    enroll_patient(conn, Patient("0101", "p-nord", "Niels", care_team_id="nord"))
    enroll_patient(conn, Patient("0147", "p-frb", "Frede", gp_username="dr-gp"))
    return found


def _raise(
    conn: Conn,
    patient: str = "p1",
    at: datetime = T0,
    severity: str = "medium",
    *,
    kind: Any = "news2",
    key: str = "",
) -> int:
    """A trigger as a scorer hands it over, recorded at ``at`` on data as of ``at``; the alert's id."""
    municipality = "0147" if patient == "p-frb" else "0101"
    trigger = Trigger(municipality, patient, kind, key, severity, f"NEWS2 ({severity})", at)
    with conn.transaction():
        outcome = record_trigger(conn, trigger, now=at)
    assert outcome.alert_id is not None
    return outcome.alert_id


def _row(conn: Conn, alert_id: int, columns: str) -> tuple[Any, ...]:
    row = conn.execute(f"SELECT {columns} FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert row is not None
    return tuple(row)


# What people did and the raising of the alert; delivery adds its own events ('undeliverable',
# 'escalated': nobody in these worlds has an e-mail address), which are the routing's tests'.
LIFECYCLE = ("raised", "severity-raised", "acknowledged", "snoozed", "assigned", "resolved")


def _events(conn: Conn, alert_id: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT action, actor, note FROM alert_events WHERE alert_id = %s AND action = ANY(%s) ORDER BY id",
        (alert_id, list(LIFECYCLE)),
    ).fetchall()


def _history(conn: Conn, viewer: User, alert_id: int) -> list[alert_inbox.AlertEvent]:
    return [e for e in alert_inbox.alert_history(conn, viewer, alert_id) if e.action in LIFECYCLE]


def _audit(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT username, action, patient_id, detail FROM audit_log WHERE action LIKE '%%-alert' ORDER BY id"
    ).fetchall()


# --- acknowledge -------------------------------------------------------------------------------------


def test_acknowledging_needs_a_note_and_records_who_when_and_why(conn: Conn, people: dict[str, User]) -> None:
    alert = _raise(conn)
    at = T0 + timedelta(minutes=4)
    for note in ("", "   \n"):
        with pytest.raises(ActionRefused) as refused:
            alert_actions.acknowledge(conn, people["anna"], alert, note, at=at, client="test")
        assert (refused.value.field, refused.value.problem) == ("note", alert_actions.MISSING)
    assert _row(conn, alert, "status") == ("open",) and _audit(conn) == []
    done = alert_actions.acknowledge(
        conn, people["anna"], alert, " Ringede; hun har det godt. ", at=at, client="c"
    )
    assert (done.patient_id, done.status) == ("p1", "acknowledged")
    assert _row(conn, alert, "status, acknowledged_by, acknowledged_at, acknowledgement_note") == (
        "acknowledged",
        "anna",
        at,
        "Ringede; hun har det godt.",
    )
    assert _events(conn, alert) == [
        ("raised", None, None),
        ("acknowledged", "anna", "Ringede; hun har det godt."),
    ]
    assert _audit(conn) == [("anna", "acknowledge-alert", "p1", f"alert {alert}")]


def test_an_acknowledgement_holds_while_the_same_kind_keeps_triggering(
    conn: Conn, people: dict[str, User]
) -> None:
    alert = _raise(conn)
    alert_actions.acknowledge(conn, people["anna"], alert, "Ringer i eftermiddag.", at=T0, client=None)
    for minutes in (10, 20, 30):  # the value keeps flapping round the threshold
        assert _raise(conn, at=T0 + timedelta(minutes=minutes)) == alert
    assert _row(conn, alert, "status, trigger_count, acknowledged_by") == ("acknowledged", 4, "anna")
    assert [action for action, *_ in _events(conn, alert)] == ["raised", "acknowledged"]  # nobody told again
    assert alert_inbox.open_count(conn, people["anna"]) == 0
    # Worse news is news: the lifecycle opens it again for someone to look at.
    _raise(conn, at=T0 + timedelta(minutes=40), severity="high")
    assert _row(conn, alert, "status, severity") == ("open", "high")


def test_a_second_acknowledgement_keeps_the_first_and_joins_the_history(
    conn: Conn, people: dict[str, User]
) -> None:
    alert = _raise(conn)
    alert_actions.acknowledge(conn, people["anna"], alert, "Ringede.", at=T0, client=None)
    later = T0 + timedelta(minutes=7)
    alert_actions.acknowledge(conn, people["gp"], alert, "Jeg ser hende i morgen.", at=later, client=None)
    assert _row(conn, alert, "acknowledged_by, acknowledged_at, acknowledgement_note") == (
        "anna",
        T0,
        "Ringede.",
    )
    history = _history(conn, people["anna"], alert)
    assert [(e.action, e.actor, e.note) for e in history][1:] == [
        ("acknowledged", "anna", "Ringede."),
        ("acknowledged", "dr-gp", "Jeg ser hende i morgen."),
    ]
    assert history[2].detail == {"was": "acknowledged", "again": True}
    assert [row[1] for row in _audit(conn)] == ["acknowledge-alert", "acknowledge-alert"]


@pytest.mark.parametrize(
    ("note", "problem"),
    [
        ("x" * (alert_actions.NOTE_MAX_CHARS + 1), alert_actions.TOO_LONG),
        ("nul\x00byte", alert_actions.UNSTORABLE),
    ],
)
def test_a_note_that_cannot_be_kept_is_refused(
    conn: Conn, people: dict[str, User], note: str, problem: str
) -> None:
    alert = _raise(conn)
    with pytest.raises(ActionRefused) as refused:
        alert_actions.acknowledge(conn, people["anna"], alert, note, at=T0, client=None)
    assert refused.value.problem == problem
    alert_actions.acknowledge(
        conn, people["anna"], alert, "x" * alert_actions.NOTE_MAX_CHARS, at=T0, client=None
    )


# --- snooze --------------------------------------------------------------------------------------------


def test_a_snooze_lasts_until_a_time_within_a_week_and_says_why(conn: Conn, people: dict[str, User]) -> None:
    alert = _raise(conn)
    anna = people["anna"]
    for until, problem in (
        (T0, alert_actions.PAST),
        (T0 - timedelta(hours=1), alert_actions.PAST),
        (T0 + alert_actions.SNOOZE_MAX + timedelta(seconds=1), alert_actions.TOO_FAR),
    ):
        with pytest.raises(ActionRefused) as refused:
            alert_actions.snooze(conn, anna, alert, "Venter på ny måling", until, at=T0, client=None)
        assert (refused.value.field, refused.value.problem) == ("until", problem)
    with pytest.raises(ActionRefused) as refused:
        alert_actions.snooze(conn, anna, alert, " ", T0 + timedelta(hours=1), at=T0, client=None)
    assert (refused.value.field, refused.value.problem) == ("reason", alert_actions.MISSING)
    assert _row(conn, alert, "status") == ("open",)

    until = T0 + alert_actions.SNOOZE_MAX
    done = alert_actions.snooze(conn, anna, alert, "Venter på ny måling", until, at=T0, client="c")
    assert done.status == "snoozed"
    assert _row(conn, alert, "status, snoozed_until, snooze_reason") == (
        "snoozed",
        until,
        "Venter på ny måling",
    )
    [*_, snoozed] = _history(conn, anna, alert)
    assert (snoozed.action, snoozed.actor, snoozed.note) == ("snoozed", "anna", "Venter på ny måling")
    assert snoozed.detail == {"until": until.isoformat(), "was": "open"}
    assert _audit(conn) == [("anna", "snooze-alert", "p1", f"alert {alert} until {until.isoformat()}")]


def test_acknowledging_a_snoozed_alert_ends_the_snooze(conn: Conn, people: dict[str, User]) -> None:
    alert = _raise(conn)
    alert_actions.snooze(conn, people["anna"], alert, "Senere", T0 + timedelta(hours=1), at=T0, client=None)
    alert_actions.acknowledge(conn, people["anna"], alert, "Ringede alligevel.", at=T0, client=None)
    assert _row(conn, alert, "status, snoozed_until, snooze_reason") == ("acknowledged", None, None)


# --- assign ---------------------------------------------------------------------------------------------


def test_an_alert_is_assigned_only_to_someone_who_may_see_the_patient(
    conn: Conn, people: dict[str, User]
) -> None:
    alert = _raise(conn)  # p1: the default team of 0101 (anna), GP dr-gp
    anna = people["anna"]
    for nobody in ("nora", "bo", "admin", "no-such-user", "", "nul\x00", "x" * 500):
        with pytest.raises(ActionRefused) as refused:
            alert_actions.assign(conn, anna, alert, nobody, at=T0, client=None)
        assert (refused.value.field, refused.value.problem) == ("assignee", alert_actions.NOT_ALLOWED)
    assert _row(conn, alert, "assigned_to") == (None,) and _audit(conn) == []
    alert_actions.assign(conn, anna, alert, "dr-gp", at=T0, client=None)
    alert_actions.assign(conn, people["gp"], alert, "anna", at=T0 + timedelta(minutes=1), client=None)
    assert _row(conn, alert, "assigned_to, assigned_at, status") == (
        "anna",
        T0 + timedelta(minutes=1),
        "open",
    )
    assigned = [e for e in _history(conn, anna, alert) if e.action == "assigned"]
    assert [(e.actor, e.detail) for e in assigned] == [
        ("anna", {"assignee": "dr-gp", "was": None}),
        ("dr-gp", {"assignee": "anna", "was": "dr-gp"}),
    ]
    assert [(row[0], row[1], row[3]) for row in _audit(conn)] == [
        ("anna", "assign-alert", f"alert {alert} to dr-gp"),
        ("dr-gp", "assign-alert", f"alert {alert} to anna"),
    ]


def test_the_people_offered_are_those_the_access_rule_lets_see_the_patient(
    conn: Conn, people: dict[str, User]
) -> None:
    offered = alert_inbox.assignable_people(conn, people["anna"], "p1")
    assert [(p.username, p.full_name, p.role) for p in offered] == [
        ("anna", "Anna Holm", "nurse"),
        ("dr-gp", None, "gp"),
    ]
    assert [p.username for p in alert_inbox.assignable_people(conn, people["gp"], "p-frb")] == ["bo", "dr-gp"]
    assert alert_inbox.assignable_people(conn, people["nora"], "p1") == []  # not her patient: nobody


# --- resolve --------------------------------------------------------------------------------------------


def test_an_alert_is_resolved_with_an_outcome_and_then_refuses_every_action(
    conn: Conn, people: dict[str, User]
) -> None:
    alert = _raise(conn)
    anna = people["anna"]
    with pytest.raises(ActionRefused) as refused:
        alert_actions.resolve(conn, anna, alert, "fixed-it", "", at=T0, client=None)
    assert (refused.value.field, refused.value.problem) == ("outcome", alert_actions.UNKNOWN)
    with pytest.raises(ActionRefused) as refused:
        alert_actions.resolve(conn, anna, alert, "other", "  ", at=T0, client=None)
    assert (refused.value.field, refused.value.problem) == ("note", alert_actions.MISSING)
    at = T0 + timedelta(minutes=30)
    alert_actions.resolve(conn, anna, alert, "measurement-error", "", at=at, client=None)
    assert _row(conn, alert, "status, resolved_at, resolved_by, outcome, resolution_note, escalate_at") == (
        "resolved",
        at,
        "anna",
        "measurement-error",
        None,
        None,
    )
    refused_actions = (
        lambda: alert_actions.resolve(conn, anna, alert, "other", "igen", at=at, client=None),
        lambda: alert_actions.acknowledge(conn, anna, alert, "for sent", at=at, client=None),
        lambda: alert_actions.snooze(
            conn, anna, alert, "senere", at + timedelta(hours=1), at=at, client=None
        ),
        lambda: alert_actions.assign(conn, anna, alert, "anna", at=at, client=None),
    )
    for action in refused_actions:
        with pytest.raises(TransitionRefused) as transition:
            action()
        assert transition.value.status == "resolved"
    assert [a for a, *_ in _events(conn, alert)] == ["raised", "resolved"]
    assert [row[1] for row in _audit(conn)] == ["resolve-alert"]
    # The lifecycle after a resolution: the same news stays quiet a while, then is a new alert.
    assert _raise(conn, at=at + timedelta(minutes=1)) == alert
    assert _raise(conn, at=at + REALERT_AFTER + timedelta(minutes=1)) != alert


def test_other_needs_a_note_and_keeps_it(conn: Conn, people: dict[str, User]) -> None:
    alert = _raise(conn)
    alert_actions.resolve(conn, people["gp"], alert, "other", "Ændrede vanddrivende.", at=T0, client=None)
    assert _row(conn, alert, "outcome, resolution_note, resolved_by") == (
        "other",
        "Ændrede vanddrivende.",
        "dr-gp",
    )
    [*_, resolved] = _history(conn, people["gp"], alert)
    assert (resolved.action, resolved.note, resolved.detail) == (
        "resolved",
        "Ændrede vanddrivende.",
        {"outcome": "other", "was": "open"},
    )


# --- who may act and see ----------------------------------------------------------------------------------


def _every_action(conn: Conn, actor: User, alert: int) -> list[Callable[[], object]]:
    """Each action of the store on ``alert`` by ``actor``, with values it would take."""
    later = T0 + timedelta(hours=1)
    return [
        lambda: alert_actions.acknowledge(conn, actor, alert, "note", at=T0, client=None),
        lambda: alert_actions.snooze(conn, actor, alert, "senere", later, at=T0, client=None),
        lambda: alert_actions.assign(conn, actor, alert, actor.username, at=T0, client=None),
        lambda: alert_actions.resolve(conn, actor, alert, "false-alarm", "", at=T0, client=None),
    ]


def test_an_alert_of_someone_elses_patient_does_not_exist_for_her(
    conn: Conn, people: dict[str, User]
) -> None:
    alert = _raise(conn)  # p1, of anna's team and dr-gp's
    for stranger in (people["nora"], people["bo"], people["admin"]):
        for action in _every_action(conn, stranger, alert):
            with pytest.raises(UnknownAlert):
                action()
        assert alert_inbox.alert(conn, stranger, alert) is None
        assert alert_inbox.alert_history(conn, stranger, alert) == []
        assert all(not alert_inbox.inbox(conn, stranger, tab).rows for tab in alert_inbox.TABS)
        assert alert_inbox.open_count(conn, stranger) == 0
    assert _row(conn, alert, "status, assigned_to") == ("open", None)
    assert _audit(conn) == [] and len(_events(conn, alert)) == 1


@pytest.mark.parametrize("alert_id", [0, -1, 2**63, 10**30])
def test_an_id_no_alert_can_have_is_an_unknown_alert(
    conn: Conn, people: dict[str, User], alert_id: int
) -> None:
    with pytest.raises(UnknownAlert):
        alert_actions.acknowledge(conn, people["anna"], alert_id, "note", at=T0, client=None)
    assert alert_inbox.alert(conn, people["anna"], alert_id) is None
    assert alert_inbox.alert_history(conn, people["anna"], alert_id) == []


def test_the_gp_sees_her_patients_alerts_in_every_municipality(conn: Conn, people: dict[str, User]) -> None:
    own = _raise(conn, "p1")
    elsewhere = _raise(conn, "p-frb", severity="high")
    _raise(conn, "p-nord")
    found = alert_inbox.inbox(conn, people["gp"], "open")
    assert [(row.id, row.patient_id, row.patient_name) for row in found.rows] == [
        (elsewhere, "p-frb", "Frede"),  # high first
        (own, "p1", "Karen"),
    ]
    assert alert_inbox.open_count(conn, people["gp"]) == 2
    assert [row.patient_id for row in alert_inbox.inbox(conn, people["bo"], "open").rows] == ["p-frb"]
    assert [row.patient_id for row in alert_inbox.inbox(conn, people["nora"], "open").rows] == ["p-nord"]


# --- the inbox ----------------------------------------------------------------------------------------------


def test_each_tab_holds_its_alerts_in_its_order_with_counts(conn: Conn, people: dict[str, User]) -> None:
    anna = people["anna"]
    medium = _raise(conn, at=T0)
    high = _raise(
        conn, at=T0 - timedelta(hours=1), severity="high", kind="disease-rule", key="copd-spo2-drop"
    )
    acknowledged = _raise(conn, kind="threshold", key="spo2")
    mine = _raise(conn, kind="threshold", key="pulse")
    later = _raise(conn, kind="missing", key="weight")
    sooner = _raise(conn, kind="missing", key="spo2")
    resolved_first = _raise(conn, kind="disease-rule", key="hf-weight-gain-3d")
    resolved_last = _raise(conn, kind="disease-rule", key="hf-weight-gain-ma")
    alert_actions.acknowledge(conn, anna, acknowledged, "ok", at=T0, client=None)
    alert_actions.assign(conn, anna, mine, "anna", at=T0, client=None)
    alert_actions.assign(conn, anna, acknowledged, "anna", at=T0, client=None)
    alert_actions.snooze(conn, anna, later, "senere", T0 + timedelta(hours=5), at=T0, client=None)
    alert_actions.snooze(conn, anna, sooner, "snart", T0 + timedelta(hours=2), at=T0, client=None)
    alert_actions.resolve(
        conn, anna, resolved_first, "home-visit", "", at=T0 + timedelta(minutes=1), client=None
    )
    alert_actions.resolve(
        conn, anna, resolved_last, "admitted", "", at=T0 + timedelta(minutes=2), client=None
    )

    def ids(tab: str, **kwargs: Any) -> list[int]:
        return [row.id for row in alert_inbox.inbox(conn, anna, tab, **kwargs).rows]

    assert ids("open") == [high, mine, medium]  # the most severe first, though raised an hour earlier
    assert ids("acknowledged") == [acknowledged]
    assert ids("mine") == [mine, acknowledged]  # not yet acknowledged first
    assert ids("snoozed") == [sooner, later]  # waking soonest first
    assert ids("resolved") == [resolved_last, resolved_first]  # newest first
    counts = alert_inbox.tab_counts(conn, anna)
    assert counts == alert_inbox.TabCounts(open=3, acknowledged=1, mine=2, snoozed=2)
    assert counts.of("resolved") is None and alert_inbox.open_count(conn, anna) == 3
    first, second = (
        alert_inbox.inbox(conn, anna, "resolved", size=1),
        alert_inbox.inbox(conn, anna, "resolved", page=2, size=1),
    )
    assert (first.has_more, [r.id for r in first.rows]) == (True, [resolved_last])
    assert (second.has_more, [r.id for r in second.rows]) == (False, [resolved_first])
    row = alert_inbox.alert(conn, anna, acknowledged)
    assert row is not None and (row.kind, row.key, row.assigned_to, row.assigned_name) == (
        "threshold",
        "spo2",
        "anna",
        "Anna Holm",
    )


def test_every_action_is_in_the_history_in_order_and_in_the_patients_histories(
    conn: Conn, people: dict[str, User]
) -> None:
    anna, gp = people["anna"], people["gp"]
    alert = _raise(conn)
    other = _raise(conn, kind="threshold", key="spo2")
    _raise(conn, "p-nord")  # another patient's: never among p1's
    alert_actions.assign(conn, anna, alert, "dr-gp", at=T0 + timedelta(minutes=1), client=None)
    alert_actions.snooze(
        conn,
        gp,
        alert,
        "Ser på det i morgen",
        T0 + timedelta(hours=20),
        at=T0 + timedelta(minutes=2),
        client=None,
    )
    alert_actions.acknowledge(conn, gp, alert, "Ringede.", at=T0 + timedelta(minutes=3), client=None)
    alert_actions.resolve(
        conn, anna, alert, "treatment-adjusted", "Ny dosis.", at=T0 + timedelta(minutes=4), client=None
    )
    history = _history(conn, anna, alert)
    assert [(e.action, e.actor, e.note) for e in history] == [
        ("raised", None, None),
        ("assigned", "anna", None),
        ("snoozed", "dr-gp", "Ser på det i morgen"),
        ("acknowledged", "dr-gp", "Ringede."),
        ("resolved", "anna", "Ny dosis."),
    ]
    assert [e.at for e in history] == sorted(e.at for e in history)
    assert [e.actor_name for e in history][1] == "Anna Holm"
    assert [row[1] for row in _audit(conn)] == [
        "assign-alert",
        "snooze-alert",
        "acknowledge-alert",
        "resolve-alert",
    ]
    histories = alert_inbox.patient_alert_histories(conn, anna, "p1", [alert, other])
    assert [e for e in histories[alert] if e.action in LIFECYCLE] == history
    assert [e.action for e in histories[other] if e.action in LIFECYCLE] == ["raised"]
    assert all(e.alert_id == other for e in histories[other])
    shown = alert_inbox.patient_alerts(conn, anna, "p1")
    assert [a.id for a in shown] == [other, alert]  # the active one first
    assert alert_inbox.patient_alerts(conn, people["bo"], "p1") == []
