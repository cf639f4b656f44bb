"""A hub's Bundle carries a patient's "contact my nurse" (a Task) beside its readings: decided (rule 7),
stored once, receipted, and a hostile one refused without holding up anything else.

Pure decisions first (``process_message``), then storing in a real PostgreSQL (``store_decisions``:
stored once, a copy about someone else a conflict, a row the database refuses unstorable on its own;
``POST /fhir``'s answer).
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from observation_factory import BASE_TIME, Home

from fhir_contract.contact import (
    CONTACT_IDENTIFIER_SYSTEM,
    REASONS,
    REQUEST_SYSTEM,
    build_contact_request,
    bundle_entry,
)
from fhir_contract.observation import build_bundle
from gateway.api import fhir_batch
from gateway.ingest.processing import MessageOutcome, error_report, process_message, receipt
from gateway.ingest.storing import Decided, store_decisions
from gateway.store.repository import HubAssignment, count_observations, quarantined

HOME = Home()
MAX_BYTES = 100_000
RESIDENT = "p-partner"  # a second patient living with the hub
ASSIGNMENT = HubAssignment(
    HOME.municipality_id,
    HOME.hub_id,
    HOME.patient_id,
    frozenset({HOME.oximeter_id, HOME.cuff_id}),
    residents=frozenset({HOME.patient_id, RESIDENT}),
)


def lookup(municipality_id: str, hub_id: str) -> HubAssignment | None:
    return ASSIGNMENT if (municipality_id, hub_id) == (HOME.municipality_id, HOME.hub_id) else None


def task(
    at: datetime = BASE_TIME,
    reason: str | None = None,
    *,
    patient_id: str = HOME.patient_id,
    hub_id: str = HOME.hub_id,
) -> dict[str, Any]:
    return build_contact_request(patient_id=patient_id, hub_id=hub_id, authored=at, reason=reason)


def mixed(*resources: dict[str, Any]) -> bytes:
    """A hub's batch Bundle of Observations and Tasks, in this order."""
    bundle = build_bundle([])
    bundle["entry"] = [
        bundle_entry(r)
        if r.get("resourceType") == "Task"
        else {"resource": r, "request": {"method": "POST", "url": r.get("resourceType", "Observation")}}
        for r in resources
    ]
    return orjson.dumps(bundle)


def decide(payload: bytes, now: datetime | None = None) -> MessageOutcome:
    return process_message(HOME.topic, payload, lookup, MAX_BYTES, now=now)


def codes(outcome: MessageOutcome) -> list[tuple[int | None, str]]:
    return [(r.index, r.code) for r in outcome.rejections]


def at_hour(hour: int) -> datetime:
    return BASE_TIME.replace(hour=hour)


# --- deciding (rule 7) ------------------------------------------------------------------------------


def test_a_request_is_decided_beside_the_readings_and_a_hostile_one_spares_its_neighbours() -> None:
    good = task(reason="feeling-worse")
    partner = task(at_hour(9), patient_id=RESIDENT)  # the other resident asks for themself
    stranger = task(at_hour(10), patient_id="p-elsewhere")
    other_hub = task(at_hour(11), hub_id="hub-elsewhere")
    on_behalf = task(at_hour(12)) | {"requester": {"reference": f"Patient/{RESIDENT}"}}
    bad_reason = task(at_hour(13), "question")
    bad_reason["reasonCode"]["coding"][0]["code"] = "pizza"
    wrong_code = task(at_hour(14))
    wrong_code["code"]["coding"][0]["code"] = "delete-patient"
    completed = task(at_hour(15)) | {"status": "completed"}
    outcome = decide(
        mixed(HOME.spo2(95), good, partner, stranger, other_hub, on_behalf, bad_reason, wrong_code, completed)
    )
    assert outcome.accepted_positions == (0,) and outcome.request_positions == (1, 2)
    first, second = outcome.requests
    assert (first.patient_id, first.reason, first.urgent) == (HOME.patient_id, "feeling-worse", True)
    assert (second.patient_id, second.reason, second.urgent) == (RESIDENT, None, False)
    assert first.identifier == good["identifier"][0]["value"]
    assert codes(outcome) == [
        (3, "not-authorised"),
        (4, "not-authorised"),
        (5, "not-authorised"),
        (6, "unknown-code"),
        (7, "unknown-code"),
        (8, "invalid-fhir"),
    ]
    assert receipt(outcome) == {"bundle": outcome.bundle_id, "accepted": 3, "rejected": 6}
    report = error_report(outcome)
    OperationOutcome.model_validate(report)
    first_issue = report["issue"][0]
    assert first_issue["code"] == "forbidden" and first_issue["expression"] == ["Bundle.entry[3].resource"]
    assert first_issue["extension"][0]["valueIdentifier"] == {
        "system": CONTACT_IDENTIFIER_SYSTEM,
        "value": stranger["identifier"][0]["value"],
    }


