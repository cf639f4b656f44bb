"""The fleet's rules (``gateway.fleet``), pure: when a hub is offline, a device silent, a battery low, a
clock wrong, a device failing; the flags, their order, and the JSON of ``homewatch admin hubs --json``.
The day and a half of silence is held equal to the missing-measurement alert's every + grace."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import DeviceKind
from fhir_contract.device import contract_kind, device_kinds
from gateway import fleet
from gateway.alerts.missing import EXPECTATIONS
from gateway.fleet import (
    CONTINUOUS_SILENCE,
    DAILY_SILENCE,
    LOW_BATTERY_PERCENT,
    OFFLINE_FLOOR,
    DeviceActivity,
    DeviceFacts,
    HubFacts,
    assess_hub,
    fleet_json,
    offline_after,
    ordered,
    status_interval,
)
from gateway.store.worklist import EXPECTED_BY_DEVICE, STALE_AFTER

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def device(
    kind: str = "pulse-oximeter", *, last: timedelta | None = timedelta(hours=2), **fields: Any
) -> DeviceFacts:
    values: dict[str, Any] = {
        "device_id": f"dev-{kind}",
        "kind": kind,
        "assigned_at": NOW - timedelta(days=30),
        "expected_interval": None,
        "last_reading": None if last is None else NOW - last,
        "battery": 80.0,
        "battery_at": NOW - timedelta(minutes=1),
        "connected": False,
        "last_seen": None,
        "clock": "in-sync",
        "clock_offset_s": 0.0,
        "errors": 0,
        "last_error": None,
        "last_error_type": None,
    }
    return DeviceFacts(**(values | fields))


def hub(*devices: DeviceFacts, **fields: Any) -> HubFacts:
    values: dict[str, Any] = {
        "municipality_id": "0101",
        "hub_id": "hub-1",
        "patient_id": "p1",
        "revoked_at": None,
        "settings": {},
        "config_version": 0,
        "status_at": NOW - timedelta(seconds=30),
        "reported_online": True,
        "online_at": NOW - timedelta(seconds=30),
        "agent_version": "0.1.0",
        "queue_depth": 0,
        "awaiting_receipt": 0,
        "evicted_total": 0,
        "outbox_full": False,
        "held_in_memory": 0,
        "config_applied": None,
        "config_error": None,
        "devices": devices,
    }
    return HubFacts(**(values | fields))


# --- the hub -------------------------------------------------------------------------------------------


def test_offline_after_three_missed_statuses_but_never_sooner_than_the_floor() -> None:
    assert offline_after(timedelta(seconds=60)) == OFFLINE_FLOOR == timedelta(minutes=5)
    assert offline_after(timedelta(seconds=5)) == OFFLINE_FLOOR
    assert offline_after(timedelta(seconds=300)) == timedelta(minutes=15)


@pytest.mark.parametrize(
    ("settings", "seconds"),
    [
        ({}, 60),
        ({"status_interval_s": 300}, 300),
        ({"status_interval_s": 12.5}, 12.5),
        ({"status_interval_s": "300"}, 60),
        ({"status_interval_s": True}, 60),
        ({"status_interval_s": 0}, 60),
        ({"status_interval_s": 10**9}, 60),
        ({"timezone": "Europe/Copenhagen"}, 60),
    ],
)
def test_the_status_interval_comes_from_the_hubs_settings(settings: dict[str, Any], seconds: float) -> None:
    assert status_interval(settings) == timedelta(seconds=seconds)


def test_a_hub_with_a_fresh_live_status_is_online_without_flags() -> None:
    found = assess_hub(hub(device()), NOW)
    assert found.online and not found.silent and found.flags == ()
    assert found.last_contact == NOW - timedelta(seconds=30)


def test_a_hub_whose_last_will_came_is_offline_but_not_yet_silent() -> None:
    found = assess_hub(hub(reported_online=False, online_at=NOW - timedelta(minutes=2)), NOW)
    assert not found.online and not found.silent and found.flags == ("offline",)


def test_a_hub_without_a_live_status_for_its_window_is_offline_and_silent() -> None:
    just = assess_hub(hub(online_at=NOW - OFFLINE_FLOOR), NOW)
    assert just.online
    late = assess_hub(hub(online_at=NOW - OFFLINE_FLOOR - timedelta(seconds=1)), NOW)
    assert not late.online and late.silent and late.flags == ("offline",)
    # A hub told to report every 10 minutes is given three of them.
    slow = hub(online_at=NOW - timedelta(minutes=25), settings={"status_interval_s": 600})
    assert assess_hub(slow, NOW).online


def test_a_hub_that_never_reported_is_offline_and_silent() -> None:
    found = assess_hub(hub(status_at=None, reported_online=None, online_at=None), NOW)
    assert not found.online and found.silent and found.last_contact is None
    assert found.flags == ("offline",)


def test_a_revoked_hub_is_flagged_revoked_and_nothing_else() -> None:
    quiet = hub(device(last=timedelta(days=9)), revoked_at=NOW - timedelta(days=8), online_at=None)
    assert assess_hub(quiet, NOW).flags == ("revoked",)


def test_config_pending_until_the_hub_says_it_runs_the_current_version() -> None:
    assert assess_hub(hub(config_version=0), NOW).flags == ()
    assert assess_hub(hub(config_version=3, config_applied="2"), NOW).flags == ("config-pending",)
    assert assess_hub(hub(config_version=3, config_applied="3"), NOW).flags == ()
    refused = hub(config_version=3, config_applied="2", config_error="devices.0.kind: unknown")
    assert assess_hub(refused, NOW).flags == ("config-error", "config-pending")


def test_outbox_full_and_evictions_are_flagged() -> None:
    found = assess_hub(hub(outbox_full=True, evicted_total=12), NOW)
    assert found.flags == ("outbox-full", "evictions") and found.evicted == 12


# --- devices -------------------------------------------------------------------------------------------


def test_the_daily_silence_is_the_missing_alerts_every_plus_grace_and_the_worklists_stale_after() -> None:
    # The fleet does not import the alerts (gateway.fleet's docstring): this holds the two together.
    assert DAILY_SILENCE == STALE_AFTER
    for kind, measurements in EXPECTED_BY_DEVICE.items():
        alerted = [EXPECTATIONS[m] for m in measurements if m in EXPECTATIONS]
        assert alerted, kind
        assert max(e.every + e.grace for e in alerted) == fleet.silence_window(kind, None) == DAILY_SILENCE


@pytest.mark.parametrize(
    ("kind", "window"),
    [
        ("blood-pressure-cuff", DAILY_SILENCE),
        ("blood-pressure-monitor", DAILY_SILENCE),
        ("scale", DAILY_SILENCE),
        ("thermometer", DAILY_SILENCE),
        ("glucose-meter", DAILY_SILENCE),
        ("pulse-oximeter", DAILY_SILENCE),
        ("continuous-oximeter", CONTINUOUS_SILENCE),  # the contract calls it a pulse oximeter too
        ("cgm", CONTINUOUS_SILENCE),
        ("continuous-glucose-monitor", CONTINUOUS_SILENCE),
        ("heart-rate-monitor", CONTINUOUS_SILENCE),
    ],
)
def test_each_kind_has_its_default_silence(kind: str, window: timedelta) -> None:
    assert fleet.silence_window(kind, None) == window


def test_a_daily_device_is_silent_after_a_day_and_a_half_since_its_last_reading() -> None:
    fresh = assess_hub(hub(device("blood-pressure-cuff", last=timedelta(hours=36))), NOW)
    assert not fresh.devices[0].silent and fresh.flags == ()
    late = assess_hub(hub(device("blood-pressure-cuff", last=timedelta(hours=36, seconds=1))), NOW)
    assert late.devices[0].silent and late.flags == ("silent-device",)
    assert late.devices[0].silent_since == NOW - timedelta(hours=36, seconds=1)


def test_a_continuous_device_is_silent_after_three_hours() -> None:
    found = assess_hub(hub(device("cgm", last=timedelta(hours=3, minutes=1))), NOW)
    assert found.devices[0].silent and found.devices[0].expected_interval == CONTINUOUS_SILENCE


def test_an_expected_interval_set_by_the_administrator_wins() -> None:
    weekly = device("scale", last=timedelta(days=5), expected_interval=timedelta(days=7))
    assert not assess_hub(hub(weekly), NOW).devices[0].silent
    hourly = device("scale", last=timedelta(hours=2), expected_interval=timedelta(hours=1))
    assert assess_hub(hub(hourly), NOW).devices[0].silent


def test_a_device_that_never_delivered_is_silent_from_its_assignment() -> None:
    new = device("thermometer", last=None, assigned_at=NOW - timedelta(hours=10))
    assert not assess_hub(hub(new), NOW).devices[0].silent
    old = device("thermometer", last=None, assigned_at=NOW - timedelta(days=3))
    found = assess_hub(hub(old), NOW).devices[0]
    assert found.silent and found.silent_since == NOW - timedelta(days=3)
    # Assigned again after its last reading: judged by that reading (an assigned_at of migration 0015's
    # time must not excuse a week of silence).
    again = device("thermometer", last=timedelta(days=10), assigned_at=NOW - timedelta(hours=2))
    assert assess_hub(hub(again), NOW).devices[0].silent_since == NOW - timedelta(days=10)


def test_the_worklists_device_activity_follows_the_same_rule() -> None:
    activity = DeviceActivity(
        "d", "blood-pressure-cuff", NOW - timedelta(days=9), None, NOW - timedelta(days=2)
    )
    assert activity.silent_since(NOW) == NOW - timedelta(days=2)
    assert activity.silent_since(NOW - timedelta(days=1)) is None


def test_low_battery_at_twenty_per_cent_or_below() -> None:
    assert LOW_BATTERY_PERCENT == 20
    assert assess_hub(hub(device(battery=21.0)), NOW).flags == ()
    low = assess_hub(hub(device(battery=20.0)), NOW)
    assert low.devices[0].low_battery and low.flags == ("low-battery",)
    assert assess_hub(hub(device(battery=None)), NOW).flags == ()


@pytest.mark.parametrize(
    ("clock", "flagged"),
    [("in-sync", False), (None, False), ("wrong", True), ("unset", True), ("unknown", True)],
)
def test_a_clock_not_in_sync_is_flagged(clock: str | None, flagged: bool) -> None:
    assert (assess_hub(hub(device(clock=clock)), NOW).flags == ("clock",)) is flagged


@pytest.mark.parametrize(
    ("error_type", "flagged"),
    [
        (None, False),
        ("DeviceNotFoundError", False),  # asleep between measurements
        ("ConnectError", False),  # a round of attempts that gave up on a sleeping device
        ("LinkLostError", False),  # a cuff that went to sleep after sending its measurement
        ("GattError", True),
        ("RecordTransferError", True),
        ("ValueHandlerError", True),
    ],
)
def test_device_errors_are_failures_not_the_hubs_routine(error_type: str | None, flagged: bool) -> None:
    facts = device(errors=4000, last_error_type=error_type, last_error=error_type and f"{error_type}: x")
    found = assess_hub(hub(facts), NOW)
    assert (found.flags == ("device-errors",)) is flagged
    assert found.devices[0].failure == (error_type if flagged else None)


# --- order and JSON ------------------------------------------------------------------------------------


def test_flags_in_their_order_and_hubs_most_urgent_first() -> None:
    everything = hub(
        device("cgm", last=timedelta(days=1), battery=5.0, clock="unset", last_error_type="GattError"),
        hub_id="hub-all",
        reported_online=False,
        outbox_full=True,
        evicted_total=3,
        config_version=2,
        config_error="x: y",
    )
    found = assess_hub(everything, NOW)
    assert found.flags == fleet.FLAGS[:-1]
    hubs = [
        assess_hub(hub(hub_id="a-quiet"), NOW),
        assess_hub(hub(device(battery=10.0), hub_id="b-low"), NOW),
        assess_hub(hub(hub_id="c-gone", revoked_at=NOW), NOW),
        assess_hub(hub(hub_id="d-clock", devices=(device(clock="wrong"),)), NOW),
        assess_hub(hub(hub_id="e-offline", online_at=None), NOW),
        assess_hub(hub(device("scale", last=timedelta(days=3)), hub_id="f-silent"), NOW),
    ]
    assert [h.hub_id for h in ordered(hubs)] == [
        "e-offline",
        "f-silent",
        "b-low",
        "d-clock",
        "a-quiet",
        "c-gone",
    ]


def test_fleet_json_is_plain_json_with_iso_times() -> None:
    found = assess_hub(hub(device("scale", last=timedelta(days=3), battery=12.0), config_version=1), NOW)
    [item] = json.loads(json.dumps(fleet_json([found])))
    assert item["hub_id"] == "hub-1" and item["online"] is True and item["silent"] is False
    assert item["last_contact"] == (NOW - timedelta(seconds=30)).isoformat()
    assert item["flags"] == ["silent-device", "low-battery", "config-pending"]
    [dev] = item["devices"]
    assert dev["silent"] is True and dev["low_battery"] is True
    assert dev["silent_since"] == (NOW - timedelta(days=3)).isoformat()
    assert dev["expected_interval_s"] == DAILY_SILENCE.total_seconds()


# --- what a device kind delivers -----------------------------------------------------------------------


def test_every_kind_a_hub_or_the_contract_enrols_has_its_reading_kinds() -> None:
    hub_kinds = set(typing.get_args(DeviceKind))
    assert hub_kinds <= set(fleet.ENROLLED_KINDS)
    assert set(device_kinds()) <= set(fleet.ENROLLED_KINDS)
    for kind in fleet.ENROLLED_KINDS:
        assert fleet.reading_kinds(kind), kind
        assert contract_kind(kind) in device_kinds(), kind


def test_the_reading_kinds_are_the_contracts_every_measurement() -> None:
    terminology = json.loads((ROOT / "fhir" / "terminology.json").read_text(encoding="utf-8"))["readings"]
    delivered = {kind for kinds in fleet.READING_KINDS.values() for kind in kinds}
    # A battery level is no measurement; no Bluetooth health service sends a respiratory rate.
    assert delivered == set(terminology) - {"battery-level", "respiratory-rate"}


@pytest.mark.parametrize(
    ("count", "band"), [(None, None), (0, 0), (1, 1), (9, 1), (10, 10), (99, 10), (100, 100), (12345, 10000)]
)
def test_counters_compare_by_order_of_magnitude(count: int | None, band: int | None) -> None:
    assert fleet.magnitude(count) == band
