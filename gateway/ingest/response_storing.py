"""Storing the QuestionnaireResponses that ``processing`` accepted: the patients' answers, beside their
readings, in the same transaction.

``store_responses`` is called by ``storing.store_decisions`` once the Observations of the same
decisions are in, so a message's readings and answers commit (and are receipted) together. The rules
(duplicate, ``conflict``, ``unstorable``, each refusal a rejection of its own entry that never blocks
the rest of its Bundle) are ``entry_storing``'s; a copy conflicts when it differs in patient,
questionnaire or answers. SQL is ``gateway.store.questionnaires``'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from fhir_contract.questionnaire import RESPONSE_IDENTIFIER_SYSTEM
from gateway.ingest.entry_storing import EntriesStored, EntryKind, store_entries
from gateway.ingest.processing import MessageOutcome
from gateway.store.questionnaires import DeliveredResponse, insert_responses

RESPONSES = EntryKind(
    what="questionnaire response",
    refused_as="QuestionnaireResponse",
    accepted="responses",
    positions="response_positions",
    identifier_system=RESPONSE_IDENTIFIER_SYSTEM,
    differs_in="patient, questionnaire or answers",
    row=DeliveredResponse,
    insert=insert_responses,
)


def store_responses(conn: psycopg.Connection[Any], outcomes: Sequence[MessageOutcome]) -> EntriesStored:
    """Store the accepted responses of ``outcomes`` in the caller's transaction (see the module)."""
    return store_entries(conn, outcomes, RESPONSES)