def test_a_request_dated_beyond_the_clock_skew_is_refused_by_the_gateways_clock() -> None:
    now = BASE_TIME + timedelta(days=1)
    outcome = decide(mixed(task(now + timedelta(minutes=1)), task(now + timedelta(hours=2))), now=now)
    assert outcome.request_positions == (0,) and codes(outcome) == [(1, "implausible-time")]


def test_a_huge_reason_text_is_a_rejection_whose_report_stays_small() -> None:
    huge = task(reason="question")
    huge["reasonCode"]["coding"][0]["code"] = "x" * 200_000
    huge["note"] = [{"text": "y" * 300_000}]
    outcome = process_message(HOME.topic, mixed(huge, task(at_hour(9))), lookup, 2_000_000)
    assert codes(outcome) == [(0, "unknown-code")] and outcome.request_positions == (1,)
    assert len(orjson.dumps(error_report(outcome))) < 5_000


def _entries() -> st.SearchStrategy[dict[str, Any]]:
    good = st.builds(
        lambda minute, reason, patient: task(
            BASE_TIME + timedelta(minutes=minute), reason, patient_id=patient
        ),
        st.integers(0, 10_000),
        st.none() | st.sampled_from(sorted(REASONS)),
        st.sampled_from([HOME.patient_id, RESIDENT, "p-elsewhere"]),
    )
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**63 - 1)
        | st.text(max_size=40)
        | st.lists(st.text(max_size=5), max_size=3)
        | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)
    )

    def mutated(resource: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
        return resource | {key: value}

    def coded(resource: dict[str, Any], element: str, code: Any, system: Any) -> dict[str, Any]:
        changed = copy.deepcopy(resource)
        changed[element] = {"coding": [{"system": system, "code": code}]}
        return changed

    keys = st.sampled_from(sorted({*task(reason="question"), "extension", "owner", "basedOn"}))
    broken = st.builds(mutated, good, keys, scalars)
    recoded = st.builds(
        coded,
        good,
        st.sampled_from(["code", "reasonCode"]),
        st.text(max_size=30) | st.sampled_from([*REASONS, "contact-me"]),
        st.sampled_from([REQUEST_SYSTEM, "http://loinc.org", ""]),
    )
    readings = st.builds(
        lambda minute: HOME.spo2(95, BASE_TIME + timedelta(minutes=minute)), st.integers(0, 999)
    )
    return good | broken | recoded | readings


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_entries(), max_size=8))
def test_every_entry_is_accepted_or_rejected_exactly_once_and_only_residents_requests_pass(
    entries: list[dict[str, Any]],
) -> None:
    outcome = decide(mixed(*entries))
    decided = [
        *outcome.accepted_positions,
        *outcome.request_positions,
        *(r.index for r in outcome.rejections),
    ]
    assert sorted(decided) == list(range(len(entries)))  # type: ignore[type-var]
    for position, request in zip(outcome.request_positions, outcome.requests, strict=True):
        assert entries[position]["resourceType"] == "Task"
        assert request.patient_id in ASSIGNMENT.residents
        assert request.requester_patient_id == request.patient_id
        assert request.hub_id in (None, HOME.hub_id)
        assert request.reason is None or request.reason in REASONS
    assert receipt(outcome) == {
        "bundle": outcome.bundle_id,
        "accepted": len(outcome.accepted) + len(outcome.requests),
        "rejected": len(outcome.rejections),
    }


