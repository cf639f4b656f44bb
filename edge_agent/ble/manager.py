"""The hub's Bluetooth side: one scanner, a limit on open connections, and one link per device.

:class:`ConnectionManager` starts the hub's single :class:`~edge_agent.ble.scanner.HubScanner` and a
:class:`~edge_agent.ble.slots.ConnectionSlots` pool, and runs a :class:`~edge_agent.ble.connection.DeviceLink`
per configured device on them: a device that advertises wakes its link at once, at most
``max_connections`` links are connected (or connecting) at a time, and every link retries, backs off
and reconnects on its own, so a device that never answers costs one slot during its attempts and stalls
no other. ``states()`` gives each device's :class:`~edge_agent.ble.connection.DeviceState` by key.

What happens on a connection (clock, history) is the sessions' business (:mod:`edge_agent.session`);
what happens to a value, the ``on_value`` callbacks'.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from edge_agent.ble.backend import BleBackend
from edge_agent.ble.connection import DeviceLink, DeviceState, LinkPolicy, ValueCallback
from edge_agent.ble.link_session import LinkSession
from edge_agent.ble.scanner import HubScanner
from edge_agent.ble.slots import ConnectionSlots

#: What one BlueZ adapter holds in practice (the controller's limit is often higher, BlueZ's lower).
DEFAULT_MAX_CONNECTIONS = 7
logger = logging.getLogger(__name__)

# Stopping a scan is one HCI command; seconds mean the radio is gone.
SCANNER_STOP_TIMEOUT_S = 5.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ConnectionManager:
    """Keeps many devices of one hub connected through one scanner and a bounded number of links."""

    def __init__(
        self,
        backend: BleBackend | None,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        policy: LinkPolicy | None = None,
        clock: Callable[[], datetime] = _utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self._backend = backend
        self._policy = policy or LinkPolicy()
        self._clock = clock
        self._rng = rng or random.Random()
        self.scanner = HubScanner(backend)
        self.slots = ConnectionSlots(max_connections)
        self._links: dict[str, DeviceLink] = {}
        self._started = False

    @property
    def links(self) -> Mapping[str, DeviceLink]:
        return self._links

    def add(
        self,
        key: str,
        address: str,
        characteristics: str | Sequence[str],
        on_value: ValueCallback,
        *,
        pair: bool = False,
        session: LinkSession | None = None,
        optional: Sequence[str] = (),
    ) -> DeviceLink:
        """Add a device under ``key`` (the hub's device id); it starts at once if the manager runs.

        ``optional`` characteristics are subscribed where the device has them (:class:`DeviceLink`)."""
        if key in self._links:
            raise ValueError(f"device {key!r} is already managed")
        link = DeviceLink(
            address,
            characteristics,
            on_value,
            backend=self._backend,
            policy=self._policy,
            # Each link its own generator, seeded from the manager's: jitter differs between links.
            rng=random.Random(self._rng.getrandbits(64)),
            clock=self._clock,
            scanner=self.scanner,
            slots=self.slots,
            pair=pair,
            session=session,
            optional=optional,
        )
        self._links[key] = link
        self.scanner.watch([address])
        if self._started:
            link.start()
        return link

    async def start(self) -> None:
        """Start the scan, then every link. ScanError if the radio refuses to scan."""
        if self._started:
            return
        await self.scanner.start()
        self._started = True
        for link in self._links.values():
            link.start()

    def states(self) -> dict[str, DeviceState]:
        """Each device's state, by key."""
        return {key: link.state for key, link in self._links.items()}

    async def close(self) -> None:
        """Disconnect every device (handing over values already received), then stop the scan."""
        await asyncio.gather(*(link.close() for link in self._links.values()))
        try:
            # Bounded like every step of shutdown: a radio that does not answer must not hold the hub.
            async with asyncio.timeout(SCANNER_STOP_TIMEOUT_S):
                await self.scanner.stop()
        except TimeoutError:
            logger.error("the hub's scanner did not stop within %.0f s", SCANNER_STOP_TIMEOUT_S)
        self._started = False
