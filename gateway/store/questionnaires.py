"""The patients' answers to the daily symptom checks (migration 0020): stored once, read per patient.

``insert_responses`` stores what ingest accepted (``gateway.ingest.processing`` decided it, the
contract ``fhir_contract.questionnaire`` checked it). A response is keyed by its identifier within the
hub that sent it and its municipality (as an Observation is within its device: no hub can claim
another's identifiers). A response sent again is a duplicate and a no-op; one whose key is stored with
other content (another patient, questionnaire, version or answers) is a conflict: stored neither, and
reported by position for the caller to quarantine, as ``repository.insert_observation_batch`` does for
readings. Responses come one a day per patient, so each is one statement; the batch shares one
savepoint, and a row the database refuses (a JSON string holding ``\\u0000``) fails it whole for the
caller to retry row by row.

``latest_responses`` reads a patient's newest answers per questionnaire for the nurse's page, scoped by
``access.patient_scope`` like every read of patient data. Wording, and which Questionnaire a stored
code means, are left to the web layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from gateway.store import access
from gateway.store.entry_batches import EntryBatchResult, insert_entries

if TYPE_CHECKING:
    from fhir_contract.questionnaire import ValidResponse


@dataclass(frozen=True, slots=True)
class DeliveredResponse:
    """A validated QuestionnaireResponse with the hub (and its municipality) that delivered it."""

    municipality_id: str
    hub_id: str
    response: ValidResponse


_INSERT = (
    "INSERT INTO questionnaire_responses (municipality_id, patient_id, hub_id, questionnaire, version,"
    " identifier, authored, answers, resource) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (municipality_id, hub_id, identifier) DO NOTHING RETURNING id"
)
# Whether the stored response under a key says the same as a new copy: the authored time is part of the
# identifier the hub made, so it is not compared (a hub that corrected its clock could move it).
_SAME = (
    "SELECT patient_id = %s AND questionnaire = %s AND version = %s AND answers = %s"
    " FROM questionnaire_responses WHERE municipality_id = %s AND hub_id = %s AND identifier = %s"
)


def _insert_params(row: DeliveredResponse) -> tuple[Any, ...]:
    r, q = row.response, row.response.questionnaire
    return (
        row.municipality_id,
        r.patient_id,
        row.hub_id,
        q.url,
        q.version,
        r.identifier,
        r.authored,
        Jsonb(r.answers),
        Jsonb(r.resource),
    )


def _same_params(row: DeliveredResponse) -> tuple[Any, ...]:
    r, q = row.response, row.response.questionnaire
    return (r.patient_id, q.url, q.version, Jsonb(r.answers), row.municipality_id, row.hub_id, r.identifier)


def insert_responses(conn: psycopg.Connection[Any], rows: Sequence[DeliveredResponse]) -> EntryBatchResult:
    """Store the responses not stored yet, in the caller's transaction (one savepoint for them all)."""
    return insert_entries(conn, rows, (_INSERT, _insert_params), (_SAME, _same_params))


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A stored response as the nurse's page reads it."""

    questionnaire: str  # canonical url
    version: str
    identifier: str
    hub_id: str
    authored: datetime
    answers: dict[str, str]
    received_at: datetime


def latest_responses(
    conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str
) -> list[StoredResponse]:
    """The newest response to each questionnaire of the patient ``viewer`` may see (none otherwise),
    newest first."""
    query = sql.SQL(
        "SELECT * FROM (SELECT DISTINCT ON (r.questionnaire) r.questionnaire, r.version, r.identifier,"
        " r.hub_id, r.authored, r.answers, r.received_at"
        " FROM patients p JOIN questionnaire_responses r"
        "  ON r.municipality_id = p.municipality_id AND r.patient_id = p.id"
        " WHERE p.id = %s AND {scope}"
        " ORDER BY r.questionnaire, r.authored DESC, r.id DESC) newest"
        " ORDER BY authored DESC, questionnaire"
    ).format(scope=access.patient_scope(viewer, "p"))
    return [StoredResponse(*row) for row in conn.execute(query, (patient_id,)).fetchall()]
