"""The fleet's rules: when a hub is offline, a device silent, a battery low, a clock wrong. Pure values.

An administrator runs hundreds of hubs she never sees; a nurse relies on the readings they deliver. The
rules, each a function of facts and the time now (``gateway.store.fleet`` reads the facts, the pages and
``homewatch admin hubs`` show the verdicts):

- **A hub is offline** when its newest status says so (its Last Will, or a clean stop), or when no live
  status came for :func:`offline_after` = max(:data:`MISSED_STATUSES` x its status interval,
  :data:`OFFLINE_FLOOR`). A running hub publishes its status every ``status_interval_s`` (the hub's
  setting, ``hubs.settings`` of migration 0015; :data:`STATUS_INTERVAL` when unset), so three missed in
  a row is no hiccup; the floor keeps a hub that reports every few seconds from being flagged during an
  ordinary reconnect (paho's back-off grows to 60 s, and a broker restart makes hundreds of hubs
  reconnect at once). A retained copy handed over when the gateway subscribes is no contact: only a
  live status counts (``hub_status.online_at``). Such a hub is also ``silent``; one whose Last Will
  came is offline but not silent until the same time has passed.
- **A device is silent** when its newest reading (a measurement, not a battery level) is older than its
  expected interval: ``devices.expected_interval`` when an administrator set one, else its kind's
  default (:func:`silence_window`). Devices a patient uses once a day (blood pressure, oximeter, scale,
  thermometer, glucose meter) are silent after :data:`DAILY_SILENCE`, a day and a half: the moment the
  missing-measurement alert fires (``gateway.alerts.missing``: due 24 h after the newest reading, and
  12 h of grace; the worklist's ``STALE_AFTER`` is the same moment). Continuous devices (CGM, heart-rate
  monitor, continuous oximeter) stream for as long as they are worn and are silent after
  :data:`CONTINUOUS_SILENCE`. It is silent *since* its newest reading; a device that never delivered
  one is silent once that long has passed since it was assigned. Only the patient's own readings count
  (a device handed to another patient starts afresh); a device assigned again to the same patient is
  judged by its newest reading, however old (``devices.assigned_at`` of devices older than migration
  0015 is the time of that migration, not of their assignment, so it cannot excuse old silence).
- **A battery is low** at or below :data:`LOW_BATTERY_PERCENT`.
- **A clock is not in sync** when the hub measured it "wrong", "unset" or "unknown" (``edge_agent.
  clock_sync``); a device without a clock the hub reads (None) is not flagged.
- **A device has errors** when the last error the hub recorded for it is a failure (:func:`device_failure`):
  a GATT operation refused, a characteristic missing, a value the hub could not handle, a history
  transfer or a session that failed. Not the hub's routine (:data:`ROUTINE_ERRORS`): it counts a sleeping
  device's every failed connection round and every link a device drops after measuring as errors, some
  thousands a day, so neither the count nor those types say anything; a device that stays unreachable
  shows as silent.

Why the day and a half is a constant here rather than read from ``gateway.alerts.missing``: the ingest
and the store use this module (the history's battery band, the worklist's silent devices), and they may
not depend on the alerts, which import the store. ``tests/gateway/test_fleet_rules.py`` holds it equal
to the missing alert's every + grace, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Final

from fhir_contract.device import contract_kind

#: A battery at or below this per cent is low: most health devices give a few days to a week from here,
#: time for a visit or a call, not an emergency.
LOW_BATTERY_PERCENT: Final = 20
#: The hub's status interval when its settings name none (``edge_agent.config.HubConfig``'s default).
STATUS_INTERVAL: Final = timedelta(seconds=60)
#: Statuses a hub may miss before it counts as offline (one lost to a reconnect is no outage).
MISSED_STATUSES: Final = 3
#: The least silence that makes a hub offline, whatever its interval (module docstring).
OFFLINE_FLOOR: Final = timedelta(minutes=5)
#: A daily device is silent after this: the missing-measurement alert's 24 h + 12 h grace.
DAILY_SILENCE: Final = timedelta(hours=36)
#: A continuous device is silent after this: a reading every few minutes while worn, and a new CGM
#: sensor's warm-up (up to two hours) is not silence.
CONTINUOUS_SILENCE: Final = timedelta(hours=3)
#: The hub's error classes (``edge_agent.ble.errors``) that are its routine, not a failure: a device not
#: seen advertising (asleep between measurements), a round of attempts that gave up on it, a link the
#: device dropped (a cuff or a scale goes to sleep as soon as it has sent its measurement).
ROUTINE_ERRORS: Final = frozenset({"DeviceNotFoundError", "ConnectError", "LinkLostError"})
#: Device kinds that stream while worn (enrolled under the hub's names or the contract's).
CONTINUOUS_KINDS: Final = frozenset(
    {"cgm", "continuous-glucose-monitor", "heart-rate-monitor", "continuous-oximeter"}
)
#: The clock states that are a problem (``edge_agent.clock_sync.ClockStatus`` but "in-sync").
CLOCK_PROBLEMS: Final = frozenset({"wrong", "unset", "unknown"})

_GLUCOSE = tuple(
    f"glucose-{site}-{specimen}"
    for site in ("capillary", "venous", "arterial", "undetermined")
    for specimen in ("whole-blood", "plasma")
)
#: The reading kinds each device kind delivers (``fhir/terminology.json``), keyed by the contract's device
#: kinds (``fhir/devices.json``): its newest of these is its last reading. A battery level is no reading.
READING_KINDS: Final[Mapping[str, tuple[str, ...]]] = {
    "blood-pressure-monitor": ("blood-pressure", "pulse-rate-cuff"),
    "pulse-oximeter": (
        "spo2",
        "pulse-rate-oximeter",
        "spo2-fast",
        "pulse-rate-oximeter-fast",
        "spo2-slow",
        "pulse-rate-oximeter-slow",
    ),
    "weight-scale": ("body-weight", "bmi", "body-height"),
    "body-composition-analyzer": (
        "body-weight",
        "body-fat-percentage",
        "fat-free-mass",
        "soft-lean-mass",
        "body-water-mass",
        "body-impedance",
        "basal-metabolism",
        "muscle-percentage",
        "muscle-mass",
        "bmi",
        "body-height",
    ),
    "thermometer": ("body-temperature",),
    # Interstitial fluid on a meter shares the CGM's codes and so its kind (edge_agent.gatt.glucose).
    "glucose-meter": (*_GLUCOSE, "cgm-glucose"),
    "continuous-glucose-monitor": ("cgm-glucose",),
    "heart-rate-monitor": ("heart-rate", "rr-interval", "energy-expended"),
}

#: The names a device kind is enrolled under: the contract's (``fhir/devices.json``) and the hub's own
#: where they differ (``edge_agent.config.DeviceKind``; ``fhir_contract.device.contract_kind`` maps them).
ENROLLED_KINDS: Final = tuple(
    sorted(
        {
            *READING_KINDS,
            "blood-pressure-cuff",
            "scale",
            "body-composition-scale",
            "continuous-oximeter",
            "cgm",
        }
    )
)

# Flags, most urgent first (the order of FleetHub.flags and of the fleet page's filter).
OFFLINE = "offline"
SILENT_DEVICE = "silent-device"
LOW_BATTERY = "low-battery"
CLOCK = "clock"
DEVICE_ERRORS = "device-errors"
OUTBOX_FULL = "outbox-full"
EVICTIONS = "evictions"
CONFIG_ERROR = "config-error"
CONFIG_PENDING = "config-pending"
REVOKED = "revoked"
FLAGS: Final = (
    OFFLINE,
    SILENT_DEVICE,
    LOW_BATTERY,
    CLOCK,
    DEVICE_ERRORS,
    OUTBOX_FULL,
    EVICTIONS,
    CONFIG_ERROR,
    CONFIG_PENDING,
    REVOKED,
)


# --- small rules -------------------------------------------------------------------------------------


def reading_kinds(kind: str) -> tuple[str, ...]:
    """The reading kinds a device enrolled as ``kind`` delivers (either vocabulary); () when unknown."""
    return READING_KINDS.get(contract_kind(kind), ())


@cache
def enrolled_kind_pairs() -> tuple[tuple[str, str], ...]:
    """(enrolled device kind, reading kind) for every name of :data:`ENROLLED_KINDS` and every reading
    kind it delivers: the table the store's last-reading probes join on."""
    return tuple((kind, reading) for kind in ENROLLED_KINDS for reading in reading_kinds(kind))


