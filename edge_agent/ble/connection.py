"""Keep one health device connected for the agent, using only bleak's public API.

A :class:`DeviceLink` owns one device address. In its own task it scans for the device, connects with
bounded retries and jittered exponential back-off, reads Battery Level and Device Information once per
connection, subscribes to the measurement characteristic, and after a link loss starts over. Received
values go through a queue to ``on_value(uuid, data)``, awaited one at a time, so they arrive in order
and a slow consumer never blocks the radio. Its :class:`DeviceState` snapshots say how the device is
doing. Links do not share tasks or locks (beyond what the backend needs), so one failing device never
stalls the others.

The backend is passed in (:class:`~edge_agent.ble.backend.BleBackend`, or ``None`` for bleak's platform
backend on a hub). Parsing the values is left to :mod:`edge_agent.gatt`; durability to the outbox: an
indication is confirmed by the backend as soon as the value is queued here, so a value is only safe once
``on_value`` has stored it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError, BleakGATTProtocolError
from bleak.uuids import normalize_uuid_str

from edge_agent.ble.backend import BleBackend
from edge_agent.ble.errors import (
    BleError,
    CharacteristicMissingError,
    ConnectAttemptError,
    ConnectError,
    DeviceNotFoundError,
    GattError,
    LinkLostError,
    ValueHandlerError,
)

logger = logging.getLogger(__name__)

ValueCallback = Callable[[str, bytes], Awaitable[None]]

BATTERY_LEVEL = normalize_uuid_str("2a19")
MANUFACTURER_NAME = normalize_uuid_str("2a29")
MODEL_NUMBER = normalize_uuid_str("2a24")
SERIAL_NUMBER = normalize_uuid_str("2a25")
FIRMWARE_REVISION = normalize_uuid_str("2a26")


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
    # next one without keeping the radio busy all day.
    idle_retry: float = 60.0
    # On close, time given to on_value to take values already received before they are dropped.
    drain_timeout: float = 5.0

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
    # Successful connections after the first one.
    reconnects: int = 0
    connections: int = 0


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace").rstrip("\x00")


class DeviceLink:
    """Keeps one device connected and hands its measurement values to ``on_value``.

    ``async with DeviceLink(address, "2a35", on_value, backend=radio.backend) as link:`` starts it;
    :meth:`close` (or leaving the block) stops it, disconnects and drains queued values.
    """

    def __init__(
        self,
        address: str,
        measurement_uuid: str,
        on_value: ValueCallback,
        *,
        backend: BleBackend | None = None,
        policy: LinkPolicy | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.address = address
        self.measurement_uuid = normalize_uuid_str(measurement_uuid)
        self._on_value = on_value
        self._backend = backend
        self._policy = policy or LinkPolicy()
        self._rng = rng or random.Random()
        self._clock = clock
        self._state = DeviceState(address)
        self._changed = asyncio.Event()
        self._values: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._run_task: asyncio.Task[None] | None = None
        self._deliver_task: asyncio.Task[None] | None = None

    @property
    def state(self) -> DeviceState:
        return self._state

    def start(self) -> None:
        """Start the link's tasks (needs a running loop); idempotent."""
        if self._run_task is None:
            self._deliver_task = asyncio.create_task(self._deliver(), name=f"ble-deliver-{self.address}")
            self._run_task = asyncio.create_task(self._run(), name=f"ble-link-{self.address}")

    async def wait_until(self, predicate: Callable[[DeviceState], bool]) -> DeviceState:
        """Wait until ``predicate(state)`` holds (bound it with ``asyncio.timeout``)."""
        while not predicate(self._state):
            await self._changed.wait()
        return self._state

    async def wait_connected(self) -> DeviceState:
        """Wait until the link is connected and subscribed (bound it with ``asyncio.timeout``)."""
        return await self.wait_until(lambda state: state.connected)

    async def close(self) -> None:
        """Stop reconnecting, disconnect, give queued values to ``on_value``, stop. Safe to call twice."""
        run, self._run_task = self._run_task, None
        if run is not None:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._policy.drain_timeout):
                await self._values.join()
        deliver, self._deliver_task = self._deliver_task, None
        if deliver is not None:
            deliver.cancel()
            await asyncio.gather(deliver, return_exceptions=True)
        self._update(connected=False)

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _update(self, **changes: object) -> None:
        self._state = dataclasses.replace(self._state, **changes)  # type: ignore[arg-type]
        self._changed.set()
        self._changed = asyncio.Event()

    async def _run(self) -> None:
        """Connect, serve until the link drops, start over; pause between failed rounds."""
        while True:
            try:
                client, lost = await self._connect_with_retries()
            except ConnectError as exc:
                logger.info("%s", exc)
                self._update(last_error=exc)
                await asyncio.sleep(self._policy.idle_retry)
                continue
            except Exception as exc:  # a bug must not end the link for good: record it, try again later
                logger.exception("%s: unexpected failure while connecting", self.address)
                self._update(last_error=ConnectAttemptError(self.address, repr(exc)))
                await asyncio.sleep(self._policy.idle_retry)
                continue
            try:
                await lost.wait()
                self._update(connected=False, last_error=LinkLostError(self.address))
                logger.info("%s: link lost", self.address)
            finally:
                await self._disconnect(client)

    async def _connect_with_retries(self) -> tuple[BleakClient, asyncio.Event]:
        """Up to ``max_attempts`` attempts with back-off; the only place that retries."""
        last: BleError | None = None
        for attempt in range(1, self._policy.max_attempts + 1):
            try:
                return await self._connect_once()
            except BleError as exc:
                last = exc
                self._update(last_error=exc)
                logger.debug("%s: attempt %d failed: %s", self.address, attempt, exc)
            if attempt < self._policy.max_attempts:
                await asyncio.sleep(self._policy.backoff(attempt, self._rng))
        assert last is not None
        raise ConnectError(self.address, self._policy.max_attempts, last) from last

    async def _find(self) -> BLEDevice:
        timeout = self._policy.scan_timeout
        try:
            if self._backend is None:
                device = await BleakScanner.find_device_by_address(self.address, timeout=timeout)
            else:
                device = await BleakScanner.find_device_by_address(
                    self.address, timeout=timeout, backend=self._backend.scanner
                )
        except BleakError as exc:
            raise ConnectAttemptError(self.address, f"scan failed: {exc}") from exc
        if device is None:
            raise DeviceNotFoundError(self.address, timeout)
        return device

    async def _connect_once(self) -> tuple[BleakClient, asyncio.Event]:
        """Scan, connect, read state and subscribe; on any failure the client is disconnected."""
        device = await self._find()
        lost = asyncio.Event()
        client = BleakClient(
            device,
            disconnected_callback=lambda _: lost.set(),
            timeout=self._policy.connect_timeout,
            backend=None if self._backend is None else self._backend.client,
        )
        try:
            try:
                await client.connect()
            except (BleakError, TimeoutError) as exc:
                raise ConnectAttemptError(self.address, f"{type(exc).__name__}: {exc}") from exc
            async with asyncio.timeout(self._policy.connect_timeout):
                await self._read_state(client)
                await self._subscribe(client)
        except TimeoutError as exc:
            await self._disconnect(client)
            raise ConnectAttemptError(self.address, "setup timed out") from exc
        except BaseException:
            await self._disconnect(client)
            raise
        if lost.is_set():
            await self._disconnect(client)
            raise ConnectAttemptError(self.address, "link dropped during setup")
        connections = self._state.connections + 1
        self._update(
            connected=True,
            last_seen=self._clock(),
            last_error=None,
            connections=connections,
            reconnects=connections - 1,
        )
        logger.info("%s: connected (connection %d)", self.address, connections)
        return client, lost

    async def _read_state(self, client: BleakClient) -> None:
        """Read Battery Level and Device Information; absent characteristics stay ``None``."""
        battery = await self._read_optional(client, BATTERY_LEVEL)
        self._update(
            battery=battery[0] if battery else None,
            manufacturer=_text(await self._read_optional(client, MANUFACTURER_NAME)),
            model=_text(await self._read_optional(client, MODEL_NUMBER)),
            serial=_text(await self._read_optional(client, SERIAL_NUMBER)),
            firmware=_text(await self._read_optional(client, FIRMWARE_REVISION)),
        )

    async def _read_optional(self, client: BleakClient, uuid: str) -> bytes | None:
        characteristic = client.services.get_characteristic(uuid)
        if characteristic is None:
            return None
        try:
            return bytes(await client.read_gatt_char(characteristic))
        except BleakGATTProtocolError as exc:
            raise GattError(self.address, "read", uuid, int(exc.args[0])) from exc
        except BleakError as exc:
            raise GattError(self.address, "read", uuid) from exc

    async def _subscribe(self, client: BleakClient) -> None:
        """Enable the measurement indications and, where notifiable, Battery Level notifications."""
        measurement = client.services.get_characteristic(self.measurement_uuid)
        if measurement is None:
            raise CharacteristicMissingError(self.address, self.measurement_uuid)
        battery = client.services.get_characteristic(BATTERY_LEVEL)
        subscriptions = [(measurement, self._on_measurement)]
        if battery is not None and "notify" in battery.properties:
            subscriptions.append((battery, self._on_battery))
        for characteristic, callback in subscriptions:
            try:
                await client.start_notify(characteristic, callback)
            except BleakGATTProtocolError as exc:
                raise GattError(self.address, "subscribe", characteristic.uuid, int(exc.args[0])) from exc
            except BleakError as exc:
                raise GattError(self.address, "subscribe", characteristic.uuid) from exc

    def _on_measurement(self, characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        self._values.put_nowait((characteristic.uuid, bytes(data)))
        self._update(last_seen=self._clock())

    def _on_battery(self, characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        if data:
            self._update(battery=data[0], last_seen=self._clock())

    async def _deliver(self) -> None:
        """Hand values to ``on_value`` one at a time, in arrival order; a failing handler is recorded."""
        while True:
            uuid, data = await self._values.get()
            try:
                await self._on_value(uuid, data)
            except Exception as exc:
                logger.exception("%s: on_value failed for %s", self.address, uuid)
                self._update(last_error=ValueHandlerError(self.address, uuid, repr(exc)))
            finally:
                self._values.task_done()

    async def _disconnect(self, client: BleakClient) -> None:
        """Disconnect, swallowing failures: the link is being given up either way."""
        try:
            await client.disconnect()
        except (BleakError, TimeoutError) as exc:
            logger.debug("%s: disconnect failed: %s", self.address, exc)
