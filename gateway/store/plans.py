"""Patients' measurement plans (table ``measurement_plans``, migration 0019): what each patient is to
measure, when, with what grace (``fhir_contract.plan``).

The table only grows: setting a plan adds a row holding the whole plan in its JSON form, the newest row
of a patient (highest id) is in force, the older ones are its history, and an empty plan is "no plan"
(the nurse removed it). Rows are written only through :func:`insert_plan`, which stores
``fhir_contract.plan.plan_json`` of items; every reader parses them back with ``parse_plan``, the one
rule the hub runs too, and a row that rule refuses (a stored plan a later contract no longer accepts) is
:class:`PlanUnreadable`, never a plan half-read.

Every function is scoped: by the patient's municipality (``municipality_id`` and ``patient_id`` both
matched), or by the viewer (``access.patient_scope``) for what a page shows. Who may set a plan, the
audit row and telling the hub are ``gateway.administration.plans``'s; the retained config reads the plan
through ``gateway.store.hub_config``; the missing-measurement job through :func:`plans_in_force`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from fhir_contract.plan import PlanError, PlanItem, parse_plan, plan_json
from gateway.store import access
from gateway.store.errors import StoreError

log = logging.getLogger(__name__)


class PlanUnreadable(StoreError):
    """A stored plan that ``fhir_contract.plan.parse_plan`` refuses (never written so by this module)."""

    def __init__(self, plan_id: int, patient_id: str, reason: str) -> None:
        super().__init__(f"measurement plan {plan_id} of patient {patient_id} is unreadable: {reason}")
        self.plan_id = plan_id
        self.patient_id = patient_id
        self.reason = reason


@dataclass(frozen=True, slots=True)
class StoredPlan:
    """One version of a patient's plan: its items (empty: no plan), who set it and when (the gateway's
    clock), and the setter's full name when the users table has one."""

    id: int
    municipality_id: str
    patient_id: str
    items: tuple[PlanItem, ...]
    set_by: str
    set_at: datetime
    set_by_name: str | None = None


@dataclass(frozen=True, slots=True)
class PlanInForce:
    """A patient with a plan in force (not empty), and the time zone of their hub when it was given one
    (None: the gateway's own, which is what the hub's kit is written with)."""

    municipality_id: str
    patient_id: str
    items: tuple[PlanItem, ...]
    set_at: datetime
    time_zone: str | None


_COLUMNS = sql.SQL(
    "mp.id, mp.municipality_id, mp.patient_id, mp.plan, mp.set_by, mp.set_at,"
    " (SELECT u.full_name FROM users u WHERE u.username = mp.set_by)"
)


def _stored(row: Sequence[Any]) -> StoredPlan:
    plan_id, municipality_id, patient_id, plan, set_by, set_at, name = row
    try:
        items = parse_plan(plan)
    except PlanError as exc:
        raise PlanUnreadable(int(plan_id), str(patient_id), str(exc)) from exc
    return StoredPlan(int(plan_id), str(municipality_id), str(patient_id), items, str(set_by), set_at, name)


def current_plan(conn: psycopg.Connection[Any], municipality_id: str, patient_id: str) -> StoredPlan | None:
    """The patient's plan in force (its items empty when it was removed); None when none was ever set.
    PlanUnreadable when the newest row cannot be read."""
    row = conn.execute(
        sql.SQL(
            "SELECT {columns} FROM measurement_plans mp WHERE mp.municipality_id = %s AND mp.patient_id = %s"
            " ORDER BY mp.id DESC LIMIT 1"
        ).format(columns=_COLUMNS),
        (municipality_id, patient_id),
    ).fetchone()
    return None if row is None else _stored(row)


def visible_plan(conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str) -> StoredPlan | None:
    """The plan in force of a patient ``viewer`` may see (None: none set, or not a patient of theirs)."""
    row = conn.execute(
        sql.SQL(
            "SELECT {columns} FROM patients p JOIN measurement_plans mp"
            " ON mp.municipality_id = p.municipality_id AND mp.patient_id = p.id"
            " WHERE p.id = %s AND {scope} ORDER BY mp.id DESC LIMIT 1"
        ).format(columns=_COLUMNS, scope=access.patient_scope(viewer, "p")),
        (patient_id,),
    ).fetchone()
    return None if row is None else _stored(row)


