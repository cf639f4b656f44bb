"""Re-processing a quarantined reading after an enrolment fix: the live ingest's rules, today's enrolment.

``reprocess`` takes one open quarantine row and runs what it holds through exactly the path of a live
message on its topic: ``processing.process_message`` with the hub's assignment as enrolled NOW
(``repository.hub_assignments``: a revoked hub is unknown, a removed device is unassigned), then
``storing.store_decisions`` (stored once per reading: a reading stored already, by an earlier
re-processing or because the hub sent it again, is a duplicate and a no-op; every rejection quarantined
again with today's reason; the patients with new data announced to the scorer). Nothing here decides
who a reading belongs to: a reading is stored only when its patient is the hub's patient and its device
is assigned to that hub now, as for any live message; otherwise it stays in the quarantine.

What a row holds: the message's bytes when the whole message was refused (an unknown hub, not JSON...),
or one Bundle entry (an Observation refused on its own, e.g. ``unassigned-device``), which goes again as
a one-entry ``batch`` Bundle on the row's topic. The contract's window of effective times ends at the
row's arrival, not now: a reading dated in the future when it came is not made plausible by waiting.

In one transaction: the row is locked and resolved (``reprocessed-stored``, ``reprocessed-partly`` or
``still-refused``; the rows refused again name it, ``gateway.store.quarantine.mark_reprocessing``),
the readings stored, the change audited. The hub is not told again (it had its error report when the
message came). Left to others: who may re-process which rows (``gateway.api.quarantine_pages``,
``homewatch.quarantine_cli``), SQL (``gateway.store``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
import psycopg

from fhir_contract.limits import is_fhir_id
from fhir_contract.observation import build_bundle
from gateway.errors import GatewayFailure
from gateway.ingest.processing import MessageOutcome, clip, parse_topic, process_message
from gateway.ingest.storing import Decided, store_decisions
from gateway.store.audit import Actor
from gateway.store.errors import describe, is_transient
from gateway.store.quarantine import (
    REPROCESSED_PARTLY,
    REPROCESSED_STORED,
    STILL_REFUSED,
    QuarantineFilter,
    QuarantineRefused,
    QuarantineRow,
    Scope,
    mark_reprocessing,
    open_ids,
    resolve,
    take_open,
)
from gateway.store.repository import HubAssignment, hub_assignments

# How ``storing.quarantine_entries`` names the entry a row holds: "... (entry 3, identifier X)".
_ENTRY_MARK = re.compile(r" \(entry \d+(?:, identifier [^\n]*)?\)")
# At most this many patients of one payload are named in the audit log (a Bundle holds few).
MAX_AUDITED_PATIENTS: Final = 50
# A bulk re-processing takes at most this many rows at a time (each in its own transaction).
BULK_LIMIT: Final = 1000


class ReprocessFailed(GatewayFailure):
    """Storing the row's readings failed in a way a retry cannot mend; nothing was changed."""

    def __init__(self, row_id: int, problem: str) -> None:
        super().__init__(f"row {row_id} could not be re-processed: {problem}")
        self.row_id = row_id
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Reprocessed:
    """What became of one row: its resolution, the readings stored as new rows, those stored already,
    and the (code, reason) of each refusal (each a new quarantine row)."""

    row_id: int
    resolution: str
    stored: int
    already_stored: int
    refused: tuple[tuple[str, str], ...]

    @property
    def note(self) -> str:
        """The resolution in one line, for the row and the audit log."""
        text = f"{self.stored} stored, {self.already_stored} stored already, {len(self.refused)} refused"
        if self.refused:
            codes = ", ".join(dict.fromkeys(code for code, _ in self.refused))
            text += f" ({codes}): {clip(self.refused[0][1], 300)}"
        return text


def message_of(row: QuarantineRow) -> bytes:
    """The message to run again: the row's bytes, or its one Bundle entry as a one-entry ``batch`` Bundle
    (its id names the row, its timestamp is the row's arrival)."""
    raw = row.payload.encode("utf-8")
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    is_bundle = isinstance(parsed, dict) and parsed.get("resourceType") == "Bundle"
    if is_bundle or not _ENTRY_MARK.search(row.reason):
        return raw  # a whole message (or an entry that kept its whole message: too deeply nested)
    wrapped = build_bundle([parsed], bundle_id=f"quarantine-{row.id}", timestamp=row.received_at)
    return orjson.dumps(wrapped)


