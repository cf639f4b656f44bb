"""A bleak backend on Bumble's host stack, so the agent's bleak code runs against emulated devices.

:class:`BumbleScanner` and :class:`BumbleClient` implement bleak's two backend bases on a Bumble central
:class:`~bumble.device.Device` (a :class:`BumbleCentral`), speaking real HCI/ATT/GATT over a Bumble
``LocalLink``. The agent keeps using only ``BleakScanner`` and ``BleakClient``; a home's radio is chosen
by passing the classes from :func:`backend_for` as ``backend=`` (extra keyword arguments would reach the
backend but fail type checking, so the central travels as a class attribute of a bound subclass)::

    scanner_cls, client_cls = backend_for(central)
    device = await BleakScanner.find_device_by_address(address, backend=scanner_cls)
    async with BleakClient(device, backend=client_cls) as client: ...

``BleakClient(address_string, backend=client_cls)`` also works: bleak hands the string to the backend,
which resolves it with its own bound scanner (never bleak's default scanner, so BlueZ is never loaded).

Workarounds for Bumble's emulated controller live here (see ``/work/shared/notes/ble-emulation.md``):
one connect at a time per controller, ``asyncio.timeout`` around ``connect_le`` plus clearing the
controller's pending connection, MTU 247, per-UUID discovery in 16-bit form, bounded disconnect.
Building the emulated radio and peripherals is left to :mod:`edge_agent.emulation`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Literal, TypeVar

from bleak import BleakScanner
from bleak.args import SizedBuffer
from bleak.assigned_numbers import CHARACTERISTIC_PROPERTIES, CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bleak.uuids import normalize_uuid_str
from bumble import att, core, hci
from bumble.controller import Controller
from bumble.core import AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer

from edge_agent.ble.backend import BleBackend

_T = TypeVar("_T")

# Bumble starts every link at the default ATT MTU of 23 and its server silently truncates notifications
# to MTU-3 bytes; 247 is what phones and BlueZ ask for (fits a 251-byte LE data-length PDU).
REQUESTED_MTU = 247
# LocalLink has no supervision timeout: disconnecting from a controller that left the link never
# completes, so a local disconnect gets this long before the link is severed at the controller.
DISCONNECT_TIMEOUT = 2.0
# HCI reason "Connection Timeout", what a real controller reports when the peer vanishes.
REASON_CONNECTION_TIMEOUT = 0x08
_SIG_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"
_UUID_LIST_TYPES = (
    AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)


def sever_le_link(controller: Controller, peer_address: hci.Address, reason: int) -> None:
    """End one LE link at the controller level on both ends, as a supervision timeout would.

    Each controller reports Disconnection Complete to its host; the peer's controller is found on the
    link by address, and skipped when it already left the link.
    """
    connection = controller.le_connections.get(peer_address)
    if connection is None:
        return
    peer = controller.link.find_le_controller(peer_address)
    if peer is not None and (peer_side := peer.le_connections.get(connection.self_address)) is not None:
        peer.on_le_disconnected(peer_side, reason)
    controller.on_le_disconnected(connection, reason)


class BumbleCentral:
    """The hub side of one radio: a powered-on Bumble central and the state its backends share.

    bleak creates a new backend object per scanner and per client; what the controller allows only once
    (one pending connect, one scan) is arbitrated here.
    """

    def __init__(self, device: Device, controller: Controller) -> None:
        self.device = device
        self.controller = controller
        # The emulated controller accepts one LE Create Connection at a time; a second one makes the first
        # never complete on the host.
        self.connect_lock = asyncio.Lock()
        self._scan_lock = asyncio.Lock()
        self._scanners = 0
        self._backend: BleBackend | None = None

    async def acquire_scan(self) -> None:
        """Start the controller's scan for the first scanner; later scanners share it."""
        async with self._scan_lock:
            if self._scanners == 0:
                await self.device.start_scanning(filter_duplicates=False)
            self._scanners += 1

    async def release_scan(self) -> None:
        """Stop the controller's scan when the last scanner stops."""
        async with self._scan_lock:
            self._scanners = max(0, self._scanners - 1)
            if self._scanners == 0 and self.device.is_scanning:
                await self.device.stop_scanning()

    def abandon_connect(self, peer_address: hci.Address) -> None:
        """Forget a connect that timed out; the controller ignores LE Create Connection Cancel.

        Left set, ``pending_le_connection`` fails every later connect with COMMAND_DISALLOWED and opens a
        half-open link when the peer returns. A link that came up as the connect was abandoned is severed
        (callers check that no link to the peer existed before connecting).
        """
        self.controller.pending_le_connection = None
        self.device.le_connecting = False
        sever_le_link(self.controller, peer_address, REASON_CONNECTION_TIMEOUT)

    async def close(self) -> None:
        """Stop scanning, drop every link and power the central off."""
        if self.device.is_scanning:
            await self.device.stop_scanning()
        self._scanners = 0
        for peer_address in list(self.controller.le_connections):
            sever_le_link(self.controller, peer_address, REASON_CONNECTION_TIMEOUT)
        await asyncio.sleep(0)  # let the hosts take the Disconnection Complete events
        await self.device.power_off()