def plan_history(
    conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str, limit: int = 20
) -> list[StoredPlan]:
    """Every version of the plan of a patient ``viewer`` may see, newest first (at most ``limit``); an
    unreadable version is left out (and logged)."""
    rows = conn.execute(
        sql.SQL(
            "SELECT {columns} FROM patients p JOIN measurement_plans mp"
            " ON mp.municipality_id = p.municipality_id AND mp.patient_id = p.id"
            " WHERE p.id = %s AND {scope} ORDER BY mp.id DESC LIMIT %s"
        ).format(columns=_COLUMNS, scope=access.patient_scope(viewer, "p")),
        (patient_id, limit),
    ).fetchall()
    found = []
    for row in rows:
        try:
            found.append(_stored(row))
        except PlanUnreadable as exc:
            log.warning("%s; left out of the history", exc)
    return found


def insert_plan(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    patient_id: str,
    items: Sequence[PlanItem],
    *,
    set_by: str,
    set_at: datetime,
) -> int:
    """Store ``items`` as the patient's plan in force from now on (empty: no plan); its id. The caller
    checked the items (``parse_plan``) and that the patient is the municipality's."""
    row = conn.execute(
        "INSERT INTO measurement_plans (municipality_id, patient_id, plan, set_by, set_at)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (municipality_id, patient_id, Jsonb(plan_json(items)), set_by, set_at),
    ).fetchone()
    assert row is not None
    plan_id: int = row[0]
    return plan_id


def patient_hubs_in_service(
    conn: psycopg.Connection[Any], municipality_id: str, patient_id: str
) -> list[str]:
    """The ids of the hubs not revoked that measure the patient (the ones a plan is sent to): those
    enrolled for them and the one they live with as a resident (``hub_residents``, migration 0022)."""
    rows = conn.execute(
        "SELECT id FROM hubs WHERE municipality_id = %s AND revoked_at IS NULL AND (patient_id = %s"
        " OR id IN (SELECT hub_id FROM hub_residents WHERE patient_id = %s AND removed_at IS NULL))"
        " ORDER BY id",
        (municipality_id, patient_id, patient_id),
    ).fetchall()
    return [str(row[0]) for row in rows]


def plans_in_force(conn: psycopg.Connection[Any]) -> list[PlanInForce]:
    """Every patient of every municipality whose plan in force is not empty, with the time zone of the hub
    they live with (enrolled for them, else as a resident: migration 0022);
    ordered by municipality and patient. An unreadable plan is left out (and logged): one bad row must not
    stop the missing-measurement job for everyone."""
    rows = conn.execute(
        "SELECT DISTINCT ON (mp.municipality_id, mp.patient_id) mp.id, mp.municipality_id, mp.patient_id,"
        " mp.plan, mp.set_at, (SELECT h.settings ->> 'timezone' FROM hubs h"
        "  WHERE h.municipality_id = mp.municipality_id AND h.revoked_at IS NULL"
        "  AND (h.patient_id = mp.patient_id OR EXISTS (SELECT 1 FROM hub_residents r"
        "   WHERE r.hub_id = h.id AND r.patient_id = mp.patient_id AND r.removed_at IS NULL))"
        "  ORDER BY h.patient_id = mp.patient_id DESC, h.enrolled_at DESC, h.id LIMIT 1)"
        " FROM measurement_plans mp ORDER BY mp.municipality_id, mp.patient_id, mp.id DESC"
    ).fetchall()
    found = []
    for plan_id, municipality_id, patient_id, plan, set_at, zone in rows:
        try:
            items = parse_plan(plan)
        except PlanError as exc:
            log.warning("%s", PlanUnreadable(int(plan_id), str(patient_id), str(exc)))
            continue
        if items:
            found.append(PlanInForce(str(municipality_id), str(patient_id), items, set_at, zone))
    return found
