"""The records of an emulated glucose meter or CGM, served through their control points.

A :class:`RecordKeeper` ties a :class:`~edge_agent.emulation.racp.RecordStore` and its
:class:`~edge_agent.emulation.racp.RecordAccessControlPoint` (and, for a CGM, the
:class:`~edge_agent.emulation.cgm.SpecificOpsControlPoint`) to one peripheral: it refuses control point
writes with the services' ATT errors or starts their procedures, sends each record as its measurement
then its context, and turns a new measurement into a record (a CGM also notifies it live while its
session runs).

Sending over the link, counting delivered values (for ``drop_link_after``) and running tasks belong to
:mod:`edge_agent.emulation.peripheral`, which passes them in.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any

from bumble import att

from edge_agent.emulation.cgm import SpecificOpsControlPoint, session_start_time
from edge_agent.emulation.clock import DeviceClock
from edge_agent.emulation.link import PeripheralLink
from edge_agent.emulation.profiles import RECORD_ACCESS_CONTROL_POINT
from edge_agent.emulation.racp import CGM, Record, RecordAccessControlPoint, RecordStore

CGM_STATUS = 0x2AA9
CGM_SESSION_START_TIME = 0x2AAA
CGM_SPECIFIC_OPS_CONTROL_POINT = 0x2AAC

# Sends a value to a characteristic over a link: True once delivered (see PeripheralLink).
Send = Callable[[PeripheralLink, int, bytes], Awaitable[bool]]
# Counts a delivered value towards drop_link_after (and may sever the link).
Delivered = Callable[[PeripheralLink], Awaitable[bool]]
Spawn = Callable[[Coroutine[Any, Any, None]], None]


class RecordKeeper:
    """A meter's records and control points, for one peripheral."""

    def __init__(
        self,
        racp: RecordAccessControlPoint,
        *,
        record_uuid: int,
        context_uuid: int | None,
        socp: SpecificOpsControlPoint | None,
        values: dict[int, bytes],
        clock: DeviceClock,
        send: Send,
        delivered: Delivered,
        spawn: Spawn,
    ) -> None:
        self.racp = racp
        self.socp = socp
        self.record_uuid = record_uuid
        self.context_uuid = context_uuid
        self._values = values  # the peripheral's plain values: CGM Status and Session Start Time live here
        self._clock = clock
        self._send = send
        self._delivered = delivered
        self._spawn = spawn

    @property
    def store(self) -> RecordStore:
        return self.racp.store

    @property
    def unreported(self) -> int:
        """Records never sent in a successful report (nor live)."""
        return sum(1 for record in self.store.records if record.key not in self.racp.reported)

    def add(self, record: Record) -> None:
        self.store.add(record)
        self.racp.reported.discard(record.key)

    async def measure(self, link: PeripheralLink | None, value: bytes) -> bool:
        """Keep a new measurement as a record; True when it was also delivered live (CGM only).

        A glucose record takes the next sequence number; a CGM record its time offset (bytes 4-5).
        """
        if self.racp.flavour is CGM:
            if len(value) < 6:
                raise ValueError("a CGM Measurement holds its time offset in bytes 4-5")
            key = int(struct.unpack_from("<H", value, 4)[0])
            self._values[CGM_STATUS] = struct.pack("<H", key) + self._values[CGM_STATUS][2:]
        else:
            key = self.store.next_key
        self.add(Record(key, value))
        live = self.socp is not None and self.socp.session_running
        if live and link is not None and link.notifies(self.record_uuid):
            if not await self._send(link, self.record_uuid, value):
                return False
            self.racp.reported.add(key)
            await self._delivered(link)
            return True
        return False

    def reset(self) -> None:
        """The link dropped: no procedure is in progress any more."""
        self.racp.reset()
        if self.socp is not None:
            self.socp.end()

    def write_racp(self, link: PeripheralLink, value: bytes) -> None:
        """A RACP write: refused with an ATT error, or its procedure started."""
        code = self.racp.refusal(
            value,
            racp_indications=link.indicates(RECORD_ACCESS_CONTROL_POINT),
            record_notifications=link.notifies(self.record_uuid),
        )
        if code is not None:
            raise att.ATT_Error(code)
        self._spawn(
            self.racp.run(
                value,
                partial(self._send_record, link),
                partial(self._send, link, RECORD_ACCESS_CONTROL_POINT),
            )
        )

    def write_socp(self, link: PeripheralLink, value: bytes) -> None:
        """A CGM Specific Ops Control Point write: refused with an ATT error, or answered."""
        socp = self.socp
        if socp is None:
            raise att.ATT_Error(att.ErrorCode.WRITE_NOT_PERMITTED)
        code = socp.refusal(value, socp_indications=link.indicates(CGM_SPECIFIC_OPS_CONTROL_POINT))
        if code is not None:
            raise att.ATT_Error(code)
        socp.begin()
        self._spawn(self._answer_socp(link, socp, value))

    async def _answer_socp(self, link: PeripheralLink, socp: SpecificOpsControlPoint, value: bytes) -> None:
        try:
            was_running = socp.session_running
            response = socp.answer(value)
            if socp.session_running and not was_running:
                self._values[CGM_SESSION_START_TIME] = session_start_time(self._clock.now())
        finally:
            socp.end()  # over once answered, as for the RACP (a central confirms before it reacts)
        await self._send(link, CGM_SPECIFIC_OPS_CONTROL_POINT, response)

    async def _send_record(self, link: PeripheralLink, record: Record) -> bool:
        """Notify a record's measurement, then its context when it has one and the central listens."""
        if not await self._send(link, self.record_uuid, record.measurement):
            return False
        context = self.context_uuid
        if (
            record.context is not None
            and context is not None
            and link.notifies(context)
            and not await self._send(link, context, record.context)
        ):
            return False
        return await self._delivered(link)


__all__ = ["CGM_SESSION_START_TIME", "RecordKeeper"]
