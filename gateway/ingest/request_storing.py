"""Storing the contact requests that ``processing`` accepted: a patient's "contact my nurse", beside their
readings and answers, in the same transaction.

``store_requests`` is called by ``storing.store_decisions`` after the Observations and the
QuestionnaireResponses of the same decisions, so a message's readings, answers and requests commit (and
are receipted) together. The rules (duplicate, ``conflict``, ``unstorable``, each refusal a rejection of
its own entry that never blocks the rest of its Bundle) are ``entry_storing``'s; a copy conflicts when it
differs in patient or reason. SQL is ``gateway.store.contact_requests``'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from fhir_contract.contact import CONTACT_IDENTIFIER_SYSTEM
from gateway.ingest.entry_storing import EntriesStored, EntryKind, store_entries
from gateway.ingest.processing import MessageOutcome
from gateway.store.contact_requests import DeliveredRequest, insert_requests

REQUESTS = EntryKind(
    what="contact request",
    refused_as="contact request",
    accepted="requests",
    positions="request_positions",
    identifier_system=CONTACT_IDENTIFIER_SYSTEM,
    differs_in="patient or reason",
    row=DeliveredRequest,
    insert=insert_requests,
)


def store_requests(conn: psycopg.Connection[Any], outcomes: Sequence[MessageOutcome]) -> EntriesStored:
    """Store the accepted requests of ``outcomes`` in the caller's transaction (see the module)."""
    return store_entries(conn, outcomes, REQUESTS)
