"""What the gateway makes of a hub's retained ``status`` message: pure functions over bytes.

A hub (``edge_agent.service.HubService``) publishes ``homewatch/v1/{municipality}/{hub}/status``,
retained: ``{"state": "online", "devices": [{"id", "connected", "lastSeen", "battery", ...}], ...}``
while it runs, and ``{"state": "offline"}`` as its Last Will or when it stops. The gateway keeps only
what the nurses' page needs: whether the hub is online and, per device, battery, connection and the
time the hub last heard from it. Everything else in the message (firmware, clock, outbox, errors) is
the hub's own business and is not read, so a hub may add fields without the gateway refusing them.

The message comes from the network, so every function here answers with a value and never raises:

- ``parse_status_topic``: the hub a status topic names, or None;
- ``parse_status``: the bytes as a ``HubStatus``, or a ``StatusRefusal`` saying why not (``too-large``,
  ``not-json``, ``invalid-status`` for a wrong shape, ``battery-out-of-range``);
- ``decide_status``: topic, payload and the hub's enrolment -> a ``StatusDecision``: refused whole
  (``bad-topic``, ``unknown-hub``: a hub not enrolled in the municipality its topic names) or accepted
  with only the entries of devices enrolled on that hub; the others are dropped, counted, and named in
  ``dropped`` (so one hub's status can never write to another hub's devices).

Left to others: subscribing and acknowledging (``mqtt_ingest``), the transaction and the quarantine
(``gateway.ingest.status_ingest``), SQL (``gateway.store.hub_status``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from fhir_contract.limits import is_fhir_id
from gateway.ingest.processing import BAD_TOPIC, TOPIC_ROOT, UNKNOWN_HUB, HubTopic, clip
from gateway.store.repository import HubAssignment

STATUS_SUBSCRIPTION = f"{TOPIC_ROOT}/+/+/status"
# A status lists a hub's few devices: a few hundred bytes each. 64 KiB is room for far more devices than
# a home has, and small enough that a hostile hub cannot make the gateway parse megabytes every second.
MAX_STATUS_BYTES = 64 * 1024
# More device entries than any home has (a hub serves one patient); more is a wrong shape.
MAX_DEVICES = 64

# Refusal codes (the observation codes ``bad-topic`` and ``unknown-hub`` are shared with ``processing``).
TOO_LARGE = "too-large"
NOT_JSON = "not-json"
INVALID_STATUS = "invalid-status"
BATTERY_OUT_OF_RANGE = "battery-out-of-range"
UNKNOWN_DEVICE = "unknown-device"

AssignmentLookup = Callable[[str, str], HubAssignment | None]


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """One device as the hub reports it: battery in % (None: not read), connected now, last heard of."""

    device_id: str
    connected: bool
    battery: int | None
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class HubStatus:
    """A parsed status: the hub online (running) or offline (its Last Will), and its devices."""

    online: bool
    devices: tuple[DeviceStatus, ...]


@dataclass(frozen=True, slots=True)
class StatusRefusal:
    """Why a status message was refused whole."""

    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class DroppedDevice:
    """A device entry left out of a stored status, and why."""

    device_id: str
    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class StatusDecision:
    """What to do with one status message: ``status`` to store, or ``refusal`` to quarantine."""

    topic: str
    source: HubTopic | None
    status: HubStatus | None
    refusal: StatusRefusal | None
    dropped: tuple[DroppedDevice, ...] = ()


def parse_status_topic(topic: str) -> HubTopic | None:
    """The hub of a ``homewatch/v1/{municipality}/{hub}/status`` topic, or None when it is not one."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT or parts[4] != "status":
        return None
    if not is_fhir_id(parts[2]) or not is_fhir_id(parts[3]):
        return None
    return HubTopic(parts[2], parts[3])