def backend_for(central: BumbleCentral) -> BleBackend:
    """Return (and cache) the scanner and client classes bound to ``central``."""
    if central._backend is not None:
        return central._backend

    class BoundBumbleScanner(BumbleScanner):
        bound_central = central

    class BoundBumbleClient(BumbleClient):
        bound_central = central
        scanner_class = BoundBumbleScanner

    central._backend = BleBackend(BoundBumbleScanner, BoundBumbleClient)
    return central._backend


def _bound(cls: type[BumbleScanner] | type[BumbleClient]) -> BumbleCentral:
    if cls.bound_central is None:
        raise BleakError(f"{cls.__name__} is not bound to a radio; use backend_for(central)")
    return cls.bound_central


def to_bleak_uuid(uuid: core.UUID) -> str:
    """Bumble UUID -> bleak's normalised 128-bit lower-case string."""
    return normalize_uuid_str(uuid.to_hex_str("-"))


def to_bumble_uuid(uuid: str) -> core.UUID:
    """bleak UUID string -> Bumble UUID, SIG UUIDs in 16-bit form (the 128-bit form finds nothing)."""
    normalized = normalize_uuid_str(uuid)
    if normalized.startswith("0000") and normalized.endswith(_SIG_BASE_SUFFIX):
        return core.UUID.from_16_bits(int(normalized[4:8], 16))
    return core.UUID(normalized)


def _advertisement_data(advertisement: Advertisement) -> AdvertisementData:
    data = advertisement.data
    # dict.fromkeys: Bumble merges a scan response into the advertisement's data, and the emulated
    # controller's scan response repeats the advertising data, so every UUID would come twice.
    uuids = list(
        dict.fromkeys(
            to_bleak_uuid(uuid)
            for kind in _UUID_LIST_TYPES
            for found in data.get_all(kind)
            if isinstance(found, list)
            for uuid in found
        )
    )
    name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(AdvertisingData.SHORTENED_LOCAL_NAME)
    manufacturer = data.get_all(AdvertisingData.MANUFACTURER_SPECIFIC_DATA)
    service_data = [
        *data.get_all(AdvertisingData.SERVICE_DATA_16_BIT_UUID),
        *data.get_all(AdvertisingData.SERVICE_DATA_32_BIT_UUID),
        *data.get_all(AdvertisingData.SERVICE_DATA_128_BIT_UUID),
    ]
    tx_power = data.get(AdvertisingData.TX_POWER_LEVEL)
    return AdvertisementData(
        local_name=name if isinstance(name, str) else None,
        manufacturer_data={company: bytes(payload) for company, payload in manufacturer},
        service_data={to_bleak_uuid(uuid): bytes(payload) for uuid, payload in service_data},
        service_uuids=uuids,
        tx_power=tx_power if isinstance(tx_power, int) else None,
        rssi=advertisement.rssi,
        platform_data=(advertisement,),
    )


