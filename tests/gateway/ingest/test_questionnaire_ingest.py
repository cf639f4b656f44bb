"""A hub's Bundle carries the patient's answers (QuestionnaireResponse) beside its readings: decided,
stored once, receipted, and a bad one quarantined without holding up anything else.

Pure decisions first (``process_message``: the contract's check, the hub's authorisation, every entry
accounted for whatever the Bundle holds), then storing in a real PostgreSQL (``store_decisions``:
stored once, a copy with other answers a conflict, a row the database refuses unstorable on its own;
``POST /fhir``'s answer), then the whole path through a real broker and the real ``IngestWorker``.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from observation_factory import BASE_TIME, Home
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from fhir_contract.observation import build_bundle
from fhir_contract.questionnaire import (
    ANSWER_SYSTEM,
    RESPONSE_IDENTIFIER_SYSTEM,
    build_response,
    bundle_entry,
    current,
)
from gateway.api import fhir_batch
from gateway.broker import BrokerEndpoint
from gateway.ingest.mqtt_ingest import IngestWorker
from gateway.ingest.processing import MessageOutcome, error_report, process_message, receipt
from gateway.ingest.storing import Decided, store_decisions
from gateway.settings import GatewaySettings
from gateway.store.repository import HubAssignment, count_observations, quarantined

HOME = Home()
MAX_BYTES = 100_000
ASSIGNMENT = HubAssignment(
    HOME.municipality_id, HOME.hub_id, HOME.patient_id, frozenset({HOME.oximeter_id, HOME.cuff_id})
)


def lookup(municipality_id: str, hub_id: str) -> HubAssignment | None:
    return ASSIGNMENT if (municipality_id, hub_id) == (HOME.municipality_id, HOME.hub_id) else None


def answers_of(key: str, pick: int = 0) -> dict[str, str]:
    return {q.link_id: q.options[pick % len(q.options)].code for q in current(key).questions}


def response(
    key: str = "heart-failure-daily",
    at: datetime = BASE_TIME,
    *,
    pick: int = 0,
    patient_id: str = HOME.patient_id,
    hub_id: str = HOME.hub_id,
) -> dict[str, Any]:
    return build_response(
        current(key), answers_of(key, pick), patient_id=patient_id, hub_id=hub_id, authored=at
    )


def with_answer(resource: dict[str, Any], link_id: str, code: str) -> dict[str, Any]:
    """A copy of ``resource`` whose item ``link_id`` is answered ``code`` (which may be no option)."""
    changed = copy.deepcopy(resource)
    item = next(i for i in changed["item"] if i["linkId"] == link_id)
    item["answer"] = [{"valueCoding": {"system": ANSWER_SYSTEM, "code": code}}]
    return changed


def mixed(*resources: dict[str, Any]) -> bytes:
    """A hub's batch Bundle of Observations and QuestionnaireResponses, in this order."""
    bundle = build_bundle([])
    bundle["entry"] = [
        bundle_entry(r)
        if r.get("resourceType") == "QuestionnaireResponse"
        else {"resource": r, "request": {"method": "POST", "url": "Observation"}}
        for r in resources
    ]
    return orjson.dumps(bundle)


def decide(payload: bytes) -> MessageOutcome:
    return process_message(HOME.topic, payload, lookup, MAX_BYTES)


def codes(outcome: MessageOutcome) -> list[tuple[int | None, str]]:
    return [(r.index, r.code) for r in outcome.rejections]


# --- deciding ---------------------------------------------------------------------------------------


def test_answers_are_decided_beside_the_readings_and_a_bad_one_spares_its_neighbours() -> None:
    good = response()
    wrong_option = with_answer(response(at=BASE_TIME.replace(hour=9)), "overall", "worse")
    someone_else = response(at=BASE_TIME.replace(hour=10), patient_id="p-other")
    other_hub = response(at=BASE_TIME.replace(hour=11), hub_id="hub-elsewhere")
    on_behalf = response(at=BASE_TIME.replace(hour=12)) | {"source": {"reference": "Patient/p-other"}}
    unknown = response(at=BASE_TIME.replace(hour=13)) | {"questionnaire": current("copd-daily").url + "|9"}
    outcome = decide(
        mixed(HOME.spo2(95), good, wrong_option, HOME.pulse(70), someone_else, other_hub, on_behalf, unknown)
    )
    assert outcome.accepted_positions == (0, 3) and outcome.response_positions == (1,)
    assert outcome.responses[0].answers == answers_of("heart-failure-daily")
    assert outcome.responses[0].identifier == good["identifier"]["value"]
    assert codes(outcome) == [
        (2, "invalid-answer"),
        (4, "not-authorised"),
        (5, "not-authorised"),
        (6, "not-authorised"),
        (7, "unknown-questionnaire"),
    ]
    assert receipt(outcome) == {"bundle": outcome.bundle_id, "accepted": 3, "rejected": 5}
    report = error_report(outcome)
    OperationOutcome.model_validate(report)
    first = report["issue"][0]
    assert first["code"] == "code-invalid" and first["expression"] == ["Bundle.entry[2].resource"]
    assert first["extension"][0]["valueIdentifier"] == {
        "system": RESPONSE_IDENTIFIER_SYSTEM,
        "value": wrong_option["identifier"]["value"],
    }
    assert report["issue"][4]["code"] == "not-found"


