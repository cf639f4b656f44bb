"""The measurement-plan form read back (``gateway.api.plan_form``, pure): a plan shown in the form reads
back as the same plan, times as people type them, each error named on its field, and whatever a browser
posts is either refused in words or a plan the contract (and so the hub) accepts."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_contract.plan import ALL_DAYS, MAX_TIMES, MEASUREMENTS, PlanItem, parse_plan, plan_json
from gateway.api.i18n import use_language
from gateway.api.plan_form import (
    CHECKED,
    WEEKDAYS,
    clock,
    days_text,
    field_name,
    form_values,
    grace_text,
    parse_plan_form,
)

_TIMES = st.lists(
    st.times().map(lambda t: t.replace(second=0, microsecond=0)), min_size=1, max_size=MAX_TIMES, unique=True
).map(lambda ts: tuple(sorted(ts)))
_ITEMS = st.builds(
    PlanItem,
    st.sampled_from(MEASUREMENTS),
    _TIMES,
    st.frozensets(st.integers(1, 7), min_size=1),
    st.integers(15, 1440).map(lambda minutes: timedelta(minutes=minutes)),
)
_PLANS = st.lists(_ITEMS, max_size=len(MEASUREMENTS), unique_by=lambda item: item.measurement).map(
    lambda items: tuple(sorted(items, key=lambda item: MEASUREMENTS.index(item.measurement)))
)


def _form(
    measurement: str, times: str, days: tuple[int, ...] = WEEKDAYS, grace: str = "120"
) -> dict[str, str]:
    form = {field_name(measurement, "on"): CHECKED, field_name(measurement, "times"): times}
    form |= {field_name(measurement, f"day-{day}"): CHECKED for day in days}
    return form | {field_name(measurement, "grace"): grace, "csrf": "token"}


@pytest.mark.parametrize("language", ["en", "da"])  # 08:00 and 08.00
@settings(max_examples=100, deadline=None)
@given(plan=_PLANS)
def test_a_plan_shown_in_the_form_reads_back_as_the_same_plan(
    language: str, plan: tuple[PlanItem, ...]
) -> None:
    with use_language(language):
        shown = form_values(plan)
        items, typed, errors = parse_plan_form(shown)
    assert errors == [] and items == plan
    assert typed == shown


def test_times_are_read_as_people_type_them_sorted_and_once() -> None:
    items, _typed, errors = parse_plan_form(_form("blood-pressure", " 20.30, 8;0800  21:15 7"))
    assert errors == []
    [item] = items
    assert item.times == (time(7), time(8), time(20, 30), time(21, 15))
    assert (item.days, item.grace) == (ALL_DAYS, timedelta(hours=2))


def test_a_measurement_not_ticked_is_not_in_the_plan_whatever_its_fields_hold() -> None:
    form = _form("weight", "nonsense", days=(), grace="x")
    del form[field_name("weight", "on")]
    assert parse_plan_form(form)[0::2] == ((), [])


@pytest.mark.parametrize(
    ("times", "days", "grace", "field", "words"),
    [
        ("8:00, 25:00", WEEKDAYS, "120", "spo2-times", "“25:00” is not a time of day"),
        ("  ", WEEKDAYS, "120", "spo2-times", "write at least one time of day"),
        ("1 2 3 4 5 6 7", WEEKDAYS, "120", "spo2-times", "at most 6 times a day"),
        ("08:00", (), "120", "spo2-day-1", "choose at least one day"),
        ("08:00", WEEKDAYS, "10", "spo2-grace", "from 15 to 1440"),
        ("08:00", WEEKDAYS, "1441", "spo2-grace", "from 15 to 1440"),
        ("08:00", WEEKDAYS, "2 h", "spo2-grace", "whole number of minutes"),
        ("08:00", WEEKDAYS, "١٢٠", "spo2-grace", "whole number of minutes"),  # digits, but not ASCII ones
    ],
)
def test_each_error_names_its_field_and_what_to_write(
    times: str, days: tuple[int, ...], grace: str, field: str, words: str
) -> None:
    form = _form("spo2", times, days, grace) | _form("weight", "07:30")
    items, typed, errors = parse_plan_form(form)
    assert items == ()  # nothing is saved while anything is wrong
    assert [(e.field, words in e.message, e.message.startswith("SpO₂: ")) for e in errors] == [
        (field, True, True)
    ]
    assert typed[field_name("spo2", "times")] == times and "csrf" not in typed  # kept to show again


def test_times_days_and_grace_in_danish_words() -> None:
    with use_language("da"):
        assert clock(time(8)) == "08.00"  # as Danish writes it; the form reads it back
        assert days_text(frozenset({1, 3, 5})) == "man., ons., fre."
        assert grace_text(timedelta(hours=2)) == "2 timer"
        assert grace_text(timedelta(minutes=90)) == "90 minutter"


_TEXT = st.text(st.characters(codec="utf-8"), max_size=30)


@settings(max_examples=300, deadline=None)
@given(
    form=st.dictionaries(
        st.sampled_from(
            [field_name(m, part) for m in MEASUREMENTS for part in ("on", "times", "grace")]
            + [field_name(m, f"day-{d}") for m in MEASUREMENTS for d in WEEKDAYS]
        ),
        st.sampled_from([CHECKED, "", "on"]) | _TEXT | st.from_regex(r"[0-9 ,.:;]{0,40}", fullmatch=True),
    )
)
def test_whatever_is_posted_is_refused_in_words_or_a_plan_the_hub_accepts(form: dict[str, str]) -> None:
    items, _typed, errors = parse_plan_form(form)
    if errors:
        assert items == () and all(e.message and e.field in _FIELDS for e in errors)
        return
    assert parse_plan(plan_json(items)) == items


_FIELDS = {field_name(m, part) for m in MEASUREMENTS for part in ("on", "times", "grace", "day-1")}
