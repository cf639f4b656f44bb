"""IEEE 11073-20601 SFLOAT and FLOAT: known vectors, special values, precision, exact encoding."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from edge_agent.gatt.ieee11073 import (
    SpecialValue,
    decode_float,
    decode_sfloat,
    encode_float,
    encode_sfloat,
)

SFLOAT_VECTORS = [
    (0x0000, "0"),
    (0x0079, "121"),  # mantissa 121, exponent 0
    (0xF16E, "36.6"),  # mantissa 366, exponent -1
    (0xFE92, "-36.6"),  # mantissa -366 (0xE92), exponent -1
    (0x0FFF, "-1"),  # mantissa -1, exponent 0
    (0xEFFB, "-0.05"),  # mantissa -5, exponent -2
    (0x2001, "1E+2"),  # mantissa 1, exponent 2
    (0x7001, "1E+7"),  # largest exponent
    (0x8001, "1E-8"),  # smallest exponent
    (0x07FD, "2045"),  # largest numeric mantissa
    (0x0803, "-2045"),  # smallest numeric mantissa
    (0xF000, "0.0"),  # zero keeps its precision
]

FLOAT_VECTORS = [
    (0x00000000, "0"),
    (0xFF00016E, "36.6"),  # mantissa 366, exponent -1
    (0xFE000E4C, "36.60"),  # mantissa 3660, exponent -2
    (0xFFFFFE92, "-36.6"),  # mantissa -366 (0xFFFE92), exponent -1
    (0xFDFFFFFF, "-0.001"),  # mantissa -1, exponent -3
    (0x03000007, "7E+3"),  # mantissa 7, exponent 3
    (0x7F000001, "1E+127"),  # largest exponent
    (0x80000001, "1E-128"),  # smallest exponent
    (0x007FFFFD, "8388605"),  # largest numeric mantissa
    (0x00800003, "-8388605"),  # smallest numeric mantissa
]

SFLOAT_SPECIALS = [
    (0x07FF, SpecialValue.NAN, "not-a-number"),
    (0x0800, SpecialValue.NRES, "error"),
    (0x07FE, SpecialValue.POSITIVE_INFINITY, "positive-infinity"),
    (0x0802, SpecialValue.NEGATIVE_INFINITY, "negative-infinity"),
    (0x0801, SpecialValue.RESERVED, "error"),
]

FLOAT_SPECIALS = [
    (0x007FFFFF, SpecialValue.NAN, "not-a-number"),
    (0x00800000, SpecialValue.NRES, "error"),
    (0x007FFFFE, SpecialValue.POSITIVE_INFINITY, "positive-infinity"),
    (0x00800002, SpecialValue.NEGATIVE_INFINITY, "negative-infinity"),
    (0x00800001, SpecialValue.RESERVED, "error"),
]


@pytest.mark.parametrize(("raw", "text"), SFLOAT_VECTORS)
def test_sfloat_decodes_known_vector_with_its_precision(raw: int, text: str) -> None:
    value = decode_sfloat(raw)
    assert isinstance(value, Decimal)
    assert value.as_tuple() == Decimal(text).as_tuple()


@pytest.mark.parametrize(("raw", "text"), SFLOAT_VECTORS)
def test_sfloat_encodes_known_vector(raw: int, text: str) -> None:
    assert encode_sfloat(Decimal(text)) == raw


@pytest.mark.parametrize(("raw", "text"), FLOAT_VECTORS)
def test_float_decodes_known_vector_with_its_precision(raw: int, text: str) -> None:
    value = decode_float(raw)
    assert isinstance(value, Decimal)
    assert value.as_tuple() == Decimal(text).as_tuple()


@pytest.mark.parametrize(("raw", "text"), FLOAT_VECTORS)
def test_float_encodes_known_vector(raw: int, text: str) -> None:
    assert encode_float(Decimal(text)) == raw


def test_float_keeps_trailing_zero_as_precision() -> None:
    assert str(decode_float(0xFF00016E)) == "36.6"
    assert str(decode_float(0xFE000E4C)) == "36.60"


@pytest.mark.parametrize(("raw", "special", "reason"), SFLOAT_SPECIALS)
def test_sfloat_special_value_is_never_a_number(raw: int, special: SpecialValue, reason: str) -> None:
    assert decode_sfloat(raw) is special
    assert special.absent_reason == reason
    assert encode_sfloat(special) == raw


@pytest.mark.parametrize(("raw", "special", "reason"), FLOAT_SPECIALS)
def test_float_special_value_is_never_a_number(raw: int, special: SpecialValue, reason: str) -> None:
    assert decode_float(raw) is special
    assert special.absent_reason == reason
    assert encode_float(special) == raw


def test_special_mantissa_with_nonzero_exponent_is_a_number() -> None:
    # Only the exact words are special (exponent 0); 0x17FF is mantissa 2047, exponent 1.
    assert decode_sfloat(0x17FF) == Decimal("20470")


def test_sfloat_every_word_round_trips_or_is_refused() -> None:
    for raw in range(0x10000):
        value = decode_sfloat(raw)
        mantissa = raw & 0x0FFF
        mantissa = mantissa - 0x1000 if mantissa & 0x0800 else mantissa
        if isinstance(value, SpecialValue) or -2045 <= mantissa <= 2045:
            assert encode_sfloat(value) == raw, hex(raw)
        else:  # a special value's mantissa with another exponent: never written by us
            with pytest.raises(ValueError):
                encode_sfloat(value)


def test_float_sampled_words_round_trip() -> None:
    rng = random.Random(11073)
    for raw in [rng.getrandbits(32) for _ in range(20000)]:
        value = decode_float(raw)
        mantissa = raw & 0xFFFFFF
        mantissa = mantissa - 0x1000000 if mantissa & 0x800000 else mantissa
        if isinstance(value, SpecialValue) or -8388605 <= mantissa <= 8388605:
            assert encode_float(value) == raw, hex(raw)


@pytest.mark.parametrize(
    "text",
    [
        "36.60",  # mantissa 3660 does not fit 12 bits: precision would be lost
        "2046",  # a special value's mantissa
        "-2046",
        "1.2345",
        "1E-9",  # exponent below -8
        "1E+8",  # exponent above 7
        "NaN",
        "Infinity",
        "-Infinity",
    ],
)
def test_sfloat_refuses_decimal_it_cannot_carry_exactly(text: str) -> None:
    with pytest.raises(ValueError):
        encode_sfloat(Decimal(text))


@pytest.mark.parametrize("text", ["8388606", "-8388606", "123456789", "1E-129", "1E+128", "NaN"])
def test_float_refuses_decimal_it_cannot_carry_exactly(text: str) -> None:
    with pytest.raises(ValueError):
        encode_float(Decimal(text))


@pytest.mark.parametrize("raw", [-1, 0x10000])
def test_sfloat_rejects_word_wider_than_16_bits(raw: int) -> None:
    with pytest.raises(ValueError, match="16 bits"):
        decode_sfloat(raw)


@pytest.mark.parametrize("raw", [-1, 0x1_0000_0000])
def test_float_rejects_word_wider_than_32_bits(raw: int) -> None:
    with pytest.raises(ValueError, match="32 bits"):
        decode_float(raw)
