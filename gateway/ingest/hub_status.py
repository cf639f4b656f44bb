"""What the gateway makes of a hub's retained ``status`` message: pure functions over bytes.

A hub (``edge_agent.service.HubService``) publishes ``homewatch/v1/{municipality}/{hub}/status``,
retained: ``{"state": "online", "agentVersion", "queueDepth", "awaitingReceipt", "evicted", "outboxFull",
"heldInMemory", "configVersion", "configError", "devices": [{"id", "connected", "lastSeen", "battery",
"clock", "clockOffsetS", "errors", "lastError", ...}], ...}`` while it runs, and ``{"state": "offline",
"agentVersion"}`` as its Last Will or when it stops. The gateway reads what the nurses' page and the
fleet view (``gateway.fleet``) need; anything else (firmware, model, serial, address, ...) is the hub's
own business and is not read, so a hub may add fields without the gateway refusing them.

Two strictnesses. The core of a status (``state``; per device ``id``, ``connected``, ``battery``,
``lastSeen``) is checked as a GATT parser checks its fields: one wrong, the whole status is refused. The
fleet's figures (agent version, outbox, evictions, config, and per device clock and errors) were added
later and are only reported: one of a wrong type or out of range is left out (None), named in
``HubStatus.ignored`` with its reason, and the rest is kept, so a hub with one odd counter still shows
online with its devices. A field that is absent is None without a reason (an older hub sends none).

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

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

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
# The hub's version strings ("0.1.0", a config version) are short; a longer text is not one.
MAX_VERSION_CHARS = 64
# A counter stored in an integer column (PostgreSQL ``integer``): a hub's outbox holds at most some
# hundred thousand rows (``edge_agent.outbox``), so anything near this is a wrong value, not a big one.
MAX_COUNT = 2**31 - 1
# Evictions are counted by reading kind (a few dozen kinds exist); more entries is a wrong shape.
MAX_EVICTED_KINDS = 64
# A device clock reset to 1970 is some 56 years off; a larger offset is no clock's.
MAX_CLOCK_OFFSET_S = 100 * 365.25 * 24 * 3600
# The clock states the hub reports (``edge_agent.clock_sync.ClockStatus``).
CLOCK_STATES: Final = frozenset({"in-sync", "wrong", "unset", "unknown"})
# Texts the operator reads (the hub's last error, its refusal of a config) are cut to this.
MAX_TEXT_CHARS = 300

# Refusal codes (the observation codes ``bad-topic`` and ``unknown-hub`` are shared with ``processing``).
TOO_LARGE = "too-large"
NOT_JSON = "not-json"
INVALID_STATUS = "invalid-status"
BATTERY_OUT_OF_RANGE = "battery-out-of-range"
UNKNOWN_DEVICE = "unknown-device"

AssignmentLookup = Callable[[str, str], HubAssignment | None]


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """One device as the hub reports it: battery in % (None: not read), connected now, last heard of;
    its clock ("in-sync", "wrong", "unset", "unknown"; None: not read) and offset in seconds, the errors
    the hub counted for it since its agent started and the last one: its type ("GattError") and
    "Type: message" to read."""

    device_id: str
    connected: bool
    battery: int | None
    last_seen: datetime | None
    clock: str | None = None
    clock_offset_s: float | None = None
    errors: int | None = None
    last_error: str | None = None
    last_error_type: str | None = None


@dataclass(frozen=True, slots=True)
class IgnoredField:
    """A field of a status left out because its value was wrong, and why (``path``: "queueDepth",
    "devices[1].errors")."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class HubStatus:
    """A parsed status: the hub online (running) or offline (its Last Will), its devices, and the fleet's
    figures (None: not sent, or left out for the reason in ``ignored``). ``evicted``: readings dropped
    from a full outbox, by reading kind, as ``(kind, count)`` pairs in kind order."""

    online: bool
    devices: tuple[DeviceStatus, ...]
    agent_version: str | None = None
    queue_depth: int | None = None
    awaiting_receipt: int | None = None
    evicted: tuple[tuple[str, int], ...] | None = None
    outbox_full: bool | None = None
    held_in_memory: int | None = None
    config_version: str | None = None
    config_error: str | None = None
    ignored: tuple[IgnoredField, ...] = field(default=())

    @property
    def evicted_total(self) -> int | None:
        return None if self.evicted is None else sum(count for _, count in self.evicted)


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


class _Ignored:
    """Collects the fields left out of one status (the module docstring: reported, not refused)."""

    def __init__(self) -> None:
        self.fields: list[IgnoredField] = []

    def add(self, path: str, reason: str) -> None:
        self.fields.append(IgnoredField(path, reason))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(body: Mapping[str, Any], key: str, ignored: _Ignored, where: str = "") -> int | None:
    """A whole number 0..MAX_COUNT, None when absent or null; otherwise left out with a reason."""
    value = body.get(key)
    if value is None:
        return None
    if not _is_int(value):
        ignored.add(f"{where}{key}", f"{where}{key} is not a whole number")
        return None
    if not 0 <= value <= MAX_COUNT:
        ignored.add(f"{where}{key}", f"{where}{key} {clip(str(value), 40)} is not 0..{MAX_COUNT}")
        return None
    return int(value)


def _text(value: Any) -> str | None:
    """A text without control characters, else None."""
    if not isinstance(value, str) or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return None
    return value


