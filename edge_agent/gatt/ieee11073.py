"""IEEE 11073-20601 SFLOAT (16 bit) and FLOAT (32 bit): the decimal floats of Bluetooth health devices.

A value is ``mantissa * 10 ** exponent`` with a signed exponent in the high bits (4 of 16, 8 of 32) and a
signed mantissa in the low bits (12 of 16, 24 of 32); the GATT fields are little-endian, which the
field readers handle: the functions here take and return the integer ``raw`` word.

Numbers decode to ``Decimal`` with the device's precision kept (mantissa 3660, exponent -2 ->
``Decimal('36.60')``). Five raw words are special values, decoded to ``SpecialValue`` and never to a
number; each names its FHIR data-absent-reason code. Only these exact words are special (exponent 0,
as the standard lists them); the encoder never writes their mantissas with any exponent either, so
readers that test the mantissa alone agree with us. Encoding is exact in value and precision: a Decimal
whose own mantissa or exponent does not fit is a ValueError, never rounded or rescaled.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from functools import lru_cache


class SpecialValue(Enum):
    """A special FLOAT/SFLOAT value: not a number, and never turned into one."""

    NAN = "NaN"
    NRES = "NRes"
    POSITIVE_INFINITY = "+INF"
    NEGATIVE_INFINITY = "-INF"
    RESERVED = "reserved"

    @property
    def absent_reason(self) -> str:
        """The code of http://terminology.hl7.org/CodeSystem/data-absent-reason (HL7 PHD IG, FLOATS)."""
        return _ABSENT_REASONS[self]


_ABSENT_REASONS = {
    SpecialValue.NAN: "not-a-number",
    SpecialValue.NRES: "error",
    SpecialValue.POSITIVE_INFINITY: "positive-infinity",
    SpecialValue.NEGATIVE_INFINITY: "negative-infinity",
    SpecialValue.RESERVED: "error",
}

NumericValue = Decimal | SpecialValue
"""What a FLOAT or SFLOAT field holds: a number with its precision, or a special value."""


@dataclass(frozen=True, slots=True)
class _Format:
    name: str
    exponent_bits: int
    mantissa_bits: int
    specials: dict[int, SpecialValue]

    @property
    def max_mantissa(self) -> int:
        # Mantissas 2**(n-1) - 2 and up, and -(2**(n-1)) .. -(2**(n-1)) + 2, belong to the special values;
        # the numeric range is kept symmetric: +/-2045 (SFLOAT), +/-8388605 (FLOAT).
        return (1 << (self.mantissa_bits - 1)) - 3

    @property
    def min_exponent(self) -> int:
        return -(1 << (self.exponent_bits - 1))

    @property
    def max_exponent(self) -> int:
        return (1 << (self.exponent_bits - 1)) - 1


_SFLOAT = _Format(
    "SFLOAT",
    exponent_bits=4,
    mantissa_bits=12,
    specials={
        0x07FF: SpecialValue.NAN,
        0x0800: SpecialValue.NRES,
        0x07FE: SpecialValue.POSITIVE_INFINITY,
        0x0802: SpecialValue.NEGATIVE_INFINITY,
        0x0801: SpecialValue.RESERVED,
    },
)
_FLOAT = _Format(
    "FLOAT",
    exponent_bits=8,
    mantissa_bits=24,
    specials={
        0x007FFFFF: SpecialValue.NAN,
        0x00800000: SpecialValue.NRES,
        0x007FFFFE: SpecialValue.POSITIVE_INFINITY,
        0x00800002: SpecialValue.NEGATIVE_INFINITY,
        0x00800001: SpecialValue.RESERVED,
    },
)


@lru_cache(maxsize=4096)
def decode_sfloat(raw: int) -> NumericValue:
    """Decode a 16-bit SFLOAT word (already assembled from its two little-endian bytes).

    Cached: a device sends few distinct words, results are immutable, and building a Decimal from text
    is the dearest step of most parses.
    """
    return _decode(raw, _SFLOAT)


def decode_float(raw: int) -> NumericValue:
    """Decode a 32-bit FLOAT word (already assembled from its four little-endian bytes)."""
    return _decode(raw, _FLOAT)


def encode_sfloat(value: NumericValue) -> int:
    """Encode a number or special value as a 16-bit SFLOAT word; ValueError if not exactly representable."""
    return _encode(value, _SFLOAT)


def encode_float(value: NumericValue) -> int:
    """Encode a number or special value as a 32-bit FLOAT word; ValueError if not exactly representable."""
    return _encode(value, _FLOAT)


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def _decode(raw: int, fmt: _Format) -> NumericValue:
    total_bits = fmt.exponent_bits + fmt.mantissa_bits
    if not 0 <= raw < 1 << total_bits:
        raise ValueError(f"{fmt.name} word {raw:#x} does not fit in {total_bits} bits")
    special = fmt.specials.get(raw)
    if special is not None:
        return special
    exponent = _signed(raw >> fmt.mantissa_bits, fmt.exponent_bits)
    mantissa = _signed(raw & ((1 << fmt.mantissa_bits) - 1), fmt.mantissa_bits)
    # Built from text, so exact: no context precision or rounding is involved.
    return Decimal(f"{mantissa}E{exponent}")


def _encode(value: NumericValue, fmt: _Format) -> int:
    if isinstance(value, SpecialValue):
        return next(raw for raw, special in fmt.specials.items() if special is value)
    mantissa, exponent = _mantissa_exponent(value, fmt)
    exponent_field = exponent & ((1 << fmt.exponent_bits) - 1)
    mantissa_field = mantissa & ((1 << fmt.mantissa_bits) - 1)
    return (exponent_field << fmt.mantissa_bits) | mantissa_field


def _mantissa_exponent(value: Decimal, fmt: _Format) -> tuple[int, int]:
    """The Decimal's own digits and exponent, or ValueError if they do not fit the format.

    Nothing is rescaled: Decimal('36.60') has mantissa 3660, which FLOAT carries and SFLOAT does not,
    so SFLOAT refuses it rather than silently sending Decimal('36.6'). What is encoded is what decodes.
    """
    if not value.is_finite():
        raise ValueError(f"{value} is not a number; pass a SpecialValue for NaN or infinity")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite Decimals have an integer exponent
    if not fmt.min_exponent <= exponent <= fmt.max_exponent:
        raise ValueError(
            f"{value} has exponent {exponent}; {fmt.name} carries {fmt.min_exponent}..{fmt.max_exponent}"
        )
    text = "".join(map(str, digits))
    if len(text) > len(str(fmt.max_mantissa)) or int(text) > fmt.max_mantissa:
        raise ValueError(
            f"{value} has mantissa {'-' if sign else ''}{text}; "
            f"{fmt.name} carries -{fmt.max_mantissa}..{fmt.max_mantissa}"
        )
    return (-int(text) if sign else int(text)), exponent
