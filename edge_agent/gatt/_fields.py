"""Plumbing shared by the service modules: length checks, ordered field reads and writes, reading values.

A parser checks the minimum length (``check_minimum_length``), decodes its flags, checks the length the
flags require (``check_length``) and then reads one field at a time with ``FieldReader``; an encoder
writes the same fields with ``FieldWriter``. All GATT integers here are little-endian; they are unsigned
unless the method says ``sint``. ``reading_value`` turns a decoded FLOAT/SFLOAT into the value of a
``Reading``; ``enum_value`` turns an enumerated field into its enum or a ParseError naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from enum import IntEnum
from fractions import Fraction
from typing import TypeVar

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
from fhir_contract.readings import Absent, Quantity, Value


def check_minimum_length(data: bytes, characteristic: str, minimum: int, fields: str) -> None:
    """ParseError unless ``data`` holds at least the mandatory fields (``fields`` names them)."""
    if len(data) < minimum:
        raise ParseError(characteristic, f"needs at least {minimum} bytes ({fields}), got {len(data)}")


def check_length(
    data: bytes, characteristic: str, required: int, optional: Sequence[tuple[bool, str]]
) -> None:
    """ParseError unless ``data`` is exactly as long as its flags say.

    ``optional`` pairs each optional field's presence with its name; the names of those present are
    joined only for an error message, so a valid value costs no string work.
    """
    if len(data) == required:
        return
    if len(data) < required:
        announced = [name for present, name in optional if present]
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


def check_exact_length(data: bytes, characteristic: str, length: int, fields: str) -> None:
    """ParseError unless ``data`` is exactly ``length`` bytes: for values without flags or optional fields."""
    if len(data) != length:
        unit = "byte" if length == 1 else "bytes"
        raise ParseError(characteristic, f"needs exactly {length} {unit} ({fields}), got {len(data)}")


def join_names(items: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c": the optional fields a message names."""
    return _join(items)


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

    def _advance(self, size: int) -> int:
        """Move past a field of ``size`` bytes and return where it starts; ParseError past the end."""
        start = self._offset
        end = start + size
        if end > len(self._data):
            raise ParseError(
                self._characteristic,
                f"field at offset {start} needs {size} bytes but only {len(self._data) - start} remain",
            )
        self._offset = end
        return start

    def _take(self, size: int) -> bytes:
        start = self._advance(size)
        return bytes(self._data[start : start + size])

    # uint8, uint16 and sfloat index the value directly, with the bounds check inlined: they are most of
    # every parse, and a slice or an extra call per field would cost more than the field.
    def uint8(self) -> int:
        start = self._offset
        if start >= len(self._data):
            self._advance(1)  # raises the ParseError
        self._offset = start + 1
        return self._data[start]

    def uint16(self) -> int:
        start = self._offset
        if start + 2 > len(self._data):
            self._advance(2)  # raises the ParseError
        self._offset = start + 2
        data = self._data
        return data[start] | data[start + 1] << 8

    def uint24(self) -> int:
        return int.from_bytes(self._take(3), "little")

    def sint8(self) -> int:
        return int.from_bytes(self._take(1), "little", signed=True)

    def sint16(self) -> int:
        return int.from_bytes(self._take(2), "little", signed=True)

    def raw(self, size: int) -> bytes:
        return self._take(size)

    @property
    def remaining(self) -> int:
        """How many bytes are left to read."""
        return len(self._data) - self._offset

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

    def _sint(self, value: int, size: int, field: str) -> None:
        half = 1 << (8 * size - 1)
        if not -half <= value < half:
            raise ValueError(f"{field} {value} does not fit in a signed {8 * size}-bit field")
        self._buffer += value.to_bytes(size, "little", signed=True)

    def sint8(self, value: int, field: str) -> None:
        self._sint(value, 1, field)

    def sint16(self, value: int, field: str) -> None:
        self._sint(value, 2, field)

    def raw(self, value: bytes) -> None:
        self._buffer += value

    def sfloat(self, value: NumericValue) -> None:
        self._buffer += encode_sfloat(value).to_bytes(2, "little")

    def float32(self, value: NumericValue) -> None:
        self._buffer += encode_float(value).to_bytes(4, "little")

    def date_time(self, value: datetime | None) -> None:
        """A Date Time; None writes "not known" (all zeros)."""
        self._buffer += encode_date_time(value)

    def to_bytes(self) -> bytes:
        return bytes(self._buffer)


def reading_value(value: NumericValue, unit: str) -> Value:
    """A number as a Quantity in ``unit``; a special value as Absent with its data-absent-reason."""
    if isinstance(value, SpecialValue):
        return Absent(value.absent_reason)
    return Quantity(value, unit)


E = TypeVar("E", bound=IntEnum)


def enum_value(enum: type[E], code: int, characteristic: str, field: str) -> E:
    """``code`` as a member of ``enum``; ParseError naming ``field`` if the value is reserved."""
    try:
        return enum(code)
    except ValueError as exc:
        defined = ", ".join(str(int(member)) for member in enum)
        raise ParseError(characteristic, f"{field} {code} is reserved (defined: {defined})") from exc


def whole_steps(value: Decimal, step: Decimal, field: str) -> int:
    """How many resolution steps ``value`` is; ValueError unless it is a whole number of them."""
    steps = Fraction(value) / Fraction(step)  # exact: Decimal division would round to 28 digits
    if steps.denominator != 1:
        raise ValueError(f"{field} {value} is not a multiple of its resolution {step}")
    return int(steps)