class BumbleScanner(BaseBleakScanner):
    """bleak scanner on a Bumble central; scanners on one central share the controller's scan."""

    bound_central: ClassVar[BumbleCentral | None] = None

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        **kwargs: Any,
    ) -> None:
        # BaseBleakScanner only lower-cases the filter, so "1810" would match nothing: normalise it.
        uuids = None if service_uuids is None else [normalize_uuid_str(u) for u in service_uuids]
        super().__init__(detection_callback, uuids)
        self._central = _bound(type(self))
        self._scanning = False

    async def start(self) -> None:
        if self._scanning:
            return
        self.seen_devices = {}
        self._central.device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        try:
            await self._central.acquire_scan()
        except BaseException:
            self._central.device.remove_listener(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
            raise
        self._scanning = True

    async def stop(self) -> None:
        if not self._scanning:
            return
        self._scanning = False
        self._central.device.remove_listener(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        await self._central.release_scan()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        data = _advertisement_data(advertisement)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        # str() appends "/P" to public addresses, which breaks find_device_by_address.
        address = advertisement.address.to_string(False)
        device = self.create_or_update_device(address, address, data.local_name, advertisement, data)
        self.call_detection_callbacks(device, data)


class BumbleClient(BaseBleakClient):
    """bleak client on a Bumble central: connect, discover, read, write, notify over real ATT."""

    bound_central: ClassVar[BumbleCentral | None] = None
    scanner_class: ClassVar[type[BumbleScanner]] = BumbleScanner

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float = 10.0,
        services: set[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout)
        self._central = _bound(type(self))
        self._requested_services = services
        self._peer_address: hci.Address | None = None
        self._name: str | None = None
        if isinstance(address_or_ble_device, BLEDevice):
            self._name = address_or_ble_device.name
            if isinstance(address_or_ble_device.details, Advertisement):
                self._peer_address = address_or_ble_device.details.address
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    @property
    def name(self) -> str:
        return self._name or self.address

    @property
    def mtu_size(self) -> int:
        return att.ATT_DEFAULT_MTU if self._connection is None else self._connection.att_mtu

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self._connection is not None:
            return
        if self._peer_address is None:
            self._peer_address = await self._resolve_address()
        connection = await self._connect_le(self._peer_address)
        self._connection = connection
        self._peer = Peer(connection)
        connection.on(Connection.EVENT_DISCONNECTION, lambda reason: self._link_down(connection))
        try:
            async with asyncio.timeout(self._timeout):
                await self._gatt(self._peer.request_mtu(REQUESTED_MTU))
                await self._secure(connection, pair)
                self.services = await self._discover(self._peer)
        except BaseException:
            await self.disconnect()
            raise

    async def _resolve_address(self) -> hci.Address:
        """Find the peer with this backend's own scanner (bleak's default one would load BlueZ)."""
        device = await BleakScanner.find_device_by_address(
            self.address, timeout=self._timeout, backend=type(self).scanner_class
        )
        if device is None or not isinstance(device.details, Advertisement):
            raise BleakDeviceNotFoundError(self.address, f"Device with address {self.address} was not found.")
        self._name = self._name or device.name
        return device.details.address

    async def _connect_le(self, peer_address: hci.Address) -> Connection:
        central = self._central
        async with central.connect_lock:
            if peer_address in central.controller.le_connections:
                # The emulated controller would never complete a second link to the same peer.
                raise BleakError(f"{self.address}: already connected from this central")
            connected = False
            try:
                async with asyncio.timeout(self._timeout):
                    # connect_le(timeout=...) would send a Cancel the controller ignores and never return.
                    connection = await central.device.connect_le(peer_address, timeout=None)
                connected = True
                return connection
            except core.BaseBumbleError as exc:
                raise BleakError(f"{self.address}: connect failed: {exc}") from exc
            finally:
                if not connected:
                    central.abandon_connect(peer_address)

    async def _secure(self, connection: Connection, pair: bool) -> None:
        """Encrypt with stored keys (bleak has no encrypt call), or pair when asked to."""
        keystore = self._central.device.keystore
        keys = None if keystore is None else await keystore.get(str(connection.peer_address))
        if keys is not None:
            await self._gatt(connection.encrypt())
        elif pair:
            await self._gatt(connection.pair())

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        if self._requested_services is None:
            proxies = await self._gatt(peer.discover_services())
        else:
            # discover_services(uuids) ignores its argument: ask per UUID instead.
            proxies = []
            for uuid in sorted(self._requested_services):
                proxies += await self._gatt(peer.discover_service(to_bumble_uuid(uuid)))
        collection = BleakGATTServiceCollection()
        for proxy in sorted(proxies, key=lambda p: p.handle):
            service = BleakGATTService(proxy, proxy.handle, to_bleak_uuid(proxy.uuid))
            collection.add_service(service)
            for char_proxy in await self._gatt(peer.discover_characteristics(service=proxy)):
                characteristic = BleakGATTCharacteristic(
                    char_proxy,
                    char_proxy.handle,
                    to_bleak_uuid(char_proxy.uuid),
                    _property_names(int(char_proxy.properties)),
                    lambda: self.mtu_size - 3,
                    service,
                )
                collection.add_characteristic(characteristic)
                for desc_proxy in await self._gatt(peer.discover_descriptors(char_proxy)):
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            desc_proxy, desc_proxy.handle, to_bleak_uuid(desc_proxy.type), characteristic
                        )
                    )
        return collection

    def _link_down(self, connection: Connection) -> None:
        """Forget ``connection`` (once) and tell bleak; stale events of older links are ignored."""
        if self._connection is not connection:
            return
        self._connection = None
        self._peer = None
        self._subscribers.clear()
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            async with asyncio.timeout(DISCONNECT_TIMEOUT):
                await connection.disconnect()
        except (TimeoutError, core.BaseBumbleError):
            # The peer's controller left the link (or the link is already gone): sever it locally.
            sever_le_link(self._central.controller, connection.peer_address, REASON_CONNECTION_TIMEOUT)
        self._link_down(connection)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        await self._gatt(self._require_connection().pair())

    async def unpair(self) -> None:
        keystore = self._central.device.keystore
        if keystore is not None and self._peer_address is not None:
            with contextlib.suppress(KeyError):
                await keystore.delete(str(self._peer_address))

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._require_peer()
        if use_cached and (cached := peer.gatt_client.cached_values.get(characteristic.handle)):
            return bytearray(cached[1])
        return bytearray(await self._gatt(peer.read_value(characteristic.obj)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._require_peer()
        if use_cached and (cached := peer.gatt_client.cached_values.get(descriptor.handle)):
            return bytearray(cached[1])
        return bytearray(await self._gatt(peer.read_value(descriptor.obj)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        await self._gatt(self._require_peer().write_value(characteristic.obj, bytes(data), response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: SizedBuffer) -> None:
        await self._gatt(self._require_peer().write_value(descriptor.obj, bytes(data), True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Write the CCCD through ``Peer.subscribe``; notifications and indications both reach ``callback``.

        Bumble picks notify when the characteristic has NOTIFY and indicate otherwise (bleak's rule) and
        confirms an indication as soon as ``callback`` returns.
        """
        peer = self._require_peer()

        def subscriber(value: bytes) -> None:
            callback(bytearray(value))

        await self._gatt(peer.subscribe(characteristic.obj, subscriber, prefer_notify=True))
        self._subscribers[characteristic.handle] = subscriber

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._require_peer()
        subscriber = self._subscribers.pop(characteristic.handle, None)
        await self._gatt(peer.unsubscribe(characteristic.obj, subscriber))

    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise BleakError(f"{self.address}: not connected")
        return self._connection

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError(f"{self.address}: not connected")
        return self._peer

    async def _gatt(self, operation: Awaitable[_T]) -> _T:
        """Await one Bumble operation, translating its failures into bleak's exceptions."""
        try:
            return await operation
        except att.ATT_Error as exc:
            raise BleakGATTProtocolError(exc.error_code) from exc
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # we were cancelled: not ours to translate
            # Bumble cancels the pending ATT request when the link drops.
            raise BleakError(f"{self.address}: link lost during a GATT operation") from None
        except (core.BaseBumbleError, TimeoutError) as exc:
            raise BleakError(f"{self.address}: {type(exc).__name__}: {exc}") from exc


def _property_names(bits: int) -> list[CharacteristicPropertyName]:
    return [name for bit, name in CHARACTERISTIC_PROPERTIES.items() if bits & bit]


__all__ = [
    "BumbleCentral",
    "BumbleClient",
    "BumbleScanner",
    "backend_for",
    "sever_le_link",
    "to_bleak_uuid",
    "to_bumble_uuid",
]
