"""One link's timing policy and the snapshots of what the hub knows about its device.

:class:`LinkPolicy` holds every timing constant of :class:`~edge_agent.ble.connection.DeviceLink` (each
with the reason for its value) and the one back-off formula of the hub; :class:`DeviceState` is the
immutable snapshot a link publishes on every change, which ``HubAgent.device_states()`` returns.
Neither does I/O.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from edge_agent.ble.errors import BleError


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    """Timing of one link; the defaults suit a hub, tests shrink them."""

    # Health devices advertise every 0.1-2 s while awake; 10 s spans several intervals even when the
    # hub's radio is busy with other links.
    scan_timeout: float = 10.0
    # Bounds connect and then setup (MTU, discovery, reads, subscribe) separately; BlueZ usually connects
    # in under 2 s, and bleak's 30 s default would hold the backend's connect slot far too long.
    connect_timeout: float = 10.0
    # Attempts per round: a device that was just seen but fails four times in a row is not coming up now.
    max_attempts: int = 4
    # First back-off: long enough for the device's next advertising event, short for the reader waiting.
    backoff_base: float = 0.5
    # Cap: past ~15 s a retry no longer catches the same awake period of a cuff or a scale.
    backoff_cap: float = 15.0
    # Pause between rounds: most devices sleep between measurements; rescanning every minute catches the
    # next one without keeping the radio busy all day. Under the hub scanner a device that was not seen
    # is woken at its next advertisement instead.
    idle_retry: float = 60.0
    # On close, time given to on_value to take values already received before they are dropped.
    drain_timeout: float = 5.0
    # While another device waits for a connection slot, a link that received nothing for this long
    # gives its slot up: long enough for a cuff to finish a measurement it has started (30-60 s of
    # inflating is the whole measurement, and it indicates the result at the end), short enough that a
    # waiting scale is served while the person still stands on it.
    idle_release: float = 30.0
    # After a device handed over its history and was released, the hub leaves it alone this long before
    # it connects at the next advertisement: a meter that advertises all the time is asked once a minute.
    revisit_after: float = 60.0
    # A device that sent nothing for this long after subscribing has handed over what it stored (stored
    # readings flush back to back at subscription); only then does the hub set its clock.
    settle: float = 1.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay after failed ``attempt`` (1-based): exponential, capped, with equal jitter.

        Half the delay is fixed so a retry never comes at once; the random half spreads the retries of
        many links (12 homes x 4 devices after a hub restart) instead of having them collide.
        """
        delay = min(self.backoff_cap, self.backoff_base * 2.0 ** (attempt - 1))
        return delay / 2 + rng.uniform(0, delay / 2)


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What the hub knows about one device; a new snapshot on every change."""

    address: str
    connected: bool = False
    last_seen: datetime | None = None
    battery: int | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    last_error: BleError | None = None
    # Every error recorded (failed attempts, lost links, refused transfers), not only the last.
    errors: int = 0
    # Successful connections after the first one.
    reconnects: int = 0
    connections: int = 0
    # The device clock as measured at the last connection: "in-sync", "wrong", "unset" or "unknown"
    # (None: not read); offset = hub local time minus device time; whether the hub has set the clock.
    clock_status: str | None = None
    clock_offset: timedelta | None = None
    clock_set: bool = False
    # The last history record stored (glucose sequence number, CGM time offset); None before any.
    history_last: int | None = None
