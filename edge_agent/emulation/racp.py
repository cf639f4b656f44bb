"""The Record Access Control Point (0x2A52) of emulated glucose meters and CGMs: records and procedures.

A meter keeps :class:`Record` values in a :class:`RecordStore`, keyed by sequence number (Glucose Service)
or time offset (CGM Service). :class:`RecordAccessControlPoint` runs the RACP procedures over that store,
byte for byte as the services define them:

- Report Stored Records (0x01): the matching records go out as measurement notifications (each followed
  by its context, when it has one), then a Response Code (0x06) is indicated.
- Delete Stored Records (0x02), Abort Operation (0x03) and Report Number of Stored Records (0x04, answered
  by Number of Stored Records Response 0x05 with a uint16).
- Operators All, <=, >=, within range, first and last; filter type 0x01 with a uint16 operand. A flavour
  (:data:`GLUCOSE`, :data:`CGM`) says which operators a device supports and which ATT application error
  codes it uses for "procedure already in progress" and "CCCD improperly configured".

A write that is refused outright (:meth:`RecordAccessControlPoint.refusal`) is an ATT error, not a
response; everything else is answered by an indication. How values reach the central (notify, indicate,
what a dropped link means) is injected as two callables, so this module does no I/O of its own; the
peripheral in :mod:`edge_agent.emulation.peripheral` supplies them.
"""

from __future__ import annotations

import asyncio
import enum
import struct
from bisect import insort
from collections.abc import Awaitable, Callable, Collection, Coroutine
from dataclasses import dataclass
from typing import Any

_UINT16 = struct.Struct("<H")
# The filter type both services define as 0x01: sequence number (GLS) or time offset (CGMS), a uint16.
FILTER_TYPE_KEY = 0x01
# ATT error for a write too short to hold an op code and an operator.
ATT_INVALID_ATTRIBUTE_LENGTH = 0x0D


class Opcode(enum.IntEnum):
    REPORT_STORED_RECORDS = 0x01
    DELETE_STORED_RECORDS = 0x02
    ABORT_OPERATION = 0x03
    REPORT_NUMBER_OF_STORED_RECORDS = 0x04
    NUMBER_OF_STORED_RECORDS_RESPONSE = 0x05
    RESPONSE_CODE = 0x06


class Operator(enum.IntEnum):
    NULL = 0x00
    ALL = 0x01
    LESS_OR_EQUAL = 0x02
    GREATER_OR_EQUAL = 0x03
    WITHIN_RANGE = 0x04
    FIRST = 0x05
    LAST = 0x06


class ResponseValue(enum.IntEnum):
    SUCCESS = 0x01
    OPCODE_NOT_SUPPORTED = 0x02
    INVALID_OPERATOR = 0x03
    OPERATOR_NOT_SUPPORTED = 0x04
    INVALID_OPERAND = 0x05
    NO_RECORDS_FOUND = 0x06
    ABORT_UNSUCCESSFUL = 0x07
    PROCEDURE_NOT_COMPLETED = 0x08
    OPERAND_NOT_SUPPORTED = 0x09


_NO_OPERAND = frozenset({Operator.ALL, Operator.FIRST, Operator.LAST})


@dataclass(frozen=True, slots=True)
class RacpFlavour:
    """What differs between the services that share the RACP."""

    name: str
    operators: frozenset[Operator]
    # ATT application error codes for refused writes.
    procedure_already_in_progress: int
    cccd_improperly_configured: int


# Glucose Service 1.0 defines its own application errors 0x80 and 0x81.
GLUCOSE = RacpFlavour(
    "glucose",
    frozenset(Operator) - {Operator.NULL},
    procedure_already_in_progress=0x80,
    cccd_improperly_configured=0x81,
)
# CGM Service uses the Core Specification Supplement's common codes (0x80/0x81 are its CRC errors).
CGM = RacpFlavour(
    "cgm",
    frozenset({Operator.ALL, Operator.GREATER_OR_EQUAL}),
    procedure_already_in_progress=0xFE,
    cccd_improperly_configured=0xFD,
)


@dataclass(frozen=True, slots=True)
class Record:
    """One stored measurement: its key (sequence number or time offset), bytes and optional context."""

    key: int
    measurement: bytes
    context: bytes | None = None


