"""Storing hubs' status messages: decided by ``hub_status``, written by ``gateway.store.hub_status``.

``store_statuses`` takes the status messages of one worker batch and, in ONE transaction of the
caller's connection, stores each accepted status as its hub's newest (and, when something that matters
changed, a row of the hub's status history: ``gateway.store.hub_status``) or quarantines a refused one with
its reason (the same ``quarantine`` table as refused Observations). Each message is written in its own
savepoint, so a row the database refuses is quarantined as ``unstorable`` and never takes the other
statuses (or the Observations of the batch, which are committed separately by ``BatchStore``) with it.

Statuses are state, not readings: nothing is owed to the hub (no receipt, no error report), and a status
lost to a failure is replaced by the hub's next one (``status_interval_s``). Left to others: the
subscription and acknowledgement (``mqtt_ingest``), retries while the database is away
(``BatchStore.handle_statuses``), SQL (``gateway.store``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import psycopg

from gateway.ingest.hub_status import HubStatus, StatusDecision, decide_status, parse_status_topic
from gateway.ingest.processing import UNKNOWN_HUB, UNSTORABLE, clip
from gateway.store.hub_status import HubStatusWrite, StatusDevice, save_hub_status
from gateway.store.repository import HubAssignment, QuarantineEntry, hub_assignments, quarantine_many

log = logging.getLogger(__name__)


class StatusMessage(Protocol):
    """A status message as ``store_statuses`` needs it."""

    @property
    def topic(self) -> str: ...

    @property
    def payload(self) -> bytes: ...

    @property
    def retained(self) -> bool: ...  # a retained copy the broker handed over on subscribing


def is_status_topic(topic: str) -> bool:
    """Whether a message goes to status ingest (a malformed status topic is refused there)."""
    return topic.endswith("/status")


def store_statuses(
    conn: psycopg.Connection[Any], messages: Sequence[StatusMessage], *, received_at: datetime
) -> list[StatusDecision]:
    """Decide and store ``messages`` in one transaction; one decision per message, in order."""
    hubs = {(t.municipality_id, t.hub_id) for m in messages if (t := parse_status_topic(m.topic)) is not None}
    assignments = hub_assignments(conn, hubs)

    def lookup(municipality_id: str, hub_id: str) -> HubAssignment | None:
        return assignments.get((municipality_id, hub_id))

    decisions = [decide_status(m.topic, m.payload, lookup) for m in messages]
    with conn.transaction():
        for message, decision in zip(messages, decisions, strict=True):
            _store_one(conn, message, decision, received_at)
    return decisions


def _write(
    status: HubStatus, municipality_id: str, hub_id: str, received_at: datetime, retained: bool
) -> HubStatusWrite:
    """What the store writes of an accepted status (the fields a hub sent wrong are None already)."""
    return HubStatusWrite(
        municipality_id,
        hub_id,
        received_at,
        status.online,
        live=not retained,
        devices=tuple(
            StatusDevice(
                d.device_id,
                d.connected,
                d.battery,
                d.last_seen,
                d.clock,
                d.clock_offset_s,
                d.errors,
                d.last_error,
                d.last_error_type,
            )
            for d in status.devices
        ),
        agent_version=status.agent_version,
        queue_depth=status.queue_depth,
        awaiting_receipt=status.awaiting_receipt,
        evicted=None if status.evicted is None else dict(status.evicted),
        outbox_full=status.outbox_full,
        held_in_memory=status.held_in_memory,
        config_applied=status.config_version,
        config_error=status.config_error,
        fields_ignored=len(status.ignored),
        ignored_reason=status.ignored[0].reason if status.ignored else None,
    )


def _store_one(
    conn: psycopg.Connection[Any], message: StatusMessage, decision: StatusDecision, received_at: datetime
) -> None:
    source = decision.source
    municipality_id, hub_id = (source.municipality_id, source.hub_id) if source else (None, None)

    def quarantine(code: str, reason: str) -> None:
        entry = QuarantineEntry(
            message.topic, municipality_id, hub_id, f"{code}: {clip(reason)}", message.payload
        )
        quarantine_many(conn, [entry])

    if decision.status is None or source is None:
        refusal = decision.refusal
        assert refusal is not None  # a decision holds a status or a refusal
        log.info("status on %s refused: %s", clip(message.topic, 200), refusal.code)
        quarantine(refusal.code, refusal.reason)
        return
    if decision.dropped:
        log.warning(
            "hub %s: %d device entr(ies) of its status dropped (%s)",
            source.hub_id,
            len(decision.dropped),
            decision.dropped[0].reason,
        )
    if decision.status.ignored:
        log.warning(
            "hub %s: %d field(s) of its status left out (%s)",
            source.hub_id,
            len(decision.status.ignored),
            decision.status.ignored[0].reason,
        )
    write = _write(decision.status, source.municipality_id, source.hub_id, received_at, message.retained)
    write = dataclasses.replace(
        write,
        devices_dropped=len(decision.dropped),
        dropped_reason=decision.dropped[0].reason if decision.dropped else None,
    )
    try:
        with conn.transaction():
            saved = save_hub_status(conn, write)
    except (psycopg.DataError, psycopg.IntegrityError) as exc:
        quarantine(UNSTORABLE, f"the database refused this status: {str(exc).strip()}")
        return
    if not saved:  # unenrolled between the lookup and the write
        quarantine(
            UNKNOWN_HUB, f"hub {source.hub_id} is not enrolled in municipality {source.municipality_id}"
        )
