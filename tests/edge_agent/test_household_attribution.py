"""Whose a measurement is on a hub of two residents (edge_agent.household): the User Index a shared
device sends names the resident; a missing, unknown or unmapped index names nobody; never a guess."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.config import DeviceConfig
from edge_agent.gatt import ParseError
from edge_agent.gatt.blood_pressure import BloodPressureMeasurement, encode_blood_pressure_measurement
from edge_agent.gatt.body_composition import (
    BodyCompositionMeasurement,
    encode_body_composition_measurement,
)
from edge_agent.gatt.registry import (
    BLOOD_PRESSURE_MEASUREMENT_UUID,
    BODY_COMPOSITION_MEASUREMENT_UUID,
    PLX_SPOT_CHECK_MEASUREMENT_UUID,
    WEIGHT_MEASUREMENT_UUID,
)
from edge_agent.gatt.weight_scale import WeightMeasurement, encode_weight_measurement
from edge_agent.household import UNKNOWN_USER, carries_user, patient_of, user_index

WHEN = datetime(2026, 3, 2, 8, 14)
_indexes = st.integers(min_value=0, max_value=255)
_patients = st.from_regex(r"p-[a-z0-9]{1,8}", fullmatch=True)


def _cuff(user: int | None) -> bytes:
    return encode_blood_pressure_measurement(
        BloodPressureMeasurement(
            systolic=Decimal(132), diastolic=Decimal(84), mean_arterial_pressure=Decimal(100),
            time_stamp=WHEN, user_id=user,
        )
    )  # fmt: skip


def _scale(user: int | None) -> bytes:
    return encode_weight_measurement(WeightMeasurement(weight=Decimal("80.5"), time_stamp=WHEN, user_id=user))


def _body(user: int | None) -> bytes:
    return encode_body_composition_measurement(
        BodyCompositionMeasurement(body_fat_percentage=Decimal("22.5"), time_stamp=WHEN, user_id=user)
    )


def _shared(users: dict[int, str]) -> DeviceConfig:
    return DeviceConfig(id="cuff-1", address="AA:BB:CC:DD:EE:01", kind="blood-pressure-cuff", users=users)


@pytest.mark.parametrize(
    ("uuid", "encode"),
    [
        (BLOOD_PRESSURE_MEASUREMENT_UUID, _cuff),
        (WEIGHT_MEASUREMENT_UUID, _scale),
        (BODY_COMPOSITION_MEASUREMENT_UUID, _body),
    ],
)
@given(index=_indexes)
def test_the_user_index_is_read_from_each_measurement_that_carries_one(
    uuid: str, encode: object, index: int
) -> None:
    assert callable(encode)
    expected = None if index == UNKNOWN_USER else index
    assert carries_user(uuid)
    assert user_index(uuid, encode(index)) == expected
    assert user_index(uuid, encode(None)) is None


def test_a_characteristic_without_a_user_field_names_no_index() -> None:
    assert not carries_user(PLX_SPOT_CHECK_MEASUREMENT_UUID)
    assert user_index(PLX_SPOT_CHECK_MEASUREMENT_UUID, b"\x00\x5f\x00\x48\x00") is None


def test_truncated_bytes_are_a_parse_error_not_a_guess() -> None:
    with pytest.raises(ParseError):
        user_index(BLOOD_PRESSURE_MEASUREMENT_UUID, _cuff(2)[:-1])


@given(
    users=st.dictionaries(st.integers(1, 254), _patients, min_size=1, max_size=4).filter(
        lambda u: len(set(u.values())) == len(u)
    ),
    index=st.none() | _indexes,
    hub_patient=_patients,
)
def test_a_shared_device_gives_a_measurement_to_the_slots_resident_or_to_nobody(
    users: dict[int, str], index: int | None, hub_patient: str
) -> None:
    device = _shared(users)
    patient = patient_of(device, hub_patient, index)
    if index is not None and index in users:
        assert patient == users[index]
    else:
        assert patient is None  # held on the hub, never the hub's patient by default
    # one resident's measurement is never another's
    assert all(patient_of(device, hub_patient, i) == p for i, p in users.items())


@given(index=st.none() | _indexes, owner=st.none() | _patients, hub_patient=_patients)
def test_a_personal_device_is_its_owners_whatever_index_it_sends(
    index: int | None, owner: str | None, hub_patient: str
) -> None:
    device = DeviceConfig(id="oxi-1", address="AA:BB:CC:DD:EE:02", kind="pulse-oximeter", patient_id=owner)
    assert patient_of(device, hub_patient, index) == (owner or hub_patient)
