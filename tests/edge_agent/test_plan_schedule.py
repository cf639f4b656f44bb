"""``edge_agent.plan_schedule``: what of the plan is due, done, missed and upcoming at an instant, and which
plan measurement an Observation is (by its code, as the gateway reads it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.plan_schedule import (
    MEASUREMENT_OF_KIND,
    PlanState,
    measurement_of,
    plan_state,
    taken,
)
from fhir_contract.observation import build_observation
from fhir_contract.plan import EARLY, MAX_GRACE, MEASUREMENTS, match_readings, occurrences, parse_plan
from fhir_contract.readings import Component, Quantity, Reading
from fhir_contract.terminology import reading_types
from gateway.store.missing_reads import PLAN_READING_KINDS
from gateway.store.worklist import MEASUREMENTS as WORKLIST

CPH = ZoneInfo("Europe/Copenhagen")
MONDAY = datetime(2026, 12, 7, tzinfo=CPH)  # midnight, winter time (UTC+1)
BP = {"measurement": "blood-pressure", "times": ["08:00", "20:00"], "grace_minutes": 120}


def _local(hhmm: str, day: int = 0) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return MONDAY + timedelta(days=day, hours=hours, minutes=minutes)


def _observation(kind: str, unit_index: int = 0, preliminary: bool = False) -> dict[str, Any]:
    """A contract Observation of ``kind`` with a plausible value, built by the contract's builder."""
    rtype = reading_types()[kind]
    if rtype.components:
        reading = Reading(
            kind,
            components=tuple(
                Component(c.key, Quantity(Decimal(int(sum(c.range) / 2)), c.units[0]))
                for c in rtype.components
                if c.key in rtype.required_components
            ),
        )
    else:
        assert rtype.range is not None
        reading = Reading(kind, Quantity(Decimal(int(sum(rtype.range) / 2)), rtype.units[unit_index]))
    at = datetime(2026, 12, 7, 7, 5, tzinfo=UTC)
    return build_observation(
        reading,
        patient_id="p1",
        device_id="d1",
        hub_id="h1",
        effective=at,
        received=at,
        preliminary=preliminary,
    )


def test_plan_measurements_are_named_by_the_codes_of_their_reading_types() -> None:
    glucose = {k for k in reading_types() if k.startswith("glucose-")}
    assert {
        "blood-pressure": "blood-pressure",
        "spo2": "spo2",
        "body-weight": "weight",
        "body-temperature": "temperature",
    } | dict.fromkeys(glucose, "glucose") == MEASUREMENT_OF_KIND
    assert set(MEASUREMENT_OF_KIND.values()) == set(MEASUREMENTS)


def test_the_hub_maps_observations_to_the_same_measurement_keys_as_the_gateway() -> None:
    # The gateway stores each Observation's reading type (its kind) and reads a plan's measurement from
    # PLAN_READING_KINDS (missing-measurement alert), the others from the worklist's kinds.
    plan_keys = {kind: key for key, kinds in PLAN_READING_KINDS.items() for kind in kinds}
    worklist = {kind: m.key for m in WORKLIST if m.key in MEASUREMENTS for kind in m.kinds}
    assert worklist.items() <= plan_keys.items()
    for kind, rtype in reading_types().items():
        for unit_index in range(max(1, len(rtype.units))):
            assert measurement_of(_observation(kind, unit_index)) == plan_keys.get(kind), kind


def test_an_observation_counts_by_its_code_not_by_the_device_that_sent_it() -> None:
    assert measurement_of(_observation("blood-pressure")) == "blood-pressure"
    assert measurement_of(_observation("pulse-rate-cuff")) is None  # from the cuff, but not blood pressure
    assert measurement_of(_observation("spo2")) == "spo2"
    assert measurement_of(_observation("spo2-fast")) is None  # a continuous oximeter's stream
    assert measurement_of(_observation("body-weight", 1)) == "weight"  # in pounds
    assert measurement_of(_observation("body-temperature", 1)) == "temperature"
    assert measurement_of(_observation("glucose-capillary-plasma", 1)) == "glucose"  # mmol/L: other LOINC
    assert measurement_of(_observation("cgm-glucose")) is None
    assert measurement_of(_observation("blood-pressure", preliminary=True)) is None  # still inflating
    assert measurement_of({"resourceType": "Observation"}) is None


def test_taken_is_the_effective_time_of_a_planned_measurement() -> None:
    assert taken(_observation("body-weight")) == ("weight", datetime(2026, 12, 7, 7, 5, tzinfo=UTC))
    assert taken(_observation("heart-rate")) is None
    assert taken(_observation("spo2") | {"effectiveDateTime": "2026-12-07T07:05:00"}) is None  # no zone
    assert taken(_observation("spo2") | {"effectiveDateTime": "yesterday"}) is None


def test_due_at_the_due_time_done_by_a_reading_missed_after_the_deadline() -> None:
    items = parse_plan([BP])
    before = plan_state(items, CPH, [], _local("07:59"))
    assert before.due == () and [o.due_at for o in before.upcoming[:1]] == [_local("08:00")]
    at_eight = plan_state(items, CPH, [], _local("08:00"))
    (morning,) = at_eight.due
    assert morning.due_at == _local("08:00") and morning.deadline == _local("10:00")
    assert plan_state(items, CPH, [], _local("10:00")).due == (morning,)  # a reading at 10:00 still counts
    missed = plan_state(items, CPH, [], _local("10:01"))
    assert missed.due == () and missed.missed[-1:] == (morning,)  # after last evening's
    done = plan_state(items, CPH, [("blood-pressure", _local("08:10"))], _local("08:11"))
    assert done.due == () and done.done == {morning: _local("08:10")}
    assert (
        morning not in plan_state(items, CPH, [("blood-pressure", _local("08:10"))], _local("12:00")).missed
    )


