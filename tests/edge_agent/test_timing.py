"""Which time a reading gets: the device's stamp when believable, else the hub's receipt time."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from edge_agent.clock_sync import assess_clock, correction_after_setting, steady_correction
from edge_agent.timing import MAX_AGE, effective_time

CPH = ZoneInfo("Europe/Copenhagen")
RECEIVED = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_device_stamp_is_read_in_the_hub_zone() -> None:
    when = effective_time(datetime(2026, 11, 27, 9, 55), RECEIVED, CPH)  # 08:55 UTC in winter
    assert when.source == "device"
    assert when.at == datetime(2026, 11, 27, 8, 55, tzinfo=UTC)


def test_no_device_stamp_uses_receipt_time() -> None:
    assert effective_time(None, RECEIVED, CPH).at == RECEIVED


@pytest.mark.parametrize(
    "stamp",
    [
        datetime(2026, 11, 27, 10, 30),  # 20 minutes in the future
        datetime(2000, 1, 1, 0, 0),  # an unset clock
        (RECEIVED - MAX_AGE - timedelta(days=1)).replace(tzinfo=None),
    ],
)
def test_implausible_device_stamp_falls_back_to_receipt_time(stamp: datetime) -> None:
    when = effective_time(stamp, RECEIVED, CPH)
    assert when.source == "receipt-device-time-implausible"
    assert when.at == RECEIVED


def test_receipt_time_must_be_aware() -> None:
    with pytest.raises(ValueError, match="time zone"):
        effective_time(None, datetime(2026, 11, 27), CPH)


# -- with a measured device clock --------------------------------------------------------------------


def test_unset_clock_is_corrected_by_the_measured_offset() -> None:
    # The device believes it is 2000-01-01 00:10 while the hub's local time is 10:00 on 27 November.
    correction = assess_clock(datetime(2000, 1, 1, 0, 10), RECEIVED, CPH)
    assert correction.status == "unset" and correction.needs_setting
    # A reading stamped 5 minutes before the sync on that clock happened at 09:55 local, 08:55 UTC.
    when = effective_time(datetime(2000, 1, 1, 0, 5), RECEIVED, CPH, correction)
    assert when.source == "device-corrected"
    assert when.at == datetime(2026, 11, 27, 8, 55, tzinfo=UTC)


def test_clock_an_hour_fast_is_corrected_and_in_sync_clock_is_not_flagged() -> None:
    fast = assess_clock(datetime(2026, 11, 27, 11, 0), RECEIVED, CPH)  # local is 10:00
    assert fast.status == "wrong" and fast.offset == timedelta(hours=-1)
    assert effective_time(datetime(2026, 11, 27, 10, 30), RECEIVED, CPH, fast).at == datetime(
        2026, 11, 27, 8, 30, tzinfo=UTC
    )
    fine = assess_clock(datetime(2026, 11, 27, 10, 0, 30), RECEIVED, CPH)
    assert fine.status == "in-sync" and not fine.needs_setting
    assert effective_time(datetime(2026, 11, 27, 9, 0), RECEIVED, CPH, fine).source == "device"


def test_after_the_hub_sets_the_clock_new_stamps_are_not_shifted() -> None:
    measured = assess_clock(datetime(2000, 1, 1, 0, 10), RECEIVED, CPH)
    was_set = dataclasses.replace(measured, clock_was_set=True)
    later = RECEIVED + timedelta(minutes=1)
    # Stored reading on the old clock: shifted. Live reading on the new (correct) clock: as it is.
    old = effective_time(datetime(2000, 1, 1, 0, 9), later, CPH, was_set)
    new = effective_time(datetime(2026, 11, 27, 10, 0, 45), later, CPH, was_set)
    assert old.at == datetime(2026, 11, 27, 8, 59, tzinfo=UTC)
    assert new.at == datetime(2026, 11, 27, 9, 0, 45, tzinfo=UTC)


def test_clock_that_reports_not_known_gives_no_offset() -> None:
    unknown = assess_clock(None, RECEIVED, CPH)
    assert unknown.status == "unknown" and unknown.offset is None
    assert effective_time(datetime(2026, 11, 27, 9, 0), RECEIVED, CPH, unknown).source == "device"


def test_in_sync_clock_stamps_are_not_shifted_by_the_measurement_noise() -> None:
    fine = assess_clock(datetime(2026, 11, 27, 10, 0, 40), RECEIVED, CPH)  # 40 s ahead: in sync
    assert fine.offset == timedelta(seconds=-40)
    assert effective_time(datetime(2026, 11, 27, 9, 0), RECEIVED, CPH, fine).at == datetime(
        2026, 11, 27, 8, 0, tzinfo=UTC
    )


def test_offset_is_measured_to_the_second() -> None:
    measured = assess_clock(datetime(2026, 11, 27, 11, 0, 0, 400_000), RECEIVED, CPH)
    assert measured.offset == timedelta(hours=-1)


def test_a_clock_reporting_not_known_needs_setting() -> None:
    assert assess_clock(None, RECEIVED, CPH).needs_setting


def test_steady_correction_keeps_the_previous_offset_within_the_jitter() -> None:
    previous = assess_clock(datetime(2026, 11, 27, 11, 0, 0), RECEIVED, CPH)
    again = assess_clock(datetime(2026, 11, 27, 11, 0, 1), RECEIVED, CPH)  # one second more latency
    assert steady_correction(previous, again).offset == previous.offset
    moved = assess_clock(datetime(2026, 11, 27, 11, 5, 0), RECEIVED, CPH)  # drifted five minutes
    assert steady_correction(previous, moved) == moved
    assert steady_correction(None, again) == again


def test_after_setting_the_clock_stamps_are_taken_as_they_are() -> None:
    after = correction_after_setting(RECEIVED, CPH)
    assert after.clock_was_set and after.status == "in-sync" and not after.needs_setting
    stamp = datetime(2026, 11, 27, 9, 59, 30)
    assert effective_time(stamp, RECEIVED, CPH, after).at == stamp.replace(tzinfo=CPH)
    assert effective_time(stamp, RECEIVED, CPH, after).source == "device"
