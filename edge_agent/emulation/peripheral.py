"""Emulated Bluetooth SIG health devices: Bumble peripherals that hold readings like real ones.

An :class:`EmulatedPeripheral` joins a :class:`~edge_agent.emulation.radio.HomeRadio` with a unique
address and serves, over real ATT/GATT, one primary health service (its measurement characteristic
INDICATE-only, as the SIG services require, plus any readable feature characteristics), Device
Information (0x180A) and Battery (0x180F). It advertises its name and service UUID in the advertising data
(the emulated controller never sends scan responses).

:meth:`EmulatedPeripheral.measure` takes raw measurement bytes: it indicates them to a subscribed central
and waits for the confirmation, or stores them and flushes the store in order at the next subscription,
as devices that hold readings until the next connection do. Encoding the bytes is left to
:mod:`edge_agent.gatt`; :func:`create_peripheral` builds the four demo device kinds from a small table.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import deque
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Self

from bumble import gatt
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.hci import Role

from edge_agent.ble.bumble_backend import REASON_CONNECTION_TIMEOUT, sever_le_link
from edge_agent.emulation.radio import HomeRadio, next_device_address, open_bumble_device

# Legacy advertising data holds 31 bytes; there is no scan response to spill into.
_MAX_ADVERTISING_DATA = 31
_READABLE = gatt.Characteristic.Permissions.READABLE


@dataclass(frozen=True, slots=True)
class DeviceInformation:
    """Values of the Device Information service (0x180A)."""

    manufacturer: str = "Homewatch Emulation"
    model: str = "EMU-1"
    serial: str = "0000000"
    firmware: str = "1.0.0"


@dataclass(frozen=True, slots=True)
class HealthProfile:
    """One row of the device table: which SIG service a device kind serves."""

    kind: str
    service_uuid: int
    measurement_uuid: int
    feature_uuid: int
    feature_value: bytes
    model: str


PROFILES: Mapping[str, HealthProfile] = {
    profile.kind: profile
    for profile in (
        # Blood Pressure Feature: body movement and cuff fit detection supported.
        HealthProfile("blood-pressure-cuff", 0x1810, 0x2A35, 0x2A49, struct.pack("<H", 0x0003), "BP-Cuff"),
        # PLX Features: no optional status fields supported.
        HealthProfile("pulse-oximeter", 0x1822, 0x2A5E, 0x2A60, struct.pack("<H", 0x0000), "PulseOx"),
        # Weight Scale Feature: time stamp supported, weight resolution 0.05 kg (code 4 in bits 3-6).
        HealthProfile("scale", 0x181D, 0x2A9D, 0x2A9E, struct.pack("<I", 0x01 | 4 << 3), "Scale"),
        # Temperature Type: tympanum (0x09), as home ear thermometers measure.
        HealthProfile("thermometer", 0x1809, 0x2A1C, 0x2A1D, bytes([0x09]), "Thermo"),
    )
}


def _uuid(value: int) -> UUID:
    return UUID.from_16_bits(value)


def _info_service(info: DeviceInformation) -> gatt.Service:
    fields = (
        (0x2A29, info.manufacturer),
        (0x2A24, info.model),
        (0x2A25, info.serial),
        (0x2A26, info.firmware),
    )
    return gatt.Service(
        _uuid(0x180A),
        [
            gatt.Characteristic(_uuid(u), gatt.Characteristic.Properties.READ, _READABLE, v.encode())
            for u, v in fields
        ],
    )


class EmulatedPeripheral:
    """A Bumble peripheral on a home radio serving one SIG health service, DIS and Battery.

    Construct, then ``await start()`` (or use :func:`create_peripheral`). The radio closes it.
    """

    def __init__(
        self,
        radio: HomeRadio,
        *,
        name: str,
        service_uuid: int,
        measurement_uuid: int,
        readable: Mapping[int, bytes] | None = None,
        info: DeviceInformation | None = None,
        battery: int = 100,
        address: str | None = None,
        advertising_interval_ms: float = 20.0,
    ) -> None:
        self.radio = radio
        self.name = name
        self.address = address or next_device_address()
        self.service_uuid = service_uuid
        self.measurement_uuid = measurement_uuid
        self.info = info or DeviceInformation()
        self._advertising_interval_ms = advertising_interval_ms
        self._advertising_data = bytes(
            AdvertisingData(
                [
                    (
                        AdvertisingData.FLAGS,
                        bytes(
                            [
                                AdvertisingData.LE_GENERAL_DISCOVERABLE_MODE_FLAG
                                | AdvertisingData.BR_EDR_NOT_SUPPORTED_FLAG
                            ]
                        ),
                    ),
                    (AdvertisingData.COMPLETE_LOCAL_NAME, name.encode()),
                    (AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, bytes(_uuid(service_uuid))),
                ]
            )
        )
        if len(self._advertising_data) > _MAX_ADVERTISING_DATA:
            raise ValueError(f"name {name!r} is too long for the 31-byte advertising data")
        self._measurement: gatt.Characteristic[bytes] = gatt.Characteristic(
            _uuid(measurement_uuid),
            gatt.Characteristic.Properties.INDICATE,
            gatt.Characteristic.Permissions(0),
        )
        self._features = [
            gatt.Characteristic(_uuid(uuid), gatt.Characteristic.Properties.READ, _READABLE, value)
            for uuid, value in (readable or {}).items()
        ]
        self._battery = gatt.Characteristic(
            _uuid(0x2A19),
            gatt.Characteristic.Properties.READ | gatt.Characteristic.Properties.NOTIFY,
            _READABLE,
            bytes([self._check_level(battery)]),
        )
        self._stored: deque[tuple[int, bytes]] = deque()
        self._next_seq = 0
        self._flush_lock = asyncio.Lock()
        self._connection: Connection | None = None
        self._link_lost: asyncio.Future[None] | None = None
        self._subscribed = False
        self._present = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._device: Device | None = None
        self._controller: Controller | None = None

    async def start(self) -> Self:
        """Join the radio's link, serve the GATT database and start advertising (once)."""
        if self._device is not None:
            return self
        device, self._controller = await open_bumble_device(self.name, self.address, self.radio.link)
        self._device = device
        device.add_services(
            [
                gatt.Service(_uuid(self.service_uuid), [self._measurement, *self._features]),
                _info_service(self.info),
                gatt.Service(_uuid(0x180F), [self._battery]),
            ]
        )
        device.on(device.EVENT_CONNECTION, self._on_connection)
        self._measurement.on(self._measurement.EVENT_SUBSCRIPTION, self._on_subscription)
        self.radio.attach(self)
        self._present = True
        await self._advertise()
        return self

    @property
    def device(self) -> Device:
        """The peripheral's Bumble device (raises before :meth:`start` and after :meth:`close`)."""
        if self._device is None:
            raise RuntimeError(f"peripheral {self.name} is not running")
        return self._device

    @property
    def controller(self) -> Controller:
        """The peripheral's emulated controller."""
        if self._controller is None:
            raise RuntimeError(f"peripheral {self.name} is not started")
        return self._controller

    @property
    def connected(self) -> bool:
        return self._connection is not None

    @property
    def subscribed(self) -> bool:
        """Whether a connected central has enabled indications of the measurement characteristic."""
        return self._subscribed

    @property
    def stored_count(self) -> int:
        """Readings taken but not yet confirmed by a central."""
        return len(self._stored)

    async def measure(self, value: bytes) -> bool:
        """Take a reading: indicate it (True once confirmed) or store it for the next connection (False).

        Stored readings are delivered first and in order; a reading interrupted by link loss stays stored.
        """
        seq = self._next_seq
        self._next_seq += 1
        self._stored.append((seq, bytes(value)))
        if not self._subscribed:
            return False
        await self._flush()
        return not self._stored or self._stored[0][0] > seq

    async def set_battery(self, level: int) -> None:
        """Set the Battery Level (0-100 %) and notify a subscribed central."""
        value = bytes([self._check_level(level)])
        self._battery.value = value
        if self._connection is not None:
            await self.device.notify_subscribers(self._battery, value)

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

    @staticmethod
    def _check_level(level: int) -> int:
        if not 0 <= level <= 100:
            raise ValueError(f"battery level {level} is outside 0-100")
        return level

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

    def _on_connection(self, connection: Connection) -> None:
        if connection.role != Role.PERIPHERAL:
            return
        self._connection = connection
        self._link_lost = asyncio.get_running_loop().create_future()
        connection.on(connection.EVENT_DISCONNECTION, lambda reason: self._on_disconnection(connection))

    def _on_disconnection(self, connection: Connection) -> None:
        if self._connection is not connection:
            return
        self._connection = None
        self._subscribed = False
        if self._link_lost is not None and not self._link_lost.done():
            self._link_lost.set_result(None)
        if self._present and self._device is not None:
            self._spawn(self._advertise())  # like a real device: advertise again after a disconnect

    def _on_subscription(self, bearer: object, notify_enabled: bool, indicate_enabled: bool) -> None:
        if bearer is not self._connection:
            return
        self._subscribed = indicate_enabled
        if indicate_enabled and self._stored:
            self._spawn(self._flush())

    async def _flush(self) -> None:
        """Indicate stored readings oldest first, each removed only once confirmed."""
        async with self._flush_lock:
            while self._stored and self._subscribed and self._connection is not None:
                if not await self._indicate(self._connection, self._stored[0][1]):
                    return
                self._stored.popleft()

    async def _indicate(self, connection: Connection, value: bytes) -> bool:
        """Indicate one value; False when the link dropped before the confirmation.

        Bumble's server waits 30 s for a confirmation that a dropped link never brings, so the wait is
        raced against this connection's loss.
        """
        assert self._link_lost is not None
        lost = self._link_lost
        indication = asyncio.ensure_future(
            self.device.indicate_subscriber(connection, self._measurement, value)
        )
        try:
            await asyncio.wait({indication, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not indication.done():
                indication.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await indication
        return not indication.cancelled() and indication.exception() is None


async def create_peripheral(
    radio: HomeRadio,
    kind: str,
    *,
    name: str | None = None,
    serial: str | None = None,
    firmware: str = "1.0.0",
    battery: int = 100,
    advertising_interval_ms: float = 20.0,
) -> EmulatedPeripheral:
    """Create and start one of the demo device kinds from :data:`PROFILES` on ``radio``."""
    profile = PROFILES[kind]
    address = next_device_address()
    serial = serial or address.replace(":", "")[-6:]
    peripheral = EmulatedPeripheral(
        radio,
        name=name or f"{profile.model}-{serial}",
        service_uuid=profile.service_uuid,
        measurement_uuid=profile.measurement_uuid,
        readable={profile.feature_uuid: profile.feature_value},
        info=DeviceInformation(model=profile.model, serial=serial, firmware=firmware),
        battery=battery,
        address=address,
        advertising_interval_ms=advertising_interval_ms,
    )
    return await peripheral.start()