def patients_named(payload: str) -> list[str]:
    """The patients a quarantined payload names (``subject`` of the resource, or of each Bundle entry),
    at most ``MAX_AUDITED_PATIENTS``, for the audit log; none when it cannot be read."""
    try:
        parsed = orjson.loads(payload.encode("utf-8"))
    except orjson.JSONDecodeError:
        return []
    resources: list[Any] = [parsed]
    if isinstance(parsed, Mapping) and parsed.get("resourceType") == "Bundle":
        entries = parsed.get("entry")
        entries = entries if isinstance(entries, list) else []
        resources = [e.get("resource") for e in entries if isinstance(e, Mapping)]
    found: dict[str, None] = {}
    for resource in resources:
        subject = resource.get("subject") if isinstance(resource, Mapping) else None
        reference = subject.get("reference") if isinstance(subject, Mapping) else None
        if isinstance(reference, str) and reference.startswith("Patient/"):
            patient_id = reference.removeprefix("Patient/")
            if is_fhir_id(patient_id):
                found[patient_id] = None
        if len(found) >= MAX_AUDITED_PATIENTS:
            break
    return list(found)


def _decide(
    conn: psycopg.Connection[Any], row: QuarantineRow, payload: bytes, max_bytes: int
) -> MessageOutcome:
    source = parse_topic(row.topic)
    hubs = [] if source is None else [(source.municipality_id, source.hub_id)]
    assignments = hub_assignments(conn, hubs)  # the enrolment as it is now

    def lookup(municipality_id: str, hub_id: str) -> HubAssignment | None:
        return assignments.get((municipality_id, hub_id))

    return process_message(row.topic, payload, lookup, max_bytes, now=row.received_at)


def reprocess(
    conn: psycopg.Connection[Any],
    row_id: int,
    *,
    scope: Scope,
    actor: Actor,
    client: str | None,
    max_bytes: int,
    notify_channel: str | None,
) -> Reprocessed:
    """Run an open row again as a live message on its topic and resolve it (see the module docstring).

    QuarantineRefused when the row is not in ``scope``, resolved already, or a hub's status;
    ReprocessFailed when its readings cannot be stored (nothing changed); a transient database error
    is raised as it is (try again)."""
    try:
        with conn.transaction():
            row = take_open(conn, row_id, scope)
            if row.topic.endswith("/status"):
                said = f"row {row_id} is a hub's status: its next status replaces it; dismiss this one"
                raise QuarantineRefused(row_id, "not-a-reading", said)
            payload = message_of(row)
            outcome = _decide(conn, row, payload, max_bytes)
            mark_reprocessing(conn, row.id)
            result = store_decisions(conn, [Decided(outcome, payload)], notify_channel=notify_channel)
            mark_reprocessing(conn, None)  # nothing written after this names the row
            done = _verdict(row.id, result.outcomes[0], result.inserted, result.duplicates)
            resolve(
                conn,
                row,
                done.resolution,
                done.note,
                actor=actor,
                client=client,
                patient_ids=patients_named(row.payload),
            )
            return done
    except QuarantineRefused:
        raise
    except Exception as exc:
        if is_transient(exc):
            raise
        raise ReprocessFailed(row_id, describe(exc)) from exc


def _verdict(row_id: int, outcome: MessageOutcome, inserted: int, duplicates: int) -> Reprocessed:
    refused = tuple((r.code, r.reason) for r in outcome.rejections)
    if not refused:
        resolution = REPROCESSED_STORED
    elif inserted or duplicates:
        resolution = REPROCESSED_PARTLY
    else:
        resolution = STILL_REFUSED
    return Reprocessed(row_id, resolution, inserted, duplicates, refused)


@dataclass(frozen=True, slots=True)
class BulkResult:
    """A bulk re-processing: each row's result, and the rows refused or failed with their reasons."""

    done: tuple[Reprocessed, ...]
    refused: tuple[tuple[int, str], ...]


def reprocess_matching(
    conn: psycopg.Connection[Any],
    scope: Scope,
    wanted: QuarantineFilter,
    *,
    actor: Actor,
    client: str | None,
    max_bytes: int,
    notify_channel: str | None,
    limit: int = BULK_LIMIT,
) -> BulkResult:
    """Re-process the open rows in ``scope`` matching ``wanted`` (e.g. every ``unassigned-device`` row of
    one hub), oldest first, each in its own transaction: one that cannot be re-processed (resolved
    meanwhile, a status, a failure) is listed in ``refused`` and the others go on."""
    done: list[Reprocessed] = []
    refused: list[tuple[int, str]] = []
    for row_id in open_ids(conn, scope, wanted, limit=limit):
        try:
            done.append(
                reprocess(
                    conn,
                    row_id,
                    scope=scope,
                    actor=actor,
                    client=client,
                    max_bytes=max_bytes,
                    notify_channel=notify_channel,
                )
            )
        except (QuarantineRefused, ReprocessFailed) as exc:
            refused.append((row_id, str(exc)))
    return BulkResult(tuple(done), tuple(refused))


def summary(results: Sequence[Reprocessed]) -> dict[str, int]:
    """How many rows ended in each resolution."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.resolution] = counts.get(result.resolution, 0) + 1
    return counts
