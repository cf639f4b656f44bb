"""Helpers for the emulated devices' tests: a value inbox, an ATT snooper and a manual reference clock."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from datetime import datetime, timedelta

from bleak.backends.characteristic import BleakGATTCharacteristic
from bumble.snoop import Snooper

# ATT op codes seen on the air.
ATT_HANDLE_VALUE_NOTIFICATION = 0x1B
ATT_HANDLE_VALUE_INDICATION = 0x1D
ATT_HANDLE_VALUE_CONFIRMATION = 0x1E
_ATT_CID = 0x0004


def other_tasks() -> set[asyncio.Task[object]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


class Inbox:
    """Values a central received, labelled by the callback that took them, in arrival order."""

    def __init__(self) -> None:
        self.values: list[tuple[str, bytes]] = []
        self._changed = asyncio.Event()

    def on(self, label: str) -> Callable[[BleakGATTCharacteristic, bytearray], None]:
        def callback(_: BleakGATTCharacteristic, data: bytearray) -> None:
            self.values.append((label, bytes(data)))
            self._changed.set()

        return callback

    def of(self, label: str) -> list[bytes]:
        return [data for name, data in self.values if name == label]

    async def wait_for(self, predicate: Callable[[Inbox], bool], within: float = 1.0) -> None:
        async with asyncio.timeout(within):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()

    async def wait_count(self, label: str, count: int, within: float = 1.0) -> list[bytes]:
        await self.wait_for(lambda inbox: len(inbox.of(label)) >= count, within)
        return self.of(label)


class AttSnooper(Snooper):
    """Records the ATT op codes of the HCI ACL packets passing the hub's host, per direction."""

    def __init__(self) -> None:
        self.received: list[int] = []  # controller -> host: what the peripheral sent
        self.sent: list[int] = []  # host -> controller: what the hub sent

    def snoop(self, hci_packet: bytes, direction: Snooper.Direction) -> None:
        # HCI ACL: type 0x02, handle+flags (2), length (2); then L2CAP length (2), channel (2), ATT op code.
        if len(hci_packet) < 10 or hci_packet[0] != 0x02:
            return
        packet_boundary = hci_packet[2] >> 4 & 0x3
        if packet_boundary == 0x1:  # a continuation fragment carries no L2CAP header
            return
        if int.from_bytes(hci_packet[7:9], "little") != _ATT_CID:
            return
        target = self.received if direction == Snooper.Direction.CONTROLLER_TO_HOST else self.sent
        target.append(hci_packet[9])


class ManualClock:
    """A reference clock that moves only when told: drift and offsets become exact."""

    def __init__(self, start: datetime = datetime(2024, 3, 5, 14, 30, 15)) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


async def eventually(condition: Callable[[], bool], within: float = 1.0) -> None:
    """Wait until ``condition()`` holds, yielding to the loop (the peripheral acts after the central)."""
    async with asyncio.timeout(within):
        # Polling is deliberate: the peripheral's state has no event to wait on, and tests must not add one.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.001)


def glucose_measurement(sequence: int, when: datetime, mg_dl: int = 100, *, context: bool = False) -> bytes:
    """Glucose Measurement (0x2A18), field by field: flags, sequence number, base time, concentration
    (SFLOAT in kg/L: mg/dL x 10^-5), type/location (capillary whole blood, finger)."""
    flags = 0x02 | (0x10 if context else 0x00)  # concentration + type/location present; context follows
    base_time = struct.pack("<HBBBBB", when.year, when.month, when.day, when.hour, when.minute, when.second)
    concentration = (0xB << 12) | mg_dl  # exponent -5, mantissa mg/dL
    return struct.pack("<BH", flags, sequence) + base_time + struct.pack("<HB", concentration, 0x11)


def glucose_context(sequence: int, meal: int = 0x01) -> bytes:
    """Glucose Measurement Context (0x2A34): flags (meal present), sequence number, meal (preprandial)."""
    return struct.pack("<BHB", 0x02, sequence, meal)


def sequence_of(measurement: bytes) -> int:
    """The sequence number in a Glucose Measurement or Context (bytes 1-2)."""
    return int(struct.unpack_from("<H", measurement, 1)[0])


def cgm_measurement(time_offset: int, mg_dl: int = 120) -> bytes:
    """CGM Measurement (0x2AA7): size 6, flags 0, glucose SFLOAT (mg/dL, exponent 0), time offset."""
    return struct.pack("<BBHH", 6, 0x00, mg_dl & 0x0FFF, time_offset)