# --- storing ------------------------------------------------------------------------------------------


@pytest.fixture
def enrolled(database_url: str) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        HOME.enroll(conn)
    return database_url


def store(database_url: str, payload: bytes) -> tuple[MessageOutcome, frozenset[int], int]:
    """Decide and store one message in one transaction: the outcome, the new positions and the number
    of requests stored as duplicates."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        stored = store_decisions(conn, [Decided(decide(payload), payload)], notify_channel=None)
    return stored.outcomes[0], stored.new_positions[0], stored.requests_duplicates


def stored_requests(database_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT municipality_id, patient_id, hub_id, identifier, authored, reason, urgent, status"
            " FROM contact_requests ORDER BY authored"
        ).fetchall()


def quarantine_reasons(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        return [row.reason for row in quarantined(conn, HOME.municipality_id)]


def test_a_request_is_stored_once_open_and_a_copy_with_another_reason_is_a_conflict(enrolled: str) -> None:
    asked = task(reason="feeling-worse")
    outcome, new, duplicates = store(enrolled, mixed(HOME.spo2(95), asked))
    assert (new, duplicates, outcome.rejections) == (frozenset({0, 1}), 0, ())
    [row] = stored_requests(enrolled)
    identifier = asked["identifier"][0]["value"]
    assert row == (
        HOME.municipality_id,
        HOME.patient_id,
        HOME.hub_id,
        identifier,
        BASE_TIME,
        "feeling-worse",
        True,
        "open",
    )
    # Sent again (a lost receipt): a duplicate, nothing new, nothing refused.
    outcome, new, duplicates = store(enrolled, mixed(HOME.spo2(95), asked))
    assert (new, duplicates, outcome.rejections, len(outcome.requests)) == (frozenset(), 1, (), 1)
    # The same identifier with another reason: a conflict, quarantined; what was stored stays.
    changed = copy.deepcopy(asked)
    changed["reasonCode"]["coding"][0]["code"] = "equipment"
    outcome, new, duplicates = store(enrolled, mixed(changed))
    assert (codes(outcome), outcome.requests, new) == ([(0, "conflict")], (), frozenset())
    assert outcome.rejections[0].identifier_system == CONTACT_IDENTIFIER_SYSTEM
    assert stored_requests(enrolled) == [row]
    assert [reason.split(":")[0] for reason in quarantine_reasons(enrolled)] == ["conflict"]


def test_a_request_the_database_refuses_is_unstorable_on_its_own(enrolled: str) -> None:
    refused = task(at_hour(9)) | {"description": "NUL \u0000 here"}  # valid FHIR; jsonb cannot hold it
    good = task(at_hour(10), "equipment")
    outcome, new, _ = store(enrolled, mixed(HOME.spo2(95), refused, good))
    assert codes(outcome) == [(1, "unstorable")] and new == frozenset({0, 2})
    assert [row[5] for row in stored_requests(enrolled)] == ["equipment"]
    assert quarantine_reasons(enrolled)[0].startswith("unstorable: the database refused this contact request")
    with psycopg.connect(enrolled) as conn:
        assert count_observations(conn, HOME.municipality_id) == 1


def test_post_fhir_answers_201_for_a_new_request_and_200_when_sent_again(enrolled: str) -> None:
    stranger = task(at_hour(9), patient_id="p-elsewhere")
    payload = mixed(task(reason="question"), stranger)
    statuses = []
    for _ in range(2):
        with psycopg.connect(enrolled, autocommit=True) as conn:
            outcome = fhir_batch.decide(conn, HOME.municipality_id, HOME.hub_id, payload, MAX_BYTES)
            answer = fhir_batch.batch_response(fhir_batch.store(conn, outcome, payload, None))
        statuses.append([entry["response"]["status"] for entry in answer["entry"]])
    assert statuses == [["201 Created", "403 Forbidden"], ["200 OK", "403 Forbidden"]]
    assert len(stored_requests(enrolled)) == 1