def status_interval(settings: Mapping[str, Any] | None) -> timedelta:
    """The hub's status interval from its settings (``status_interval_s``, seconds >= 1, as the hub's
    remote config takes it); :data:`STATUS_INTERVAL` when unset or not a number of seconds."""
    value = (settings or {}).get("status_interval_s")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 86400:
        return STATUS_INTERVAL
    return timedelta(seconds=float(value))


def offline_after(interval: timedelta) -> timedelta:
    """How long without a live status makes a hub offline (module docstring)."""
    return max(MISSED_STATUSES * interval, OFFLINE_FLOOR)


def silence_window(kind: str, expected_interval: timedelta | None) -> timedelta:
    """How long a device may go without a reading: its own expected interval, else its kind's default."""
    if expected_interval is not None:
        return expected_interval
    if kind in CONTINUOUS_KINDS or contract_kind(kind) in CONTINUOUS_KINDS:
        return CONTINUOUS_SILENCE
    return DAILY_SILENCE


def silent_since(
    last_reading: datetime | None, assigned_at: datetime, window: timedelta, now: datetime
) -> datetime | None:
    """Since when a device is silent (its newest reading, or its assignment when it never delivered one),
    or None when it is not."""
    since = assigned_at if last_reading is None else last_reading
    return since if now - since > window else None


