"""process_message decides about one message without any server: what is stored, what is refused, why."""

from __future__ import annotations

import copy

import orjson
import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from observation_factory import Home, bundle, identifier

from gateway.ingest.processing import (
    MessageOutcome,
    error_report,
    parse_topic,
    process_message,
    receipt,
)
from gateway.store.repository import HubAssignment

HOME = Home()
MAX_BYTES = 100_000
ASSIGNMENTS = {
    (HOME.municipality_id, HOME.hub_id): HubAssignment(
        HOME.municipality_id, HOME.hub_id, HOME.patient_id, frozenset({HOME.oximeter_id, HOME.cuff_id})
    )
}


def lookup(municipality_id: str, hub_id: str) -> HubAssignment | None:
    return ASSIGNMENTS.get((municipality_id, hub_id))


def run(payload: bytes, topic: str = HOME.topic) -> MessageOutcome:
    return process_message(topic, payload, lookup, MAX_BYTES)


def codes(outcome: MessageOutcome) -> list[tuple[int | None, str]]:
    return [(r.index, r.code) for r in outcome.rejections]


def test_good_bundle_is_accepted_whole() -> None:
    observations = [HOME.spo2(95), HOME.pulse(72), HOME.blood_pressure(120, 80)]
    outcome = run(bundle(observations))
    assert outcome.rejections == ()
    assert [o.identifier for o in outcome.accepted] == [identifier(o) for o in observations]
    assert outcome.accepted_positions == (0, 1, 2)
    assert outcome.source is not None and outcome.source.hub_id == HOME.hub_id


@pytest.mark.parametrize(
    "topic",
    [
        "homewatch/v1/0101/hub1/status",
        "homewatch/v2/0101/hub1/observations",
        "homewatch/v1/0101/observations",
        "homewatch/v1//hub1/observations",
        "homewatch/v1/0101/hub1/observations/extra",
        # Municipality and hub must be FHIR ids: nothing else is looked up in the database.
        "homewatch/v1/0101/hub\x001/observations",
        "homewatch/v1/0101/hub 1/observations",
        "homewatch/v1/" + "9" * 65 + "/hub1/observations",
        "homewatch/v1/0101/+/observations",
    ],
)
def test_bad_topic_rejects_the_message(topic: str) -> None:
    outcome = run(bundle([HOME.spo2(95)]), topic)
    assert codes(outcome) == [(None, "bad-topic")]
    assert outcome.message_rejected and outcome.accepted == ()


def test_unknown_hub_rejects_the_message() -> None:
    outcome = run(bundle([HOME.spo2(95)]), "homewatch/v1/0101/stranger/observations")
    assert codes(outcome) == [(None, "unknown-hub")]


def test_hub_in_another_municipality_is_unknown() -> None:
    outcome = run(bundle([HOME.spo2(95)]), f"homewatch/v1/0147/{HOME.hub_id}/observations")
    assert codes(outcome) == [(None, "unknown-hub")]


def test_observation_for_another_patient_is_not_authorised() -> None:
    good, foreign = HOME.spo2(95), HOME.spo2(96, patient_id="p-other")
    outcome = run(bundle([good, foreign]))
    assert [o.identifier for o in outcome.accepted] == [identifier(good)]
    assert codes(outcome) == [(1, "not-authorised")]
    assert outcome.rejections[0].identifier == identifier(foreign)


def test_a_device_assigned_to_nobody_is_held_under_its_own_code() -> None:
    outcome = run(bundle([HOME.spo2(95, device_id="STOLEN"), HOME.spo2(94)]))
    assert codes(outcome) == [(0, "unassigned-device")]
    assert "STOLEN" in outcome.rejections[0].reason
    assert outcome.rejections[0].resource["resourceType"] == "Observation"  # kept whole for the quarantine
    assert [o.device_id for o in outcome.accepted] == [HOME.oximeter_id]  # its neighbour is stored


def test_a_foreign_patient_from_an_unassigned_device_is_still_not_authorised() -> None:
    outcome = run(bundle([HOME.spo2(95, patient_id="p-other", device_id="STOLEN")]))
    assert codes(outcome) == [(0, "not-authorised")]