class RecordStore:
    """Records kept in key order; a key appears at most once (a later add replaces the record)."""

    def __init__(self) -> None:
        self._records: list[Record] = []

    def __len__(self) -> int:
        return len(self._records)

    @property
    def records(self) -> tuple[Record, ...]:
        return tuple(self._records)

    @property
    def next_key(self) -> int:
        """One past the highest key (0 when empty)."""
        return self._records[-1].key + 1 if self._records else 0

    def add(self, record: Record) -> None:
        if not 0 <= record.key <= 0xFFFF:
            raise ValueError(f"record key {record.key} does not fit the uint16 filter")
        self._records = [r for r in self._records if r.key != record.key]
        insort(self._records, record, key=lambda r: r.key)

    def select(self, operator: Operator, low: int = 0, high: int = 0xFFFF) -> list[Record]:
        """Records matching ``operator``; ``low``/``high`` are the operand(s) where it takes any."""
        records = self._records
        match operator:
            case Operator.ALL:
                return list(records)
            case Operator.LESS_OR_EQUAL:
                return [r for r in records if r.key <= low]
            case Operator.GREATER_OR_EQUAL:
                return [r for r in records if r.key >= low]
            case Operator.WITHIN_RANGE:
                return [r for r in records if low <= r.key <= high]
            case Operator.FIRST:
                return records[:1]
            case Operator.LAST:
                return records[-1:]
        return []

    def delete(self, keys: Collection[int]) -> None:
        self._records = [r for r in self._records if r.key not in keys]


@dataclass(frozen=True, slots=True)
class Request:
    """A validated request: its op code, operator and the key bounds of its operand."""

    opcode: Opcode
    operator: Operator
    low: int = 0
    high: int = 0xFFFF


def response_code(request_opcode: int, value: ResponseValue) -> bytes:
    """Response Code indication: op code 0x06, operator Null, request op code, response value."""
    return bytes([Opcode.RESPONSE_CODE, Operator.NULL, request_opcode, value])


def number_of_records_response(count: int) -> bytes:
    """Number of Stored Records Response: op code 0x05, operator Null, uint16 count."""
    return bytes([Opcode.NUMBER_OF_STORED_RECORDS_RESPONSE, Operator.NULL]) + _UINT16.pack(min(count, 0xFFFF))


def parse_request(data: bytes, flavour: RacpFlavour) -> Request | bytes:
    """Validate a written request: the :class:`Request`, or the Response Code bytes refusing it."""
    opcode, operator, operand = data[0], data[1], data[2:]
    if opcode not in (
        Opcode.REPORT_STORED_RECORDS,
        Opcode.DELETE_STORED_RECORDS,
        Opcode.ABORT_OPERATION,
        Opcode.REPORT_NUMBER_OF_STORED_RECORDS,
    ):
        return response_code(opcode, ResponseValue.OPCODE_NOT_SUPPORTED)
    if opcode == Opcode.ABORT_OPERATION:
        if operator != Operator.NULL:
            return response_code(opcode, ResponseValue.INVALID_OPERATOR)
        if operand:
            return response_code(opcode, ResponseValue.INVALID_OPERAND)
        return Request(Opcode.ABORT_OPERATION, Operator.NULL)
    if operator == Operator.NULL:
        return response_code(opcode, ResponseValue.INVALID_OPERATOR)
    if operator not in flavour.operators:  # also every operator above 0x06 (reserved)
        return response_code(opcode, ResponseValue.OPERATOR_NOT_SUPPORTED)
    op = Operator(operator)
    if op in _NO_OPERAND:
        if operand:
            return response_code(opcode, ResponseValue.INVALID_OPERAND)
        return Request(Opcode(opcode), op)
    if not operand:
        return response_code(opcode, ResponseValue.INVALID_OPERAND)
    if operand[0] != FILTER_TYPE_KEY:  # e.g. GLS user facing time (0x02): not supported here
        return response_code(opcode, ResponseValue.OPERAND_NOT_SUPPORTED)
    values = operand[1:]
    expected = 4 if op == Operator.WITHIN_RANGE else 2
    if len(values) != expected:
        return response_code(opcode, ResponseValue.INVALID_OPERAND)
    low = _UINT16.unpack_from(values)[0]
    if op == Operator.WITHIN_RANGE:
        high = _UINT16.unpack_from(values, 2)[0]
        if low > high:
            return response_code(opcode, ResponseValue.INVALID_OPERAND)
        return Request(Opcode(opcode), op, low, high)
    return Request(Opcode(opcode), op, low)


# Sends one record (measurement, then context): False when it could not be sent (link lost, CCCD off).
SendRecord = Callable[[Record], Awaitable[bool]]
# Indicates one RACP value and waits for the confirmation: False when the link dropped first.
Indicate = Callable[[bytes], Awaitable[bool]]


