"""ParseError: structured fields, one clear line, and a ValueError for callers that expect one."""

from __future__ import annotations

import pickle

from edge_agent.gatt.errors import ParseError


def test_parse_error_carries_characteristic_and_reason() -> None:
    error = ParseError(
        "0x2A35 Blood Pressure Measurement", "1 trailing byte after the 7 bytes the flags announce"
    )
    assert error.characteristic == "0x2A35 Blood Pressure Measurement"
    assert error.reason == "1 trailing byte after the 7 bytes the flags announce"
    assert isinstance(error, ValueError)


def test_parse_error_message_is_one_line_naming_both() -> None:
    error = ParseError("0x2A9D Weight Measurement", "needs at least 3 bytes (flags and weight), got 1")
    assert str(error) == (
        "cannot parse 0x2A9D Weight Measurement: needs at least 3 bytes (flags and weight), got 1"
    )
    assert "\n" not in str(error)


def test_parse_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(ParseError("0x2A1C Temperature Measurement", "bad")))
    assert (error.characteristic, error.reason) == ("0x2A1C Temperature Measurement", "bad")