def _version(body: Mapping[str, Any], key: str, ignored: _Ignored) -> str | None:
    """A version string of 1..MAX_VERSION_CHARS printable characters; None when absent or null."""
    value = body.get(key)
    if value is None:
        return None
    text = _text(value)
    if text is None or not 0 < len(text) <= MAX_VERSION_CHARS:
        ignored.add(key, f"{key} is not a text of 1..{MAX_VERSION_CHARS} printable characters")
        return None
    return text


def _flag(body: Mapping[str, Any], key: str, ignored: _Ignored) -> bool | None:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return value
    ignored.add(key, f"{key} is not true or false")
    return None


def _evicted(body: Mapping[str, Any], ignored: _Ignored) -> tuple[tuple[str, int], ...] | None:
    """``evicted``: an object of reading kind -> count (``Outbox.evicted``); None when absent."""
    value = body.get("evicted")
    if value is None:
        return None
    if not isinstance(value, Mapping) or len(value) > MAX_EVICTED_KINDS:
        ignored.add("evicted", f"evicted is not an object of at most {MAX_EVICTED_KINDS} kinds")
        return None
    pairs = []
    for kind, count in value.items():
        text = _text(kind)
        if text is None or not 0 < len(text) <= MAX_VERSION_CHARS:
            ignored.add("evicted", "evicted has a kind that is not a short printable text")
            return None
        if not _is_int(count) or not 0 <= count <= MAX_COUNT:
            ignored.add("evicted", f"evicted[{clip(text, 40)}] is not a whole number 0..{MAX_COUNT}")
            return None
        pairs.append((text, int(count)))
    return tuple(sorted(pairs))


def _problem(value: Any, keys: tuple[str, str], where: str, ignored: _Ignored) -> str | None:
    """An object such as the hub's ``lastError`` ({"type", "message"}) or ``configError`` ({"field",
    "reason"}; field null when the message as a whole was bad) as one line "first: second", cut to
    MAX_TEXT_CHARS; None when absent or null."""
    if value is None:
        return None
    first, second = (value.get(k) if isinstance(value, Mapping) else None for k in keys)
    if not isinstance(first, str | None) or not isinstance(second, str):
        ignored.add(where, f"{where} is not an object with texts {keys[0]!r} and {keys[1]!r}")
        return None
    line = second if first is None else f"{first}: {second}"
    # One line without control characters (PostgreSQL's text refuses NUL; a newline would break a table).
    line = " ".join("".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in line).split())
    return line if len(line) <= MAX_TEXT_CHARS else line[: MAX_TEXT_CHARS - 1] + "…"


def _clock(entry: Mapping[str, Any], where: str, ignored: _Ignored) -> tuple[str | None, float | None]:
    """``clock`` (one of CLOCK_STATES) and ``clockOffsetS`` (seconds); each None when absent or wrong."""
    clock = entry.get("clock")
    if clock is not None and clock not in CLOCK_STATES:
        ignored.add(f"{where}.clock", f"{where}.clock is not one of {', '.join(sorted(CLOCK_STATES))}")
        clock = None
    offset = entry.get("clockOffsetS")
    if offset is not None:
        number = isinstance(offset, int | float) and not isinstance(offset, bool)
        if not number or not math.isfinite(offset) or abs(offset) > MAX_CLOCK_OFFSET_S:
            ignored.add(f"{where}.clockOffsetS", f"{where}.clockOffsetS is not a number of seconds")
            offset = None
    return clock, None if offset is None else float(offset)


def _device(index: int, entry: Any, ignored: _Ignored) -> DeviceStatus | StatusRefusal:
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
    # The fleet's figures: reported, not refused (module docstring).
    clock, offset = _clock(entry, where, ignored)
    errors = _count(entry, "errors", ignored, f"{where}.")
    last_error = _problem(entry.get("lastError"), ("type", "message"), f"{where}.lastError", ignored)
    # The type is the hub's error class name: a Python identifier (what gateway.fleet judges by).
    error_type = entry["lastError"].get("type") if last_error is not None else None
    if error_type is not None and not (error_type.isidentifier() and len(error_type) <= MAX_VERSION_CHARS):
        ignored.add(f"{where}.lastError", f"{where}.lastError.type is not a class name")
        last_error = error_type = None
    return DeviceStatus(
        device_id, connected, battery, last_seen, clock, offset, errors, last_error, error_type
    )


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
    ignored = _Ignored()
    devices: list[DeviceStatus] = []
    for index, entry in enumerate(entries):
        device = _device(index, entry, ignored)
        if isinstance(device, StatusRefusal):
            return device
        devices.append(device)
    if len({d.device_id for d in devices}) != len(devices):
        return StatusRefusal(INVALID_STATUS, "a device is listed twice")
    return HubStatus(
        online=state == "online",
        devices=tuple(devices),
        agent_version=_version(body, "agentVersion", ignored),
        queue_depth=_count(body, "queueDepth", ignored),
        awaiting_receipt=_count(body, "awaitingReceipt", ignored),
        evicted=_evicted(body, ignored),
        outbox_full=_flag(body, "outboxFull", ignored),
        held_in_memory=_count(body, "heldInMemory", ignored),
        config_version=_version(body, "configVersion", ignored),
        config_error=_problem(body.get("configError"), ("field", "reason"), "configError", ignored),
        ignored=tuple(ignored.fields),
    )


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
    return StatusDecision(topic, source, dataclasses.replace(parsed, devices=kept), None, dropped)