def battery_band(level: float | None) -> str | None:
    """ "low" (at or below :data:`LOW_BATTERY_PERCENT`), "ok", or None when not known."""
    if level is None:
        return None
    return "low" if level <= LOW_BATTERY_PERCENT else "ok"


def magnitude(count: int | None) -> int | None:
    """A counter by order of magnitude (0, 1, 10, 100, ...: the power of ten at or below it): what the
    status history compares, so a counter that grows by one is no news until it grows tenfold."""
    if count is None or count <= 0:
        return None if count is None else 0
    return int(10 ** (len(str(count)) - 1))


def clock_problem(clock: str | None) -> bool:
    return clock in CLOCK_PROBLEMS


def device_failure(error_type: str | None) -> str | None:
    """The type of a device's last error when it is a failure (module docstring), else None."""
    return None if error_type is None or error_type in ROUTINE_ERRORS else error_type


# --- facts in, verdicts out ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What the gateway knows of one assigned device: its assignment, its newest reading (measurement
    time), its battery (the newer of the hub's status and a battery-level reading) and what the hub's
    newest status says of it (None: not in a status)."""

    device_id: str
    kind: str
    assigned_at: datetime
    expected_interval: timedelta | None
    last_reading: datetime | None
    battery: float | None
    battery_at: datetime | None
    connected: bool | None
    last_seen: datetime | None
    clock: str | None
    clock_offset_s: float | None
    errors: int | None
    last_error: str | None
    last_error_type: str | None = None


@dataclass(frozen=True, slots=True)
class HubFacts:
    """What the gateway knows of one hub: its enrolment and configuration, and its newest status (every
    status field None when it never sent one)."""

    municipality_id: str
    hub_id: str
    patient_id: str
    revoked_at: datetime | None
    settings: Mapping[str, Any]
    config_version: int
    status_at: datetime | None  # when the newest status was taken (live or retained, online or not)
    reported_online: bool | None
    online_at: datetime | None  # the newest LIVE online status: the hub's last contact
    agent_version: str | None
    queue_depth: int | None
    awaiting_receipt: int | None
    evicted_total: int
    outbox_full: bool | None
    held_in_memory: int | None
    config_applied: str | None
    config_error: str | None
    devices: tuple[DeviceFacts, ...]


@dataclass(frozen=True, slots=True)
class DeviceActivity:
    """A patient's assigned device and its newest reading: what the nurse's worklist judges silence by."""

    device_id: str
    kind: str
    assigned_at: datetime
    expected_interval: timedelta | None
    last_reading: datetime | None

    def silent_since(self, now: datetime) -> datetime | None:
        """Since when the device is silent at ``now`` (the module docstring's rule), or None."""
        window = silence_window(self.kind, self.expected_interval)
        return silent_since(self.last_reading, self.assigned_at, window, now)


@dataclass(frozen=True, slots=True)
class FleetDevice:
    """One device as the fleet view shows it."""

    device_id: str
    kind: str
    last_reading: datetime | None
    battery: float | None
    clock: str | None
    errors: int | None
    silent: bool
    low_battery: bool
    silent_since: datetime | None = None
    expected_interval: timedelta = DAILY_SILENCE  # the window it is held to (its own or its kind's)
    connected: bool | None = None
    clock_offset_s: float | None = None
    last_error: str | None = None
    battery_at: datetime | None = None
    assigned_at: datetime | None = None
    failure: str | None = None  # the type of its last error when that is a failure (device_failure)

    @property
    def clock_problem(self) -> bool:
        return clock_problem(self.clock)

    @property
    def has_errors(self) -> bool:
        return self.failure is not None


@dataclass(frozen=True, slots=True)
class FleetHub:
    """One hub as the fleet view shows it: ``flags`` in the order of :data:`FLAGS`; ``silent``: no live
    status for longer than ``offline_after`` (or never one)."""

    municipality_id: str
    hub_id: str
    patient_id: str
    revoked: bool
    online: bool
    last_contact: datetime | None
    agent_version: str | None
    outbox_depth: int | None
    awaiting_receipt: int | None
    evicted: int
    config_version: int
    config_applied: str | None
    silent: bool
    flags: tuple[str, ...]
    devices: tuple[FleetDevice, ...]
    offline_after: timedelta = OFFLINE_FLOOR
    status_at: datetime | None = None
    outbox_full: bool | None = None
    held_in_memory: int | None = None
    config_error: str | None = None

    @property
    def config_pending(self) -> bool:
        """The gateway holds a configuration (version > 0) that the hub does not say it runs."""
        return self.config_version > 0 and self.config_applied != str(self.config_version)

    @property
    def urgency(self) -> int:
        """0: offline or a silent device; 1: a low battery; 2: another flag; 3: none; 4: revoked."""
        if self.revoked:
            return 4
        if OFFLINE in self.flags or SILENT_DEVICE in self.flags:
            return 0
        if LOW_BATTERY in self.flags:
            return 1
        return 2 if self.flags else 3


def assess_device(facts: DeviceFacts, now: datetime) -> FleetDevice:
    window = silence_window(facts.kind, facts.expected_interval)
    since = silent_since(facts.last_reading, facts.assigned_at, window, now)
    return FleetDevice(
        device_id=facts.device_id,
        kind=facts.kind,
        last_reading=facts.last_reading,
        battery=facts.battery,
        clock=facts.clock,
        errors=facts.errors,
        silent=since is not None,
        low_battery=battery_band(facts.battery) == "low",
        silent_since=since,
        expected_interval=window,
        connected=facts.connected,
        clock_offset_s=facts.clock_offset_s,
        last_error=facts.last_error,
        battery_at=facts.battery_at,
        assigned_at=facts.assigned_at,
        failure=device_failure(facts.last_error_type),
    )


def assess_hub(facts: HubFacts, now: datetime) -> FleetHub:
    """The verdicts on one hub and its devices at ``now`` (module docstring). A revoked hub is shown
    with the flag "revoked" alone: it is meant to be silent."""
    after = offline_after(status_interval(facts.settings))
    silent = facts.online_at is None or now - facts.online_at > after
    online = bool(facts.reported_online) and not silent
    devices = tuple(assess_device(d, now) for d in facts.devices)
    revoked = facts.revoked_at is not None
    hub = FleetHub(
        municipality_id=facts.municipality_id,
        hub_id=facts.hub_id,
        patient_id=facts.patient_id,
        revoked=revoked,
        online=online,
        last_contact=facts.online_at,
        agent_version=facts.agent_version,
        outbox_depth=facts.queue_depth,
        awaiting_receipt=facts.awaiting_receipt,
        evicted=facts.evicted_total,
        config_version=facts.config_version,
        config_applied=facts.config_applied,
        silent=silent,
        flags=(),
        devices=devices,
        offline_after=after,
        status_at=facts.status_at,
        outbox_full=facts.outbox_full,
        held_in_memory=facts.held_in_memory,
        config_error=facts.config_error,
    )
    return _with_flags(hub)


def _with_flags(hub: FleetHub) -> FleetHub:
    if hub.revoked:
        flags: set[str] = {REVOKED}
    else:
        flags = {
            flag
            for flag, raised in (
                (OFFLINE, not hub.online),
                (SILENT_DEVICE, any(d.silent for d in hub.devices)),
                (LOW_BATTERY, any(d.low_battery for d in hub.devices)),
                (CLOCK, any(d.clock_problem for d in hub.devices)),
                (DEVICE_ERRORS, any(d.has_errors for d in hub.devices)),
                (OUTBOX_FULL, hub.outbox_full is True),
                (EVICTIONS, hub.evicted > 0),
                (CONFIG_ERROR, hub.config_error is not None),
                (CONFIG_PENDING, hub.config_pending),
            )
            if raised
        }
    return dataclasses.replace(hub, flags=tuple(flag for flag in FLAGS if flag in flags))


def ordered(hubs: Sequence[FleetHub]) -> list[FleetHub]:
    """Most urgent first (:attr:`FleetHub.urgency`), then by municipality and hub."""
    return sorted(hubs, key=lambda h: (h.urgency, h.municipality_id, h.hub_id))


# --- JSON (``homewatch admin hubs --json``) ----------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _device_json(d: FleetDevice) -> dict[str, Any]:
    return {
        "device_id": d.device_id,
        "kind": d.kind,
        "last_reading": _iso(d.last_reading),
        "battery": d.battery,
        "clock": d.clock,
        "clock_offset_s": d.clock_offset_s,
        "errors": d.errors,
        "last_error": d.last_error,
        "failure": d.failure,
        "connected": d.connected,
        "silent": d.silent,
        "silent_since": _iso(d.silent_since),
        "expected_interval_s": d.expected_interval.total_seconds(),
        "low_battery": d.low_battery,
    }


def fleet_json(hubs: Sequence[FleetHub]) -> list[dict[str, Any]]:
    """The hubs as JSON-ready values (times in ISO 8601 with their offset), in the order given."""
    return [
        {
            "municipality_id": h.municipality_id,
            "hub_id": h.hub_id,
            "patient_id": h.patient_id,
            "revoked": h.revoked,
            "online": h.online,
            "silent": h.silent,
            "last_contact": _iso(h.last_contact),
            "agent_version": h.agent_version,
            "outbox_depth": h.outbox_depth,
            "awaiting_receipt": h.awaiting_receipt,
            "held_in_memory": h.held_in_memory,
            "outbox_full": h.outbox_full,
            "evicted": h.evicted,
            "config_version": h.config_version,
            "config_applied": h.config_applied,
            "config_error": h.config_error,
            "flags": list(h.flags),
            "devices": [_device_json(d) for d in h.devices],
        }
        for h in hubs
    ]
