"""One central's connection as an emulated peripheral sees it, and sending values over it.

A :class:`PeripheralLink` lives from a connection to its loss. It remembers which CCCDs the central
enabled (Bumble drops them on disconnect, bonded or not) and sends notifications and indications so that
the answer to "was this value delivered?" is exact on a LocalLink:

- A notification counts as sent once the peripheral's controller took every packet of it: the ACL data
  is then ahead of anything the link does next, so severing the link right after cannot overtake it.
- An indication counts as delivered once its confirmation arrived. Bumble's ``indicate_subscriber``
  waits 30 s for a confirmation a dropped link never brings, and raced against the loss it can miss a
  confirmation handled just before the disconnection; :meth:`PeripheralLink.indicate` uses Bumble's
  per-bearer indication slot itself and checks the confirmation even when the loss woke it first.

Which characteristic is notified or indicated, and what a delivered value means to the device, is left
to :mod:`edge_agent.emulation.peripheral`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any

from bumble import att, gatt
from bumble.controller import Controller
from bumble.device import Connection, Device

from edge_agent.ble.bumble_backend import REASON_CONNECTION_TIMEOUT, sever_le_link


class PeripheralLink:
    """A connection from a central: its loss, the CCCDs it enabled, and sending over it."""

    def __init__(self, device: Device, controller: Controller, connection: Connection) -> None:
        self.device = device
        self.controller = controller
        self.connection = connection
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.enabled: dict[int, tuple[bool, bool]] = {}  # characteristic UUID -> (notify, indicate)

    def notifies(self, uuid: int) -> bool:
        return self.enabled.get(uuid, (False, False))[0]

    def indicates(self, uuid: int) -> bool:
        return self.enabled.get(uuid, (False, False))[1]

    def mark_lost(self) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    async def notify(self, attribute: gatt.Characteristic[bytes], value: bytes) -> bool:
        """Notify ``value``; True once the controller took it, False when the link dropped first."""
        connection = self.connection
        await self.device.notify_subscriber(connection, attribute, value)
        queue = self.device.host.get_data_packet_queue(connection.handle)
        with contextlib.suppress(ValueError):  # no packet ever queued on this connection: nothing to wait for
            if queue is not None:
                return await self.unless_lost(queue.drain(connection.handle))
        return not self.lost.done()

    async def indicate(self, attribute: gatt.Characteristic[bytes], value: bytes) -> bool:
        """Indicate ``value``; True once confirmed, False when the link dropped first."""
        server, connection = self.device.gatt_server, self.connection
        slot = server.indication_semaphores[connection]  # one indication in flight per bearer
        if not await self.unless_lost(slot.acquire()):
            return False
        confirmation: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            if self.lost.done():
                return False
            server.pending_confirmations[connection] = confirmation
            pdu = att.ATT_Handle_Value_Indication(
                attribute_handle=attribute.handle, attribute_value=value[: connection.att_mtu - 3]
            )
            server.send_gatt_pdu(connection, bytes(pdu))
            await asyncio.wait({confirmation, self.lost}, return_when=asyncio.FIRST_COMPLETED)
            # The host handles a confirmation before a disconnection that followed it.
            return confirmation.done() and not confirmation.cancelled()
        finally:
            if server.pending_confirmations.get(connection) is confirmation:
                server.pending_confirmations[connection] = None
            slot.release()

    async def unless_lost(self, operation: Awaitable[Any]) -> bool:
        """Await ``operation`` unless the link drops first (then cancel it); True when it completed."""
        future = asyncio.ensure_future(operation)
        try:
            await asyncio.wait({future, self.lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not future.done():
                future.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await future
        return not future.cancelled() and future.exception() is None

    async def sever(self, reason: int = REASON_CONNECTION_TIMEOUT) -> None:
        """End the link on both controllers, as a supervision timeout would, and wait for the loss."""
        sever_le_link(self.controller, self.connection.peer_address, reason)
        await self.lost


__all__ = ["PeripheralLink"]
