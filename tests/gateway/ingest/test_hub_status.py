"""The pure status parser: a hub's status bytes become a ``HubStatus`` or a refusal with its reason.

Built field by field like the GATT parser tests (``_full``, ``_minimal``, one refusal per rule), the
hub's own ``device_status`` output round-trips, and hypothesis proves that no input, JSON-shaped or not,
makes the parser raise. The fleet's figures (issue 20: agent version, outbox, evictions, config, per
device clock and errors) are left out with a reason when wrong, never refusing the status.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.ble.connection import DeviceState
from edge_agent.ble.errors import GattError
from edge_agent.config import DeviceConfig
from edge_agent.service import device_status
from gateway.ingest.hub_status import (
    BATTERY_OUT_OF_RANGE,
    INVALID_STATUS,
    MAX_STATUS_BYTES,
    MAX_TEXT_CHARS,
    NOT_JSON,
    TOO_LARGE,
    UNKNOWN_DEVICE,
    DeviceStatus,
    HubStatus,
    StatusDecision,
    StatusRefusal,
    decide_status,
    parse_status,
    parse_status_topic,
)
from gateway.ingest.processing import BAD_TOPIC, UNKNOWN_HUB, HubTopic
from gateway.store.repository import HubAssignment

SEEN = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
TOPIC = "homewatch/v1/0101/hub1/status"
ASSIGNMENT = HubAssignment("0101", "hub1", "p1", frozenset({"OXI1", "BPC1"}))


def lookup(municipality_id: str, hub_id: str) -> HubAssignment | None:
    return ASSIGNMENT if (municipality_id, hub_id) == ("0101", "hub1") else None


def status(*devices: dict[str, Any], state: str = "online") -> bytes:
    return orjson.dumps({"state": state, "agentVersion": "0.1.0", "queueDepth": 0, "devices": list(devices)})


def device(device_id: str = "OXI1", **fields: Any) -> dict[str, Any]:
    return {"id": device_id, "connected": True, "lastSeen": SEEN.isoformat(), "battery": 82} | fields


def refusal_code(payload: bytes) -> str:
    parsed = parse_status(payload)
    assert isinstance(parsed, StatusRefusal), parsed
    return parsed.code


def test_parse_status_full() -> None:
    parsed = parse_status(status(device(), device("BPC1", connected=False, battery=None, lastSeen=None)))
    assert parsed == HubStatus(
        True,
        (DeviceStatus("OXI1", True, 82, SEEN), DeviceStatus("BPC1", False, None, None)),
        agent_version="0.1.0",
        queue_depth=0,
    )


def test_parse_status_minimal_offline_last_will() -> None:
    assert parse_status(b'{"state": "offline", "agentVersion": "0.1.0", "queueDepth": null}') == HubStatus(
        False, (), agent_version="0.1.0"
    )


def test_parse_status_minimal_without_any_fleet_field() -> None:
    # An older hub sends none of the fleet's figures: all None, nothing ignored.
    assert parse_status(b'{"state": "online"}') == HubStatus(True, ())


def test_parse_status_of_the_hubs_own_device_status() -> None:
    config = DeviceConfig(id="OXI1", address="00:00:00:00:00:02", kind="pulse-oximeter")
    state = DeviceState(address=config.address, connected=True, battery=37, last_seen=SEEN)
    payload = status(
        device_status(config, state), device_status(config.model_copy(update={"id": "BPC1"}), None)
    )
    assert parse_status(payload) == HubStatus(
        True,
        (DeviceStatus("OXI1", True, 37, SEEN, errors=0), DeviceStatus("BPC1", False, None, None)),
        agent_version="0.1.0",
        queue_depth=0,
    )


def test_parse_status_fleet_fields_full() -> None:
    # What the hub's publisher and service put in an online status (mqtt_publisher._status and
    # HubService._refresh_status_fields), every field set.
    body = {
        "state": "online",
        "agentVersion": "0.2.1",
        "queueDepth": 12,
        "awaitingReceipt": 3,
        "evicted": {"spo2": 2, "body-weight": 1},
        "outboxFull": True,
        "heldInMemory": 4,
        "configVersion": "7",
        "configError": {
            "field": "devices.0.kind",
            "reason": "unknown kind",
            "at": "2026-11-20T09:00:00+01:00",
        },
        "patientId": "p1",
        "emulated": False,
        "devices": [
            device(
                clock="wrong",
                clockOffsetS=-5400.0,
                errors=3,
                lastError={"type": "LinkLostError", "message": "gone"},
            )
        ],
    }
    parsed = parse_status(orjson.dumps(body))
    assert parsed == HubStatus(
        True,
        (DeviceStatus("OXI1", True, 82, SEEN, "wrong", -5400.0, 3, "LinkLostError: gone", "LinkLostError"),),
        agent_version="0.2.1",
        queue_depth=12,
        awaiting_receipt=3,
        evicted=(("body-weight", 1), ("spo2", 2)),
        outbox_full=True,
        held_in_memory=4,
        config_version="7",
        config_error="devices.0.kind: unknown kind",
    )
    assert isinstance(parsed, HubStatus) and parsed.evicted_total == 3


def test_parse_status_of_the_hubs_own_device_status_with_clock_and_error() -> None:
    config = DeviceConfig(id="OXI1", address="00:00:00:00:00:02", kind="pulse-oximeter")
    state = DeviceState(
        address=config.address,
        connected=False,
        errors=7,
        last_error=GattError("00:00:00:00:00:02", "read", "2a2b", 0x0E),
        clock_status="unset",
        clock_offset=timedelta(days=-9000),
    )
    parsed = parse_status(status(device_status(config, state)))
    assert isinstance(parsed, HubStatus) and not parsed.ignored
    error = "GattError: 00:00:00:00:00:02: read of 2a2b failed (ATT error 0x0E)"
    offset = timedelta(days=-9000).total_seconds()
    assert parsed.devices == (
        DeviceStatus("OXI1", False, None, None, "unset", offset, 7, error, "GattError"),
    )


def test_parse_status_config_error_without_a_field() -> None:
    parsed = parse_status(
        orjson.dumps({"state": "online", "configError": {"field": None, "reason": "not JSON"}})
    )
    assert isinstance(parsed, HubStatus) and parsed.config_error == "not JSON" and not parsed.ignored


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"agentVersion": 1}, "agentVersion"),
        ({"agentVersion": ""}, "agentVersion"),
        ({"agentVersion": "x" * 65}, "agentVersion"),
        ({"agentVersion": "0.1\n"}, "agentVersion"),
        ({"queueDepth": -1}, "queueDepth"),
        ({"queueDepth": 2**31}, "queueDepth"),
        ({"queueDepth": 1.5}, "queueDepth"),
        ({"queueDepth": True}, "queueDepth"),
        ({"awaitingReceipt": "3"}, "awaitingReceipt"),
        ({"heldInMemory": [1]}, "heldInMemory"),
        ({"outboxFull": "yes"}, "outboxFull"),
        ({"outboxFull": 1}, "outboxFull"),
        ({"evicted": [1, 2]}, "evicted"),
        ({"evicted": {"spo2": -1}}, "evicted"),
        ({"evicted": {"spo2": True}}, "evicted"),
        ({"evicted": {"": 1}}, "evicted"),
        ({"evicted": {f"k{i}": 1 for i in range(65)}}, "evicted"),
        ({"configVersion": 7}, "configVersion"),
        ({"configError": "bad"}, "configError"),
        ({"configError": {"field": "x"}}, "configError"),
    ],
)
def test_a_wrong_fleet_field_is_left_out_with_its_reason_and_the_status_kept(
    fields: dict[str, Any], path: str
) -> None:
    body = {"state": "online", "agentVersion": "0.1.0", "queueDepth": 5, "devices": [device()]} | fields
    parsed = parse_status(orjson.dumps(body))
    assert isinstance(parsed, HubStatus), parsed
    assert parsed.online and [d.device_id for d in parsed.devices] == ["OXI1"]
    assert [f.path for f in parsed.ignored] == [path]
    assert path in parsed.ignored[0].reason
    snake = {
        "agentVersion": "agent_version",
        "queueDepth": "queue_depth",
        "awaitingReceipt": "awaiting_receipt",
        "heldInMemory": "held_in_memory",
        "outboxFull": "outbox_full",
        "evicted": "evicted",
        "configVersion": "config_version",
        "configError": "config_error",
    }[path]
    assert getattr(parsed, snake) is None


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"clock": "late"}, "devices[0].clock"),
        ({"clock": 1}, "devices[0].clock"),
        ({"clockOffsetS": "5"}, "devices[0].clockOffsetS"),
        ({"clockOffsetS": True}, "devices[0].clockOffsetS"),
        ({"clockOffsetS": 1e12}, "devices[0].clockOffsetS"),
        ({"errors": -3}, "devices[0].errors"),
        ({"errors": 2.0}, "devices[0].errors"),
        ({"lastError": "boom"}, "devices[0].lastError"),
        ({"lastError": {"type": 1, "message": "x"}}, "devices[0].lastError"),
        ({"lastError": {"type": "Not a class", "message": "x"}}, "devices[0].lastError"),
    ],
)
def test_a_wrong_device_fleet_field_is_left_out_and_the_device_kept(
    fields: dict[str, Any], path: str
) -> None:
    parsed = parse_status(status(device(clock="in-sync", clockOffsetS=1.0, errors=0) | fields))
    assert isinstance(parsed, HubStatus), parsed
    assert [f.path for f in parsed.ignored] == [path]
    kept = parsed.devices[0]
    assert (kept.device_id, kept.connected, kept.battery) == ("OXI1", True, 82)


def test_a_last_error_is_one_line_without_control_characters_and_cut() -> None:
    message = "line one\nline\x00two\t" + "x" * 1000
    parsed = parse_status(status(device(lastError={"type": "BleError", "message": message})))
    assert isinstance(parsed, HubStatus)
    text = parsed.devices[0].last_error
    assert text is not None and text.startswith("BleError: line one line two x")
    assert len(text) <= MAX_TEXT_CHARS and not any(ord(c) < 32 for c in text)


def test_parse_status_battery_bounds() -> None:
    for level in (0, 100):
        parsed = parse_status(status(device(battery=level)))
        assert isinstance(parsed, HubStatus) and parsed.devices[0].battery == level
    assert refusal_code(status(device(battery=101))) == BATTERY_OUT_OF_RANGE
    assert refusal_code(status(device(battery=-1))) == BATTERY_OUT_OF_RANGE
    for wrong in (82.5, "82", True):
        assert refusal_code(status(device(battery=wrong))) == INVALID_STATUS


def test_parse_status_too_large() -> None:
    assert refusal_code(b" " * (MAX_STATUS_BYTES + 1)) == TOO_LARGE


def test_parse_status_not_json() -> None:
    for payload in (b"", b"{not json", b"\xff\xfe", b"[" * 2000 + b"]" * 2000, b'{"state": 1e400}'):
        assert refusal_code(payload) == NOT_JSON, payload


def test_parse_status_wrong_shape() -> None:
    for payload in (
        b"[]",
        b'{"state": "asleep"}',
        b'{"devices": []}',
        orjson.dumps({"state": "online", "devices": {"OXI1": {}}}),
        status("OXI1"),  # type: ignore[arg-type]
        status(device(id="not a fhir id!")),
        status(device(connected="yes")),
        status({"id": "OXI1", "battery": 50}),  # connected missing
        status(device(lastSeen="yesterday")),
        b'{"state": "online", "devices": [{"id": "A", "connected": true, "battery": 1' + b"0" * 30 + b"}]}",
        status(device(lastSeen="2026-11-20T08:00:00")),  # no offset
        status(device(), device()),  # listed twice
        status(*(device(f"D{i}") for i in range(65))),
    ):
        assert refusal_code(payload) == INVALID_STATUS, payload


def test_status_topic_names_municipality_and_hub() -> None:
    assert parse_status_topic(TOPIC) == HubTopic("0101", "hub1")
    for topic in (
        "homewatch/v1/0101/hub1/observations",
        "homewatch/v1/0101/status",
        "homewatch/v2/0101/hub1/status",
        "homewatch/v1/01 01/hub1/status",
        "homewatch/v1/0101/hub1/status/x",
    ):
        assert parse_status_topic(topic) is None, topic


def test_decide_keeps_only_devices_enrolled_on_the_hub() -> None:
    decision = decide_status(TOPIC, status(device(), device("OTHER", battery=5)), lookup)
    assert decision.refusal is None and decision.status is not None
    assert [d.device_id for d in decision.status.devices] == ["OXI1"]
    assert [(d.device_id, d.code) for d in decision.dropped] == [("OTHER", UNKNOWN_DEVICE)]


def test_decide_refuses_a_hub_not_enrolled_in_the_topics_municipality() -> None:
    decision = decide_status("homewatch/v1/0147/hub1/status", status(device()), lookup)
    assert decision.status is None and decision.refusal is not None
    assert decision.refusal.code == UNKNOWN_HUB and "0147" in decision.refusal.reason


def test_decide_refuses_a_bad_topic() -> None:
    decision = decide_status("homewatch/v1/0101/hub1/observations", status(device()), lookup)
    assert decision.refusal is not None and decision.refusal.code == BAD_TOPIC


def _one_of_the_two(decision: StatusDecision) -> None:
    assert (decision.status is None) != (decision.refusal is None)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
COUNT = st.integers(-3, 2**31 + 3) | st.integers(0, 50) | JSON
DEVICE_ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["OXI1", "BPC1", "OTHER", "", "a b"]) | st.text(max_size=8),
        "connected": st.booleans() | JSON,
        "battery": st.integers(-5, 105) | st.none() | JSON,
        "lastSeen": st.sampled_from([SEEN.isoformat(), "2026-11-20T08:00:00", "x"]) | st.none() | JSON,
        "clock": st.sampled_from(["in-sync", "wrong", "unset", "unknown", "late"]) | JSON,
        "clockOffsetS": st.floats(allow_nan=True, allow_infinity=True) | JSON,
        "errors": COUNT,
        "lastError": st.fixed_dictionaries({"type": st.text(max_size=12) | JSON, "message": st.text()})
        | JSON,
    },
)
STATUS_SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "state": st.sampled_from(["online", "offline", "other"]) | JSON,
        "devices": st.lists(DEVICE_ENTRY | JSON, max_size=5) | JSON,
        "agentVersion": st.text(max_size=70) | JSON,
        "queueDepth": COUNT,
        "awaitingReceipt": COUNT,
        "heldInMemory": COUNT,
        "outboxFull": st.booleans() | JSON,
        "evicted": st.dictionaries(st.text(max_size=8), COUNT, max_size=4) | JSON,
        "configVersion": st.text(max_size=70) | JSON,
        "configError": st.fixed_dictionaries({"field": st.none() | st.text(max_size=8), "reason": st.text()})
        | JSON,
    },
).map(orjson.dumps)


def _counts_valid(*values: int | None) -> bool:
    return all(v is None or (type(v) is int and 0 <= v <= 2**31 - 1) for v in values)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300) | STATUS_SHAPED)
def test_fuzz_parse_status_never_raises(payload: bytes) -> None:
    parsed = parse_status(payload)
    assert isinstance(parsed, HubStatus | StatusRefusal)
    if isinstance(parsed, HubStatus):
        assert all(d.battery is None or 0 <= d.battery <= 100 for d in parsed.devices)
        # What is kept is of the stored columns' types and ranges; what is not is named with a reason.
        assert _counts_valid(parsed.queue_depth, parsed.awaiting_receipt, parsed.held_in_memory)
        assert _counts_valid(*(d.errors for d in parsed.devices))
        assert parsed.outbox_full in (None, True, False)
        assert all(d.clock in (None, "in-sync", "wrong", "unset", "unknown") for d in parsed.devices)
        assert all(d.clock_offset_s is None or math.isfinite(d.clock_offset_s) for d in parsed.devices)
        texts = [parsed.agent_version, parsed.config_version, parsed.config_error]
        texts += [d.last_error for d in parsed.devices]
        assert all(t is None or (len(t) <= MAX_TEXT_CHARS and "\x00" not in t) for t in texts)
        assert all(f.path and f.reason for f in parsed.ignored)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([TOPIC, "homewatch/v1/0147/hub1/status", "x/status"]) | st.text(max_size=40),
    STATUS_SHAPED,
)
def test_fuzz_decide_status_is_always_stored_or_refused(topic: str, payload: bytes) -> None:
    decision = decide_status(topic, payload, lookup)
    _one_of_the_two(decision)
    if decision.status is not None:
        assert {d.device_id for d in decision.status.devices} <= ASSIGNMENT.device_ids
