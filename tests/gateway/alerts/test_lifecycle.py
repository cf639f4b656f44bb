"""The alert lifecycle's rule (``decide``, pure) and ``record_trigger`` on a real PostgreSQL: one active
alert per patient, kind and key; a flapping value raises one alert; a worse one re-opens it; a resolved
alert stays quiet for a while; the same data scored twice changes nothing; every new or worse alert has
its event, in the same transaction."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.alerts.lifecycle import REALERT_AFTER, Trigger, decide, record_trigger
from gateway.store.alerts import AlertState
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.repository import Municipality, Patient

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _trigger(
    as_of: datetime, severity: str = "medium", *, kind: Any = "news2", key: str = "", patient: str = "p-1"
) -> Trigger:
    return Trigger("0101", patient, kind, key, severity, f"NEWS2 ({severity})", as_of)


def _state(status: str, severity: str, last: datetime, resolved_at: datetime | None = None) -> AlertState:
    return AlertState(1, status, severity, last, resolved_at)


# --- the rule ---------------------------------------------------------------------------------------


def test_without_any_alert_a_trigger_raises_one() -> None:
    assert decide(_trigger(T0), None, None, T0) == "raise"


def test_an_active_alert_counts_a_newer_trigger_of_no_worse_severity() -> None:
    for status in ("open", "acknowledged", "snoozed"):
        active = _state(status, "medium", T0)
        assert decide(_trigger(T0 + timedelta(minutes=1)), active, None, T0) == "count"
        assert decide(_trigger(T0 + timedelta(minutes=1), "high"), active, None, T0) == "worse"


def test_data_no_newer_than_the_alert_holds_is_a_repeat() -> None:
    active = _state("open", "medium", T0)
    assert decide(_trigger(T0), active, None, T0) == "repeat"
    assert decide(_trigger(T0 - timedelta(seconds=1), "high"), active, None, T0) == "repeat"
    assert decide(_trigger(T0, "high"), active, None, T0) == "worse"  # as new and worse: not a repeat
    assert decide(_trigger(T0 - timedelta(seconds=1)), active, None, T0) == "repeat"
    resolved = _state("resolved", "medium", T0, resolved_at=T0 + timedelta(days=1))
    assert decide(_trigger(T0), None, resolved, T0 + timedelta(days=2)) == "repeat"


def test_a_resolved_alert_keeps_the_same_severity_quiet_for_a_while_but_not_a_worse_one() -> None:
    resolved_at = T0 + timedelta(minutes=10)
    resolved = _state("resolved", "medium", T0, resolved_at=resolved_at)
    soon = resolved_at + REALERT_AFTER - timedelta(seconds=1)
    assert decide(_trigger(soon), None, resolved, soon) == "suppress"
    assert decide(_trigger(soon, "high"), None, resolved, soon) == "raise"
    later = resolved_at + REALERT_AFTER
    assert decide(_trigger(later), None, resolved, later) == "raise"


# --- on the database ----------------------------------------------------------------------------------


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as c:
        homes = [
            Home(
                Patient("0101", pid, f"Synthetic {pid}"),
                f"hub-{pid}",
                (HomeDevice(f"dev-{pid}", "pulse-oximeter"),),
            )
            for pid in ("p-1", "p-2")
        ]
        enroll_homes(c, [Municipality("0101", "København")], homes)
        yield c


def _record(c: psycopg.Connection[Any], trigger: Trigger, now: datetime) -> str:
    with c.transaction():
        return record_trigger(c, trigger, now=now).action


def _alerts(c: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return c.execute(
        "SELECT patient_id, kind, key, severity, status, trigger_count, last_trigger_as_of"
        " FROM alerts ORDER BY id"
    ).fetchall()


def _events(c: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """The events the lifecycle writes (delivery adds its own: nobody in this world has an address)."""
    return c.execute(
        "SELECT alert_id, action, actor FROM alert_events WHERE action IN ('raised', 'severity-raised')"
        " ORDER BY id"
    ).fetchall()


def test_a_value_flapping_round_a_threshold_raises_one_alert(conn: psycopg.Connection[Any]) -> None:
    actions = [
        _record(conn, _trigger(T0 + timedelta(minutes=2 * i)), T0 + timedelta(minutes=2 * i))
        for i in range(20)
    ]
    assert actions == ["raise"] + ["count"] * 19
    [(patient, kind, key, severity, status, count, last)] = _alerts(conn)
    assert (patient, kind, key, severity, status, count) == ("p-1", "news2", "", "medium", "open", 20)
    assert last == T0 + timedelta(minutes=38)
    assert [action for _, action, _ in _events(conn)] == ["raised"]  # told once


def test_kinds_keys_and_patients_are_alerts_of_their_own(conn: psycopg.Connection[Any]) -> None:
    _record(conn, _trigger(T0), T0)
    _record(conn, _trigger(T0, kind="disease-rule", key="hf-weight-gain-3d"), T0)
    _record(conn, _trigger(T0, kind="disease-rule", key="copd-spo2-drop"), T0)
    _record(conn, _trigger(T0, patient="p-2"), T0)
    assert [(p, k, key) for p, k, key, *_ in _alerts(conn)] == [
        ("p-1", "news2", ""),
        ("p-1", "disease-rule", "hf-weight-gain-3d"),
        ("p-1", "disease-rule", "copd-spo2-drop"),
        ("p-2", "news2", ""),
    ]


def test_a_worse_trigger_reopens_an_acknowledged_alert_and_is_told(conn: psycopg.Connection[Any]) -> None:
    _record(conn, _trigger(T0), T0)
    conn.execute("UPDATE alerts SET status = 'acknowledged', acknowledgement_note = 'called her'")
    assert _record(conn, _trigger(T0 + timedelta(minutes=5)), T0 + timedelta(minutes=5)) == "count"
    assert _alerts(conn)[0][4] == "acknowledged"  # the acknowledgement holds
    assert _record(conn, _trigger(T0 + timedelta(minutes=9), "high"), T0 + timedelta(minutes=9)) == "worse"
    [(_, _, _, severity, status, count, _)] = _alerts(conn)
    assert (severity, status, count) == ("high", "open", 3)
    assert [action for _, action, _ in _events(conn)] == ["raised", "severity-raised"]


def test_a_resolved_alert_stays_quiet_then_a_new_one_is_raised(conn: psycopg.Connection[Any]) -> None:
    _record(conn, _trigger(T0), T0)
    resolved_at = T0 + timedelta(minutes=30)
    conn.execute(
        "UPDATE alerts SET status = 'resolved', resolved_at = %s, outcome = 'contacted-no-action'",
        (resolved_at,),
    )
    assert (
        _record(conn, _trigger(resolved_at + timedelta(minutes=1)), resolved_at + timedelta(minutes=1))
        == "suppress"
    )
    later = resolved_at + REALERT_AFTER + timedelta(minutes=1)
    assert _record(conn, _trigger(later), later) == "raise"
    assert [(status, count) for *_, status, count, _ in _alerts(conn)] == [("resolved", 2), ("open", 1)]


def test_an_alert_is_raised_with_its_escalation_time_and_event_in_one_transaction(
    conn: psycopg.Connection[Any],
) -> None:
    with pytest.raises(RuntimeError), conn.transaction():
        record_trigger(conn, _trigger(T0, "high"), now=T0)
        raise RuntimeError("the scorer's transaction fails after the trigger")
    assert _alerts(conn) == [] and _events(conn) == []  # nothing half-written
    _record(conn, _trigger(T0, "high"), T0)
    escalate_at = conn.execute("SELECT escalate_at FROM alerts").fetchone()
    assert escalate_at == (T0 + timedelta(minutes=15),)  # high: 15 minutes without an alert_settings row


_EXAMPLES = itertools.count()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.integers(0, 600), st.sampled_from(["medium", "high"]), st.sampled_from(["", "a", "b"])),
        min_size=1,
        max_size=25,
    )
)
def test_recording_the_same_triggers_twice_changes_nothing(
    conn: psycopg.Connection[Any], triggers: list[tuple[int, str, str]]
) -> None:
    # Each example on a patient of its own: the fixture's database is shared by the examples.
    patient = f"p-x{next(_EXAMPLES)}"
    enroll_homes(conn, [], [Home(Patient("0101", patient, "Synthetic"), f"hub-{patient}", ())])

    def record_all() -> list[str]:
        actions = []
        for minute, severity, key in sorted(triggers):
            at = T0 + timedelta(minutes=minute)
            trigger = _trigger(at, severity, kind="disease-rule", key=key, patient=patient)
            actions.append(_record(conn, trigger, at))
        return actions

    record_all()
    first = [row for row in _alerts(conn) if row[0] == patient]
    assert record_all() == ["repeat"] * len(triggers)  # the scorer, behind, scores them all again
    assert [row for row in _alerts(conn) if row[0] == patient] == first
