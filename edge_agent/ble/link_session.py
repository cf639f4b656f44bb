"""What a per-connection session sees of a link: GATT reads and writes by UUID, and the device's state.

:class:`~edge_agent.ble.connection.DeviceLink` owns connecting; a :class:`LinkSession` (the agent's
``edge_agent.session.DeviceSession``) runs what one kind of device needs on every connection: read the
device clock before subscribing, fetch a record history after, and hear when the link is gone. It gets a
:class:`LinkConnection`, never the ``BleakClient`` itself, so bleak's exceptions are translated here at
the boundary (:class:`~edge_agent.ble.errors.GattError`) and sessions are written against a handful of
calls. The link does its own reads and subscriptions through the same class.

Values keep arriving through the link's ``on_value`` callback, in order, while the session runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakError, BleakGATTProtocolError
from bleak.uuids import normalize_uuid_str

from edge_agent.ble.errors import BleError, CharacteristicMissingError, GattError


class StateReporter(Protocol):
    """Where a session reports what it learnt about the device (the link's :class:`DeviceState`)."""

    def report_clock(self, status: str, offset: timedelta | None, was_set: bool) -> None: ...

    def report_history(self, last_key: int | None) -> None: ...

    def report_error(self, error: BleError) -> None: ...


class LinkConnection:
    """One established connection, as a session uses it."""

    def __init__(self, address: str, client: BleakClient, reporter: StateReporter) -> None:
        self.address = address
        self._client = client
        self._reporter = reporter

    def has(self, uuid: str) -> bool:
        """Whether the device exposes the characteristic."""
        return self._client.services.get_characteristic(normalize_uuid_str(uuid)) is not None

    def writable(self, uuid: str) -> bool:
        """Whether the characteristic exists and accepts writes with response."""
        characteristic = self._client.services.get_characteristic(normalize_uuid_str(uuid))
        return characteristic is not None and "write" in characteristic.properties

    def notifies(self, uuid: str) -> bool:
        """Whether the characteristic exists and can be notified (not only indicated)."""
        characteristic = self._client.services.get_characteristic(normalize_uuid_str(uuid))
        return characteristic is not None and "notify" in characteristic.properties

    async def read_optional(self, uuid: str) -> bytes | None:
        """Read a value the device may not have: None when it has not; GattError when the read fails."""
        return await self.read(uuid) if self.has(uuid) else None

    async def subscribe(self, uuid: str, callback: Callable[[str, bytes], None]) -> None:
        """Enable notifications or indications (bleak picks by the properties); ``callback(uuid, data)``."""
        characteristic = self._client.services.get_characteristic(normalize_uuid_str(uuid))
        if characteristic is None:
            raise CharacteristicMissingError(self.address, normalize_uuid_str(uuid))

        def deliver(sender: BleakGATTCharacteristic, data: bytearray) -> None:
            callback(sender.uuid, bytes(data))

        try:
            await self._client.start_notify(characteristic, deliver)
        except BleakGATTProtocolError as exc:
            raise GattError(self.address, "subscribe", characteristic.uuid, int(exc.args[0])) from exc
        except BleakError as exc:
            raise GattError(self.address, "subscribe", characteristic.uuid) from exc

    async def read(self, uuid: str) -> bytes:
        """Read a value; CharacteristicMissingError or GattError (with the ATT error code) on failure."""
        characteristic = self._client.services.get_characteristic(normalize_uuid_str(uuid))
        if characteristic is None:
            raise CharacteristicMissingError(self.address, normalize_uuid_str(uuid))
        try:
            return bytes(await self._client.read_gatt_char(characteristic))
        except BleakGATTProtocolError as exc:
            raise GattError(self.address, "read", characteristic.uuid, int(exc.args[0])) from exc
        except BleakError as exc:
            raise GattError(self.address, "read", characteristic.uuid) from exc

    async def write(self, uuid: str, data: bytes) -> None:
        """Write a value with response; CharacteristicMissingError or GattError on failure."""
        characteristic = self._client.services.get_characteristic(normalize_uuid_str(uuid))
        if characteristic is None:
            raise CharacteristicMissingError(self.address, normalize_uuid_str(uuid))
        try:
            await self._client.write_gatt_char(characteristic, data, response=True)
        except BleakGATTProtocolError as exc:
            raise GattError(self.address, "write", characteristic.uuid, int(exc.args[0])) from exc
        except BleakError as exc:
            raise GattError(self.address, "write", characteristic.uuid) from exc

    def report_clock(self, status: str, offset: timedelta | None, was_set: bool) -> None:
        self._reporter.report_clock(status, offset, was_set)

    def report_history(self, last_key: int | None) -> None:
        self._reporter.report_history(last_key)

    def report_error(self, error: BleError) -> None:
        self._reporter.report_error(error)


class LinkSession(Protocol):
    """Per-connection steps of one device kind, called by its link in this order on every connection."""

    async def on_connected(self, connection: LinkConnection) -> None:
        """After connecting (and bonding), before subscribing: read the clock, features, session start.

        Runs within the link's setup timeout; an exception fails the connection attempt.
        """
        ...

    async def on_subscribed(self, connection: LinkConnection) -> bool:
        """After subscribing: fetch what the device holds. True keeps the link up for live values; False
        releases it (the link comes back at the device's next advertisement, after ``revisit_after``)."""
        ...

    async def on_disconnected(self) -> None:
        """The link is gone, and every value received before that went through ``on_value``."""
        ...
