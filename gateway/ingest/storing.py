"""Storing what ``processing`` decided: one place for the MQTT worker and for ``POST /fhir``.

``store_decisions`` runs in the caller's transaction: the accepted Observations go in (idempotent on
their identifier), every rejection is quarantined with what was refused, and the patients with new data
are announced with ``pg_notify`` (PostgreSQL delivers a notification only if the transaction commits,
so the scorer never hears of rows that are not there). A row the database refuses outright (a JSON
string holding ``\\u0000``, which jsonb cannot store) makes the batch go in again row by row, and only
the refused rows become ``unstorable`` rejections, instead of the message being redelivered forever.

Left to the callers: the transaction itself, acknowledgements and receipts (``mqtt_ingest``), the HTTP
answer (``gateway.api.fhir_batch``), and counting (``gateway.store.ingest_metrics``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg

from gateway.alerts.scorer import new_data_notifications
from gateway.ingest.processing import UNSTORABLE, MessageOutcome, Rejection
from gateway.store.repository import (
    DeliveredObservation,
    QuarantineEntry,
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

    outcomes: list[MessageOutcome]  # as decided, with rows the database refused turned into rejections
    inserted: int
    duplicates: int
    patients: dict[str, set[str]]  # per municipality: the patients with new data to score


def store_decisions(
    conn: psycopg.Connection[Any], decided: Sequence[Decided], *, notify_channel: str | None
) -> StoredDecisions:
    """Store, quarantine and announce a batch of decisions, in the caller's transaction."""
    outcomes = [d.outcome for d in decided]
    rows = [
        DeliveredObservation(o.source.municipality_id, o.source.hub_id, obs)
        for o in outcomes
        if o.source is not None
        for obs in o.accepted
    ]
    try:
        result = insert_observation_batch(conn, rows)  # its own savepoint
        inserted, duplicates, patients = result.inserted, result.duplicates, result.patients
    except (psycopg.DataError, psycopg.IntegrityError) as exc:
        log.warning("a row was refused by the database (%s); storing the batch row by row", exc)
        outcomes, inserted, duplicates, patients = _store_one_by_one(conn, outcomes)
    quarantine_many(
        conn,
        [entry for o, d in zip(outcomes, decided, strict=True) for entry in quarantine_entries(o, d.payload)],
    )
    if notify_channel is not None:
        for announcement in new_data_notifications(patients):
            conn.execute("SELECT pg_notify(%s, %s)", (notify_channel, announcement))
    return StoredDecisions(outcomes, inserted, duplicates, patients)


def _store_one_by_one(
    conn: psycopg.Connection[Any], outcomes: list[MessageOutcome]
) -> tuple[list[MessageOutcome], int, int, dict[str, set[str]]]:
    inserted = duplicates = 0
    patients: dict[str, set[str]] = {}
    kept: list[MessageOutcome] = []
    for outcome in outcomes:
        if outcome.source is None or not outcome.accepted:
            kept.append(outcome)
            continue
        accepted, positions, rejections = [], [], list(outcome.rejections)
        for obs, position in zip(outcome.accepted, outcome.accepted_positions, strict=True):
            row = DeliveredObservation(outcome.source.municipality_id, outcome.source.hub_id, obs)
            try:
                result = insert_observation_batch(conn, [row])  # its own savepoint
            except (psycopg.DataError, psycopg.IntegrityError) as exc:
                reason = f"the database refused this Observation: {str(exc).strip()}"
                rejections.append(Rejection(position, obs.identifier, UNSTORABLE, reason, obs.resource))
                continue
            accepted.append(obs)
            positions.append(position)
            inserted += result.inserted
            duplicates += result.duplicates
            for municipality_id, ids in result.patients.items():
                patients.setdefault(municipality_id, set()).update(ids)
        rejections.sort(key=lambda r: -1 if r.index is None else r.index)
        kept.append(
            dataclasses.replace(
                outcome,
                accepted=tuple(accepted),
                rejections=tuple(rejections),
                accepted_positions=tuple(positions),
            )
        )
    return kept, inserted, duplicates, patients


def quarantine_entries(outcome: MessageOutcome, payload: bytes) -> list[QuarantineEntry]:
    """The quarantine rows of a decision: the raw payload for a message rejected whole, the entry as
    parsed (with its position and identifier in the reason) for each rejected Observation."""
    source = outcome.source
    municipality_id = source.municipality_id if source else None
    hub_id = source.hub_id if source else None
    entries: list[QuarantineEntry] = []
    for rejection in outcome.rejections:
        if rejection.index is None:
            reason, kept = f"{rejection.code}: {rejection.reason}", payload
        else:
            where = f"entry {rejection.index}" + (
                f", identifier {rejection.identifier}" if rejection.identifier else ""
            )
            reason = f"{rejection.code}: {rejection.reason} ({where})"
            try:
                kept = orjson.dumps(rejection.resource)
            except TypeError:
                kept = repr(rejection.resource).encode()
        entries.append(QuarantineEntry(outcome.topic, municipality_id, hub_id, reason, kept))
    return entries
