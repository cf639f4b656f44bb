"""Emulated Bluetooth SIG health devices: Bumble peripherals that hold readings like real ones.

An :class:`EmulatedPeripheral` joins a :class:`~edge_agent.emulation.radio.HomeRadio` with a unique
address and serves, over real ATT/GATT, the health services of its
:class:`~edge_agent.emulation.profiles.DeviceProfile` (several characteristics per service, each with its
properties and security), Device Information (0x180A), Battery (0x180F) and Current Time (0x1805). It
advertises its name and service UUIDs in the advertising data (the emulated controller never sends scan
responses).

:meth:`EmulatedPeripheral.measure` takes raw measurement bytes. To an INDICATE characteristic it
indicates them and waits for the confirmation, or stores them and flushes the store in order at the next
subscription, as devices that hold readings until the next connection do. To a live NOTIFY
characteristic (heart rate, continuous SpO2) it sends a notification, unconfirmed, or drops the value
when nobody listens. A cuff notifies the intermediate values it is given (0x2A36 cuff pressure while
inflating) before the measurement, to a central that subscribed to them. Glucose meters and CGMs keep
records that the central fetches through the Record Access Control Point
(:mod:`edge_agent.emulation.racp`). Every device has its own clock
(:mod:`edge_agent.emulation.clock`), served as Current Time; callers stamp their bytes with
:meth:`EmulatedPeripheral.device_now`.

For tests a device can drop the link after a number of values (:meth:`~EmulatedPeripheral.drop_link_after`),
stop answering (``unresponsive``), or advertise only while it holds data (``advertise_only_with_data``).
Encoding the bytes is left to :mod:`edge_agent.gatt`; :func:`create_peripheral` builds every device kind
of :data:`~edge_agent.emulation.profiles.DEVICE_PROFILES`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Coroutine, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal, Self, TypeAlias

from bumble import att, gatt
from bumble.core import AdvertisingData
from bumble.device import Connection, Device
from bumble.hci import Role as HciRole

from edge_agent.ble.bumble_backend import REASON_CONNECTION_TIMEOUT, sever_le_link
from edge_agent.emulation.cgm import SpecificOpsControlPoint, session_start_time
from edge_agent.emulation.clock import AdjustReason, DeviceClock, decode_current_time
from edge_agent.emulation.gatt_database import (
    DeviceInformation,
    Reader,
    Writer,
    battery_service,
    build_characteristic,
    device_information_service,
    uuid16,
)
from edge_agent.emulation.link import PeripheralLink
from edge_agent.emulation.profiles import (
    CURRENT_TIME,
    DEVICE_PROFILES,
    PROFILES,
    CharacteristicSpec,
    DeviceProfile,
    HealthProfile,
    Role,
    current_time_service,
    simple_profile,
)
from edge_agent.emulation.racp import RacpFlavour, Record, RecordAccessControlPoint, RecordStore
from edge_agent.emulation.radio import EmulatedController, HomeRadio, next_device_address, open_bumble_device
from edge_agent.emulation.records import CGM_SESSION_START_TIME, RecordKeeper

# Legacy advertising data holds 31 bytes; there is no scan response to spill into.
_MAX_ADVERTISING_DATA = 31
# CTS application error "Data field ignored": a Current Time write the device cannot use.
CTS_DATA_FIELD_IGNORED = 0x80
_INDICATE = gatt.Characteristic.Properties.INDICATE
_NOTIFY = gatt.Characteristic.Properties.NOTIFY
_BATTERY_LEVEL = 0x2A19
# True: ignore connection requests; "gatt": connect but never answer ATT (see EmulatedController).
Unresponsive: TypeAlias = bool | Literal["connect", "gatt"]


def _advertising_data(name: str, service_uuids: tuple[int, ...]) -> bytes:
    flags = AdvertisingData.LE_GENERAL_DISCOVERABLE_MODE_FLAG | AdvertisingData.BR_EDR_NOT_SUPPORTED_FLAG
    data = bytes(
        AdvertisingData(
            [
                (AdvertisingData.FLAGS, bytes([flags])),
                (AdvertisingData.COMPLETE_LOCAL_NAME, name.encode()),
                (
                    AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                    b"".join(bytes(uuid16(uuid)) for uuid in service_uuids),
                ),
            ]
        )
    )
    if len(data) > _MAX_ADVERTISING_DATA:
        raise ValueError(f"name {name!r} is too long for the 31-byte advertising data")
    return data


class EmulatedPeripheral:
    """A Bumble peripheral on a home radio serving a device profile, DIS, Battery and Current Time.

    Construct with a ``profile`` (or, as before, ``service_uuid``/``measurement_uuid``/``readable`` for a
    one-service INDICATE device), then ``await start()``; or use :func:`create_peripheral`. The radio
    closes it.
    """

    def __init__(
        self,
        radio: HomeRadio,
        *,
        name: str,
        service_uuid: int | None = None,
        measurement_uuid: int | None = None,
        readable: Mapping[int, bytes] | None = None,
        profile: DeviceProfile | None = None,
        info: DeviceInformation | None = None,
        battery: int = 100,
        address: str | None = None,
        advertising_interval_ms: float = 20.0,
        clock: DeviceClock | None = None,
        advertise_only_with_data: bool = False,
        unresponsive: Unresponsive = False,
        require_bonding: bool = False,
    ) -> None:
        if profile is None:
            if service_uuid is None or measurement_uuid is None:
                raise TypeError("give a profile, or a service_uuid and a measurement_uuid")
            profile = simple_profile("custom", "EMU-1", service_uuid, measurement_uuid, readable)
        self.radio = radio
        self.name = name
        self.address = address or next_device_address()
        self.profile = profile
        self.service_uuid = profile.service_uuid
        self.measurement_uuid = profile.measurement_uuid
        self.info = info or DeviceInformation()
        self.clock = clock or DeviceClock.correct()
        self.advertise_only_with_data = advertise_only_with_data
        self._require_bonding = require_bonding
        self._unresponsive: Unresponsive = unresponsive
        self._advertising_interval_ms = advertising_interval_ms
        self._advertising_data = _advertising_data(name, profile.advertised_uuids)
        self._health = profile.characteristics()
        self._services = (
            *profile.services,
            device_information_service(self.info),
            battery_service(self._check_level(battery)),
            current_time_service(profile.clock_writable),
        )
        self._specs = {spec.uuid: spec for service in self._services for spec in service.characteristics}
        self._values = {uuid: spec.value for uuid, spec in self._specs.items() if spec.role is Role.VALUE}
        if CGM_SESSION_START_TIME in self._values:
            self._values[CGM_SESSION_START_TIME] = session_start_time(self.clock.now())
        self._stores: dict[int, deque[tuple[int, bytes]]] = {
            spec.uuid: deque() for spec in self._health if spec.role is Role.MEASUREMENT and spec.stored
        }
        self._flush_locks = {uuid: asyncio.Lock() for uuid in self._stores}
        self._reading_numbers = itertools.count()
        self.records = RecordStore()
        self._keeper = None if profile.racp is None else self._record_keeper(profile.racp)
        self._attributes: dict[int, gatt.Characteristic[bytes]] = {}
        self._link: PeripheralLink | None = None
        self._drop_after: int | None = None
        self._present = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._device: Device | None = None
        self._controller: EmulatedController | None = None

    async def start(self) -> Self:
        """Join the radio's link, serve the GATT database and start advertising (once)."""
        if self._device is not None:
            return self
        device, self._controller = await open_bumble_device(self.name, self.address, self.radio.link)
        self._device = device
        self.unresponsive = self._unresponsive
        health = {spec.uuid for spec in self._health}
        services = []
        for service in self._services:
            characteristics = []
            for spec in service.characteristics:
                attribute = build_characteristic(
                    spec,
                    device.gatt_server,
                    read=self._reader(spec),
                    write=self._writer(spec),
                    require_bonding=self._require_bonding and spec.uuid in health,
                )
                attribute.on(attribute.EVENT_SUBSCRIPTION, partial(self._on_subscription, spec.uuid))
                self._attributes[spec.uuid] = attribute
                characteristics.append(attribute)
            services.append(gatt.Service(uuid16(service.uuid), characteristics))
        device.add_services(services)
        device.on(device.EVENT_CONNECTION, self._on_connection)
        self.radio.attach(self)
        self._present = True
        if self._has_data or not self.advertise_only_with_data:
            await self._advertise()
        return self

    @property
    def device(self) -> Device:
        """The peripheral's Bumble device (raises before :meth:`start` and after :meth:`close`)."""
        if self._device is None:
            raise RuntimeError(f"peripheral {self.name} is not running")
        return self._device

    @property
    def controller(self) -> EmulatedController:
        """The peripheral's emulated controller."""
        if self._controller is None:
            raise RuntimeError(f"peripheral {self.name} is not started")
        return self._controller

    @property
    def connected(self) -> bool:
        return self._link is not None

    @property
    def advertising(self) -> bool:
        return self._device is not None and bool(self._device.is_advertising)

    @property
    def subscribed(self) -> bool:
        """Whether a connected central enabled the measurement characteristic (indicate or notify)."""
        return self._link is not None and self._enabled(self._link, self.measurement_uuid)

    @property
    def stored_count(self) -> int:
        """Readings taken but not yet delivered: stored values, and records never reported over RACP."""
        stored = sum(len(store) for store in self._stores.values())
        return stored + (0 if self._keeper is None else self._keeper.unreported)

    @property
    def unresponsive(self) -> Unresponsive:
        return self._unresponsive

    @unresponsive.setter
    def unresponsive(self, mode: Unresponsive) -> None:
        """Stop (or resume) answering: True/"connect" ignores connections, "gatt" ignores ATT."""
        self._unresponsive = mode
        if self._controller is not None:
            self._controller.accepts_connections = mode not in (True, "connect")
            self._controller.answers_data = mode != "gatt"

    @property
    def next_sequence_number(self) -> int:
        """The key :meth:`measure` gives the next glucose record (encode it in the measurement bytes)."""
        return self.records.next_key

    def device_now(self) -> datetime:
        """The device clock's time (naive local), to stamp measurement bytes with."""
        return self.clock.now()

    def clock_offset(self) -> timedelta:
        """Device clock minus true local time."""
        return self.clock.offset()

    async def set_clock(self, value: datetime) -> None:
        """Set the clock from the device's own buttons: notify Current Time to a subscribed central."""
        self.clock.set(value, AdjustReason.MANUAL_TIME_UPDATE)
        if (link := self._link) is not None and link.notifies(CURRENT_TIME):
            await self._send(link, CURRENT_TIME, self.clock.current_time())

    def set_value(self, uuid: int, value: bytes) -> None:
        """Replace the value of a plain readable characteristic (a feature, a status)."""
        if uuid not in self._values:
            raise KeyError(f"0x{uuid:04X} is not a plain value of {self.name}")
        self._values[uuid] = bytes(value)

    async def measure(
        self, value: bytes, uuid: int | None = None, *, intermediate: Sequence[bytes] = ()
    ) -> bool:
        """Take a reading for ``uuid`` (default: the profile's measurement); True once delivered.

        Stored characteristics keep the reading until a central confirms it (delivered first and in
        order; a reading interrupted by link loss stays stored). Live NOTIFY characteristics send it
        or drop it. Glucose meters and CGMs add a record (glucose: key :attr:`next_sequence_number`;
        CGM: the time offset in bytes 4-5); a CGM also notifies it live to a subscribed central.
        ``intermediate`` values (a cuff's 0x2A36 while inflating) are notified first, in order, to a
        central that subscribed to the profile's intermediate characteristic, and dropped otherwise;
        they do not count towards :meth:`drop_link_after`.
        """
        uuid = self.measurement_uuid if uuid is None else uuid
        spec = self._specs.get(uuid)
        if spec is None or spec.role not in (Role.MEASUREMENT, Role.RECORD):
            raise ValueError(f"0x{uuid:04X} is not a measurement characteristic of {self.name}")
        if intermediate:
            await self._notify_intermediate(intermediate)
        if spec.role is Role.RECORD and self._keeper is not None:
            if await self._keeper.measure(self._link, bytes(value)):
                return True
            await self._wake()
            return False
        if uuid not in self._stores:  # live only
            link = self._link
            return (
                link is not None
                and await self._send(link, uuid, bytes(value))
                and await self._delivered(link)
            )
        number = next(self._reading_numbers)
        store = self._stores[uuid]
        store.append((number, bytes(value)))
        if self._link is None or not self._enabled(self._link, uuid):
            await self._wake()
            return False
        await self._flush(uuid)
        return not store or store[0][0] > number

    def add_record(self, key: int, measurement: bytes, context: bytes | None = None) -> None:
        """Store a record (glucose: sequence number; CGM: time offset) for RACP to report."""
        if self._keeper is None:
            raise ValueError(f"{self.name} keeps no records")
        self._keeper.add(Record(key, bytes(measurement), None if context is None else bytes(context)))
        if self.advertise_only_with_data and self._device is not None:
            self._spawn(self._wake())

    def drop_link_after(self, values: int) -> None:
        """Sever the link (reason 0x08) right after the next ``values`` values reached the central.

        Counts measurement values: flushed or live readings and RACP records (a record with its
        context is one value). The device stays on the link and advertises again, as after a brief
        loss of range; use :meth:`drop_link` for a battery pull.
        """
        if values < 1:
            raise ValueError("drop_link_after needs at least one value")
        self._drop_after = values

    async def set_battery(self, level: int) -> None:
        """Set the Battery Level (0-100 %) and notify a subscribed central."""
        value = bytes([self._check_level(level)])
        self._values[_BATTERY_LEVEL] = value
        if (link := self._link) is not None:
            await self._send(link, _BATTERY_LEVEL, value)

    async def drop_link(self) -> None:
        """Vanish as on a battery pull: stop advertising, sever links with reason 0x08, leave the link.

        LocalLink has no supervision timeout, so both controllers are told of the loss explicitly;
        :meth:`reappear` brings the device back.
        """
        self._present = False
        await self.device.stop_advertising()
        for peer_address in list(self.controller.le_connections):
            sever_le_link(self.controller, peer_address, REASON_CONNECTION_TIMEOUT)
        if self.controller in self.radio.link.controllers:
            self.radio.link.remove_controller(self.controller)

    async def reappear(self) -> None:
        """Come back after :meth:`drop_link` (battery reinserted) and advertise again."""
        if self._present:
            return
        if self.controller not in self.radio.link.controllers:
            self.radio.link.add_controller(self.controller)
        self._present = True
        await self._advertise()

    async def close(self) -> None:
        """Stop everything this peripheral runs; it leaves the link. Safe to call twice."""
        if self._device is None:
            return
        device, self._device = self._device, None
        self._present = False
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await device.stop_advertising()
        for peer_address in list(self.controller.le_connections):
            sever_le_link(self.controller, peer_address, REASON_CONNECTION_TIMEOUT)
        await asyncio.sleep(0)  # let the host take the Disconnection Complete events
        await device.power_off()
        if self.controller in self.radio.link.controllers:
            self.radio.link.remove_controller(self.controller)

    # -- GATT callbacks ---------------------------------------------------------------------------

    def _reader(self, spec: CharacteristicSpec) -> Reader | None:
        if spec.role is Role.VALUE:
            return lambda connection: self._values[spec.uuid]
        if spec.role is Role.CURRENT_TIME:
            return lambda connection: self.clock.current_time()
        return None

    def _writer(self, spec: CharacteristicSpec) -> Writer | None:
        keeper = self._keeper
        match spec.role:
            case Role.VALUE:
                return partial(self._write_value, spec.uuid)
            case Role.CURRENT_TIME:
                return self._write_current_time
            case Role.RACP if keeper is not None:
                return lambda connection, value: keeper.write_racp(self._link_of(connection), value)
            case Role.CGM_CONTROL if keeper is not None:
                return lambda connection, value: keeper.write_socp(self._link_of(connection), value)
        return None

    def _write_value(self, uuid: int, connection: Connection, value: bytes) -> None:
        current = self._values[uuid]
        if current and len(value) != len(current):  # fixed-size fields keep their size
            raise att.ATT_Error(att.ErrorCode.INVALID_ATTRIBUTE_LENGTH)
        self._values[uuid] = bytes(value)

    def _write_current_time(self, connection: Connection, value: bytes) -> None:
        try:
            time, reason = decode_current_time(value)
        except ValueError as exc:
            raise att.ATT_Error(CTS_DATA_FIELD_IGNORED) from exc
        self.clock.set(time, reason or AdjustReason.MANUAL_TIME_UPDATE)

    def _link_of(self, connection: Connection) -> PeripheralLink:
        link = self._link
        if link is None or link.connection is not connection:
            raise att.ATT_Error(att.ErrorCode.UNLIKELY_ERROR)
        return link

    # -- link events ------------------------------------------------------------------------------

    def _on_connection(self, connection: Connection) -> None:
        if connection.role != HciRole.PERIPHERAL:
            return
        link = self._link = PeripheralLink(self.device, self.controller, connection)
        connection.on(connection.EVENT_DISCONNECTION, lambda reason: self._on_disconnection(link))

    def _on_disconnection(self, link: PeripheralLink) -> None:
        if self._link is not link:
            return
        self._link = None
        link.mark_lost()
        if self._keeper is not None:
            self._keeper.reset()
        # Like a real device: advertise again after a disconnect, unless it sleeps until the next reading.
        if (
            self._present
            and self._device is not None
            and (self._has_data or not self.advertise_only_with_data)
        ):
            self._spawn(self._advertise())

    def _on_subscription(self, uuid: int, bearer: object, notify: bool, indicate: bool) -> None:
        link = self._link
        if link is None or bearer is not link.connection:
            return
        link.enabled[uuid] = (notify, indicate)
        if uuid in self._stores and self._stores[uuid] and self._enabled(link, uuid):
            self._spawn(self._flush(uuid))

    # -- sending ----------------------------------------------------------------------------------

    def _enabled(self, link: PeripheralLink, uuid: int) -> bool:
        properties = self._specs[uuid].properties
        indicates = bool(properties & _INDICATE) and link.indicates(uuid)
        return indicates or (bool(properties & _NOTIFY) and link.notifies(uuid))

    async def _send(self, link: PeripheralLink, uuid: int, value: bytes) -> bool:
        """Indicate (until confirmed) or notify (until sent), as the central's CCCD says.

        False when the central enabled neither, or when the link dropped first.
        """
        attribute, properties = self._attributes[uuid], self._specs[uuid].properties
        if properties & _INDICATE and link.indicates(uuid):
            return await link.indicate(attribute, value)
        if properties & _NOTIFY and link.notifies(uuid):
            return await link.notify(attribute, value)
        return False

    async def _notify_intermediate(self, values: Sequence[bytes]) -> None:
        """Notify values still being measured; a central that did not subscribe gets none (as from a
        real cuff, which only sends 0x2A36 while its CCCD is enabled)."""
        uuid = self.profile.intermediate_uuid
        if uuid is None:
            raise ValueError(f"{self.name} sends no intermediate values")
        for value in values:
            link = self._link
            if link is None or not link.notifies(uuid):
                return
            await self._send(link, uuid, bytes(value))

    async def _delivered(self, link: PeripheralLink) -> bool:
        """Count one delivered value towards :meth:`drop_link_after`; sever the link when it is due."""
        if self._drop_after is None:
            return True
        self._drop_after -= 1
        if self._drop_after > 0:
            return True
        self._drop_after = None
        await link.sever()
        return True

    async def _flush(self, uuid: int) -> None:
        """Send stored readings oldest first, each removed only once delivered."""
        store = self._stores[uuid]
        async with self._flush_locks[uuid]:
            while store and (link := self._link) is not None:
                if not await self._send(link, uuid, store[0][1]):
                    return
                store.popleft()
                await self._delivered(link)

    def _record_keeper(self, flavour: RacpFlavour) -> RecordKeeper:
        roles = {spec.role: spec.uuid for spec in self._health}
        return RecordKeeper(
            RecordAccessControlPoint(flavour, self.records),
            record_uuid=self.measurement_uuid,
            context_uuid=roles.get(Role.CONTEXT),
            socp=SpecificOpsControlPoint() if Role.CGM_CONTROL in roles else None,
            values=self._values,
            clock=self.clock,
            send=self._send,
            delivered=self._delivered,
            spawn=self._spawn,
        )

    # -- advertising ------------------------------------------------------------------------------

    @property
    def _has_data(self) -> bool:
        return self.stored_count > 0

    async def _wake(self) -> None:
        """A sleeping device with new data starts advertising."""
        if self._present and self._device is not None and self._link is None and not self.advertising:
            await self._advertise()

    async def _advertise(self) -> None:
        await self.device.start_advertising(
            advertising_data=self._advertising_data,
            advertising_interval_min=self._advertising_interval_ms,
            advertising_interval_max=self._advertising_interval_ms,
        )

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine, name=f"peripheral-{self.address}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _check_level(level: int) -> int:
        if not 0 <= level <= 100:
            raise ValueError(f"battery level {level} is outside 0-100")
        return level


