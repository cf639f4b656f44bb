"""The contract's limits (``fhir_contract.limits``): what FHIR allows but the gateway must not store.

Each limit closes a way a hostile or broken sender harmed ingest (issue 15): a date at the calendar's
edge overflowed storage's arithmetic and stopped every worker; a Bundle of 100,000 empty entries made
100,000 quarantine rows; identifiers and ids carried NUL bytes or outgrew an index entry.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from edge_agent.config import HubConfig
from fhir_contract.limits import EFFECTIVE_FLOOR, MAX_BUNDLE_ENTRIES, MAX_CLOCK_AHEAD, MAX_IDENTIFIER_CHARS
from fhir_contract.observation import build_bundle, build_observation
from fhir_contract.readings import Quantity, Reading
from fhir_contract.validate import ContractViolation, parse_bundle, validate_observation

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def spo2(at: datetime = NOW - timedelta(hours=1)) -> dict[str, Any]:
    return build_observation(
        Reading("spo2", Quantity(Decimal("95"), "%")),
        patient_id="p1",
        device_id="OXI1",
        hub_id="hub1",
        effective=at,
    )


def code_of(resource: dict[str, Any]) -> str:
    with pytest.raises(ContractViolation) as caught:
        validate_observation(resource, now=NOW)
    return caught.value.code


@pytest.mark.parametrize(
    "effective",
    [
        "0001-01-01T00:00:00+14:00",  # the poison: converting to UTC overflows
        "9999-12-31T23:59:59-14:00",  # the other end of the calendar
        "2000-01-01T00:00:00+00:00",  # a device clock that was never set
        "2014-12-31T23:59:59+00:00",  # just before the floor
        (NOW + MAX_CLOCK_AHEAD + timedelta(seconds=1)).isoformat(),  # just too far ahead
        "2027-06-01T08:00:00+02:00",  # months ahead
    ],
)
def test_an_effective_time_outside_the_window_is_refused(effective: str) -> None:
    resource = spo2()
    resource["effectiveDateTime"] = effective
    assert code_of(resource) == "implausible-time"


@pytest.mark.parametrize(
    "effective", [EFFECTIVE_FLOOR, NOW, NOW + MAX_CLOCK_AHEAD, NOW - timedelta(days=365 * 5)]
)
def test_an_effective_time_inside_the_window_is_taken(effective: datetime) -> None:
    assert validate_observation(spo2(effective), now=NOW).effective == effective


def test_the_window_ends_at_the_clocks_now_by_default() -> None:
    resource = spo2()
    resource["effectiveDateTime"] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    with pytest.raises(ContractViolation):
        validate_observation(resource)
    resource["effectiveDateTime"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    validate_observation(resource)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("subject", "reference"), "Patient/p\x001"),
        (("subject", "reference"), "Patient/" + "p" * 65),
        (("subject", "reference"), "Patient/a b"),
        (("device", "reference"), "Device/OXI\x001"),
        (("device", "reference"), "Device/OXI/1"),
        (("extension", 0, "valueReference", "reference"), "Device/hub\u00e51"),
    ],
)
def test_references_must_carry_fhir_ids(path: tuple[Any, ...], value: str) -> None:
    resource = copy.deepcopy(spo2())
    target: Any = resource
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    assert code_of(resource) == "invalid-fhir"


@pytest.mark.parametrize(
    "identifier",
    ["a\x00b", "with space", "tab\there", "\u00e6\u00f8\u00e5", "x" * (MAX_IDENTIFIER_CHARS + 1)],
)
def test_the_identifier_is_printable_ascii_of_bounded_length(identifier: str) -> None:
    resource = spo2()
    resource["identifier"][0]["value"] = identifier
    assert code_of(resource) == "invalid-fhir"


def test_the_hubs_own_identifiers_are_within_the_limits() -> None:
    identifier = validate_observation(spo2(), now=NOW).identifier
    assert identifier.isascii() and len(identifier) < 200


def test_a_bundle_of_more_entries_than_the_limit_is_refused_whole() -> None:
    entries = [{}] * (MAX_BUNDLE_ENTRIES + 1)
    payload = orjson.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries})
    with pytest.raises(ContractViolation) as caught:
        parse_bundle(payload, max_bytes=len(payload))
    assert caught.value.code == "too-many-entries"
    at_limit = orjson.dumps(build_bundle([spo2()] * MAX_BUNDLE_ENTRIES))
    assert len(parse_bundle(at_limit, max_bytes=len(at_limit)).resources) == MAX_BUNDLE_ENTRIES


def test_the_hub_cannot_be_configured_past_the_bundle_limit(tmp_path: Any) -> None:
    base = {
        "hub_id": "hub1",
        "municipality": "0101",
        "patient_id": "p1",
        "devices": [],
        "outbox_path": str(tmp_path / "o.db"),
    }
    assert HubConfig.model_validate({**base, "bundle_size": MAX_BUNDLE_ENTRIES}).bundle_size == 500
    with pytest.raises(ValueError, match="bundle_size"):
        HubConfig.model_validate({**base, "bundle_size": MAX_BUNDLE_ENTRIES + 1})
