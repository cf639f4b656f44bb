"""Storing what ``processing`` decided: one place for the MQTT worker and for ``POST /fhir``.

``store_decisions`` runs in the caller's transaction: the accepted Observations go in (idempotent on
the reading: municipality, device and identifier), then the accepted QuestionnaireResponses
(``response_storing``: idempotent on municipality, hub and identifier), then the accepted contact
requests (``request_storing``: keyed the same way), every rejection is
quarantined with what was refused, and the patients with new data are announced with the earliest
effective time of their new readings (``gateway.store.new_data``: ``pg_notify``, which PostgreSQL
delivers only if the transaction commits, so the scorer never hears of rows that are not there).

Nothing a sender puts in a message may stop storing, or reach another sender's readings:

- a reading whose key is stored already with other values is a ``conflict``: quarantined and reported,
  never counted as stored (a duplicate is only the same reading again);
- a row the database refuses outright (a JSON string holding ``\\u0000``, which jsonb cannot store) makes
  the batch go in again row by row, and only the refused rows become ``unstorable`` rejections;
- an entry that cannot be serialised again for the quarantine (nested deeper than orjson writes) is kept
  as the message's raw bytes instead;
- a message that cannot be stored at all is kept whole (``keep_whole``): quarantined as ``unstorable``
  with its bytes, and if even that fails, dead-lettered as bytes. The callers decide when
  (``batch_store`` and ``gateway.api.fhir_batch``: only for failures a retry cannot mend,
  ``gateway.store.errors.is_transient``, and only for the one message that fails on its own).

Left to the callers: the transaction itself, acknowledgements and receipts (``mqtt_ingest``), the HTTP
answer (``gateway.api.fhir_batch``), and counting (``gateway.store.ingest_metrics``).
"""

from __future__ import annotations

import dataclasses
import logging
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg

from gateway.ingest.processing import (
    CONFLICT,
    DEAD_LETTERED,
    UNSTORABLE,
    MessageOutcome,
    Rejection,
    clip,
    parse_topic,
)
from gateway.ingest.request_storing import store_requests
from gateway.ingest.response_storing import store_responses
from gateway.store.errors import describe, is_transient
from gateway.store.new_data import announce_new_data
from gateway.store.repository import (
    DeliveredObservation,
    QuarantineEntry,
    dead_letter,
    insert_observation_batch,
    quarantine_many,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Decided:
    """One message and the decision about it."""

    outcome: MessageOutcome
    payload: bytes  # quarantined as it is when the whole message is rejected


@dataclass(frozen=True, slots=True)
class StoredDecisions:
    """What a batch of decisions came to in the database."""

    # As decided, with conflicts and rows the database refused turned into rejections.
    outcomes: list[MessageOutcome]
    inserted: int
    duplicates: int
    # Per municipality: the patients with new data to score, each with the earliest effective time of it.
    patients: dict[str, dict[str, datetime]]
    # Per outcome: the Bundle entries stored as new rows (the others accepted were duplicates).
    new_positions: list[frozenset[int]] = dataclasses.field(default_factory=list)
    # The QuestionnaireResponses stored as new rows, and those stored already (``inserted`` and
    # ``duplicates`` count Observations only; ``new_positions`` holds both kinds).
    responses_inserted: int = 0
    responses_duplicates: int = 0
    # The contact requests (Tasks) stored as new rows, and those stored already.
    requests_inserted: int = 0
    requests_duplicates: int = 0


def store_decisions(
    conn: psycopg.Connection[Any], decided: Sequence[Decided], *, notify_channel: str | None
) -> StoredDecisions:
    """Store, quarantine and announce a batch of decisions, in the caller's transaction."""
    try:
        stored = _store_together(conn, [d.outcome for d in decided])
    except (psycopg.DataError, psycopg.IntegrityError) as exc:
        log.warning("a row was refused by the database (%s); storing the batch row by row", exc)
        stored = _store_one_by_one(conn, [d.outcome for d in decided])
    stored = _with_requests(conn, _with_responses(conn, stored))
    quarantine_many(
        conn,
        [
            entry
            for o, d in zip(stored.outcomes, decided, strict=True)
            for entry in quarantine_entries(o, d.payload)
        ],
    )
    if notify_channel is not None:
        announce_new_data(conn, notify_channel, stored.patients)
    return stored


def _with_responses(conn: psycopg.Connection[Any], stored: StoredDecisions) -> StoredDecisions:
    """``stored`` with the accepted QuestionnaireResponses of its outcomes stored too."""
    responses = store_responses(conn, stored.outcomes)
    return dataclasses.replace(
        stored,
        outcomes=responses.outcomes,
        new_positions=[a | b for a, b in zip(stored.new_positions, responses.new_positions, strict=True)],
        responses_inserted=responses.inserted,
        responses_duplicates=responses.duplicates,
    )


def _with_requests(conn: psycopg.Connection[Any], stored: StoredDecisions) -> StoredDecisions:
    """``stored`` with the accepted contact requests of its outcomes stored too."""
    requests = store_requests(conn, stored.outcomes)
    return dataclasses.replace(
        stored,
        outcomes=requests.outcomes,
        new_positions=[a | b for a, b in zip(stored.new_positions, requests.new_positions, strict=True)],
        requests_inserted=requests.inserted,
        requests_duplicates=requests.duplicates,
    )


def _rows(outcomes: Sequence[MessageOutcome]) -> tuple[list[DeliveredObservation], list[tuple[int, int]]]:
    """The accepted Observations of all outcomes, and where each came from: (outcome, accepted index)."""
    rows: list[DeliveredObservation] = []
    origins: list[tuple[int, int]] = []
    for i, outcome in enumerate(outcomes):
        if outcome.source is None:
            continue
        for j, obs in enumerate(outcome.accepted):
            rows.append(DeliveredObservation(outcome.source.municipality_id, outcome.source.hub_id, obs))
            origins.append((i, j))
    return rows, origins


def _conflict(obs_identifier: str, device_id: str) -> str:
    return (
        f"reading {obs_identifier} of device {device_id} is stored already with other values (patient,"
        " type, value, unit or components); this copy is kept here, not stored"
    )


def _refuse(
    outcome: MessageOutcome, refused: dict[int, tuple[str, str]], new: set[int]
) -> tuple[MessageOutcome, frozenset[int]]:
    """``outcome`` with its accepted Observations at indexes ``refused`` (index -> code, reason) turned
    into rejections; and the Bundle positions of the accepted indexes in ``new``."""
    new_positions = frozenset(outcome.accepted_positions[j] for j in new)
    if not refused:
        return outcome, new_positions
    accepted, positions, rejections = [], [], list(outcome.rejections)
    for j, (obs, position) in enumerate(zip(outcome.accepted, outcome.accepted_positions, strict=True)):
        if j in refused:
            code, reason = refused[j]
            rejections.append(Rejection(position, obs.identifier, code, reason, obs.resource))
        else:
            accepted.append(obs)
            positions.append(position)
    rejections.sort(key=lambda r: -1 if r.index is None else r.index)
    replaced = dataclasses.replace(
        outcome, accepted=tuple(accepted), rejections=tuple(rejections), accepted_positions=tuple(positions)
    )
    return replaced, new_positions


def _store_together(conn: psycopg.Connection[Any], outcomes: list[MessageOutcome]) -> StoredDecisions:
    rows, origins = _rows(outcomes)
    result = insert_observation_batch(conn, rows)  # its own savepoint
    refused: list[dict[int, tuple[str, str]]] = [{} for _ in outcomes]
    new: list[set[int]] = [set() for _ in outcomes]
    for position in result.conflicts:
        i, j = origins[position]
        obs = rows[position].observation
        refused[i][j] = (CONFLICT, _conflict(obs.identifier, obs.device_id))
    for position in result.new_positions:
        i, j = origins[position]
        new[i].add(j)
    pairs = [_refuse(o, refused[i], new[i]) for i, o in enumerate(outcomes)]
    earliest: dict[str, dict[str, datetime]] = {}
    for position in result.new_positions:
        _note_earliest(earliest, result.patients, rows[position])
    return StoredDecisions(
        [o for o, _ in pairs], result.inserted, result.duplicates, earliest, [n for _, n in pairs]
    )


def _note_earliest(
    earliest: dict[str, dict[str, datetime]], to_score: Mapping[str, set[str]], row: DeliveredObservation
) -> None:
    """Lower ``earliest`` to the new ``row``'s effective time if its patient has new data to score
    (``to_score``, the repository's verdict: a patient with only preliminary rows has none). A
    preliminary row of such a patient may lower it too: scoring from a little earlier is harmless."""
    patient_id = row.observation.patient_id
    if patient_id in to_score.get(row.municipality_id, ()):
        times = earliest.setdefault(row.municipality_id, {})
        effective = row.observation.effective
        times[patient_id] = min(times.get(patient_id, effective), effective)


def _store_one_by_one(conn: psycopg.Connection[Any], outcomes: list[MessageOutcome]) -> StoredDecisions:
    inserted = duplicates = 0
    patients: dict[str, dict[str, datetime]] = {}
    kept: list[MessageOutcome] = []
    new_positions: list[frozenset[int]] = []
    for outcome in outcomes:
        source = outcome.source
        if source is None:
            kept.append(outcome)
            new_positions.append(frozenset())
            continue
        refused: dict[int, tuple[str, str]] = {}
        new: set[int] = set()
        for j, obs in enumerate(outcome.accepted):
            row = DeliveredObservation(source.municipality_id, source.hub_id, obs)
            try:
                result = insert_observation_batch(conn, [row])  # its own savepoint
            except (psycopg.DataError, psycopg.IntegrityError) as exc:
                refused[j] = (UNSTORABLE, f"the database refused this Observation: {str(exc).strip()}")
                continue
            if result.conflicts:
                refused[j] = (CONFLICT, _conflict(obs.identifier, obs.device_id))
            elif result.inserted:
                new.add(j)
            inserted += result.inserted
            duplicates += result.duplicates
            if result.inserted:
                _note_earliest(patients, result.patients, row)
        outcome, positions = _refuse(outcome, refused, new)
        kept.append(outcome)
        new_positions.append(positions)
    return StoredDecisions(kept, inserted, duplicates, patients, new_positions)


# A summary of an entry orjson cannot write again (nested deeper than its limit): bounded in depth and
# size, and built without recursion trouble.
_SUMMARY = reprlib.Repr()  # keyword arguments only from Python 3.12
_SUMMARY.maxlevel, _SUMMARY.maxdict, _SUMMARY.maxlist = 4, 8, 8
_SUMMARY.maxstring = _SUMMARY.maxother = 200


def _entry_text(resource: Any) -> bytes | None:
    """The entry as JSON, or None when orjson cannot write it (too deep)."""
    try:
        return orjson.dumps(resource)
    except (TypeError, ValueError, RecursionError):  # orjson.JSONEncodeError is a TypeError
        return None


def quarantine_entries(outcome: MessageOutcome, payload: bytes) -> list[QuarantineEntry]:
    """The quarantine rows of a decision: the raw payload for a message rejected whole, the entry as
    parsed (with its position and identifier in the reason) for each rejected Observation.

    An entry that cannot be written as JSON again keeps the message's raw bytes instead (once per
    message; later such entries get a bounded summary and point to that row)."""
    source = outcome.source
    municipality_id = source.municipality_id if source else None
    hub_id = source.hub_id if source else None
    entries: list[QuarantineEntry] = []
    raw_kept_with: int | None = None
    for rejection in outcome.rejections:
        reason = clip(rejection.reason)
        if rejection.index is None:
            reason, kept = f"{rejection.code}: {reason}", payload
        else:
            where = f"entry {rejection.index}" + (
                f", identifier {rejection.identifier}" if rejection.identifier else ""
            )
            reason = f"{rejection.code}: {reason} ({where})"
            text = _entry_text(rejection.resource)
            if text is not None:
                kept = text
            elif raw_kept_with is None:
                raw_kept_with = rejection.index
                reason += "; the entry is too deeply nested to write again: the whole message is kept"
                kept = payload
            else:
                reason += f"; too deeply nested: the whole message is kept with entry {raw_kept_with}"
                kept = _SUMMARY.repr(rejection.resource).encode()
        entries.append(QuarantineEntry(outcome.topic, municipality_id, hub_id, reason, kept))
    return entries


def _rejected_whole(topic: str, decided: MessageOutcome | None, code: str, reason: str) -> MessageOutcome:
    """The outcome of a message set aside whole: every entry rejected under ``code``; the Bundle id kept
    (when the message was decided) so the hub gets its receipt and stops re-sending a message that can
    never be stored."""
    return MessageOutcome(
        topic,
        decided.source if decided is not None else parse_topic(topic),
        (),
        (Rejection(None, None, code, reason),),
        bundle_id=decided.bundle_id if decided is not None else None,
        entries=decided.entries if decided is not None else 0,
    )


def set_aside(
    conn: psycopg.Connection[Any], topic: str, payload: bytes, decided: MessageOutcome | None, problem: str
) -> MessageOutcome:
    """Quarantine a message whole as ``unstorable`` (its raw bytes, the reason ``problem``), in the
    caller's transaction; the outcome to answer the hub with."""
    reason = f"the message could not be stored: {clip(problem, 500)}; it is kept in the quarantine"
    outcome = _rejected_whole(topic, decided, UNSTORABLE, reason)
    quarantine_many(conn, quarantine_entries(outcome, payload))
    return outcome


def dead_letter_message(
    conn: psycopg.Connection[Any],
    worker: str,
    topic: str,
    payload: bytes,
    decided: MessageOutcome | None,
    problem: str,
) -> MessageOutcome:
    """Keep a message's bytes in ``dead_letters`` when even ``set_aside`` failed; the outcome to answer
    the hub with (code ``dead-lettered``)."""
    reason = f"the message could be neither stored nor quarantined: {clip(problem, 500)}; its bytes are kept"
    dead_letter(conn, worker, topic, reason, payload)
    return _rejected_whole(topic, decided, DEAD_LETTERED, reason)


def keep_whole(
    conn: psycopg.Connection[Any],
    worker: str,
    topic: str,
    payload: bytes,
    decided: MessageOutcome | None,
    problem: str,
) -> MessageOutcome:
    """``set_aside`` the message (in a savepoint); if the database refuses even that for a reason a retry
    cannot mend, ``dead_letter_message`` it. The one fallback of the MQTT worker and ``POST /fhir``."""
    try:
        with conn.transaction():
            return set_aside(conn, topic, payload, decided, problem)
    except Exception as exc:
        if is_transient(exc):
            raise
        problem = f"{problem}; quarantining it failed too: {describe(exc)}"
        log.error("ingest %s: %s; keeping its bytes in dead_letters", worker, problem)
        return dead_letter_message(conn, worker, topic, payload, decided, problem)
