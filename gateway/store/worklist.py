"""The nurse's worklist: a municipality's patients with their latest NEWS2, newest values and open alert.

One query per page: a LATERAL join per column (the latest NEWS2 score, the newest open alert, the newest
reading, one per vital), each an index probe on its patient. Every join is scoped by the patient's
municipality and the query by the user's, so no row of another municipality is ever read. Wording and
ranking explanations are left to ``gateway.api.presenters``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from gateway.store.patient_views import NEWS2
from gateway.store.synthetic import patient_enrolled_synthetic, resource_labelled


@dataclass(frozen=True, slots=True)
class Vital:
    """A value the worklist shows: the newest non-empty one among ``kinds`` (or a panel's component)."""

    key: str
    kinds: tuple[str, ...]
    component: str | None = None
    unit: str | None = None  # used when the row has none (panel components)


VITALS: tuple[Vital, ...] = (
    Vital("spo2", ("spo2",)),
    Vital("pulse", ("pulse-rate-oximeter", "pulse-rate-cuff", "heart-rate")),
    Vital("systolic", ("blood-pressure",), component="systolic", unit="mm[Hg]"),
    Vital("temperature", ("body-temperature",)),
    Vital("weight", ("body-weight",)),
)


@dataclass(frozen=True, slots=True)
class Measured:
    """A number with its UCUM unit and the time it was measured."""

    value: float
    unit: str | None
    effective: datetime


@dataclass(frozen=True, slots=True)
class OpenAlert:
    id: int
    severity: str
    reason: str
    raised_at: datetime


@dataclass(frozen=True, slots=True)
class WorklistRow:
    """One patient on the nurse's worklist, with their latest NEWS2, newest values and open alert."""

    patient_id: str
    name: str
    conditions: tuple[str, ...]
    score: float | None
    band: str | None
    detail: Mapping[str, Any] | None
    score_as_of: datetime | None
    synthetic: bool
    alert: OpenAlert | None
    newest_reading: datetime | None
    vitals: Mapping[str, Measured]


def _component_value(component: str) -> sql.Composable:
    """SQL: a panel component as a number, stored either as ``{"systolic": 120}`` or ``{"value": 120}``."""
    c = sql.Literal(component)
    return sql.SQL(
        "coalesce(CASE WHEN jsonb_typeof(o.components -> {c}) = 'number'"
        " THEN (o.components ->> {c})::float8 END,"
        " CASE WHEN jsonb_typeof(o.components -> {c} -> 'value') = 'number'"
        " THEN (o.components -> {c} ->> 'value')::float8 END)"
    ).format(c=c)


def _vital_join(vital: Vital) -> sql.Composable:
    """SQL: a LATERAL join giving the newest value of ``vital`` (one index probe per kind)."""
    value = sql.SQL("o.value") if vital.component is None else _component_value(vital.component)
    unit = sql.SQL("coalesce(o.unit, {})").format(sql.Literal(vital.unit))
    return sql.SQL(
        "LEFT JOIN LATERAL (SELECT x.value, x.unit, x.effective"
        " FROM unnest({kinds}::text[]) AS k(kind) CROSS JOIN LATERAL ("
        "  SELECT {value} AS value, {unit} AS unit, o.effective FROM observations o"
        "  WHERE o.municipality_id = p.municipality_id AND o.patient_id = p.id AND o.kind = k.kind"
        "  AND {value} IS NOT NULL ORDER BY o.effective DESC LIMIT 1) x"
        " ORDER BY x.effective DESC LIMIT 1) {alias} ON true"
    ).format(
        kinds=sql.Literal(list(vital.kinds)), value=value, unit=unit, alias=sql.Identifier(f"v_{vital.key}")
    )


def worklist_rows(conn: psycopg.Connection[Any], municipality_id: str) -> list[WorklistRow]:
    """The municipality's patients, highest latest NEWS2 first; ties by newest open alert, then name."""
    vital_columns = sql.SQL(", ").join(
        sql.SQL("{a}.value AS {v}, {a}.unit AS {u}, {a}.effective AS {e}").format(
            a=sql.Identifier(f"v_{v.key}"),
            v=sql.Identifier(f"{v.key}_value"),
            u=sql.Identifier(f"{v.key}_unit"),
            e=sql.Identifier(f"{v.key}_effective"),
        )
        for v in VITALS
    )
    query = sql.SQL(
        "SELECT p.id, p.name, p.conditions, s.score, s.band, s.detail, s.as_of,"
        " s.synthetic OR {p_synth} AS s_synth,"
        " a.id AS alert_id, a.severity, a.reason, a.raised_at, n.effective AS newest, n.synthetic AS n_synth,"
        " {vital_columns}"
        " FROM patients p"
        " LEFT JOIN LATERAL (SELECT score, band, detail, as_of, {s_synth} AS synthetic FROM scores s"
        "  WHERE s.municipality_id = p.municipality_id AND s.patient_id = p.id AND s.method = {news2}"
        "  ORDER BY s.computed_at DESC, s.id DESC LIMIT 1) s ON true"
        " LEFT JOIN LATERAL (SELECT id, severity, reason, raised_at FROM alerts"
        "  WHERE municipality_id = p.municipality_id AND patient_id = p.id AND status = 'open'"
        "  ORDER BY raised_at DESC, id DESC LIMIT 1) a ON true"
        " LEFT JOIN LATERAL (SELECT n.effective, {n_synth} AS synthetic FROM observations n"
        "  WHERE n.municipality_id = p.municipality_id AND n.patient_id = p.id"
        "  ORDER BY n.effective DESC LIMIT 1) n ON true"
        " {vital_joins}"
        " WHERE p.municipality_id = %s"
        " ORDER BY s.score DESC NULLS LAST, a.raised_at DESC NULLS LAST, p.name, p.id"
    ).format(
        vital_columns=vital_columns,
        news2=sql.Literal(NEWS2),
        p_synth=patient_enrolled_synthetic("p"),
        s_synth=resource_labelled("s"),
        n_synth=resource_labelled("n"),
        vital_joins=sql.SQL(" ").join(_vital_join(v) for v in VITALS),
    )
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query, (municipality_id,)).fetchall()
    return [_worklist_row(row) for row in rows]


def _worklist_row(row: Mapping[str, Any]) -> WorklistRow:
    vitals = {
        v.key: Measured(row[f"{v.key}_value"], row[f"{v.key}_unit"], row[f"{v.key}_effective"])
        for v in VITALS
        if row[f"{v.key}_value"] is not None
    }
    alert = None
    if row["alert_id"] is not None:
        alert = OpenAlert(row["alert_id"], row["severity"], row["reason"], row["raised_at"])
    return WorklistRow(
        patient_id=row["id"],
        name=row["name"],
        conditions=tuple(row["conditions"]),
        score=row["score"],
        band=row["band"],
        detail=row["detail"],
        score_as_of=row["as_of"],
        synthetic=bool(row["s_synth"]) or bool(row["n_synth"]),
        alert=alert,
        newest_reading=row["newest"],
        vitals=vitals,
    )


def municipality_name(conn: psycopg.Connection[Any], municipality_id: str) -> str:
    """The municipality's name (its id when it has no row, which the schema does not allow)."""
    row = conn.execute("SELECT name FROM municipalities WHERE id = %s", (municipality_id,)).fetchone()
    return municipality_id if row is None else str(row[0])