async def create_peripheral(
    radio: HomeRadio,
    kind: str,
    *,
    name: str | None = None,
    serial: str | None = None,
    firmware: str = "1.0.0",
    battery: int = 100,
    advertising_interval_ms: float = 20.0,
    clock: DeviceClock | None = None,
    advertise_only_with_data: bool = False,
    unresponsive: Unresponsive = False,
    require_bonding: bool = False,
) -> EmulatedPeripheral:
    """Create and start a device of ``kind`` (a key of :data:`DEVICE_PROFILES`) on ``radio``."""
    profile = DEVICE_PROFILES[kind]
    address = next_device_address()
    serial = serial or address.replace(":", "")[-6:]
    peripheral = EmulatedPeripheral(
        radio,
        name=name or f"{profile.model}-{serial}",
        profile=profile,
        info=DeviceInformation(model=profile.model, serial=serial, firmware=firmware),
        battery=battery,
        address=address,
        advertising_interval_ms=advertising_interval_ms,
        clock=clock,
        advertise_only_with_data=advertise_only_with_data,
        unresponsive=unresponsive,
        require_bonding=require_bonding,
    )
    return await peripheral.start()


__all__ = [
    "DEVICE_PROFILES",
    "PROFILES",
    "DeviceInformation",
    "DeviceProfile",
    "EmulatedPeripheral",
    "HealthProfile",
    "Unresponsive",
    "create_peripheral",
]
