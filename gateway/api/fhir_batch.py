"""``POST /fhir`` for hubs that cannot use MQTT: the same ``batch`` Bundle, the same rules, one answer.

The request is decided by ``gateway.ingest.processing.process_message`` exactly as an MQTT message on
``homewatch/v1/{municipality}/{hub}/observations`` is (the hub and municipality come from its token), and
stored by the same ``gateway.ingest.storing.store_decisions`` as an MQTT message: accepted
Observations in (idempotent on their identifier), every rejection quarantined, a row the database
refuses turned into an ``unstorable`` rejection, and the patients with new data announced with
``pg_notify`` inside the transaction, so the scorer of ``homewatch gateway serve`` scores them once the
rows are committed.

``batch_response`` turns the decision into the ``batch-response`` Bundle the hub gets: one entry per
request entry, in order; ``201 Created`` for a new Observation (or QuestionnaireResponse: a patient's
answers, ``gateway.ingest.response_storing``; or a contact-request Task, ``request_storing``),
``200 OK`` for one already stored (so a retried POST is harmless), ``409 Conflict`` for a reading stored
already with other values, a 4xx with an OperationOutcome for any other rejected entry. A message
rejected as a whole (not a Bundle, too large, hub not enrolled) is answered by ``message_error``
instead. A message that cannot be stored for a reason a retry cannot mend is set aside whole, as the MQTT
worker does (quarantined, else dead-lettered), and answered 422; a database that is away is a 503
(``app.py``).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from gateway.api.fhir_model import observation_id
from gateway.ingest.processing import (
    BAD_TOPIC,
    CONFLICT,
    NOT_AUTHORISED,
    TOPIC_ROOT,
    UNASSIGNED_DEVICE,
    UNKNOWN_HUB,
    MessageOutcome,
    Rejection,
    error_report,
    process_message,
)
from gateway.ingest.storing import Decided, keep_whole, store_decisions
from gateway.store.errors import describe, is_transient
from gateway.store.fhir_reads import Conn
from gateway.store.ingest_metrics import record_batch
from gateway.store.repository import (
    HubAssignment,
    hub_assignment,
)

# POSTed Bundles are counted in /metrics under this name, beside the MQTT workers.
METRICS_WORKER = "http-post"
# HTTP status per rejection code (processing.py); codes not listed are 422: the resource was read but
# broke the contract (FHIR's "violated applicable FHIR profiles or server business rules").
_STATUS = {
    BAD_TOPIC: 403,
    UNKNOWN_HUB: 403,
    NOT_AUTHORISED: 403,
    UNASSIGNED_DEVICE: 403,
    CONFLICT: 409,
    "not-json": 400,
    "not-a-bundle": 400,
    "invalid-fhir": 400,
    "too-large": 413,
    "too-many-entries": 413,
}
_REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    403: "Forbidden",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Entity",
}


def topic_of(municipality_id: str, hub_id: str) -> str:
    """The MQTT topic the hub would have published this Bundle on (the rules and the quarantine use it)."""
    return f"{TOPIC_ROOT}/{municipality_id}/{hub_id}/observations"


def rejection_status(rejection: Rejection) -> int:
    """The HTTP status answering a rejection."""
    return _STATUS.get(rejection.code, 422)


@dataclass(frozen=True, slots=True)
class Stored:
    """What one POST did: the decision (with refused rows as rejections) and which entries were new."""

    outcome: MessageOutcome
    new_positions: frozenset[int]


def decide(conn: Conn, municipality_id: str, hub_id: str, payload: bytes, max_bytes: int) -> MessageOutcome:
    """The MQTT path's decision about ``payload`` from this hub (one lookup, no write)."""

    def lookup(municipality: str, hub: str) -> HubAssignment | None:
        return hub_assignment(conn, municipality, hub)

    return process_message(topic_of(municipality_id, hub_id), payload, lookup, max_bytes)


def store(conn: Conn, outcome: MessageOutcome, payload: bytes, notify_channel: str | None) -> Stored:
    """Store the accepted Observations and quarantine the rejections, in one transaction; announce the
    patients with new data on ``notify_channel`` (None: announce nothing); count it in ``/metrics`` as
    the worker :data:`METRICS_WORKER`."""
    if outcome.source is None:
        raise ValueError("only a message from a known topic can be stored")
    started = time.monotonic()
    try:
        with conn.transaction():
            result = store_decisions(conn, [Decided(outcome, payload)], notify_channel=notify_channel)
            _count(conn, started, result.outcomes[0], result.inserted, result.duplicates)
    except Exception as exc:
        if is_transient(exc):
            raise  # the database is away: the app answers 503 and the hub sends the Bundle again
        # The message caused it: set it aside whole, as the MQTT worker does (gateway.ingest.batch_store).
        return Stored(_set_aside(conn, outcome, payload, describe(exc), started), frozenset())
    return Stored(result.outcomes[0], result.new_positions[0])


def _set_aside(
    conn: Conn, outcome: MessageOutcome, payload: bytes, problem: str, started: float
) -> MessageOutcome:
    """Quarantine the message whole (else keep its bytes in ``dead_letters``) and count it."""
    with conn.transaction():
        kept = keep_whole(conn, METRICS_WORKER, outcome.topic, payload, outcome, problem)
        _count(conn, started, kept, 0, 0)
    return kept


def _count(conn: Conn, started: float, outcome: MessageOutcome, stored: int, duplicates: int) -> None:
    record_batch(
        conn,
        METRICS_WORKER,
        lags_s=[time.monotonic() - started],
        stored=stored,
        duplicates=duplicates,
        rejected=Counter(r.code for r in outcome.rejections),
    )


def _status_text(status: int) -> str:
    return f"{status} {_REASONS[status]}"


def message_error(outcome: MessageOutcome) -> tuple[int, dict[str, Any]]:
    """The status and OperationOutcome answering a message rejected as a whole."""
    whole = [r for r in outcome.rejections if r.index is None]
    return rejection_status(whole[0]), error_report(dataclasses.replace(outcome, rejections=tuple(whole)))


def batch_response(stored: Stored) -> dict[str, Any]:
    """The ``batch-response`` Bundle: one entry per request entry, in the request's order."""
    outcome = stored.outcome
    responses: dict[int, dict[str, Any]] = {}
    municipality_id = outcome.source.municipality_id if outcome.source is not None else ""
    for obs, position in zip(outcome.accepted, outcome.accepted_positions, strict=True):
        status = 201 if position in stored.new_positions else 200
        responses[position] = {
            "status": _status_text(status),
            "location": f"Observation/{observation_id(municipality_id, obs.device_id, obs.identifier)}",
        }
    # A patient's answers (QuestionnaireResponse) and contact requests (Task): stored, no location given.
    for position in (*outcome.response_positions, *outcome.request_positions):
        responses[position] = {"status": _status_text(201 if position in stored.new_positions else 200)}
    for rejection in outcome.rejections:
        if rejection.index is not None:
            report = error_report(dataclasses.replace(outcome, rejections=(rejection,)))
            responses[rejection.index] = {
                "status": _status_text(rejection_status(rejection)),
                "outcome": report,
            }
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "batch-response"}
    if responses:  # FHIR JSON has no empty arrays
        bundle["entry"] = [{"response": responses[position]} for position in sorted(responses)]
    return bundle
