"""Plumbing shared by the service modules: length checks, ordered field reads and writes, reading values.

A parser checks the minimum length (``check_minimum_length``), decodes its flags, checks the length the
flags require (``check_length``) and then reads one field at a time with ``FieldReader``; an encoder
writes the same fields with ``FieldWriter``. All GATT integers here are little-endian and unsigned.
``reading_value`` turns a decoded FLOAT/SFLOAT into the value of a ``Reading``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from edge_agent.gatt.datetime_field import DATE_TIME_LENGTH, encode_date_time, parse_date_time
from edge_agent.gatt.errors import ParseError
from edge_agent.gatt.ieee11073 import (
    NumericValue,
    SpecialValue,
    decode_float,
    decode_sfloat,
    encode_float,
    encode_sfloat,
)
from edge_agent.readings import Absent, Quantity, Value


def check_minimum_length(data: bytes, characteristic: str, minimum: int, fields: str) -> None:
    """ParseError unless ``data`` holds at least the mandatory fields (``fields`` names them)."""
    if len(data) < minimum:
        raise ParseError(characteristic, f"needs at least {minimum} bytes ({fields}), got {len(data)}")


def check_length(data: bytes, characteristic: str, required: int, announced: Sequence[str]) -> None:
    """ParseError unless ``data`` is exactly as long as its flags say (``announced``: the optional fields)."""
    if len(data) < required:
        raise ParseError(
            characteristic,
            f"flags announce {_join(announced)} but only {len(data)} of {required} bytes are present",
        )
    if len(data) > required:
        extra = len(data) - required
        raise ParseError(
            characteristic,
            f"{extra} trailing byte{'' if extra == 1 else 's'} after the {required} bytes the flags announce",
        )


def _join(items: Sequence[str]) -> str:
    if not items:
        return "no optional fields"
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


class FieldReader:
    """Reads fields in order from a characteristic value; reading past the end is a ParseError."""

    def __init__(self, data: bytes, characteristic: str) -> None:
        self._data = data
        self._characteristic = characteristic
        self._offset = 0

    def _take(self, size: int) -> bytes:
        end = self._offset + size
        if end > len(self._data):
            remaining = len(self._data) - self._offset
            raise ParseError(
                self._characteristic,
                f"field at offset {self._offset} needs {size} bytes but only {remaining} remain",
            )
        chunk = bytes(self._data[self._offset : end])
        self._offset = end
        return chunk

    def uint8(self) -> int:
        return self._take(1)[0]

    def uint16(self) -> int:
        return int.from_bytes(self._take(2), "little")

    def uint24(self) -> int:
        return int.from_bytes(self._take(3), "little")

    def sfloat(self) -> NumericValue:
        return decode_sfloat(self.uint16())

    def float32(self) -> NumericValue:
        return decode_float(int.from_bytes(self._take(4), "little"))

    def date_time(self) -> datetime | None:
        return parse_date_time(self._take(DATE_TIME_LENGTH), self._characteristic)


class FieldWriter:
    """Writes fields in order; a value the field cannot carry is a ValueError naming the field."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def _uint(self, value: int, size: int, field: str) -> None:
        if not 0 <= value < 1 << (8 * size):
            raise ValueError(f"{field} {value} does not fit in an unsigned {8 * size}-bit field")
        self._buffer += value.to_bytes(size, "little")

    def uint8(self, value: int, field: str) -> None:
        self._uint(value, 1, field)

    def uint16(self, value: int, field: str) -> None:
        self._uint(value, 2, field)

    def uint24(self, value: int, field: str) -> None:
        self._uint(value, 3, field)

    def sfloat(self, value: NumericValue) -> None:
        self._buffer += encode_sfloat(value).to_bytes(2, "little")

    def float32(self, value: NumericValue) -> None:
        self._buffer += encode_float(value).to_bytes(4, "little")

    def date_time(self, value: datetime) -> None:
        self._buffer += encode_date_time(value)

    def to_bytes(self) -> bytes:
        return bytes(self._buffer)


def reading_value(value: NumericValue, unit: str) -> Value:
    """A number as a Quantity in ``unit``; a special value as Absent with its data-absent-reason."""
    if isinstance(value, SpecialValue):
        return Absent(value.absent_reason)
    return Quantity(value, unit)
