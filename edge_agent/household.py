"""Whose a measurement is, when two residents share a hub: pure, from the device's configuration and
the User Index the measurement carries.

A personal device measures one resident (``DeviceConfig.patient_id``, or the hub's own patient). A
shared device (``DeviceConfig.users``: a cuff or a scale with user slots) names its user in each
measurement: the User ID field of Blood Pressure Measurement 0x2A35 (and Intermediate Cuff Pressure
0x2A36), Weight Measurement 0x2A9D and Body Composition Measurement 0x2A9C, read here with the parsers
of :mod:`edge_agent.gatt`. A measurement of a shared device whose index is missing, 255 ("unknown
user") or in no resident's slot belongs to nobody: :func:`patient_of` says None, and the device session
holds it in :mod:`edge_agent.unattributed` until a resident claims it. It is never guessed. The gateway
checks the same rule again (``gateway.ingest.processing`` rule 5).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from edge_agent.config import DeviceConfig
from edge_agent.gatt import blood_pressure, body_composition, weight_scale
from edge_agent.gatt.registry import (
    BLOOD_PRESSURE_MEASUREMENT_UUID,
    BODY_COMPOSITION_MEASUREMENT_UUID,
    INTERMEDIATE_CUFF_PRESSURE_UUID,
    WEIGHT_MEASUREMENT_UUID,
)

UNKNOWN_USER = 255
"""The User ID a device sends when it does not know who measured (the same in all three services)."""

# The characteristics whose measurements carry a User ID, and their parsers.
_USER_ID_PARSERS: Mapping[str, Callable[[bytes], Any]] = {
    BLOOD_PRESSURE_MEASUREMENT_UUID: blood_pressure.parse_blood_pressure_measurement,
    INTERMEDIATE_CUFF_PRESSURE_UUID: blood_pressure.parse_intermediate_cuff_pressure,
    WEIGHT_MEASUREMENT_UUID: weight_scale.parse_weight_measurement,
    BODY_COMPOSITION_MEASUREMENT_UUID: body_composition.parse_body_composition_measurement,
}


def carries_user(uuid: str) -> bool:
    """Whether measurements of characteristic ``uuid`` can name their user."""
    return uuid in _USER_ID_PARSERS


def user_index(uuid: str, data: bytes) -> int | None:
    """The User Index a measurement of ``uuid`` names: None when the characteristic has no such field,
    the device left it out, or it says "unknown user" (255). ParseError for bytes the parser refuses."""
    parse = _USER_ID_PARSERS.get(uuid)
    if parse is None:
        return None
    index = parse(data).user_id
    return None if index is None or index == UNKNOWN_USER else int(index)


def patient_of(device: DeviceConfig, hub_patient_id: str, index: int | None) -> str | None:
    """The resident a measurement of ``device`` belongs to; None: nobody can say (hold it, never guess).

    A personal device's measurements are its patient's whatever index they carry; a shared device's are
    the resident of the slot ``index`` names."""
    if device.users is None:
        return device.patient_id or hub_patient_id
    if index is None:
        return None
    return device.users.get(index)
