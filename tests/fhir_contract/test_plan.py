"""``fhir_contract.plan``: the measurement plan both the hub and the gateway read."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_contract.plan import (
    EARLY,
    MEASUREMENTS,
    Occurrence,
    PlanError,
    PlanItem,
    match_readings,
    occurrences,
    parse_plan,
    plan_json,
)

CPH = ZoneInfo("Europe/Copenhagen")
BP = {"measurement": "blood-pressure", "times": ["20:00", "08:00"], "grace_minutes": 120}


def test_a_plan_reads_back_from_its_json_with_times_sorted_and_every_day_by_default() -> None:
    items = parse_plan([BP, {"measurement": "weight", "times": ["07:30"], "days": [1, 4]}])
    assert items[0] == PlanItem(
        "blood-pressure", (time(8), time(20)), frozenset(range(1, 8)), timedelta(hours=2)
    )
    assert items[1].days == frozenset({1, 4}) and items[1].grace == timedelta(hours=2)
    assert parse_plan(plan_json(items)) == items


@pytest.mark.parametrize(
    ("plan", "field"),
    [
        ({"measurement": "blood-pressure"}, ""),
        ([{"measurement": "pulse", "times": ["08:00"]}], "0.measurement"),
        ([{"measurement": "spo2", "times": []}], "0.times"),
        ([{"measurement": "spo2", "times": ["8:00"]}], "0.times.0"),
        ([{"measurement": "spo2", "times": ["24:00"]}], "0.times.0"),
        ([{"measurement": "spo2", "times": ["08:00", "08:00"]}], "0.times"),
        ([{"measurement": "spo2", "times": ["08:00"], "days": [0]}], "0.days"),
        ([{"measurement": "spo2", "times": ["08:00"], "days": [True]}], "0.days"),
        ([{"measurement": "spo2", "times": ["08:00"], "grace_minutes": 10}], "0.grace_minutes"),
        ([{"measurement": "spo2", "times": ["08:00"], "grace_minutes": 60.5}], "0.grace_minutes"),
        ([{"measurement": "spo2", "times": ["08:00"], "when": "now"}], "0.when"),
        ([BP, BP], ""),
    ],
)
def test_a_bad_plan_names_its_field(plan: object, field: str) -> None:
    with pytest.raises(PlanError) as refused:
        parse_plan(plan)
    assert refused.value.field == field


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=6),
        lambda c: (
            st.lists(c, max_size=4)
            | st.dictionaries(
                st.sampled_from(["measurement", "times", "days", "grace_minutes", "x"]), c, max_size=4
            )
        ),
        max_leaves=20,
    )
)
def test_anything_is_a_plan_or_a_plan_error(data: object) -> None:
    try:
        items = parse_plan(data)
    except PlanError:
        return
    assert parse_plan(plan_json(items)) == items


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "measurement": st.sampled_from(MEASUREMENTS),
                "times": st.lists(
                    st.times().map(lambda t: f"{t:%H:%M}"), min_size=1, max_size=6, unique=True
                ),
                "days": st.lists(st.integers(1, 7), min_size=1, max_size=7, unique=True),
                "grace_minutes": st.integers(15, 1440),
            }
        ),
        max_size=5,
        unique_by=lambda item: item["measurement"],
    )
)
def test_every_valid_plan_round_trips(plan: list[dict[str, object]]) -> None:
    items = parse_plan(plan)
    assert parse_plan(plan_json(items)) == items


def test_occurrences_keep_the_homes_wall_time_across_daylight_saving() -> None:
    items = parse_plan([{"measurement": "blood-pressure", "times": ["08:00", "02:30"]}])
    # The clocks go forward at 02:00 on 2026-03-29 in Denmark: 02:30 does not exist that day.
    start = datetime(2026, 3, 28, 0, 0, tzinfo=CPH)
    found = occurrences(items, start, start + timedelta(days=3), CPH)
    local = [o.due_at.astimezone(CPH).strftime("%m-%d %H:%M") for o in found]
    assert local == ["03-28 02:30", "03-28 08:00", "03-29 03:30", "03-29 08:00", "03-30 02:30", "03-30 08:00"]
    assert all(o.deadline - o.due_at == timedelta(hours=2) for o in found)


def test_occurrences_only_on_the_plans_days_and_within_the_window() -> None:
    items = parse_plan([{"measurement": "weight", "times": ["07:00"], "days": [1]}])  # Mondays
    start = datetime(2026, 12, 7, 7, 0, tzinfo=CPH)  # a Monday, exactly at the due time
    found = occurrences(items, start, start + timedelta(days=14), CPH)
    assert [o.due_at.astimezone(CPH).date().isoformat() for o in found] == ["2026-12-07", "2026-12-14"]
    assert occurrences(items, start + timedelta(seconds=1), start + timedelta(days=7), CPH) == []
    with pytest.raises(ValueError):
        occurrences(items, datetime(2026, 12, 7), datetime(2026, 12, 8), CPH)


def test_a_reading_counts_once_for_the_earliest_occurrence_whose_window_holds_it() -> None:
    due_at = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
    morning = Occurrence("blood-pressure", due_at, due_at + timedelta(hours=2))
    evening = Occurrence("blood-pressure", due_at + timedelta(hours=12), due_at + timedelta(hours=14))
    due = [morning, evening]
    assert match_readings(due, [("blood-pressure", due_at - EARLY)]) == {morning: due_at - EARLY}
    assert match_readings(due, [("blood-pressure", due_at - EARLY - timedelta(seconds=1))]) == {}
    assert match_readings(due, [("spo2", due_at)]) == {}
    late = due_at + timedelta(hours=2, seconds=1)
    assert match_readings(due, [("blood-pressure", late)]) == {}
    two = [
        ("blood-pressure", due_at + timedelta(minutes=5)),
        ("blood-pressure", due_at + timedelta(minutes=1)),
    ]
    assert match_readings(due, two) == {morning: due_at + timedelta(minutes=1)}
    evening_reading = due_at + timedelta(hours=11)  # early for the evening, late for the morning
    assert match_readings(due, [("blood-pressure", evening_reading)]) == {evening: evening_reading}
