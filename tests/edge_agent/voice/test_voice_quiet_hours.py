"""Quiet hours are a period of the home's wall clock: spanning midnight, following daylight saving time."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.voice import QuietHours

COPENHAGEN = ZoneInfo("Europe/Copenhagen")
NIGHT = QuietHours(time(22, 0), time(7, 0))

times = st.times()
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
zones = st.sampled_from(
    [COPENHAGEN, ZoneInfo("America/New_York"), ZoneInfo("Australia/Lord_Howe"), ZoneInfo("UTC")]
)


def _minutes(t: time) -> float:
    return t.hour * 60 + t.minute + (t.second + t.microsecond / 1e6) / 60


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        (time(21, 59, 59), False),
        (time(22, 0), True),
        (time(23, 30), True),
        (time(0, 0), True),
        (time(6, 59, 59), True),
        (time(7, 0), False),
        (time(12, 0), False),
    ],
)
def test_a_night_spanning_midnight_is_quiet_from_its_start_until_its_end(local: time, quiet: bool) -> None:
    assert NIGHT.contains(local) is quiet


def test_quiet_hours_within_one_day_do_not_wrap() -> None:
    nap = QuietHours(time(13, 0), time(14, 30))
    assert [nap.contains(time(h, m)) for h, m in [(12, 59), (13, 0), (14, 29), (14, 30), (23, 0)]] == [
        False,
        True,
        True,
        False,
        False,
    ]


@given(start=times, end=times, local=times)
def test_quiet_is_the_wall_clock_distance_from_the_start_being_shorter_than_the_period(
    start: time, end: time, local: time
) -> None:
    # Another formulation: minutes since the start, modulo a day, fall short of the period's length.
    day = 24 * 60
    expected = (_minutes(local) - _minutes(start)) % day < (_minutes(end) - _minutes(start)) % day
    assert QuietHours(start, end).contains(local) is expected


@given(start=times, end=times, local=times)
def test_swapping_start_and_end_gives_the_rest_of_the_day(start: time, end: time, local: time) -> None:
    if start == end:
        assert not QuietHours(start, end).contains(local)  # an empty period, both ways
    else:
        assert QuietHours(start, end).contains(local) != QuietHours(end, start).contains(local)


@given(at=instants, zone=zones, offset_minutes=st.integers(-14 * 60, 14 * 60), start=times, end=times)
def test_the_offset_an_instant_is_written_in_does_not_matter(
    at: datetime, zone: ZoneInfo, offset_minutes: int, start: time, end: time
) -> None:
    quiet = QuietHours(start, end)
    written_elsewhere = at.astimezone(timezone(timedelta(minutes=offset_minutes)))
    assert quiet.is_quiet(written_elsewhere, zone) == quiet.is_quiet(at, zone)


@given(at=instants, zone=zones, start=times, end=times)
def test_an_instant_is_quiet_when_its_local_wall_time_is(
    at: datetime, zone: ZoneInfo, start: time, end: time
) -> None:
    quiet = QuietHours(start, end)
    assert quiet.is_quiet(at, zone) == quiet.contains(at.astimezone(zone).time())


def test_the_night_keeps_to_the_wall_clock_across_the_spring_change() -> None:
    # Copenhagen goes from CET (+01) to CEST (+02) at 01:00 UTC on 29 March 2026. 05:30 UTC is 06:30
    # the day before (quiet) and 07:30 on the day itself (the night is over).
    assert NIGHT.is_quiet(datetime(2026, 3, 28, 5, 30, tzinfo=UTC), COPENHAGEN)
    assert not NIGHT.is_quiet(datetime(2026, 3, 29, 5, 30, tzinfo=UTC), COPENHAGEN)
    # 21:30 UTC is 22:30 CET (quiet) in winter and 23:30 CEST (quiet) in summer; 20:30 UTC is 21:30 CET
    # (not yet) in winter but 22:30 CEST (quiet) in summer.
    assert not NIGHT.is_quiet(datetime(2026, 3, 28, 20, 30, tzinfo=UTC), COPENHAGEN)
    assert NIGHT.is_quiet(datetime(2026, 3, 29, 20, 30, tzinfo=UTC), COPENHAGEN)


def test_an_hour_that_the_spring_change_skips_is_never_quiet_that_night() -> None:
    skipped = QuietHours(time(2, 0), time(3, 0))  # 02:00 to 03:00 does not exist on 29 March 2026
    night = [datetime(2026, 3, 28, 22, 0, tzinfo=UTC) + timedelta(minutes=m) for m in range(6 * 60)]
    assert not any(skipped.is_quiet(at, COPENHAGEN) for at in night)
    assert skipped.is_quiet(datetime(2026, 3, 30, 0, 30, tzinfo=UTC), COPENHAGEN)  # 02:30 CEST next night


def test_an_hour_that_the_autumn_change_repeats_is_quiet_both_times() -> None:
    # On 25 October 2026 02:00-03:00 happens twice: 00:00-01:00 UTC (CEST) and 01:00-02:00 UTC (CET).
    early = QuietHours(time(2, 0), time(2, 30))
    quiet_minutes = [
        m
        for m in range(4 * 60)
        if early.is_quiet(datetime(2026, 10, 24, 23, 0, tzinfo=UTC) + timedelta(minutes=m), COPENHAGEN)
    ]
    assert quiet_minutes == [*range(60, 90), *range(120, 150)]


def test_a_naive_instant_or_zoned_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        NIGHT.is_quiet(datetime(2026, 1, 1, 12, 0), COPENHAGEN)
    with pytest.raises(ValueError, match="wall-clock"):
        QuietHours(time(22, 0, tzinfo=UTC), time(7, 0))
