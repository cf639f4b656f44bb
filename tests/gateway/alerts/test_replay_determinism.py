"""Whether an alert fires depends on the stored readings only, not on how far behind the scorer is: the
same readings replayed fast (stored together, scored once) and slow (each arrival scored before the next
is stored) give the same alerts, with the same kinds, keys, severities, times and trigger counts.
Generated sequences (hypothesis) of several vital signs, gaps that make values stale, own limits and
disease rules; real PostgreSQL and the real scorer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scoring_homes import MUNICIPALITY, T0, enroll, reading

from fhir_contract.validate import validate_observation
from gateway.alerts.scorer import score_patients
from gateway.store.repository import insert_observations

# An arrival: the readings one hub sends together (one Bundle), all taken at one moment.
Arrival = tuple[datetime, tuple[tuple[str, float | tuple[float, float]], ...]]


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as c:
        yield c


@dataclass(frozen=True, slots=True)
class Limit:
    vital: str
    red_low: float | None
    red_high: float | None


def store(conn: psycopg.Connection[Any], pid: str, arrival: Arrival) -> None:
    at, values = arrival
    rows = [validate_observation(reading(pid, kind, value, at)) for kind, value in values]
    insert_observations(conn, MUNICIPALITY, f"hub-{pid}", rows)


def own_limits(conn: psycopg.Connection[Any], pid: str, limits: Sequence[Limit]) -> None:
    for limit in limits:  # set a day before the first reading: in force for all of them
        conn.execute(
            "INSERT INTO patient_thresholds (municipality_id, patient_id, vital, red_low, red_high, set_by,"
            " set_at) VALUES (%s, %s, %s, %s, %s, 'nurse', %s)",
            (MUNICIPALITY, pid, limit.vital, limit.red_low, limit.red_high, T0 - timedelta(days=1)),
        )


def alerts_of(conn: psycopg.Connection[Any], pid: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT kind, key, severity, as_of, last_trigger_as_of, trigger_count, reason, status FROM alerts"
        " WHERE patient_id = %s ORDER BY kind, key, as_of",
        (pid,),
    ).fetchall()


def replay_both_ways(
    conn: psycopg.Connection[Any],
    arrivals: Sequence[Arrival],
    *,
    conditions: tuple[str, ...] = (),
    limits: Sequence[Limit] = (),
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The alerts of one patient who got ``arrivals`` scored at once, and of one scored after each."""
    fast, slow = f"fast-{uuid.uuid4().hex[:8]}", f"slow-{uuid.uuid4().hex[:8]}"
    enroll(conn, fast, slow, conditions=conditions)
    for pid in (fast, slow):
        own_limits(conn, pid, limits)
    for arrival in arrivals:
        store(conn, fast, arrival)
    score_patients(conn, {(MUNICIPALITY, fast): arrivals[0][0]}, now=T0)
    for arrival in arrivals:
        store(conn, slow, arrival)
        score_patients(conn, {(MUNICIPALITY, slow): arrival[0]}, now=T0)
    return alerts_of(conn, fast), alerts_of(conn, slow)


def test_a_red_reading_is_alerted_the_same_fast_or_slow(conn: psycopg.Connection[Any]) -> None:
    arrivals: list[Arrival] = [
        (T0, (("heart-rate", 140),)),
        (T0 + timedelta(seconds=1), (("heart-rate", 72),)),
        (T0 + timedelta(seconds=2), (("spo2", 91), ("pulse-rate-oximeter", 125))),  # 3 + 2
        (T0 + timedelta(seconds=3), (("blood-pressure", (95, 60)),)),  # + 2 = 7: high
        (T0 + timedelta(hours=25), (("heart-rate", 72),)),  # the rest is stale: nothing
    ]
    fast, slow = replay_both_ways(conn, arrivals)
    assert fast == slow
    [(kind, key, severity, as_of, last, count, _, status)] = fast
    assert (kind, key, severity, status) == ("news2", "", "high", "open")
    # Raised on the 140 /min, counted at 5 points, made worse at 7: the last reading's time and reason.
    assert (as_of, last, count) == (T0 + timedelta(seconds=3), T0 + timedelta(seconds=3), 3)


def test_a_value_flapping_round_a_threshold_raises_one_alert_fast_or_slow(
    conn: psycopg.Connection[Any],
) -> None:
    """20 alternations of 131 /min (3 points: red) and 130 /min (2 points: nothing) one minute apart."""
    arrivals: list[Arrival] = [
        (T0 + timedelta(minutes=i), (("heart-rate", 131 if i % 2 == 0 else 130),)) for i in range(40)
    ]
    fast, slow = replay_both_ways(conn, arrivals)
    assert fast == slow
    [(kind, _, severity, as_of, last, count, _, _)] = fast
    assert (kind, severity, as_of, last, count) == ("news2", "medium", T0, T0 + timedelta(minutes=38), 20)


# --- generated sequences -------------------------------------------------------------------------------

_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "heart-rate": st.integers(30, 180),
    "pulse-rate-oximeter": st.integers(30, 180),
    "spo2": st.integers(82, 100),
    "body-temperature": st.sampled_from([34.6, 35.4, 36.2, 37.0, 38.4, 39.3, 40.1]),
    "blood-pressure": st.tuples(st.integers(80, 230), st.integers(40, 120)),
    "body-weight": st.sampled_from([80.0, 80.4, 81.1, 81.9, 82.6, 83.4]),
}
# Mostly minutes apart; now and then more than a day, so that values go stale.
_GAPS = st.one_of(st.integers(1, 600), st.integers(1, 6 * 3600), st.just(25 * 3600))


@st.composite
def arrivals(draw: st.DrawFn) -> list[Arrival]:
    count = draw(st.integers(1, 14))
    at, found = T0, []
    for _ in range(count):
        at += timedelta(seconds=draw(_GAPS))
        kinds = draw(st.lists(st.sampled_from(sorted(_VALUES)), min_size=1, max_size=3, unique=True))
        found.append((at, tuple((kind, draw(_VALUES[kind])) for kind in kinds)))
    return found


_LIMITS = st.lists(
    st.builds(
        Limit,
        st.sampled_from(["pulse", "spo2", "systolic", "diastolic", "temperature", "weight"]),
        st.one_of(st.none(), st.sampled_from([40.0, 50.0, 88.0, 90.0, 36.0])),
        st.one_of(st.none(), st.sampled_from([38.5, 82.0, 95.0, 110.0, 160.0])),
    ).filter(
        lambda limit: limit.red_low is None or limit.red_high is None or limit.red_low <= limit.red_high
    ),
    max_size=2,
    unique_by=lambda limit: limit.vital,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sequence=arrivals(),
    conditions=st.sampled_from([(), ("heart-failure",), ("copd",)]),
    limits=_LIMITS,
)
def test_generated_readings_give_the_same_alerts_fast_or_slow(
    conn: psycopg.Connection[Any],
    sequence: list[Arrival],
    conditions: tuple[str, ...],
    limits: list[Limit],
) -> None:
    fast, slow = replay_both_ways(conn, sequence, conditions=conditions, limits=limits)
    assert fast == slow
    event(f"alerts of kinds {sorted({alert[0] for alert in fast})}")
    event(f"{'some' if any(alert[5] > 1 for alert in fast) else 'no'} alert counted more than once")