def test_an_answer_dated_beyond_the_clock_skew_is_refused_by_the_gateways_clock() -> None:
    now = BASE_TIME + timedelta(days=1)
    payload = mixed(
        response(at=now + timedelta(minutes=10)), response("copd-daily", now + timedelta(minutes=11))
    )
    outcome = process_message(HOME.topic, payload, lookup, MAX_BYTES, now=now)
    assert outcome.response_positions == (0,) and codes(outcome) == [(1, "implausible-time")]


def _entries() -> st.SearchStrategy[dict[str, Any]]:
    good = st.builds(
        lambda key, minute, pick: response(key, BASE_TIME + timedelta(minutes=minute), pick=pick),
        st.sampled_from(["heart-failure-daily", "copd-daily"]),
        st.integers(0, 10_000),
        st.integers(0, 2),
    )
    scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8)

    def mutated(resource: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
        return resource | {key: value}

    broken = st.builds(mutated, good, st.sampled_from(sorted(response())), scalars)
    readings = st.builds(
        lambda minute: HOME.spo2(95, BASE_TIME + timedelta(minutes=minute)), st.integers(0, 999)
    )
    return good | broken | readings


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_entries(), max_size=8))
def test_every_entry_is_accepted_or_rejected_exactly_once(entries: list[dict[str, Any]]) -> None:
    outcome = decide(mixed(*entries))
    decided = [
        *outcome.accepted_positions,
        *outcome.response_positions,
        *(r.index for r in outcome.rejections),
    ]
    assert sorted(decided) == list(range(len(entries)))  # type: ignore[type-var]
    for position, answered in zip(outcome.response_positions, outcome.responses, strict=True):
        assert entries[position]["resourceType"] == "QuestionnaireResponse"
        assert answered.patient_id == HOME.patient_id
    assert receipt(outcome) == {
        "bundle": outcome.bundle_id,
        "accepted": len(outcome.accepted) + len(outcome.responses),
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
    of responses stored as duplicates."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        stored = store_decisions(conn, [Decided(decide(payload), payload)], notify_channel=None)
    return stored.outcomes[0], stored.new_positions[0], stored.responses_duplicates


def stored_responses(database_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT municipality_id, patient_id, hub_id, questionnaire, version, identifier, authored,"
            " answers FROM questionnaire_responses ORDER BY authored"
        ).fetchall()


def quarantine_reasons(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        return [row.reason for row in quarantined(conn, HOME.municipality_id)]


def test_answers_are_stored_once_and_a_copy_with_other_answers_is_a_conflict(enrolled: str) -> None:
    answered = response()
    outcome, new, duplicates = store(enrolled, mixed(HOME.spo2(95), answered))
    assert (new, duplicates, outcome.rejections) == (frozenset({0, 1}), 0, ())
    [row] = stored_responses(enrolled)
    hf = current("heart-failure-daily")
    assert row == (
        HOME.municipality_id,
        HOME.patient_id,
        HOME.hub_id,
        hf.url,
        hf.version,
        answered["identifier"]["value"],
        BASE_TIME,
        answers_of("heart-failure-daily"),
    )
    # Sent again: a duplicate, nothing new, nothing refused.
    outcome, new, duplicates = store(enrolled, mixed(HOME.spo2(95), answered))
    assert (new, duplicates, outcome.rejections, len(outcome.responses)) == (frozenset(), 1, (), 1)
    # The same identifier with other answers: a conflict, quarantined; what was stored stays.
    outcome, new, duplicates = store(enrolled, mixed(with_answer(answered, "overall", "poor")))
    assert (codes(outcome), outcome.responses, new) == ([(0, "conflict")], (), frozenset())
    assert outcome.rejections[0].identifier_system == RESPONSE_IDENTIFIER_SYSTEM
    assert stored_responses(enrolled) == [row]
    assert [reason.split(":")[0] for reason in quarantine_reasons(enrolled)] == ["conflict"]


def test_a_response_the_database_refuses_is_unstorable_on_its_own(enrolled: str) -> None:
    refused = response(at=BASE_TIME.replace(hour=9))
    refused["item"][0]["text"] = "NUL \u0000 here"  # valid FHIR; jsonb cannot hold it
    good = response("copd-daily", BASE_TIME.replace(hour=10))
    outcome, new, _ = store(enrolled, mixed(HOME.spo2(95), refused, good))
    assert codes(outcome) == [(1, "unstorable")] and new == frozenset({0, 2})
    assert [row[3] for row in stored_responses(enrolled)] == [current("copd-daily").url]
    assert quarantine_reasons(enrolled)[0].startswith(
        "unstorable: the database refused this QuestionnaireResponse"
    )
    with psycopg.connect(enrolled) as conn:
        assert count_observations(conn, HOME.municipality_id) == 1


def test_post_fhir_answers_201_for_new_answers_and_200_when_sent_again(enrolled: str) -> None:
    payload = mixed(response(), with_answer(response(at=BASE_TIME.replace(hour=9)), "overall", "yes"))
    statuses = []
    for _ in range(2):
        with psycopg.connect(enrolled, autocommit=True) as conn:
            outcome = fhir_batch.decide(conn, HOME.municipality_id, HOME.hub_id, payload, MAX_BYTES)
            answer = fhir_batch.batch_response(fhir_batch.store(conn, outcome, payload, None))
        statuses.append([entry["response"]["status"] for entry in answer["entry"]])
    assert statuses == [["201 Created", "422 Unprocessable Entity"], ["200 OK", "422 Unprocessable Entity"]]
    assert len(stored_responses(enrolled)) == 1


# --- through the broker ---------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


class TestHub:
    """A hub's MQTT client: publishes Bundles at QoS 1, collects its errors and receipts."""

    __test__ = False

    def __init__(self, endpoint: BrokerEndpoint) -> None:
        protocol = MQTTProtocolVersion.MQTTv5 if endpoint.mqtt5 else MQTTProtocolVersion.MQTTv311
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"hub-{uuid.uuid4().hex[:8]}", protocol=protocol
        )
        self.errors: list[dict[str, Any]] = []
        self.receipts: list[dict[str, Any]] = []
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()
        prefix = f"homewatch/v1/{HOME.municipality_id}/{HOME.hub_id}"
        self.client.subscribe([(f"{prefix}/errors", 1), (f"{prefix}/receipts", 1)])
        assert subscribed.wait(10)

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        target = self.errors if message.topic.endswith("/errors") else self.receipts
        target.append(orjson.loads(message.payload))

    def publish(self, payloads: list[bytes]) -> None:
        for payload in payloads:
            info = self.client.publish(HOME.topic, payload, qos=1)
            info.wait_for_publish(timeout=20)
            assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def hub(broker: BrokerEndpoint) -> Iterator[TestHub]:
    client = TestHub(broker)
    yield client
    client.close()


def test_through_the_broker_answers_are_stored_once_receipted_and_a_bad_one_quarantined(
    enrolled: str, broker: BrokerEndpoint, hub: TestHub
) -> None:
    answered = response()
    bad = with_answer(response("copd-daily", BASE_TIME.replace(hour=9)), "phlegm-colour", "purple")
    payload = mixed(HOME.spo2(95), answered, bad, HOME.pulse(70))
    settings_ = GatewaySettings(database_url=enrolled, mqtt_host=broker.host, mqtt_port=broker.port)
    worker = IngestWorker(settings_, endpoint=broker, client_id=f"ingest-{broker.port}")
    worker.start()
    try:
        assert worker.wait_until_subscribed(10)
        hub.publish([payload, payload])  # the second: a redelivery, as after a lost receipt
        assert wait_for(lambda: worker.counters().messages_acked == 2 and len(hub.receipts) == 2)
    finally:
        worker.stop()
    bundle_id = orjson.loads(payload)["id"]
    assert hub.receipts == [{"bundle": bundle_id, "accepted": 3, "rejected": 1}] * 2
    assert [[issue["details"]["coding"][0]["code"] for issue in e["issue"]] for e in hub.errors] == [
        ["invalid-answer"],
        ["invalid-answer"],
    ]
    [row] = stored_responses(enrolled)
    assert row[5] == answered["identifier"]["value"] and row[7] == answers_of("heart-failure-daily")
    with psycopg.connect(enrolled) as conn:
        assert count_observations(conn, HOME.municipality_id) == 2  # the readings beside it
        kept = quarantined(conn, HOME.municipality_id)
    assert {r.reason.split(":")[0] for r in kept} == {"invalid-answer"}
    assert all(bad["identifier"]["value"] in r.payload and "purple" in r.payload for r in kept)