class RecordAccessControlPoint:
    """RACP procedures over one :class:`RecordStore` for one connection at a time.

    The peripheral calls :meth:`refusal` inside the ATT write (a code there becomes the ATT error), then
    spawns :meth:`run` with the written bytes; :meth:`reset` forgets a procedure when the link drops.
    """

    def __init__(self, flavour: RacpFlavour, store: RecordStore) -> None:
        self.flavour = flavour
        self.store = store
        # Keys sent in a Report Stored Records procedure that ended in Success.
        self.reported: set[int] = set()
        self._procedures = 0  # accepted writes not yet answered (an Abort runs beside a report)
        self._generation = 0  # bumped by reset(), so procedures of a dropped link count for nothing
        self._reporting = False
        self._abort = False
        self._report_done = asyncio.Event()
        self._report_done.set()

    @property
    def in_progress(self) -> bool:
        return self._procedures > 0

    def refusal(self, data: bytes, *, racp_indications: bool, record_notifications: bool) -> int | None:
        """The ATT error code refusing this write, or None when it is accepted."""
        if len(data) < 2:
            return ATT_INVALID_ATTRIBUTE_LENGTH
        if not racp_indications:
            return self.flavour.cccd_improperly_configured
        if self.in_progress and data[0] != Opcode.ABORT_OPERATION:
            return self.flavour.procedure_already_in_progress
        if data[0] == Opcode.REPORT_STORED_RECORDS and not record_notifications:
            return self.flavour.cccd_improperly_configured
        return None

    def run(self, data: bytes, send_record: SendRecord, indicate: Indicate) -> Coroutine[Any, Any, None]:
        """Mark the procedure in progress now and return the coroutine that carries it out."""
        self._procedures += 1
        return self._run(data, send_record, indicate, self._generation)

    def reset(self) -> None:
        """The link dropped: no procedure is in progress any more (the records stay)."""
        self._procedures = 0
        self._generation += 1
        self._reporting = False
        self._abort = False
        self._report_done.set()

    async def _run(self, data: bytes, send_record: SendRecord, indicate: Indicate, generation: int) -> None:
        answered = False

        async def respond(value: bytes) -> bool:
            # The procedure is over once its answer is on its way. A central's stack confirms an
            # indication before its application sees it, so a real collector's next request always comes
            # after the confirmation; bleak on Bumble confirms only after the callback returned.
            nonlocal answered
            if not answered and generation == self._generation:
                self._procedures -= 1
            answered = True
            return await indicate(value)

        try:
            request = parse_request(data, self.flavour)
            if isinstance(request, bytes):
                await respond(request)
                return
            match request.opcode:
                case Opcode.REPORT_STORED_RECORDS:
                    await self._report(request, send_record, respond, generation)
                case Opcode.DELETE_STORED_RECORDS:
                    # Deleting what is not there succeeds too: the outcome the central asked for holds.
                    selected = self.store.select(request.operator, request.low, request.high)
                    self.store.delete({record.key for record in selected})
                    await respond(response_code(request.opcode, ResponseValue.SUCCESS))
                case Opcode.REPORT_NUMBER_OF_STORED_RECORDS:
                    selected = self.store.select(request.operator, request.low, request.high)
                    await respond(number_of_records_response(len(selected)))
                case Opcode.ABORT_OPERATION:
                    await self._abort_report(respond)
        finally:
            if not answered and generation == self._generation:
                self._procedures -= 1

    async def _report(
        self, request: Request, send_record: SendRecord, respond: Indicate, generation: int
    ) -> None:
        selected = self.store.select(request.operator, request.low, request.high)
        if not selected:
            await respond(response_code(request.opcode, ResponseValue.NO_RECORDS_FOUND))
            return
        outcome = await self._transfer(selected, send_record, generation)
        if outcome is None:
            return  # aborted: the Abort procedure answers, an aborted report sends no response of its own
        if outcome is ResponseValue.SUCCESS:
            self.reported.update(record.key for record in selected)
        await respond(response_code(request.opcode, outcome))

    async def _transfer(
        self, selected: list[Record], send_record: SendRecord, generation: int
    ) -> ResponseValue | None:
        """Send the records: Success, Procedure not completed (notifications off, link lost) or None."""
        self._reporting = True
        self._report_done.clear()
        try:
            for record in selected:
                if self._abort:
                    return None
                if not await send_record(record):
                    return ResponseValue.PROCEDURE_NOT_COMPLETED
            return ResponseValue.SUCCESS
        finally:
            if generation == self._generation:
                self._reporting = False
                self._report_done.set()

    async def _abort_report(self, respond: Indicate) -> None:
        if not self._reporting:
            # Nothing to abort: answered as Nordic's GLS and CGMS servers do.
            await respond(response_code(Opcode.ABORT_OPERATION, ResponseValue.ABORT_UNSUCCESSFUL))
            return
        self._abort = True
        await self._report_done.wait()
        self._abort = False
        await respond(response_code(Opcode.ABORT_OPERATION, ResponseValue.SUCCESS))


__all__ = [
    "CGM",
    "FILTER_TYPE_KEY",
    "GLUCOSE",
    "Opcode",
    "Operator",
    "RacpFlavour",
    "Record",
    "RecordAccessControlPoint",
    "RecordStore",
    "Request",
    "ResponseValue",
    "number_of_records_response",
    "parse_request",
    "response_code",
]
