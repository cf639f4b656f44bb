"""The pure status parser: a hub's status bytes become a ``HubStatus`` or a refusal with its reason.

Built field by field like the GATT parser tests (``_full``, ``_minimal``, one refusal per rule), the
hub's own ``device_status`` output round-trips, and hypothesis proves that no input, JSON-shaped or not,
makes the parser raise.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.ble.connection import DeviceState
from edge_agent.config import DeviceConfig
from edge_agent.service import device_status
from gateway.ingest.hub_status import (
    BATTERY_OUT_OF_RANGE,
    INVALID_STATUS,
    MAX_STATUS_BYTES,
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
        True, (DeviceStatus("OXI1", True, 82, SEEN), DeviceStatus("BPC1", False, None, None))
    )


def test_parse_status_minimal_offline_last_will() -> None:
    assert parse_status(b'{"state": "offline", "agentVersion": "0.1.0", "queueDepth": null}') == HubStatus(
        False, ()
    )


def test_parse_status_of_the_hubs_own_device_status() -> None:
    config = DeviceConfig(id="OXI1", address="00:00:00:00:00:02", kind="pulse-oximeter")
    state = DeviceState(address=config.address, connected=True, battery=37, last_seen=SEEN)
    payload = status(
        device_status(config, state), device_status(config.model_copy(update={"id": "BPC1"}), None)
    )
    assert parse_status(payload) == HubStatus(
        True, (DeviceStatus("OXI1", True, 37, SEEN), DeviceStatus("BPC1", False, None, None))
    )


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
DEVICE_ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["OXI1", "BPC1", "OTHER", "", "a b"]) | st.text(max_size=8),
        "connected": st.booleans() | JSON,
        "battery": st.integers(-5, 105) | st.none() | JSON,
        "lastSeen": st.sampled_from([SEEN.isoformat(), "2026-11-20T08:00:00", "x"]) | st.none() | JSON,
    },
)
STATUS_SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "state": st.sampled_from(["online", "offline", "other"]) | JSON,
        "devices": st.lists(DEVICE_ENTRY | JSON, max_size=5) | JSON,
    },
).map(orjson.dumps)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300) | STATUS_SHAPED)
def test_fuzz_parse_status_never_raises(payload: bytes) -> None:
    parsed = parse_status(payload)
    assert isinstance(parsed, HubStatus | StatusRefusal)
    if isinstance(parsed, HubStatus):
        assert all(d.battery is None or 0 <= d.battery <= 100 for d in parsed.devices)


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
