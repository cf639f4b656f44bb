"""``fhir_contract.contact``: "contact my nurse" as a FHIR R4 Task, built on the hub, checked at the gateway.

Proves: every reason (and none) builds a Task that fhir.resources and the contract accept, read back as
built (patient, hub, moment, reason, urgency); every way a request can break the contract is refused
with its code; and no input whatever gets anything out of the validator but a ContractViolation or a
ValidContactRequest.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.task import Task
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_contract.contact import (
    CONTACT_IDENTIFIER_SYSTEM,
    CONTACT_ME,
    REASONS,
    REQUEST_SYSTEM,
    ValidContactRequest,
    build_contact_request,
    contact_identifier_of,
    validate_contact_request,
)
from fhir_contract.limits import MAX_CLOCK_AHEAD
from fhir_contract.questionnaire import questionnaires_dir
from fhir_contract.validate import ContractViolation

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def _valid(reason: str | None = None, **changes: Any) -> dict[str, Any]:
    return build_contact_request(patient_id="p1", hub_id="hub1", authored=NOW, reason=reason) | changes


def _refused(resource: Any) -> str:
    with pytest.raises(ContractViolation) as refused:
        validate_contact_request(resource, now=NOW)
    return refused.value.code


@pytest.mark.parametrize("reason", [None, *REASONS])
def test_every_reason_builds_a_task_both_fhir_and_the_contract_accept(reason: str | None) -> None:
    task = _valid(reason)
    Task.model_validate(task)
    valid = validate_contact_request(task, now=NOW)
    assert (valid.patient_id, valid.requester_patient_id, valid.hub_id) == ("p1", "p1", "hub1")
    assert valid.authored == NOW and valid.reason == reason
    assert valid.urgent == (reason == "feeling-worse")
    assert valid.identifier == contact_identifier_of(task)
    assert task["code"]["text"] and (reason is None or task["reasonCode"]["text"] == REASONS[reason].da)


def test_the_codes_are_a_valid_r4_code_system_in_both_languages() -> None:
    path = questionnaires_dir() / "CodeSystem-patient-request.json"
    system = CodeSystem.model_validate(json.loads(path.read_text(encoding="utf-8")))
    assert system.url == REQUEST_SYSTEM and system.count == len(system.concept or [])
    assert {c.code for c in system.concept or []} == {CONTACT_ME, *REASONS}
    task = _valid("equipment")
    assert task["code"]["coding"][0]["display"] == next(
        c.display for c in system.concept or [] if c.code == CONTACT_ME
    )


def test_one_request_per_hub_and_second_so_a_copy_sent_again_is_the_same_request() -> None:
    first = _valid()
    again = build_contact_request(patient_id="p1", hub_id="hub1", authored=NOW + timedelta(microseconds=900))
    later = build_contact_request(patient_id="p1", hub_id="hub1", authored=NOW + timedelta(seconds=1))
    other_hub = build_contact_request(patient_id="p1", hub_id="hub2", authored=NOW)
    assert contact_identifier_of(first) == contact_identifier_of(again)
    assert len({contact_identifier_of(t) for t in (first, later, other_hub)}) == 3


def test_building_refuses_an_unknown_reason_and_a_naive_time() -> None:
    with pytest.raises(ValueError, match="unknown reason"):
        build_contact_request(patient_id="p1", hub_id="h", authored=NOW, reason="pizza")
    with pytest.raises(ValueError, match="time zone"):
        build_contact_request(patient_id="p1", hub_id="h", authored=datetime(2026, 12, 7, 9, 30))


def _without(key: str) -> dict[str, Any]:
    task = _valid()
    del task[key]
    return task


@pytest.mark.parametrize(
    ("broken", "code"),
    [
        (_valid(status="completed"), "invalid-fhir"),
        (_valid(intent="plan"), "invalid-fhir"),
        (_valid(resourceType="Observation"), "invalid-fhir"),
        (_valid(status="no-such-status"), "invalid-fhir"),
        (_without("identifier"), "missing-element"),
        (_valid(identifier=[{"system": "urn:other", "value": "x"}]), "missing-element"),
        (_valid(identifier=[{"system": CONTACT_IDENTIFIER_SYSTEM, "value": "x" * 500}]), "invalid-fhir"),
        (_valid(code={"coding": [{"system": "urn:other", "code": "contact-me"}]}), "unknown-code"),
        (_without("for"), "missing-element"),
        (_valid() | {"for": {"reference": "Device/p1"}}, "missing-element"),
        (_valid(requester={"reference": "Practitioner/x"}), "missing-element"),
        (_without("authoredOn"), "missing-element"),
        (_valid(authoredOn="2026-12-07T09:30:00"), "invalid-fhir"),
        (_valid(authoredOn=(NOW + MAX_CLOCK_AHEAD + timedelta(minutes=1)).isoformat()), "implausible-time"),
        (_valid(authoredOn="2009-01-01T00:00:00+00:00"), "implausible-time"),
        (
            _valid(
                reasonCode={
                    "coding": [
                        {
                            "system": "http://homewatch.example/fhir/CodeSystem/patient-request",
                            "code": "pizza",
                        }
                    ]
                }
            ),
            "unknown-code",
        ),
        (
            _valid(
                extension=[
                    {
                        "url": "http://homewatch.example/fhir/StructureDefinition/recorded-by",
                        "valueReference": {"reference": "Patient/hub1"},
                    }
                ]
            ),
            "missing-element",
        ),
    ],
)
def test_each_way_of_breaking_the_contract_is_refused_with_its_code(
    broken: dict[str, Any], code: str
) -> None:
    assert _refused(broken) == code


def test_a_request_for_another_patient_is_read_as_sent_the_gateway_judges_it() -> None:
    """Who may ask for whom is the gateway's rule; the contract reports both references faithfully."""
    task = _valid()
    task["requester"] = {"reference": "Patient/p2"}
    valid = validate_contact_request(task, now=NOW)
    assert (valid.patient_id, valid.requester_patient_id) == ("p1", "p2")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(key=st.sampled_from(sorted(_valid("question"))), value=JSON)
def test_any_value_in_any_element_gets_a_contract_answer_never_a_crash(key: str, value: Any) -> None:
    task = copy.deepcopy(_valid("question"))
    task[key] = value
    try:
        outcome = validate_contact_request(task, now=NOW)
    except ContractViolation as exc:
        assert exc.code and exc.reason
    else:
        assert isinstance(outcome, ValidContactRequest)


@settings(max_examples=200, deadline=None)
@given(resource=JSON)
def test_any_json_at_all_gets_a_contract_answer(resource: Any) -> None:
    with pytest.raises(ContractViolation):
        validate_contact_request(resource, now=NOW)
