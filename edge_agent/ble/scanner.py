"""One scanner for the whole hub: every advertisement of a watched device wakes that device's link.

A hub radio scans once, not once per device: :class:`HubScanner` runs a single ``BleakScanner`` with a
detection callback (through the backend passed in) for as long as the agent runs, and remembers when
each watched address was last seen. A link waits in :meth:`HubScanner.wait_for` for an advertisement
newer than a moment it names (its last disconnection, so that a sleeping cuff or scale that starts to
advertise because it holds a reading is connected at once, and an advertisement from before the device
went back to sleep is never taken for a new one).

Connecting is left to :mod:`edge_agent.ble.connection`; the scanner never connects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from edge_agent.ble.backend import BleBackend
from edge_agent.ble.errors import ScanError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sighting:
    """The latest advertisement of one device: bleak's device handle and when it was seen (monotonic)."""

    device: BLEDevice
    at: float


class HubScanner:
    """Scans continuously and tells links when their device advertises."""

    def __init__(
        self, backend: BleBackend | None, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._backend = backend
        self._monotonic = monotonic
        self._scanner: BleakScanner | None = None
        self._watched: dict[str, asyncio.Event] = {}  # upper-case address -> set on its next sighting
        self._seen: dict[str, Sighting] = {}
        self.advertisements = 0  # advertisements of watched devices (the benchmark reports it)

    def watch(self, addresses: Iterable[str]) -> None:
        """Keep track of these addresses (others are ignored)."""
        for address in addresses:
            self._watched.setdefault(address.upper(), asyncio.Event())

    @property
    def running(self) -> bool:
        return self._scanner is not None

    async def start(self) -> None:
        """Start the one scan; idempotent. ScanError if the radio refuses."""
        if self._scanner is not None:
            return
        if self._backend is None:
            scanner = BleakScanner(detection_callback=self._on_detection)
        else:
            scanner = BleakScanner(detection_callback=self._on_detection, backend=self._backend.scanner)
        try:
            await scanner.start()
        except BleakError as exc:
            raise ScanError(f"the hub's scan did not start: {exc}") from exc
        self._scanner = scanner

    async def stop(self) -> None:
        """Stop the scan; safe to call twice."""
        scanner, self._scanner = self._scanner, None
        if scanner is None:
            return
        try:
            await scanner.stop()
        except BleakError as exc:
            logger.debug("stopping the scan failed: %s", exc)

    def last_seen(self, address: str) -> Sighting | None:
        return self._seen.get(address.upper())

    async def wait_for(self, address: str, *, newer_than: float, within: float) -> BLEDevice | None:
        """The device once it advertised after ``newer_than`` (monotonic); None after ``within`` s."""
        key = address.upper()
        event = self._watched.setdefault(key, asyncio.Event())
        deadline = self._monotonic() + within
        while True:
            sighting = self._seen.get(key)
            if sighting is not None and sighting.at > newer_than:
                return sighting.device
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                return None
            event.clear()
            try:
                async with asyncio.timeout(remaining):
                    await event.wait()
            except TimeoutError:
                return None

    def _on_detection(self, device: BLEDevice, advertisement: AdvertisementData) -> None:
        key = device.address.upper()
        event = self._watched.get(key)
        if event is None:
            return
        self.advertisements += 1
        self._seen[key] = Sighting(device, self._monotonic())
        event.set()