def test_an_early_reading_is_done_before_the_due_time_and_other_readings_do_not_count() -> None:
    items = parse_plan([BP])
    early = plan_state(items, CPH, [("blood-pressure", _local("06:30"))], _local("06:31"))
    assert [(o.due_at, t) for o, t in early.done.items()] == [(_local("08:00"), _local("06:30"))]
    assert _local("08:00") not in [o.due_at for o in early.upcoming]
    assert plan_state(items, CPH, [("blood-pressure", _local("05:59"))], _local("08:00")).due != ()
    assert plan_state(items, CPH, [("spo2", _local("08:05"))], _local("08:06")).due != ()


def test_missed_looks_back_a_day_and_upcoming_a_day_ahead() -> None:
    items = parse_plan([{"measurement": "weight", "times": ["07:00"]}])
    state = plan_state(items, CPH, [], _local("12:00", day=2))
    assert [o.due_at for o in state.missed] == [_local("07:00", day=2)]  # Monday's and Tuesday's are older
    assert [o.due_at for o in state.upcoming] == [_local("07:00", day=3)]
    wide = plan_state(items, CPH, [], _local("12:00", day=2), lookback=timedelta(days=2))
    assert [o.due_at for o in wide.missed] == [_local("07:00", day=1), _local("07:00", day=2)]
    with pytest.raises(ValueError):
        plan_state(items, CPH, [], datetime(2026, 12, 7, 12))


def test_next_change_is_the_next_due_time_or_just_after_a_deadline() -> None:
    items = parse_plan([BP])
    assert plan_state(items, CPH, [], _local("07:00")).next_change() == _local("08:00")
    after_deadline = _local("10:00") + timedelta(microseconds=1)
    assert plan_state(items, CPH, [], _local("08:30")).next_change() == after_deadline
    done = [("blood-pressure", _local("08:10"))]
    assert plan_state(items, CPH, done, _local("08:30")).next_change() == _local("20:00")
    assert PlanState(_local("08:00")).next_change() is None


PLANS = st.lists(
    st.fixed_dictionaries(
        {
            "measurement": st.sampled_from(MEASUREMENTS),
            "times": st.lists(st.times().map(lambda t: f"{t:%H:%M}"), min_size=1, max_size=3, unique=True),
            "days": st.lists(st.integers(1, 7), min_size=1, max_size=7, unique=True),
            "grace_minutes": st.integers(15, 1440),
        }
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda item: item["measurement"],
)
# Around the spring change of 2026 (29 March, 02:00 -> 03:00 in Denmark) and a plain week in December.
INSTANTS = st.sampled_from([datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 12, 5, tzinfo=UTC)]).flatmap(
    lambda start: st.integers(0, 4 * 24 * 60).map(lambda m: start + timedelta(minutes=m))
)


@settings(max_examples=150, deadline=None)
@given(
    PLANS,
    INSTANTS,
    st.lists(
        st.tuples(st.sampled_from(MEASUREMENTS), st.integers(-3 * 24 * 60, 24 * 60)),
        max_size=12,
    ),
)
def test_every_occurrence_is_in_one_group_and_done_agrees_with_the_contracts_matching(
    plan: list[dict[str, Any]], at: datetime, offsets: list[tuple[str, int]]
) -> None:
    items = parse_plan(plan)
    readings = [(m, at + timedelta(minutes=minutes)) for m, minutes in offsets]
    state = plan_state(items, CPH, readings, at)
    groups = [set(state.due), set(state.done), set(state.missed), set(state.upcoming)]
    assert sum(len(g) for g in groups) == len(set().union(*groups))  # no occurrence in two groups
    assert all(o.due_at <= at <= o.deadline for o in state.due)
    assert all(at - timedelta(days=1) <= o.deadline < at for o in state.missed)
    assert all(at < o.due_at < at + timedelta(days=1) for o in state.upcoming)
    # The gateway matches over all history: for the occurrences the hub reports, the same verdict.
    everything = occurrences(items, at - timedelta(days=6), at + timedelta(days=3), CPH)
    truth = match_readings(everything, readings)
    reported = set().union(*groups)
    assert {o: t for o, t in truth.items() if o in reported} == dict(state.done)
    window = [
        o for o in everything if at - timedelta(days=1) <= o.deadline and o.due_at < at + timedelta(days=1)
    ]
    assert set(window) == reported
    assert timedelta(days=6) > MAX_GRACE + EARLY


@settings(max_examples=100, deadline=None)
@given(PLANS, INSTANTS)
def test_nothing_changes_before_next_change_and_something_does_at_it(
    plan: list[dict[str, Any]], at: datetime
) -> None:
    items = parse_plan(plan)
    state = plan_state(items, CPH, [], at)
    change = state.next_change()
    if change is None:  # nothing planned within the horizon (a plan for one day a week)
        assert state.due == () and state.upcoming == ()
        return
    assert change > at
    before = plan_state(items, CPH, [], change - timedelta(microseconds=1))
    # Until then nothing falls due or is missed (old misses only drop out of the day looked back on).
    assert before.due == state.due and set(before.missed) <= set(state.missed)
    after = plan_state(items, CPH, [], change)
    assert after.due != before.due or set(after.missed) - set(before.missed)
