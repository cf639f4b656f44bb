"""Known answers for every unit a device sends that a reading does not carry as sent: bytes in, the
reading's exact value and UCUM unit out, through ``registry.decode`` as the hub runs it."""

from __future__ import annotations

import pytest

from edge_agent.gatt import decode
from fhir_contract.readings import Quantity

CASES = [
    pytest.param(
        "2a35",
        "01 a0f0 6bf0 7df0",  # flags: kPa; systolic 16.0, diastolic 10.7, mean 12.5 kPa
        [("120.0", "mm[Hg]"), ("80.3", "mm[Hg]"), ("93.8", "mm[Hg]")],  # x 7.50062, half up to 0.1 mm[Hg]
        id="kPa to mm[Hg]",
    ),
    pytest.param(
        "2a35", "00 7900 5100 6a00", [("121", "mm[Hg]"), ("81", "mm[Hg]"), ("106", "mm[Hg]")], id="mmHg kept"
    ),
    pytest.param("2a1c", "01 da0300ff", [("98.6", "[degF]")], id="degF kept as [degF]"),
    pytest.param("2a1c", "00 6e0100ff", [("36.6", "Cel")], id="Celsius as Cel"),
    pytest.param("2a9d", "01 4e3e", [("159.50", "[lb_av]")], id="lb as [lb_av], 0.01 lb resolution kept"),
    pytest.param("2a9d", "00 8638", [("72.350", "kg")], id="kg, 0.005 kg resolution kept"),
    pytest.param(
        "2a9d",
        "08 8638 ec00 d906",
        [("72.350", "kg"), ("23.6", "kg/m2"), ("175.3", "cm")],
        id="m to cm exactly",
    ),
    pytest.param(
        "2a9d", "09 4e3e ec00 b202", [("159.50", "[lb_av]"), ("23.6", "kg/m2"), ("69.0", "[in_i]")], id="in"
    ),
    pytest.param(
        "2a18",
        "06 0800 e807030f081e05 36c0 22",
        [("5.4", "mmol/L")],
        id="mol/L to mmol/L (x 1000, digits kept)",
    ),
    pytest.param(
        "2a18",
        "02 0700 e807030f081e05 61b0 11",
        [("97", "mg/dL")],
        id="kg/L to mg/dL (x 100 000, digits kept)",
    ),
    pytest.param(
        "2a37",
        "10 48 2003 0004 0100",
        [("72", "/min"), ("781.3", "ms"), ("1000.0", "ms"), ("1.0", "ms")],
        id="RR 1/1024 s to ms, half up to 0.1 ms",
    ),
    pytest.param("2a37", "08 48 d204", [("72", "/min"), ("1234", "kJ")], id="energy in kJ"),
    pytest.param("2a9c", "0002 e100 0314", [("22.5", "%"), ("512.3", "Ohm")], id="impedance 0.1 ohm as Ohm"),
    pytest.param("2aa7", "06 00 7800 0600", [("120", "mg/dL")], id="CGM mg/dL as sent"),
    pytest.param("2a19", "4b", [("75", "%")], id="battery %"),
]


@pytest.mark.parametrize(("uuid", "hex_value", "expected"), CASES)
def test_unit_conversion_known_answer(uuid: str, hex_value: str, expected: list[tuple[str, str]]) -> None:
    values = []
    for reading in decode(uuid, bytes.fromhex(hex_value)):
        for value in [reading.value, *(c.value for c in reading.components)]:
            if value is not None:
                assert isinstance(value, Quantity)
                values.append((str(value.value), value.unit))
    assert values == expected
