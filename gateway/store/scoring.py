"""What scoring writes: each score with its FHIR RiskAssessment, and which score an alert stands on.

The scorer (NEWS2 and the disease rules, on every reading) and the 30-day admission-risk job store
scores with ``record_score`` (one, with its id) or ``record_scores`` (a batch's current scores, in one
round trip). An alert is raised or made worse by ``gateway.alerts.lifecycle`` before the score of the
reading that did it is stored (most readings raise nothing, and their scores are not kept one by one);
``attach_score`` then points the alert at it, in the same transaction. Callers own the transaction;
every query is scoped by municipality.

Left to others: what to score and which alert a score calls for (``gateway.alerts``), the alerts' own
rows (``gateway.store.alerts``), reading scores (the API's store modules).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg


@dataclass(frozen=True, slots=True)
class NewScore:
    """A score to store: ``method`` (``news2``, a rule name, ``admission-risk-30d``), its number and
    band as of the newest reading used (``as_of``), the detail behind it and its RiskAssessment."""

    municipality_id: str
    patient_id: str
    method: str
    score: float
    band: str
    computed_at: datetime
    as_of: datetime
    detail: Mapping[str, Any]
    resource: Mapping[str, Any]


_INSERT = (
    "INSERT INTO scores (municipality_id, patient_id, computed_at, as_of, method, score, band, detail,"
    " resource) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb) RETURNING id"
)


def _row(score: NewScore) -> tuple[Any, ...]:
    return (
        score.municipality_id,
        score.patient_id,
        score.computed_at,
        score.as_of,
        score.method,
        score.score,
        score.band,
        orjson.dumps(score.detail, default=str).decode(),  # times in the detail as ISO text
        orjson.dumps(score.resource).decode(),
    )


def record_score(conn: psycopg.Connection[Any], score: NewScore) -> int:
    """Store ``score``; its id (``scores.id``, what an alert points to)."""
    row = conn.execute(_INSERT, _row(score)).fetchone()
    assert row is not None  # INSERT ... RETURNING returns the row it inserted
    return int(row[0])


def record_scores(conn: psycopg.Connection[Any], scores: Sequence[NewScore]) -> list[int]:
    """Store ``scores`` in one round trip (pipelined), in order; their ids, in the same order."""
    if not scores:
        return []
    with conn.cursor() as cur:
        cur.executemany(_INSERT, [_row(score) for score in scores], returning=True)
        ids: list[int] = []
        while True:
            row = cur.fetchone()
            assert row is not None  # each INSERT ... RETURNING returns the row it inserted
            ids.append(int(row[0]))
            if not cur.nextset():
                return ids


def attach_score(conn: psycopg.Connection[Any], municipality_id: str, alert_id: int, score_id: int) -> None:
    """Point the alert ``alert_id`` at the score it now stands on (it was just raised or made worse by a
    reading whose score is ``score_id``)."""
    conn.execute(
        "UPDATE alerts SET score_id = %s WHERE municipality_id = %s AND id = %s",
        (score_id, municipality_id, alert_id),
    )
