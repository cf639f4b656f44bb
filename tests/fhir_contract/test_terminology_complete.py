"""The terminology covers every reading the parsers make, and every such reading becomes an Observation
that is valid FHIR R4 (fhir.resources R4B) and passes the contract: kPa blood pressure, Fahrenheit,
imperial weight and mol/L glucose included, with body sites, fast/slow oximetry and RR intervals."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fhir.resources.R4B.observation import Observation

from edge_agent.gatt import (
    battery,
    blood_pressure,
    body_composition,
    cgm,
    decode,
    glucose,
    health_thermometer,
    heart_rate,
    pulse_oximeter,
    weight_scale,
)
from edge_agent.gatt.ieee11073 import SpecialValue
from fhir_contract.observation import build_observation
from fhir_contract.readings import Absent, Quantity, Reading
from fhir_contract.terminology import (
    LOINC,
    MDC,
    SNOMED,
    SUPPLEMENTAL_TYPES_CODE,
    find_reading_type,
    reading_types,
)
from fhir_contract.units import to_canonical
from fhir_contract.validate import validate_observation

WHEN = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)
AT = datetime(2024, 3, 15, 8, 30, 5)
SPO2PR = pulse_oximeter.SpO2PulseRate


def _every_reading_a_parser_can_make() -> list[Reading]:
    """Each measurement class with every optional field, in every unit and for every enumerated type that
    changes the reading (glucose type, temperature site, fast/slow, skin contact, status outcomes)."""
    readings: list[Reading] = []
    for unit, (systolic, diastolic, mean) in (
        (blood_pressure.PressureUnit.MMHG, ("121", "81", "94")),
        (blood_pressure.PressureUnit.KPA, ("16.0", "10.7", "12.5")),
    ):
        readings += blood_pressure.to_readings(
            blood_pressure.BloodPressureMeasurement(
                Decimal(systolic), Decimal(diastolic), Decimal(mean), unit, AT, Decimal("72")
            )
        )
    readings += pulse_oximeter.to_readings(
        pulse_oximeter.PlxSpotCheckMeasurement(Decimal("97"), Decimal("64"))
    )
    readings += pulse_oximeter.to_readings(
        pulse_oximeter.PlxContinuousMeasurement(
            SPO2PR(Decimal("97"), Decimal("64")),
            SPO2PR(Decimal("96"), Decimal("66")),
            SPO2PR(Decimal("97.5"), Decimal("63")),
        )
    )
    for units, weight, height in (
        (weight_scale.UnitSystem.SI, Decimal("72.350"), Decimal("1.753")),
        (weight_scale.UnitSystem.IMPERIAL, Decimal("159.50"), Decimal("69.0")),
    ):
        readings += weight_scale.to_readings(
            weight_scale.WeightMeasurement(weight, units, AT, 1, Decimal("23.6"), height)
        )
        readings += body_composition.to_readings(
            body_composition.BodyCompositionMeasurement(
                Decimal("22.5"),
                units,
                AT,
                2,
                6500,
                Decimal("40.1"),
                weight / 2,
                weight * Decimal("0.8"),
                weight * Decimal("0.7"),
                weight / 2,
                Decimal("512.3"),
                weight,
                height,
            )
        )
    for temperature_unit, value in (
        (health_thermometer.TemperatureUnit.CELSIUS, Decimal("36.6")),
        (health_thermometer.TemperatureUnit.FAHRENHEIT, Decimal("98.6")),
    ):
        for site in [None, *health_thermometer.TemperatureType]:
            m = health_thermometer.TemperatureMeasurement(value, temperature_unit, AT, site)
            readings += health_thermometer.to_readings(m)
    for contact in heart_rate.SensorContact:
        readings += heart_rate.to_readings(heart_rate.HeartRateMeasurement(72, contact, 1234, (800, 1024)))
    for glucose_type in glucose.GlucoseType:
        for unit, concentration in (
            (glucose.GlucoseConcentrationUnit.KG_PER_L, Decimal("0.00097")),
            (glucose.GlucoseConcentrationUnit.MOL_PER_L, Decimal("0.0054")),
        ):
            readings += glucose.to_readings(
                glucose.GlucoseMeasurement(
                    7, AT, -5, concentration, unit, glucose_type, glucose.SampleLocation.FINGER
                )
            )
    records = [cgm.CgmMeasurement(Decimal("120"), 5), cgm.CgmMeasurement(Decimal("125"), 10)]
    readings += cgm.to_readings(records) + cgm.to_readings(records, AT)
    readings += battery.to_readings(75)
    return readings


EVERY_READING = _every_reading_a_parser_can_make()

EXPECTED_KINDS = {
    "blood-pressure",
    "pulse-rate-cuff",
    "spo2",
    "pulse-rate-oximeter",
    "spo2-fast",
    "spo2-slow",
    "pulse-rate-oximeter-fast",
    "pulse-rate-oximeter-slow",
    "body-weight",
    "bmi",
    "body-height",
    "body-fat-percentage",
    "basal-metabolism",
    "muscle-percentage",
    "muscle-mass",
    "fat-free-mass",
    "soft-lean-mass",
    "body-water-mass",
    "body-impedance",
    "body-temperature",
    "heart-rate",
    "rr-interval",
    "energy-expended",
    "glucose-capillary-whole-blood",
    "glucose-capillary-plasma",
    "glucose-venous-whole-blood",
    "glucose-venous-plasma",
    "glucose-arterial-whole-blood",
    "glucose-arterial-plasma",
    "glucose-undetermined-whole-blood",
    "glucose-undetermined-plasma",
    "cgm-glucose",
    "battery-level",
}


def test_every_kind_a_parser_makes_is_in_the_terminology() -> None:
    kinds = {r.kind for r in EVERY_READING}
    assert kinds == EXPECTED_KINDS  # a new kind must be added here and to fhir/terminology.json
    assert kinds <= set(reading_types())
    assert set(reading_types()) - kinds == {"respiratory-rate"}  # no parser sends it yet


def test_every_unit_and_site_a_parser_makes_is_in_the_terminology() -> None:
    for reading in EVERY_READING:
        rtype = reading_types()[reading.kind]
        if isinstance(reading.value, Quantity):
            assert reading.value.unit in rtype.units, reading
        for component in reading.components:
            if isinstance(component.value, Quantity):
                assert component.value.unit in rtype.component(component.kind).units
        if reading.body_site is not None:
            rtype.site(reading.body_site)
    sites = {r.body_site for r in EVERY_READING if r.body_site}
    assert sites == {s.key for s in reading_types()["body-temperature"].sites}


def _observation(reading: Reading) -> dict[str, Any]:
    return build_observation(reading, patient_id="p-1", device_id="dev-1", hub_id="hub-1", effective=WHEN)


@pytest.mark.parametrize("reading", EVERY_READING, ids=lambda r: f"{r.kind}-{r.body_site or ''}-{r.position}")
def test_every_reading_is_valid_r4_and_passes_the_contract(reading: Reading) -> None:
    obs = _observation(reading)
    Observation.model_validate(obs)
    valid = validate_observation(obs)
    assert valid.kind == reading.kind
    if isinstance(reading.value, Quantity):
        assert valid.value == float(reading.value.value)
        assert valid.unit == reading.value.unit


# Bytes as devices send them, through the registry as the hub decodes them.
DEVICE_VALUES = [
    pytest.param("2a35", "1f a0f0 6bf0 7df0 e807030f081e05 4800 01 0000", id="blood pressure in kPa"),
    pytest.param("2a1c", "07 da0300ff e807030f081e05 09", id="tympanic temperature in Fahrenheit"),
    pytest.param("2a9d", "0f 4e3e e807030f081e05 01 ec00 b202", id="imperial weight and height"),
    pytest.param(
        "2a9c",
        "ff0f e100 e807030f081e05 02 6419 9101 b335 ea33 c130 2724 0314 4e3e b202",
        id="imperial body composition",
    ),
    pytest.param("2a18", "07 0800 e807030f081e05 fbff 36c0 22", id="glucose in mol/L"),
    pytest.param("2a18", "03 0700 e807030f081e05 fbff 61b0 11", id="glucose in kg/L"),
    pytest.param("2a5f", "03 6100 4000 6000 4200 cff3 3f00", id="continuous oximetry, fast and slow"),
    pytest.param("2a37", "1e 48 d204 2003 0004 1f03", id="heart rate with RR intervals"),
    pytest.param("2aa7", "06 00 7800 0600 06 00 7d00 0b00", id="two CGM records"),
    pytest.param("2a19", "4b", id="battery level"),
]


@pytest.mark.parametrize(("uuid", "hex_value"), DEVICE_VALUES)
def test_device_bytes_become_valid_observations(uuid: str, hex_value: str) -> None:
    readings = decode(uuid, bytes.fromhex(hex_value))
    assert readings
    observations = [_observation(r) for r in readings]
    for reading, obs in zip(readings, observations, strict=True):
        Observation.model_validate(obs)
        assert validate_observation(obs).kind == reading.kind
    identifiers = [obs["identifier"][0]["value"] for obs in observations]
    assert len(set(identifiers)) == len(identifiers)  # none de-duplicates another


def _codings(obs: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in obs["code"]["coding"]}


def test_kpa_blood_pressure_arrives_in_mm_hg() -> None:
    (bp,) = decode("2a35", bytes.fromhex("01 a0f0 6bf0 7df0"))
    valid = validate_observation(_observation(bp))
    assert valid.components == {"systolic": 120.0, "diastolic": 80.3, "mean": 93.8}
    assert valid.unit == "mm[Hg]"


def test_tympanic_temperature_carries_its_site_code_and_body_site() -> None:
    (reading,) = decode("2a1c", bytes.fromhex("05 da0300ff 09"))  # Fahrenheit, type 9 tympanum
    obs = _observation(reading)
    assert _codings(obs) == {(LOINC, "8310-5"), (LOINC, "8333-7"), (MDC, "150392")}
    assert obs["code"]["coding"][0]["code"] == "8310-5"  # the vital-signs profile's code comes first
    assert obs["bodySite"] == {
        "coding": [{"system": SNOMED, "code": "42859004", "display": "Tympanic membrane structure"}]
    }
    assert obs["valueQuantity"]["code"] == "[degF]"
    valid = validate_observation(obs)
    assert (valid.kind, valid.loinc, valid.unit) == ("body-temperature", "8310-5", "[degF]")


def test_general_body_temperature_keeps_the_general_code_and_no_body_site() -> None:
    obs = _observation(Reading("body-temperature", Quantity(Decimal("36.6"), "Cel")))
    assert _codings(obs) == {(LOINC, "8310-5"), (MDC, "150364")}
    assert "bodySite" not in obs


def test_imperial_weight_is_checked_in_kilograms() -> None:
    valid = validate_observation(_observation(Reading("body-weight", Quantity(Decimal("159.50"), "[lb_av]"))))
    assert (valid.value, valid.unit) == (159.5, "[lb_av]")
    assert to_canonical(159.5, "[lb_av]") == pytest.approx((72.348, "kg"), abs=1e-3)


def test_mol_per_l_glucose_is_sent_in_mmol_per_l_with_the_moles_loinc() -> None:
    (reading,) = decode("2a18", bytes.fromhex("06 0800 e807030f081e05 36c0 22"))
    obs = _observation(reading)
    assert obs["valueQuantity"] == {
        "value": 5.4,
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    }
    assert _codings(obs) == {(LOINC, "14749-6"), (MDC, "160188")}  # capillary plasma, moles/volume
    valid = validate_observation(obs)
    assert (valid.kind, valid.loinc) == ("glucose-capillary-plasma", "14749-6")
    assert "vital-signs" not in str(obs["category"])


def test_kg_per_l_glucose_is_sent_in_mg_per_dl_with_the_mass_loinc() -> None:
    (reading,) = decode("2a18", bytes.fromhex("02 0700 e807030f081e05 61b0 11"))
    obs = _observation(reading)
    assert _codings(obs) == {(LOINC, "41653-7"), (MDC, "160184")}
    assert validate_observation(obs).loinc == "41653-7"


@pytest.mark.parametrize(
    ("value", "unit", "expected"), [(5.4, "mmol/L", 97.28424), (16.0, "kPa", 120.009872)]
)
def test_to_canonical_known_answers(value: float, unit: str, expected: float) -> None:
    converted, _ = to_canonical(value, unit)
    assert converted == pytest.approx(expected, rel=1e-9)


def test_glucose_range_applies_to_mmol_per_l_after_conversion() -> None:
    # A sender other than homewatch's hub (which sends such a number as dataAbsentReason): 4504 mg/dL.
    obs = _observation(Reading("glucose-capillary-plasma", Quantity(Decimal("25"), "mmol/L")))
    obs["valueQuantity"]["value"] = 250
    with pytest.raises(Exception, match="impossible-value"):
        validate_observation(obs)


def test_fast_spo2_is_a_variant_told_apart_by_its_supplemental_type() -> None:
    obs = _observation(Reading("spo2-fast", Quantity(Decimal("96"), "%")))
    assert _codings(obs) == {(LOINC, "2708-6"), (LOINC, "59408-5"), (MDC, "150456")}  # same codes as spo2
    assert obs["component"] == [
        {
            "code": {
                "coding": [
                    {"system": MDC, "code": SUPPLEMENTAL_TYPES_CODE, "display": "MDC_ATTR_SUPPLEMENTAL_TYPES"}
                ]
            },
            "valueCodeableConcept": {
                "coding": [{"system": MDC, "code": "150580", "display": "MDC_MODALITY_FAST"}]
            },
        }
    ]
    assert obs["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/oxygensat"]
    assert validate_observation(obs).kind == "spo2-fast"
    plain = _observation(Reading("spo2", Quantity(Decimal("96"), "%")))
    assert "component" not in plain
    assert validate_observation(plain).kind == "spo2"
    assert obs["identifier"] != plain["identifier"]


def test_a_supplemental_type_no_variant_has_names_the_plain_type() -> None:
    assert find_reading_type([(MDC, "150456")], "150588") is reading_types()["spo2"]  # spot-check modality
    assert find_reading_type([(MDC, "150456")], "150584") is reading_types()["spo2-slow"]


def test_loinc_alone_still_names_the_plain_type_not_a_variant() -> None:
    assert find_reading_type([(LOINC, "2708-6")]) is reading_types()["spo2"]
    assert find_reading_type([(LOINC, "41982-0")]) is reading_types()["body-fat-percentage"]
    assert find_reading_type([(LOINC, "14743-9")]) is reading_types()["glucose-capillary-whole-blood"]
    assert find_reading_type([(LOINC, "2345-7")]) is None  # plasma glucose of four specimens: ambiguous


@pytest.mark.parametrize("kind", ["rr-interval", "energy-expended", "battery-level", "body-impedance"])
def test_a_type_without_loinc_is_coded_by_mdc_alone(kind: str) -> None:
    rtype = reading_types()[kind]
    value = Quantity(Decimal(rtype.range[0] if rtype.range else 0), rtype.units[0])
    obs = _observation(Reading(kind, value))
    assert [c["system"] for c in obs["code"]["coding"]] == [MDC]
    valid = validate_observation(obs)
    assert (valid.kind, valid.loinc) == (kind, "")
    assert "vital-signs" not in str(obs["category"]) and "meta" not in obs


def test_rr_intervals_of_one_notification_keep_their_own_identifiers() -> None:
    readings = decode(
        "2a37", bytes.fromhex("10 48 2003 2003 2003")
    )  # three equal RR intervals, no time stamp
    identifiers = [_observation(r)["identifier"][0]["value"] for r in readings if r.kind == "rr-interval"]
    assert len(set(identifiers)) == 3
    assert identifiers[1] == identifiers[0] + "-1"


def test_absent_values_become_data_absent_reasons() -> None:
    readings = [
        *heart_rate.to_readings(heart_rate.HeartRateMeasurement(0, heart_rate.SensorContact.NOT_DETECTED)),
        *cgm.to_readings([cgm.CgmMeasurement(SpecialValue.NAN, 5)]),
        *glucose.to_readings(
            glucose.GlucoseMeasurement(
                1,
                AT,
                concentration=Decimal("0.0001"),
                unit=glucose.GlucoseConcentrationUnit.MOL_PER_L,
                glucose_type=glucose.GlucoseType.VENOUS_PLASMA,
                sample_location=glucose.SampleLocation.NOT_AVAILABLE,
                sensor_status=glucose.GlucoseSensorStatus.RESULT_TOO_HIGH,
            )
        ),
    ]
    assert [r.value for r in readings] == [
        Absent("not-performed"),
        Absent("not-a-number"),
        Absent("positive-infinity"),
    ]
    for reading in readings:
        obs = _observation(reading)
        Observation.model_validate(obs)
        assert validate_observation(obs).value is None
        assert "valueQuantity" not in obs


def test_every_reading_type_is_well_formed() -> None:
    for key, rtype in reading_types().items():
        assert rtype.key == key and rtype.display and rtype.mdc.code.isdigit()
        if rtype.vital_sign:
            assert rtype.loinc and rtype.profile, key  # the vital-signs profiles require their LOINC code
        if rtype.range is not None:
            low, high = rtype.range
            assert low < high, key
            assert rtype.units, key
            for unit in rtype.units:  # every unit converts to the first, in which the range is given
                assert to_canonical(1.0, unit)[1] == rtype.units[0], (key, unit)
        for unit, codes in rtype.loinc_by_unit:
            assert unit in rtype.units and codes, key
        for site in rtype.sites:
            assert site.mdc.code.isdigit() and (site.snomed is None or site.snomed.system == SNOMED)
