"""Storing the QuestionnaireResponses that ``processing`` accepted: the patients' answers, beside their
readings, in the same transaction.

``store_responses`` is called by ``storing.store_decisions`` once the Observations of the same
decisions are in, so a message's readings and answers commit (and are receipted) together. It follows
the Observations' rules (``storing``): a response stored already is a duplicate (counted, nothing
written); one whose key (municipality, hub, identifier) is stored with other content is a
``conflict``, and one the database refuses outright (a ``\\u0000`` in a string, which jsonb cannot
hold) is ``unstorable``: each becomes a rejection of its own entry, quarantined and reported to the hub
by the caller, and never blocks the rest of its Bundle. SQL is ``gateway.store.questionnaires``'.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from fhir_contract.questionnaire import RESPONSE_IDENTIFIER_SYSTEM
from gateway.ingest.processing import CONFLICT, UNSTORABLE, MessageOutcome, Rejection
from gateway.store.questionnaires import DeliveredResponse, insert_responses

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ResponsesStored:
    """The outcomes with refused responses turned into rejections, and what was stored."""

    outcomes: list[MessageOutcome]
    # Per outcome: the Bundle entries whose response was stored as a new row.
    new_positions: list[frozenset[int]]
    inserted: int
    duplicates: int


def _rows(outcomes: Sequence[MessageOutcome]) -> tuple[list[DeliveredResponse], list[tuple[int, int]]]:
    """The accepted responses of all outcomes, and where each came from: (outcome, response index)."""
    rows: list[DeliveredResponse] = []
    origins: list[tuple[int, int]] = []
    for i, outcome in enumerate(outcomes):
        if outcome.source is None:
            continue
        for j, response in enumerate(outcome.responses):
            rows.append(DeliveredResponse(outcome.source.municipality_id, outcome.source.hub_id, response))
            origins.append((i, j))
    return rows, origins


def _conflict(identifier: str, hub_id: str) -> str:
    return (
        f"questionnaire response {identifier} of hub {hub_id} is stored already with other content"
        " (patient, questionnaire or answers); this copy is kept here, not stored"
    )


def _refuse(outcome: MessageOutcome, refused: dict[int, tuple[str, str]]) -> MessageOutcome:
    """``outcome`` with its responses at indexes ``refused`` (index -> code, reason) made rejections."""
    if not refused:
        return outcome
    kept, positions, rejections = [], [], list(outcome.rejections)
    for j, (response, position) in enumerate(zip(outcome.responses, outcome.response_positions, strict=True)):
        if j in refused:
            code, reason = refused[j]
            rejection = Rejection(
                position, response.identifier, code, reason, response.resource, RESPONSE_IDENTIFIER_SYSTEM
            )
            rejections.append(rejection)
        else:
            kept.append(response)
            positions.append(position)
    rejections.sort(key=lambda r: -1 if r.index is None else r.index)
    return dataclasses.replace(
        outcome, responses=tuple(kept), response_positions=tuple(positions), rejections=tuple(rejections)
    )


def store_responses(conn: psycopg.Connection[Any], outcomes: Sequence[MessageOutcome]) -> ResponsesStored:
    """Store the accepted responses of ``outcomes`` in the caller's transaction (see the module)."""
    rows, origins = _rows(outcomes)
    refused: list[dict[int, tuple[str, str]]] = [{} for _ in outcomes]
    new: list[set[int]] = [set() for _ in outcomes]
    inserted = duplicates = 0
    try:
        results = [(insert_responses(conn, rows), list(range(len(rows))))]
    except (psycopg.DataError, psycopg.IntegrityError) as exc:
        log.warning("a questionnaire response was refused by the database (%s); storing them one by one", exc)
        results = []
        for position, row in enumerate(rows):
            try:
                results.append((insert_responses(conn, [row]), [position]))
            except (psycopg.DataError, psycopg.IntegrityError) as refusal:
                i, j = origins[position]
                reason = f"the database refused this QuestionnaireResponse: {str(refusal).strip()}"
                refused[i][j] = (UNSTORABLE, reason)
    for result, positions in results:
        inserted += result.inserted
        duplicates += result.duplicates
        for local in result.conflicts:
            i, j = origins[positions[local]]
            response = rows[positions[local]]
            refused[i][j] = (CONFLICT, _conflict(response.response.identifier, response.hub_id))
        for local in result.new_positions:
            i, j = origins[positions[local]]
            new[i].add(j)
    return ResponsesStored(
        [_refuse(o, refused[i]) for i, o in enumerate(outcomes)],
        [frozenset(o.response_positions[j] for j in new[i]) for i, o in enumerate(outcomes)],
        inserted,
        duplicates,
    )