def _timestamp(value: Any) -> datetime | None:
    """An ISO 8601 time with its offset (as the hub writes ``lastSeen``), else None."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else None


def _device(index: int, entry: Any) -> DeviceStatus | StatusRefusal:
    """One entry of ``devices``: the same order of checks as a GATT parser, one field at a time."""
    where = f"devices[{index}]"
    if not isinstance(entry, Mapping):
        return StatusRefusal(INVALID_STATUS, f"{where} is not an object")
    # id: the Device.id the hub's readings name; a FHIR id like every id the gateway looks up.
    device_id = entry.get("id")
    if not isinstance(device_id, str) or not is_fhir_id(device_id):
        return StatusRefusal(INVALID_STATUS, f"{where}.id is not a FHIR id")
    # connected: required, a boolean (the hub writes false for a device it never reached).
    connected = entry.get("connected")
    if not isinstance(connected, bool):
        return StatusRefusal(INVALID_STATUS, f"{where}.connected is not true or false")
    # battery: the Battery Level characteristic (0x2A19), a whole percentage, or null when not read.
    battery = entry.get("battery")
    if battery is not None and (isinstance(battery, bool) or not isinstance(battery, int)):
        return StatusRefusal(INVALID_STATUS, f"{where}.battery is not a whole number")
    if battery is not None and not 0 <= battery <= 100:
        return StatusRefusal(
            BATTERY_OUT_OF_RANGE, f"{where}.battery {clip(str(battery), 40)} is not 0..100 %"
        )
    # lastSeen: when the hub last heard from the device, with an offset; null when never.
    raw_seen = entry.get("lastSeen")
    last_seen = _timestamp(raw_seen)
    if raw_seen is not None and last_seen is None:
        return StatusRefusal(INVALID_STATUS, f"{where}.lastSeen is not an ISO 8601 time with an offset")
    return DeviceStatus(device_id, connected, battery, last_seen)


def parse_status(payload: bytes, max_bytes: int = MAX_STATUS_BYTES) -> HubStatus | StatusRefusal:
    """The status in ``payload``, or why it is refused. Never raises."""
    if len(payload) > max_bytes:
        return StatusRefusal(TOO_LARGE, f"status of {len(payload)} bytes is over the limit of {max_bytes}")
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:  # also invalid UTF-8 and nesting deeper than orjson reads
        return StatusRefusal(NOT_JSON, f"status is not JSON: {clip(str(exc), 200)}")
    if not isinstance(body, dict):
        return StatusRefusal(INVALID_STATUS, "status is not a JSON object")
    state = body.get("state")
    if state not in ("online", "offline"):
        return StatusRefusal(INVALID_STATUS, "state is not 'online' or 'offline'")
    entries = body.get("devices", [])
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        return StatusRefusal(INVALID_STATUS, "devices is not a list")
    if len(entries) > MAX_DEVICES:
        return StatusRefusal(INVALID_STATUS, f"{len(entries)} devices is more than {MAX_DEVICES}")
    devices: list[DeviceStatus] = []
    for index, entry in enumerate(entries):
        device = _device(index, entry)
        if isinstance(device, StatusRefusal):
            return device
        devices.append(device)
    if len({d.device_id for d in devices}) != len(devices):
        return StatusRefusal(INVALID_STATUS, "a device is listed twice")
    return HubStatus(state == "online", tuple(devices))


def decide_status(
    topic: str, payload: bytes, lookup: AssignmentLookup, max_bytes: int = MAX_STATUS_BYTES
) -> StatusDecision:
    """Parse and authorise one status message (see the module docstring). Never raises."""
    source = parse_status_topic(topic)
    if source is None:
        reason = f"topic {clip(repr(topic), 200)} is not {TOPIC_ROOT}/{{municipality}}/{{hub}}/status"
        return StatusDecision(topic, None, None, StatusRefusal(BAD_TOPIC, reason))
    assignment = lookup(source.municipality_id, source.hub_id)
    if assignment is None:
        reason = f"hub {source.hub_id} is not enrolled in municipality {source.municipality_id}"
        return StatusDecision(topic, source, None, StatusRefusal(UNKNOWN_HUB, reason))
    parsed = parse_status(payload, max_bytes)
    if isinstance(parsed, StatusRefusal):
        return StatusDecision(topic, source, None, parsed)
    kept = tuple(d for d in parsed.devices if d.device_id in assignment.device_ids)
    dropped = tuple(
        DroppedDevice(
            d.device_id, UNKNOWN_DEVICE, f"device {d.device_id} is not enrolled on hub {source.hub_id}"
        )
        for d in parsed.devices
        if d.device_id not in assignment.device_ids
    )
    return StatusDecision(topic, source, HubStatus(parsed.online, kept), None, dropped)
