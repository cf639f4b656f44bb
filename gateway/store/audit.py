"""The audit log: who saw or changed which patient's data, when, and how.

Every view of patient data and every acknowledgement writes rows here (one per patient seen), in the
same transaction as the change when there is one. Deciding what counts as a view is left to the
routes (``gateway.api``); this module only writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import psycopg


class Actor(Protocol):
    """Whoever acted: a user of one municipality (``gateway.api.auth.User`` is one)."""

    @property
    def username(self) -> str: ...

    @property
    def municipality_id(self) -> str: ...


def record_audit(
    conn: psycopg.Connection[Any],
    actor: Actor,
    action: str,
    patient_ids: Iterable[str | None],
    detail: str | None = None,
) -> None:
    """One audit_log row per patient whose data ``actor`` saw or changed (None: no single patient)."""
    ids = list(dict.fromkeys(patient_ids)) or [None]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO audit_log (username, municipality_id, action, patient_id, detail)"
            " VALUES (%s, %s, %s, %s, %s)",
            [(actor.username, actor.municipality_id, action, pid, detail) for pid in ids],
        )
