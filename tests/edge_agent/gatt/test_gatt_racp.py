"""Record Access Control Point (0x2A52): request encoders, response parsers, and the other side of both."""

from __future__ import annotations

import pytest

from edge_agent.gatt.errors import ParseError
from edge_agent.gatt.racp import (
    NumberOfStoredRecords,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponse,
    RacpResponseCode,
    abort_operation,
    encode_racp_request,
    encode_racp_response,
    parse_racp_request,
    parse_racp_response,
    report_all_records,
    report_number_of_records,
    report_records_from,
)


def test_racp_report_all_records() -> None:
    assert report_all_records() == b"\x01\x01"  # op code 1 report stored records, operator 1 all


def test_racp_report_records_from_sequence_number() -> None:
    # op code 1, operator 3 (>=), filter type 1 (sequence number), sequence number 0x0123
    assert report_records_from(0x0123) == b"\x01\x03\x01\x23\x01"


def test_racp_report_number_of_records() -> None:
    assert report_number_of_records() == b"\x04\x01"  # op code 4, all records
    assert report_number_of_records(7) == b"\x04\x03\x01\x07\x00"  # op code 4, >= 7


def test_racp_abort() -> None:
    assert abort_operation() == b"\x03\x00"  # op code 3, null operator


def test_racp_number_of_stored_records_response() -> None:
    # op code 5, operator null, number of records 300
    assert parse_racp_response(b"\x05\x00\x2c\x01") == NumberOfStoredRecords(300)


def test_racp_response_code() -> None:
    # op code 6, operator null, request op code 1, response code 6 (no records found)
    assert parse_racp_response(b"\x06\x00\x01\x06") == RacpResponse(
        RacpOpCode.REPORT_STORED_RECORDS, RacpResponseCode.NO_RECORDS_FOUND
    )


def test_racp_response_to_an_unknown_op_code_keeps_it_as_a_number() -> None:
    response = parse_racp_response(b"\x06\x00\x10\x02")  # op code 0x10 not supported
    assert response == RacpResponse(0x10, RacpResponseCode.OP_CODE_NOT_SUPPORTED)
    assert isinstance(response, RacpResponse)
    assert not isinstance(response.request_op_code, RacpOpCode)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x06\x00\x01", "needs exactly 4 bytes (op code, operator and operand), got 3"),
        (b"\x06\x00\x01\x01\x00", "needs exactly 4 bytes (op code, operator and operand), got 5"),
        (b"\x06\x01\x01\x01", "a response carries the null operator, not 1"),
        (b"\x01\x00\x01\x01", "op code 1 (REPORT_STORED_RECORDS) is a request, not a response"),
        (b"\x07\x00\x01\x01", "op code 7 is reserved (defined: 1, 2, 3, 4, 5, 6)"),
        (b"\x06\x00\x01\x0a", "response code 10 is reserved (defined: 1, 2, 3, 4, 5, 6, 7, 8, 9)"),
    ],
)
def test_racp_response_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_racp_response(data)
    assert (caught.value.characteristic, caught.value.reason) == (
        "0x2A52 Record Access Control Point",
        reason,
    )


@pytest.mark.parametrize(
    "response",
    [
        NumberOfStoredRecords(0),
        NumberOfStoredRecords(65535),
        *(RacpResponse(op, code) for op in RacpOpCode for code in RacpResponseCode),
        RacpResponse(0xFF, RacpResponseCode.OP_CODE_NOT_SUPPORTED),
    ],
)
def test_racp_response_round_trip(response: NumberOfStoredRecords | RacpResponse) -> None:
    assert parse_racp_response(encode_racp_response(response)) == response


@pytest.mark.parametrize(
    "request_value",
    [
        RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.ALL_RECORDS),
        RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.FIRST_RECORD),
        RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.LAST_RECORD),
        RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.GREATER_THAN_OR_EQUAL, (0,)),
        RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.LESS_THAN_OR_EQUAL, (65535,)),
        RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.WITHIN_RANGE, (10, 20)),
        RacpRequest(RacpOpCode.DELETE_STORED_RECORDS, RacpOperator.ALL_RECORDS),
        RacpRequest(RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS, RacpOperator.GREATER_THAN_OR_EQUAL, (5,)),
        RacpRequest(RacpOpCode.ABORT_OPERATION, RacpOperator.NULL),
    ],
)
def test_racp_request_round_trip(request_value: RacpRequest) -> None:
    assert parse_racp_request(encode_racp_request(request_value)) == request_value


def test_racp_within_range_request_bytes() -> None:
    request = RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.WITHIN_RANGE, (10, 20))
    assert encode_racp_request(request) == b"\x01\x04\x01\x0a\x00\x14\x00"  # filter type 1, min, max


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x01", "needs at least 2 bytes (op code and operator), got 1"),
        (b"\x01\x03\x01\x07", "operator GREATER_THAN_OR_EQUAL needs 5 bytes with its operand, got 4"),
        (b"\x01\x01\x00", "operator ALL_RECORDS needs 2 bytes with its operand, got 3"),
        (b"\x01\x03\x02\x07\x00", "filter type 2 (USER_FACING_TIME) is not supported"),
        (b"\x01\x03\x03\x07\x00", "filter type 3 is reserved (defined: 1, 2)"),
        (b"\x05\x00", "op code 5 (NUMBER_OF_STORED_RECORDS_RESPONSE) is a response, not a request"),
        (b"\x03\x01", "abort takes the null operator, and only abort does"),
        (b"\x01\x00", "abort takes the null operator, and only abort does"),
        (b"\x01\x07", "operator 7 is reserved (defined: 0, 1, 2, 3, 4, 5, 6)"),
    ],
)
def test_racp_request_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_racp_request(data)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("op_code", "operator", "numbers"),
    [
        (RacpOpCode.RESPONSE_CODE, RacpOperator.NULL, ()),
        (RacpOpCode.ABORT_OPERATION, RacpOperator.ALL_RECORDS, ()),
        (RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.GREATER_THAN_OR_EQUAL, ()),
        (RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.ALL_RECORDS, (1,)),
    ],
)
def test_racp_request_refuses_inconsistent_values(
    op_code: RacpOpCode, operator: RacpOperator, numbers: tuple[int, ...]
) -> None:
    with pytest.raises(ValueError):
        RacpRequest(op_code, operator, numbers)


def test_racp_request_encoder_refuses_a_sequence_number_beyond_uint16() -> None:
    with pytest.raises(ValueError, match="sequence number 65536"):
        report_records_from(65536)
