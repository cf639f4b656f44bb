"""One emulated home's radio space: a Bumble LocalLink with the hub's central on it.

Each home gets its own :class:`HomeRadio`, so homes are separate radio spaces: every controller on a
LocalLink receives every advertising PDU, and keeping 12 homes on 12 links keeps one home's devices from
slowing another's discovery. The radio creates the hub's central Bumble device and exposes the bleak
backend classes bound to it (:attr:`HomeRadio.backend`); emulated peripherals
(:mod:`edge_agent.emulation.peripheral`) join its :attr:`HomeRadio.link`. Device addresses are unique
in the whole process, so state keyed by address never collides across homes.

What the agent does with the radio (scanning, connecting, reconnecting) is left to
:mod:`edge_agent.ble.connection`; this module only builds and tears down the emulated hardware.
"""

from __future__ import annotations

import itertools
from types import TracebackType
from typing import TYPE_CHECKING, Self

from bumble import ll
from bumble.controller import Controller
from bumble.core import PhysicalTransport
from bumble.device import Device
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from edge_agent.ble.backend import BleBackend
from edge_agent.ble.bumble_backend import BumbleCentral, backend_for

if TYPE_CHECKING:
    from edge_agent.emulation.peripheral import EmulatedPeripheral

# Random static addresses (top two bits set) from one process-wide counter: unique across homes.
_hub_numbers = itertools.count(1)
_device_numbers = itertools.count(1)


def _address(prefix: str, number: int) -> str:
    return f"{prefix}:00:00:{number >> 16 & 0xFF:02X}:{number >> 8 & 0xFF:02X}:{number & 0xFF:02X}"


def next_device_address() -> str:
    """A fresh random static address for an emulated peripheral (``C0:00:00:xx:xx:xx``)."""
    return _address("C0", next(_device_numbers))


class EmulatedController(Controller):
    """A Bumble controller that can stop answering, as a hung device's radio does.

    With ``accepts_connections`` off it ignores CONNECT_IND while it keeps advertising: LocalLink lets the
    central's controller complete the connection on its own, so the central holds a half-open link whose
    GATT requests are never answered. With ``answers_data`` off the link comes up on both sides but every
    ACL packet from the peer (ATT, SMP) is dropped. Either way the central's setup times out and its
    local disconnect completes; link-layer control (disconnection, encryption) still works.
    """

    accepts_connections: bool = True
    answers_data: bool = True

    def on_le_connect_ind(self, packet: ll.ConnectInd) -> None:
        if self.accepts_connections:
            super().on_le_connect_ind(packet)

    def on_link_acl_data(self, sender_address: Address, transport: PhysicalTransport, data: bytes) -> None:
        if self.answers_data:
            super().on_link_acl_data(sender_address, transport, data)


async def open_bumble_device(name: str, address: str, link: LocalLink) -> tuple[Device, EmulatedController]:
    """Create a controller on ``link`` and a powered-on Bumble device on it (needs a running loop)."""
    controller = EmulatedController(name, link=link)
    device = Device(name=name, address=Address(address), host=Host(controller, AsyncPipeSink(controller)))
    await device.power_on()
    return device, controller


class HomeRadio:
    """One home's LocalLink, the hub's central on it, and the peripherals that joined it.

    Use as ``async with HomeRadio("home-01") as radio:``; :meth:`close` closes the peripherals, the
    central and the link and leaves no task behind.
    """

    def __init__(self, home_id: str) -> None:
        self.home_id = home_id
        self.hub_address = _address("F0", next(_hub_numbers))
        self._link: LocalLink | None = None
        self._central: BumbleCentral | None = None
        self._peripherals: list[EmulatedPeripheral] = []

    async def start(self) -> Self:
        """Create the link and power on the hub's central."""
        if self._central is None:
            self._link = LocalLink()  # type: ignore[no-untyped-call]
            device, controller = await open_bumble_device(f"hub-{self.home_id}", self.hub_address, self._link)
            self._central = BumbleCentral(device, controller)
        return self

    @property
    def link(self) -> LocalLink:
        """The LocalLink peripherals of this home join."""
        if self._link is None:
            raise RuntimeError(f"radio {self.home_id} is not started")
        return self._link

    @property
    def central(self) -> BumbleCentral:
        """The hub's central device and the state its bleak backends share."""
        if self._central is None:
            raise RuntimeError(f"radio {self.home_id} is not started")
        return self._central

    @property
    def backend(self) -> BleBackend:
        """bleak scanner and client classes bound to this home's central."""
        return backend_for(self.central)

    @property
    def peripherals(self) -> tuple[EmulatedPeripheral, ...]:
        return tuple(self._peripherals)

    def attach(self, peripheral: EmulatedPeripheral) -> None:
        """Register a peripheral so :meth:`close` closes it (called by the peripheral itself)."""
        self._peripherals.append(peripheral)

    async def close(self) -> None:
        """Close every peripheral, then the central; drop the link. Safe to call twice."""
        peripherals, self._peripherals = self._peripherals, []
        for peripheral in peripherals:
            await peripheral.close()
        if self._central is not None:
            central, self._central = self._central, None
            await central.close()
            if self._link is not None and central.controller in self._link.controllers:
                self._link.remove_controller(central.controller)
        self._link = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
