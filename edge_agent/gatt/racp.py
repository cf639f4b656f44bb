"""Record Access Control Point (0x2A52): asking a glucose meter or CGM for its stored records.

The hub writes a request and the device answers with an indication (GATT Specification Supplement,
"Record Access Control Point"):

    op code    uint8   1 report stored records, 2 delete stored records, 3 abort operation,
                       4 report number of stored records, 5 number of stored records response,
                       6 response code
    operator   uint8   0 null, 1 all records, 2 <=, 3 >=, 4 within range (inclusive), 5 first, 6 last
    operand    for <= and >=: filter type uint8 (1 = sequence number) and one uint16;
               for "within range": filter type and two uint16 (minimum, maximum);
               for response 5: uint16 number of records; for response 6: request op code uint8 and
               response code value uint8

Requests filter by sequence number only: that is what "records after N" needs, and the user-facing
time filter (type 2) is a ParseError ("not supported"). The encoders serve the hub (requests) and
emulated devices (responses); the parsers serve the other side of each. Stored records themselves
arrive as ordinary Glucose Measurement or CGM Measurement notifications.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from edge_agent.gatt._fields import (
    FieldReader,
    FieldWriter,
    check_exact_length,
    check_minimum_length,
    enum_value,
)
from edge_agent.gatt.errors import ParseError

RECORD_ACCESS_CONTROL_POINT = "0x2A52 Record Access Control Point"

_RESPONSE_LENGTH = 4  # op code, operator (null), and two bytes of operand


class RacpOpCode(IntEnum):
    REPORT_STORED_RECORDS = 1
    DELETE_STORED_RECORDS = 2
    ABORT_OPERATION = 3
    REPORT_NUMBER_OF_STORED_RECORDS = 4
    NUMBER_OF_STORED_RECORDS_RESPONSE = 5
    RESPONSE_CODE = 6


class RacpOperator(IntEnum):
    NULL = 0
    ALL_RECORDS = 1
    LESS_THAN_OR_EQUAL = 2
    GREATER_THAN_OR_EQUAL = 3
    WITHIN_RANGE = 4  # inclusive
    FIRST_RECORD = 5
    LAST_RECORD = 6


class RacpFilterType(IntEnum):
    SEQUENCE_NUMBER = 1
    USER_FACING_TIME = 2


class RacpResponseCode(IntEnum):
    SUCCESS = 1
    OP_CODE_NOT_SUPPORTED = 2
    INVALID_OPERATOR = 3
    OPERATOR_NOT_SUPPORTED = 4
    INVALID_OPERAND = 5
    NO_RECORDS_FOUND = 6
    ABORT_UNSUCCESSFUL = 7
    PROCEDURE_NOT_COMPLETED = 8
    OPERAND_NOT_SUPPORTED = 9


_REQUEST_OP_CODES = frozenset(
    {
        RacpOpCode.REPORT_STORED_RECORDS,
        RacpOpCode.DELETE_STORED_RECORDS,
        RacpOpCode.ABORT_OPERATION,
        RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
    }
)
_OP_CODE_VALUES = frozenset(int(code) for code in RacpOpCode)
# How many sequence numbers each operator takes as its operand.
_OPERAND_COUNT = {
    RacpOperator.NULL: 0,
    RacpOperator.ALL_RECORDS: 0,
    RacpOperator.LESS_THAN_OR_EQUAL: 1,
    RacpOperator.GREATER_THAN_OR_EQUAL: 1,
    RacpOperator.WITHIN_RANGE: 2,
    RacpOperator.FIRST_RECORD: 0,
    RacpOperator.LAST_RECORD: 0,
}


@dataclass(frozen=True, slots=True)
class RacpRequest:
    """A request the hub writes: ``sequence_numbers`` is the operand (one for <= and >=, minimum and
    maximum for "within range", none otherwise). Abort takes the null operator; the others do not."""

    op_code: RacpOpCode
    operator: RacpOperator
    sequence_numbers: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.op_code not in _REQUEST_OP_CODES:
            raise ValueError(f"{self.op_code.name} is a response, not a request")
        if (self.op_code is RacpOpCode.ABORT_OPERATION) != (self.operator is RacpOperator.NULL):
            raise ValueError("abort takes the null operator, and only abort does")
        if len(self.sequence_numbers) != _OPERAND_COUNT[self.operator]:
            raise ValueError(
                f"{self.operator.name} takes {_OPERAND_COUNT[self.operator]} sequence number(s), "
                f"got {len(self.sequence_numbers)}"
            )


@dataclass(frozen=True, slots=True)
class NumberOfStoredRecords:
    """Response op code 5: how many records match the request."""

    count: int


@dataclass(frozen=True, slots=True)
class RacpResponse:
    """Response op code 6: the outcome of a request.

    ``request_op_code`` is the op code answered: a ``RacpOpCode`` when it is one, a plain int when the
    device echoes an op code it does not support.
    """

    request_op_code: int
    response_code: RacpResponseCode


def report_all_records() -> bytes:
    """The request "report all stored records"."""
    return encode_racp_request(RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.ALL_RECORDS))


def report_records_from(sequence_number: int) -> bytes:
    """The request "report stored records with sequence number >= ``sequence_number``"."""
    return encode_racp_request(
        RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.GREATER_THAN_OR_EQUAL, (sequence_number,))
    )


def report_number_of_records(from_sequence_number: int | None = None) -> bytes:
    """The request "report the number of stored records" (all, or those >= ``from_sequence_number``)."""
    op = RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS
    if from_sequence_number is None:
        return encode_racp_request(RacpRequest(op, RacpOperator.ALL_RECORDS))
    return encode_racp_request(RacpRequest(op, RacpOperator.GREATER_THAN_OR_EQUAL, (from_sequence_number,)))


def abort_operation() -> bytes:
    """The request "abort the operation in progress"."""
    return encode_racp_request(RacpRequest(RacpOpCode.ABORT_OPERATION, RacpOperator.NULL))


def encode_racp_request(request: RacpRequest) -> bytes:
    """Encode a request; ValueError if a sequence number does not fit in uint16."""
    writer = FieldWriter()
    writer.uint8(int(request.op_code), "op code")
    writer.uint8(int(request.operator), "operator")
    if request.sequence_numbers:
        writer.uint8(int(RacpFilterType.SEQUENCE_NUMBER), "filter type")
        for number in request.sequence_numbers:
            writer.uint16(number, "sequence number")
    return writer.to_bytes()


def parse_racp_request(data: bytes) -> RacpRequest:
    """Parse a request as an emulated device receives it; ParseError if the bytes are not one."""
    characteristic = RECORD_ACCESS_CONTROL_POINT
    check_minimum_length(data, characteristic, 2, "op code and operator")
    reader = FieldReader(data, characteristic)
    op_code = enum_value(RacpOpCode, reader.uint8(), characteristic, "op code")  # Op Code, uint8
    operator = enum_value(RacpOperator, reader.uint8(), characteristic, "operator")  # Operator, uint8
    if op_code not in _REQUEST_OP_CODES:
        raise ParseError(
            characteristic, f"op code {int(op_code)} ({op_code.name}) is a response, not a request"
        )
    count = _OPERAND_COUNT[operator]
    required = 2 + (1 + 2 * count if count else 0)
    if len(data) != required:
        raise ParseError(
            characteristic,
            f"operator {operator.name} needs {required} bytes with its operand, got {len(data)}",
        )
    numbers: tuple[int, ...] = ()
    if count:
        filter_type = enum_value(RacpFilterType, reader.uint8(), characteristic, "filter type")  # Filter Type
        if filter_type is not RacpFilterType.SEQUENCE_NUMBER:
            raise ParseError(
                characteristic, f"filter type {int(filter_type)} ({filter_type.name}) is not supported"
            )
        numbers = tuple(reader.uint16() for _ in range(count))  # Sequence Number(s), uint16 each
    try:
        return RacpRequest(op_code, operator, numbers)
    except ValueError as exc:  # abort without the null operator, or a null operator without abort
        raise ParseError(characteristic, str(exc)) from exc


def encode_racp_response(response: NumberOfStoredRecords | RacpResponse) -> bytes:
    """Encode a response as an emulated device indicates it."""
    writer = FieldWriter()
    if isinstance(response, NumberOfStoredRecords):
        writer.uint8(int(RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE), "op code")
        writer.uint8(int(RacpOperator.NULL), "operator")
        writer.uint16(response.count, "number of records")
    else:
        writer.uint8(int(RacpOpCode.RESPONSE_CODE), "op code")
        writer.uint8(int(RacpOperator.NULL), "operator")
        writer.uint8(int(response.request_op_code), "request op code")
        writer.uint8(int(response.response_code), "response code")
    return writer.to_bytes()


def parse_racp_response(data: bytes) -> NumberOfStoredRecords | RacpResponse:
    """Parse a response the device indicates; ParseError if the bytes are not one."""
    characteristic = RECORD_ACCESS_CONTROL_POINT
    check_exact_length(data, characteristic, _RESPONSE_LENGTH, "op code, operator and operand")
    reader = FieldReader(data, characteristic)
    op_code = enum_value(RacpOpCode, reader.uint8(), characteristic, "op code")  # Op Code, uint8
    operator = reader.uint8()  # Operator, uint8: null in responses
    if operator != RacpOperator.NULL:
        raise ParseError(characteristic, f"a response carries the null operator, not {operator}")
    if op_code is RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
        return NumberOfStoredRecords(reader.uint16())  # Number of Records, uint16
    if op_code is RacpOpCode.RESPONSE_CODE:
        request = reader.uint8()  # Request Op Code, uint8
        code = reader.uint8()  # Response Code Value, uint8
        request_op_code: int = RacpOpCode(request) if request in _OP_CODE_VALUES else request
        return RacpResponse(
            request_op_code, enum_value(RacpResponseCode, code, characteristic, "response code")
        )
    raise ParseError(characteristic, f"op code {int(op_code)} ({op_code.name}) is a request, not a response")