def test_gateway_extension_naming_another_hub_is_not_authorised() -> None:
    outcome = run(bundle([HOME.spo2(95, hub_id="hub-elsewhere")]))
    assert codes(outcome) == [(0, "not-authorised")]


def test_one_invalid_observation_spares_its_neighbours() -> None:
    impossible = HOME.spo2(95)
    impossible["valueQuantity"]["value"] = 140
    wrong_unit = copy.deepcopy(HOME.pulse(70))
    wrong_unit["valueQuantity"]["code"] = "kg"
    not_fhir = {"resourceType": "Observation", "status": 12}
    no_value = HOME.spo2(97)
    del no_value["valueQuantity"]["value"]  # a shape the validator might not expect: still a rejection
    good = [HOME.spo2(94), HOME.blood_pressure(130, 85)]
    outcome = run(bundle([good[0], impossible, wrong_unit, not_fhir, "not an object", no_value, good[1]]))  # type: ignore[list-item]
    assert [o.identifier for o in outcome.accepted] == [identifier(o) for o in good]
    assert outcome.accepted_positions == (0, 6)
    assert codes(outcome)[:4] == [
        (1, "impossible-value"),
        (2, "unit-mismatch"),
        (3, "invalid-fhir"),
        (4, "invalid-fhir"),
    ]
    assert [index for index, _ in codes(outcome)] == [1, 2, 3, 4, 5]
    assert outcome.rejections[0].identifier == identifier(impossible)
    assert not outcome.message_rejected


def test_non_json_rejects_the_message() -> None:
    assert codes(run(b"\x00\x01 not json")) == [(None, "not-json")]


def test_json_that_is_not_a_batch_bundle_rejects_the_message() -> None:
    assert codes(run(orjson.dumps({"resourceType": "Bundle", "type": "transaction"}))) == [
        (None, "not-a-bundle")
    ]
    assert codes(run(orjson.dumps(HOME.spo2(95)))) == [(None, "not-a-bundle")]


def test_oversized_payload_rejects_the_message() -> None:
    payload = bundle(HOME.readings(200))
    assert len(payload) > MAX_BYTES
    assert codes(run(payload)) == [(None, "too-large")]


def test_parse_topic_names_the_hub_and_its_errors_topic() -> None:
    source = parse_topic(HOME.topic)
    assert source is not None
    assert (source.municipality_id, source.hub_id) == (HOME.municipality_id, HOME.hub_id)
    assert source.errors_topic == HOME.errors_topic
    assert source.receipts_topic == HOME.errors_topic.removesuffix("errors") + "receipts"


def test_receipt_names_the_bundle_and_counts_its_entries() -> None:
    impossible = HOME.spo2(96)
    impossible["valueQuantity"]["value"] = 140  # the hub would send it as dataAbsentReason; another sender
    payload = orjson.loads(bundle([HOME.spo2(95), impossible, HOME.pulse(72)]))
    payload["id"] = "batch-17"
    owed = receipt(run(orjson.dumps(payload)))
    assert owed == {"bundle": "batch-17", "accepted": 2, "rejected": 1}


def test_no_receipt_for_an_unknown_hub_nor_for_a_bundle_without_id() -> None:
    payload = orjson.loads(bundle([HOME.spo2(95)]))
    # A hub the gateway does not know keeps its readings: they are stored once it is enrolled.
    assert receipt(run(orjson.dumps(payload), topic="homewatch/v1/0101/stranger/observations")) is None
    del payload["id"]
    assert receipt(run(orjson.dumps(payload))) is None  # nothing to name
    assert receipt(run(b"not json")) is None


def test_error_report_is_a_valid_operation_outcome_naming_each_entry() -> None:
    impossible = HOME.spo2(95)
    impossible["valueQuantity"]["value"] = 140
    outcome = run(bundle([HOME.spo2(94), impossible, HOME.spo2(96, device_id="STOLEN")]))
    report = error_report(outcome)
    OperationOutcome.model_validate(report)
    issues = report["issue"]
    assert [i["details"]["coding"][0]["code"] for i in issues] == ["impossible-value", "unassigned-device"]
    assert issues[1]["code"] == "forbidden"
    assert issues[0]["expression"] == ["Bundle.entry[1].resource"]
    assert issues[0]["extension"][0]["valueIdentifier"]["value"] == identifier(impossible)
    assert all(i["details"]["text"] for i in issues)
