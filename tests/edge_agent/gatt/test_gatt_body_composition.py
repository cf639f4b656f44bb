"""Body Composition Measurement (0x2A9C): parse, encode, resolutions, readings."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

import pytest

from edge_agent.gatt.body_composition import (
    BodyCompositionMeasurement,
    encode_body_composition_measurement,
    parse_body_composition_measurement,
    to_readings,
)
from edge_agent.gatt.errors import ParseError
from edge_agent.gatt.weight_scale import UnitSystem
from fhir_contract.readings import Absent, Quantity, Reading

TIME_STAMP = b"\xe8\x07\x03\x0f\x08\x1e\x05"  # 2024-03-15 08:30:05
FULL = b"".join(
    [
        b"\xfe\x1f",  # flags: SI, every optional field (bits 1-11), multiple packet (bit 12)
        b"\xe1\x00",  # body fat percentage: 225 x 0.1 = 22.5 %
        TIME_STAMP,  # time stamp
        b"\x02",  # user id: 2
        b"\x64\x19",  # basal metabolism: 6500 kJ
        b"\x91\x01",  # muscle percentage: 401 x 0.1 = 40.1 %
        b"\xd1\x17",  # muscle mass: 6097 x 0.005 = 30.485 kg
        b"\x4c\x2c",  # fat free mass: 11340 x 0.005 = 56.700 kg
        b"\xc4\x27",  # soft lean mass: 10180 x 0.005 = 50.900 kg
        b"\x10\x1f",  # body water mass: 7952 x 0.005 = 39.760 kg
        b"\x03\x14",  # impedance: 5123 x 0.1 = 512.3 ohm
        b"\x86\x38",  # weight: 14470 x 0.005 = 72.350 kg
        b"\xd9\x06",  # height: 1753 x 0.001 = 1.753 m
    ]
)
MINIMAL = b"".join(
    [
        b"\x00\x00",  # flags: SI, nothing optional
        b"\xe1\x00",  # body fat percentage: 22.5 %
    ]
)


def test_body_composition_full() -> None:
    m = parse_body_composition_measurement(FULL)
    assert m == BodyCompositionMeasurement(
        body_fat_percentage=Decimal("22.5"),
        units=UnitSystem.SI,
        time_stamp=datetime(2024, 3, 15, 8, 30, 5),
        user_id=2,
        basal_metabolism=6500,
        muscle_percentage=Decimal("40.1"),
        muscle_mass=Decimal("30.485"),
        fat_free_mass=Decimal("56.700"),
        soft_lean_mass=Decimal("50.900"),
        body_water_mass=Decimal("39.760"),
        impedance=Decimal("512.3"),
        weight=Decimal("72.350"),
        height=Decimal("1.753"),
        multiple_packet=True,
    )
    assert (str(m.fat_free_mass), str(m.weight)) == ("56.700", "72.350")  # resolution's decimals kept


def test_body_composition_minimal() -> None:
    m = parse_body_composition_measurement(MINIMAL)
    assert m == BodyCompositionMeasurement(body_fat_percentage=Decimal("22.5"))
    assert m.multiple_packet is False


def test_body_composition_no_timestamp_imperial() -> None:
    data = b"".join(
        [
            b"\x41\x0c",  # flags: imperial, fat free mass, weight, height
            b"\xe1\x00",  # body fat percentage: 22.5 %
            b"\xd8\x30",  # fat free mass: 12504 x 0.01 = 125.04 lb
            b"\x4e\x3e",  # weight: 15950 x 0.01 = 159.50 lb
            b"\xb2\x02",  # height: 690 x 0.1 = 69.0 in
        ]
    )
    m = parse_body_composition_measurement(data)
    assert m.units is UnitSystem.IMPERIAL
    assert m.time_stamp is None
    assert (str(m.fat_free_mass), str(m.weight), str(m.height)) == ("125.04", "159.50", "69.0")


def test_body_composition_measurement_unsuccessful() -> None:
    m = parse_body_composition_measurement(b"\x04\x00\xff\xff\x01")  # flags: user id; body fat 0xFFFF
    assert (m.body_fat_percentage, m.user_id) == (None, 1)
    assert to_readings(m) == [Reading(kind="body-fat-percentage", value=Absent("error"))]


def test_body_composition_too_short() -> None:
    with pytest.raises(ParseError, match="needs at least 4 bytes") as caught:
        parse_body_composition_measurement(b"\x00\x00\xe1")
    assert caught.value.characteristic == "0x2A9C Body Composition Measurement"


def test_body_composition_announced_fields_missing() -> None:
    with pytest.raises(ParseError) as caught:
        parse_body_composition_measurement(b"\x00\x06" + MINIMAL[2:] + b"\x00\x00")  # impedance, weight
    assert caught.value.reason == "flags announce an impedance and a weight but only 6 of 8 bytes are present"


def test_body_composition_trailing_bytes() -> None:
    with pytest.raises(ParseError) as caught:
        parse_body_composition_measurement(MINIMAL + b"\x00\x00")
    assert caught.value.reason == "2 trailing bytes after the 4 bytes the flags announce"


def test_body_composition_every_truncation_is_parse_error() -> None:
    for length in range(len(FULL)):
        with pytest.raises(ParseError):
            parse_body_composition_measurement(FULL[:length])


def test_body_composition_reserved_flag_bits_ignored() -> None:
    assert parse_body_composition_measurement(
        b"\x00\xe0" + MINIMAL[2:]
    ) == parse_body_composition_measurement(MINIMAL)


def test_body_composition_encodes_full_vector() -> None:
    assert encode_body_composition_measurement(parse_body_composition_measurement(FULL)) == FULL


_OPTIONAL = (
    "time_stamp",
    "user_id",
    "basal_metabolism",
    "muscle_percentage",
    "muscle_mass",
    "fat_free_mass",
    "soft_lean_mass",
    "body_water_mass",
    "impedance",
    "weight",
    "height",
)
_SI_VALUES = {
    "time_stamp": datetime(2024, 2, 29, 7, 0, 0),
    "user_id": 4,
    "basal_metabolism": 7100,
    "muscle_percentage": Decimal("38.0"),
    "muscle_mass": Decimal("31.005"),
    "fat_free_mass": Decimal("60.250"),
    "soft_lean_mass": Decimal("55.500"),
    "body_water_mass": Decimal("41.995"),
    "impedance": Decimal("480.7"),
    "weight": Decimal("81.905"),
    "height": Decimal("1.762"),
}
_IMPERIAL_VALUES = _SI_VALUES | {
    "muscle_mass": Decimal("68.35"),
    "fat_free_mass": Decimal("132.83"),
    "soft_lean_mass": Decimal("122.36"),
    "body_water_mass": Decimal("92.58"),
    "weight": Decimal("180.57"),
    "height": Decimal("69.4"),
}


def test_body_composition_round_trip_every_flag_combination() -> None:
    # 2**13 combinations (units, multiple packet, eleven optional fields): one loop, not 8192 test items.
    for imperial, multiple_packet, *present in itertools.product([False, True], repeat=13):
        values = _IMPERIAL_VALUES if imperial else _SI_VALUES
        chosen = {name: values[name] for name, on in zip(_OPTIONAL, present, strict=True) if on}
        original = BodyCompositionMeasurement(
            body_fat_percentage=Decimal("19.9"),
            units=UnitSystem.IMPERIAL if imperial else UnitSystem.SI,
            multiple_packet=multiple_packet,
            **chosen,  # type: ignore[arg-type]
        )
        data = encode_body_composition_measurement(original)
        flags = int.from_bytes(data[:2], "little")
        assert flags == imperial | sum(on << (i + 1) for i, on in enumerate(present)) | multiple_packet << 12
        assert len(data) == 4 + 7 * present[0] + present[1] + 2 * sum(present[2:])
        parsed = parse_body_composition_measurement(data)
        assert parsed == original
        assert repr(parsed) == repr(original)


@pytest.mark.parametrize(
    "measurement",
    [
        BodyCompositionMeasurement(body_fat_percentage=Decimal("22.55")),  # not a multiple of 0.1 %
        BodyCompositionMeasurement(body_fat_percentage=Decimal("6553.5")),  # the "unsuccessful" code
        BodyCompositionMeasurement(Decimal("20"), weight=Decimal("72.351")),  # not a multiple of 0.005 kg
        BodyCompositionMeasurement(Decimal("20"), units=UnitSystem.IMPERIAL, weight=Decimal("72.355")),
        BodyCompositionMeasurement(Decimal("20"), impedance=Decimal("7000")),  # beyond uint16
        BodyCompositionMeasurement(Decimal("20"), basal_metabolism=-1),
    ],
)
def test_body_composition_encoder_refuses_values_the_fields_cannot_carry(
    measurement: BodyCompositionMeasurement,
) -> None:
    with pytest.raises(ValueError):
        encode_body_composition_measurement(measurement)


def test_body_composition_to_readings_si() -> None:
    at = datetime(2024, 3, 15, 8, 30, 5)
    readings = to_readings(parse_body_composition_measurement(FULL))
    assert readings == [
        Reading(kind="body-fat-percentage", value=Quantity(Decimal("22.5"), "%"), device_time=at),
        Reading(kind="basal-metabolism", value=Quantity(Decimal("6500"), "kJ"), device_time=at),
        Reading(kind="muscle-percentage", value=Quantity(Decimal("40.1"), "%"), device_time=at),
        Reading(kind="muscle-mass", value=Quantity(Decimal("30.485"), "kg"), device_time=at),
        Reading(kind="fat-free-mass", value=Quantity(Decimal("56.700"), "kg"), device_time=at),
        Reading(kind="soft-lean-mass", value=Quantity(Decimal("50.900"), "kg"), device_time=at),
        Reading(kind="body-water-mass", value=Quantity(Decimal("39.760"), "kg"), device_time=at),
        Reading(kind="body-impedance", value=Quantity(Decimal("512.3"), "Ohm"), device_time=at),
        Reading(kind="body-weight", value=Quantity(Decimal("72.350"), "kg"), device_time=at),
        Reading(kind="body-height", value=Quantity(Decimal("175.3"), "cm"), device_time=at),
    ]


def test_body_composition_to_readings_imperial_keeps_pounds_and_inches() -> None:
    m = BodyCompositionMeasurement(
        Decimal("22.5"), units=UnitSystem.IMPERIAL, muscle_mass=Decimal("68.35"), height=Decimal("69.4")
    )
    assert to_readings(m)[1:] == [
        Reading(kind="muscle-mass", value=Quantity(Decimal("68.35"), "[lb_av]")),
        Reading(kind="body-height", value=Quantity(Decimal("69.4"), "[in_i]")),
    ]
