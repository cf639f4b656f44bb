"""Keep one health device connected for the agent, using only bleak's public API.

A :class:`DeviceLink` owns one device address. In its own task it finds the device, connects with
bounded retries and jittered exponential back-off (the only place in the hub that retries), bonds where
the device needs it, reads Battery Level and Device Information once per connection, lets a
:class:`~edge_agent.ble.link_session.LinkSession` read the clock, subscribes to the device's
characteristics, lets the session fetch a history, and after a link loss starts over. Received values
go through a queue to ``on_value(uuid, data)``, awaited one at a time, so they arrive in order and a
slow consumer never blocks the radio. Its :class:`DeviceState` snapshots say how the device is doing.

Alone, a link scans for its device itself. Under a :class:`~edge_agent.ble.manager.ConnectionManager` it
shares the hub's one :class:`~edge_agent.ble.scanner.HubScanner` (it is woken when its device
advertises) and takes a :class:`~edge_agent.ble.slots.ConnectionSlots` slot before connecting, gives it
back in ``finally``, and gives it up while idle when another device waits. Links share no tasks, so one
failing device never stalls the others.

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
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_str

from edge_agent.ble.backend import BleBackend
from edge_agent.ble.errors import (
    BleError,
    CharacteristicMissingError,
    ConnectAttemptError,
    ConnectError,
    DeviceNotFoundError,
    LinkLostError,
    SessionError,
    ValueHandlerError,
)
from edge_agent.ble.link_session import LinkConnection, LinkSession
from edge_agent.ble.link_state import DeviceState, LinkPolicy
from edge_agent.ble.scanner import HubScanner
from edge_agent.ble.slots import ConnectionSlots

__all__ = ["DeviceLink", "DeviceState", "LinkPolicy", "ValueCallback"]

logger = logging.getLogger(__name__)

ValueCallback = Callable[[str, bytes], Awaitable[None]]

BATTERY_LEVEL = normalize_uuid_str("2a19")
MANUFACTURER_NAME = normalize_uuid_str("2a29")
MODEL_NUMBER = normalize_uuid_str("2a24")
SERIAL_NUMBER = normalize_uuid_str("2a25")
FIRMWARE_REVISION = normalize_uuid_str("2a26")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace").rstrip("\x00")


class DeviceLink:
    """Keeps one device connected and hands its values to ``on_value``.

    ``async with DeviceLink(address, "2a35", on_value, backend=radio.backend) as link:`` starts it;
    :meth:`close` (or leaving the block) stops it, disconnects and drains queued values.
    ``characteristics`` is one UUID or several, all subscribed on every connection; ``optional`` ones are
    subscribed too where the device has them (a cuff without 0x2A36 is still a cuff).
    """

    def __init__(
        self,
        address: str,
        characteristics: str | Sequence[str],
        on_value: ValueCallback,
        *,
        backend: BleBackend | None = None,
        policy: LinkPolicy | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = _utc_now,
        scanner: HubScanner | None = None,
        slots: ConnectionSlots | None = None,
        pair: bool = False,
        session: LinkSession | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        optional: Sequence[str] = (),
    ) -> None:
        uuids = (characteristics,) if isinstance(characteristics, str) else tuple(characteristics)
        if not uuids:
            raise ValueError("a link subscribes to at least one characteristic")
        self.address = address
        self.characteristics = tuple(normalize_uuid_str(uuid) for uuid in uuids)
        self.measurement_uuid = self.characteristics[0]
        self.optional = tuple(normalize_uuid_str(uuid) for uuid in optional)
        self._on_value = on_value
        self._backend = backend
        self._policy = policy or LinkPolicy()
        self._rng = rng or random.Random()
        self._clock = clock
        self._scanner = scanner
        self._slots = slots
        self._pair = pair
        self._session = session
        self._monotonic = monotonic
        self._state = DeviceState(address)
        self._changed = asyncio.Event()
        self._values: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._run_task: asyncio.Task[None] | None = None
        self._deliver_task: asyncio.Task[None] | None = None
        self._holds_slot = False
        self._left_at = float("-inf")  # monotonic time the last connection ended
        self._last_activity = 0.0  # monotonic time of the last value (or of connecting)
        self._delivering = False  # on_value is running for a value taken off the queue

    @property
    def state(self) -> DeviceState:
        return self._state

    @property
    def policy(self) -> LinkPolicy:
        return self._policy

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
            await self._cancel_and_wait(run)
        await self._drain()
        deliver, self._deliver_task = self._deliver_task, None
        if deliver is not None:
            await self._cancel_and_wait(deliver)
        self._update(connected=False)

    async def _cancel_and_wait(self, run: asyncio.Task[None]) -> None:
        """Cancel one of the link's tasks and wait for it, bounded: a cancelled link finishes within its
        connect and disconnect bounds; past that, something swallowed the cancellation, and the hub's
        shutdown must not hang on one device, so cancel again (a few times) and then leave it."""
        grace = self._policy.connect_timeout * 2 + 2.0
        for _ in range(3):
            run.cancel()
            done, _pending = await asyncio.wait({run}, timeout=grace)
            if done:
                if not run.cancelled() and run.exception() is not None:
                    logger.debug("%s: link task ended with %r", self.address, run.exception())
                return
            logger.error(
                "%s: link task ignored cancellation for %.0f s; cancelling again", self.address, grace
            )

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- state, also reported by the session (StateReporter) ---------------------------------------

    def _update(self, **changes: object) -> None:
        self._state = dataclasses.replace(self._state, **changes)  # type: ignore[arg-type]
        self._changed.set()
        self._changed = asyncio.Event()

    def report_error(self, error: BleError) -> None:
        self._update(last_error=error, errors=self._state.errors + 1)

    def report_clock(self, status: str, offset: timedelta | None, was_set: bool) -> None:
        self._update(clock_status=status, clock_offset=offset, clock_set=self._state.clock_set or was_set)

    def report_history(self, last_key: int | None) -> None:
        self._update(history_last=last_key)

    # -- the link's life ---------------------------------------------------------------------------

    async def _run(self) -> None:
        """Connect, serve until the link drops or is released, start over; pause between failed rounds."""
        while True:
            try:
                client, lost = await self._connect_with_retries()
            except ConnectError as exc:
                logger.info("%s", exc)
                self.report_error(exc)
                await self._pause(exc)
                continue
            except Exception as exc:  # a bug must not end the link for good: record it, try again later
                logger.exception("%s: unexpected failure while connecting", self.address)
                self.report_error(ConnectAttemptError(self.address, repr(exc)))
                await asyncio.sleep(self._policy.idle_retry)
                continue
            if await self._serve(client, lost):
                await asyncio.sleep(self._policy.revisit_after)

    async def _pause(self, error: ConnectError) -> None:
        """Between rounds: wait for the device's next advertisement if it was not seen, else idle_retry."""
        if self._scanner is not None and isinstance(error.last, DeviceNotFoundError):
            now = self._monotonic()
            await self._scanner.wait_for(self.address, newer_than=now, within=self._policy.idle_retry)
        else:
            await asyncio.sleep(self._policy.idle_retry)

    async def _connect_with_retries(self) -> tuple[BleakClient, asyncio.Event]:
        """Up to ``max_attempts`` attempts with back-off; the only place that retries."""
        last: BleError | None = None
        for attempt in range(1, self._policy.max_attempts + 1):
            try:
                return await self._connect_once()
            except BleError as exc:
                last = exc
                self.report_error(exc)
                logger.debug("%s: attempt %d failed: %s", self.address, attempt, exc)
            if attempt < self._policy.max_attempts:
                await asyncio.sleep(self._policy.backoff(attempt, self._rng))
        assert last is not None
        raise ConnectError(self.address, self._policy.max_attempts, last) from last

    async def _find(self) -> BLEDevice:
        timeout = self._policy.scan_timeout
        if self._scanner is not None:
            # Only an advertisement after the last disconnection counts: a device that went back to sleep
            # must not be taken for awake because of what it sent before.
            newer_than = max(self._left_at, self._monotonic() - timeout)
            seen = await self._scanner.wait_for(self.address, newer_than=newer_than, within=timeout)
            if seen is None:
                raise DeviceNotFoundError(self.address, timeout)
            return seen
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

    async def _take_slot(self) -> None:
        if self._slots is not None and not self._holds_slot:
            await self._slots.acquire()
            self._holds_slot = True

    def _give_slot(self) -> None:
        if self._slots is not None and self._holds_slot:
            self._holds_slot = False
            self._slots.release()

    async def _connect_once(self) -> tuple[BleakClient, asyncio.Event]:
        """Find, take a slot, connect (bonding if asked), read state, let the session read, subscribe.

        On any failure the client is disconnected and the slot given back.
        """
        device = await self._find()
        await self._take_slot()
        try:
            return await self._connect_device(device)
        except BaseException:
            self._give_slot()
            self._left_at = self._monotonic()
            raise

    async def _connect_device(self, device: BLEDevice) -> tuple[BleakClient, asyncio.Event]:
        lost = asyncio.Event()
        client = BleakClient(
            device,
            disconnected_callback=lambda _: lost.set(),
            timeout=self._policy.connect_timeout,
            # Pair when not bonded yet; a bonded link is encrypted again by the backend (BlueZ, Bumble).
            pair=self._pair,
            backend=None if self._backend is None else self._backend.client,
        )
        try:
            try:
                await self._connect_uncancelled(client)
            except (BleakError, TimeoutError) as exc:
                raise ConnectAttemptError(self.address, f"{type(exc).__name__}: {exc}") from exc
            connection = LinkConnection(self.address, client, self)
            async with asyncio.timeout(self._policy.connect_timeout):
                await self._read_state(connection)
                if self._session is not None:
                    await self._session.on_connected(connection)
                await self._subscribe(connection)
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
        self._last_activity = self._monotonic()
        self._update(
            connected=True,
            last_seen=self._clock(),
            last_error=None,
            connections=connections,
            reconnects=connections - 1,
        )
        logger.info("%s: connected (connection %d)", self.address, connections)
        return client, lost

    async def _connect_uncancelled(self, client: BleakClient) -> None:
        """``client.connect()``, finished (it is bounded by ``connect_timeout``) even when the link is closed
        meanwhile: cancelling it between an HCI command and its status confuses the host stack (Bumble's
        pairs the late status with the next command; BlueZ answers the next connect "in progress")."""
        connect = asyncio.ensure_future(client.connect())
        try:
            await asyncio.shield(connect)
        except asyncio.CancelledError:
            # Bounded: a connect that outlives twice its own timeout is abandoned rather than holding the
            # shutdown (an emulated peer that never answers can keep a discovery pending).
            await asyncio.wait({connect}, timeout=self._policy.connect_timeout * 2)
            if not connect.done():
                connect.cancel()
            elif not connect.cancelled() and connect.exception() is None:
                await self._disconnect(client)
            raise

    async def _serve(self, client: BleakClient, lost: asyncio.Event) -> bool:
        """Hold the connection until it drops, the session releases it, or it gives way to a waiting
        device; then disconnect, give the slot back, hand over queued values and tell the session.

        True when the session released the device (come back after ``revisit_after``).
        """
        session_task: asyncio.Task[bool] | None = None
        if self._session is not None:
            session_task = asyncio.create_task(
                self._session.on_subscribed(LinkConnection(self.address, client, self)),
                name=f"ble-session-{self.address}",
            )
        try:
            return await self._hold(lost, session_task)
        finally:
            await self._disconnect(client)
            self._give_slot()
            self._left_at = self._monotonic()
            if self._state.connected:
                self._update(connected=False)
            await self._drain()
            await self._end_session(session_task)

    async def _hold(self, lost: asyncio.Event, session_task: asyncio.Task[bool] | None) -> bool:
        lost_wait = asyncio.create_task(lost.wait())
        contention: asyncio.Task[None] | None = None
        session_pending = session_task is not None
        try:
            while True:
                waits: set[asyncio.Task[Any]] = {lost_wait}
                if session_pending and session_task is not None:
                    waits.add(session_task)
                timeout: float | None = None
                if self._slots is not None and self._slots.waiting:
                    idle = self._monotonic() - self._last_activity
                    if idle >= self._policy.idle_release and not session_pending and self._quiet():
                        logger.info("%s: idle, giving the connection slot to a waiting device", self.address)
                        return False
                    timeout = max(self._policy.idle_release - idle, 0.01)
                elif self._slots is not None:
                    contention = contention or asyncio.create_task(self._slots.wait_contended())
                    waits.add(contention)
                await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if lost.is_set():
                    logger.info("%s: link lost", self.address)
                    self._update(connected=False)
                    self.report_error(LinkLostError(self.address))
                    return False
                if session_pending and session_task is not None and session_task.done():
                    session_pending = False
                    if not self._session_keeps_link(session_task):
                        return True
                if contention is not None and contention.done():
                    contention = None
        finally:
            helpers = {task for task in (lost_wait, contention) if task is not None}
            for task in helpers:
                task.cancel()
            # asyncio.wait, not ``await task`` under suppress(CancelledError): that would also swallow a
            # cancellation of this task arriving meanwhile (close() while the link is being released).
            await asyncio.wait(helpers)

    def _quiet(self) -> bool:
        """No value waiting for, or inside, ``on_value``."""
        return self._values.empty() and not self._delivering

    def _session_keeps_link(self, session_task: asyncio.Task[bool]) -> bool:
        """The outcome of ``on_subscribed``: keep the link, or release it (also after a failure)."""
        try:
            return session_task.result()
        except BleError as exc:
            logger.info("%s", exc)
            self.report_error(exc)
        except Exception as exc:
            logger.exception("%s: session failed", self.address)
            self.report_error(SessionError(self.address, "on_subscribed", repr(exc)))
        return False

    async def _end_session(self, session_task: asyncio.Task[bool] | None) -> None:
        """Tell the session the link is gone, then let its transfer finish (bounded) or cancel it."""
        if self._session is None:
            return
        try:
            await self._session.on_disconnected()
        except Exception as exc:
            logger.exception("%s: session on_disconnected failed", self.address)
            self.report_error(SessionError(self.address, "on_disconnected", repr(exc)))
        if session_task is None or session_task.done():
            return
        await asyncio.wait({session_task}, timeout=self._policy.drain_timeout)
        if not session_task.done():
            session_task.cancel()
            await asyncio.wait({session_task})
        if not session_task.cancelled() and session_task.exception() is not None:
            logger.debug("%s: session ended with %r", self.address, session_task.exception())

    async def _read_state(self, connection: LinkConnection) -> None:
        """Read Battery Level and Device Information; absent characteristics stay ``None``."""
        battery = await connection.read_optional(BATTERY_LEVEL)
        self._update(
            battery=battery[0] if battery else None,
            manufacturer=_text(await connection.read_optional(MANUFACTURER_NAME)),
            model=_text(await connection.read_optional(MODEL_NUMBER)),
            serial=_text(await connection.read_optional(SERIAL_NUMBER)),
            firmware=_text(await connection.read_optional(FIRMWARE_REVISION)),
        )

    async def _subscribe(self, connection: LinkConnection) -> None:
        """Enable every listed characteristic, the optional ones the device has, and, where notifiable,
        Battery Level notifications."""
        for uuid in self.characteristics:
            if not connection.has(uuid):
                raise CharacteristicMissingError(self.address, uuid)
        for uuid in (*self.characteristics, *filter(connection.has, self.optional)):
            await connection.subscribe(uuid, self._on_value_received)
        if connection.notifies(BATTERY_LEVEL):
            await connection.subscribe(BATTERY_LEVEL, self._on_battery)

    def _on_value_received(self, uuid: str, data: bytes) -> None:
        self._values.put_nowait((uuid, data))
        self._last_activity = self._monotonic()
        self._update(last_seen=self._clock())

    def _on_battery(self, uuid: str, data: bytes) -> None:
        if data:
            self._update(battery=data[0], last_seen=self._clock())

    async def _deliver(self) -> None:
        """Hand values to ``on_value`` one at a time, in arrival order; a failing handler is recorded."""
        while True:
            uuid, data = await self._values.get()
            self._delivering = True
            try:
                await self._on_value(uuid, data)
            except Exception as exc:
                logger.exception("%s: on_value failed for %s", self.address, uuid)
                self.report_error(ValueHandlerError(self.address, uuid, repr(exc)))
            finally:
                self._delivering = False
                self._last_activity = self._monotonic()
                self._values.task_done()

    async def _drain(self) -> None:
        """Wait (bounded) until every queued value went through ``on_value``."""
        if self._deliver_task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._policy.drain_timeout):
                await self._values.join()

    async def _disconnect(self, client: BleakClient) -> None:
        """Disconnect, swallowing failures: the link is being given up either way."""
        try:
            await client.disconnect()
        except (BleakError, TimeoutError) as exc:
            logger.debug("%s: disconnect failed: %s", self.address, exc)
