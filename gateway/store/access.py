"""Who may see which patient: the one rule every read of patient data goes through (migration 0008).

- a **nurse** sees the patients of her care teams (all in her own municipality);
- a **GP** sees the patients whose GP she is, in whichever municipality they live;
- a **municipality administrator** and a **system administrator** see no patient's clinical data: they
  manage users, teams and hubs and read the audit log (``gateway.api`` decides which pages they get).

``patient_scope`` renders that rule as a SQL predicate on a ``patients`` row; each query that reads
patient data joins ``patients`` and adds it, so there is no second copy of the rule to drift. Rows of
observations, scores and alerts are reached through their patient (``municipality_id`` and
``patient_id`` both matched), so a patient id of another municipality reaches nothing. Who the viewer is
(a checked token, a live session) is left to ``gateway.api``.
"""

from __future__ import annotations

from typing import Any, Protocol

import psycopg
from psycopg import sql

NURSE = "nurse"
GP = "gp"
MUNICIPALITY_ADMIN = "municipality_admin"
SYSTEM_ADMIN = "system_admin"
# Every role a person may have, in the order the UI lists them.
ROLES: tuple[str, ...] = (NURSE, GP, MUNICIPALITY_ADMIN, SYSTEM_ADMIN)
# The roles that see patients' clinical data (those of their assignment only).
CLINICAL_ROLES = frozenset({NURSE, GP})


class Viewer(Protocol):
    """Whoever reads: a user of one municipality with one role (``gateway.api.auth.User`` is one)."""

    @property
    def username(self) -> str: ...

    @property
    def municipality_id(self) -> str: ...

    @property
    def role(self) -> str: ...


def patient_scope(viewer: Viewer, alias: str = "p") -> sql.Composable:
    """SQL: true for a row of ``patients`` (as ``alias``) that ``viewer`` may see; false for any other."""
    p = sql.Identifier(alias)
    if viewer.role == NURSE:
        return sql.SQL(
            "({p}.municipality_id = {m} AND {p}.care_team_id IN"
            " (SELECT care_team_id FROM care_team_members WHERE username = {u} AND municipality_id = {m}))"
        ).format(p=p, m=sql.Literal(viewer.municipality_id), u=sql.Literal(viewer.username))
    if viewer.role == GP:
        return sql.SQL("({p}.gp_username = {u})").format(p=p, u=sql.Literal(viewer.username))
    return sql.SQL("false")


def visible_patient_ids(conn: psycopg.Connection[Any], viewer: Viewer) -> list[str]:
    """The ids of every patient ``viewer`` may see, in id order."""
    query = sql.SQL("SELECT p.id FROM patients p WHERE {scope} ORDER BY p.id").format(
        scope=patient_scope(viewer)
    )
    return [row[0] for row in conn.execute(query).fetchall()]


def may_see_patient(conn: psycopg.Connection[Any], viewer: Viewer, patient_id: str) -> bool:
    """Whether ``viewer`` may see the patient ``patient_id`` (False when there is no such patient)."""
    query = sql.SQL("SELECT 1 FROM patients p WHERE p.id = %s AND {scope}").format(
        scope=patient_scope(viewer)
    )
    return conn.execute(query, (patient_id,)).fetchone() is not None
