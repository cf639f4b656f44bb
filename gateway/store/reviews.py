"""The nurse's weekly risk review: recording a review and reading a patient's review history.

A review (table ``reviews``, migration 0010) records who looked at a patient, when, the outcome
(``OUTCOMES``), a note, a triage colour (``TRIAGE``) and the 30-day risk the reviewer saw with its model
version. Reviews are append-only: the database refuses UPDATE and DELETE, so a correction is a new
review. Every function takes the viewer and goes through ``access.patient_scope``: a patient the viewer
may not see has no reviews, and cannot be reviewed. ``record_review`` writes its audit row in the same
transaction as the review.

"This week" is the calendar week in Copenhagen, Monday 00:00 onwards (``week_start``): the weekly review
list empties on Monday morning whatever the server's time zone. Wording and the FHIR shape
(``gateway.api.clinical_impression``) are left to the API.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from gateway.store import access
from gateway.store.audit import record_audit
from gateway.store.errors import StoreError
from gateway.store.synthetic import patient_enrolled_synthetic

OUTCOMES: tuple[str, ...] = ("no-action", "phone-call", "home-visit", "gp-contacted", "other")
# Red: act today; yellow: follow up this week; green: nothing beyond the routine (FUT's triage colours).
TRIAGE: tuple[str, ...] = ("red", "yellow", "green")
# An outcome that says nothing by itself: the reviewer must write what was done (the schema agrees).
NOTE_REQUIRED = frozenset({"other"})
NOTE_MAX_CHARS = 2000
# scores.method of the learned 30-day admission risk (gateway.alerts.admission_risk.METHOD; the store
# cannot import its callers, so a test holds the two equal).
ADMISSION_RISK = "admission-risk-30d"
# The weekly review follows the nurses' calendar week, not UTC's.
REVIEW_TIME_ZONE = ZoneInfo("Europe/Copenhagen")
AUDIT_ACTION = "review-patient"


class ReviewRefused(StoreError):
    """A review that cannot be recorded: ``patient_id`` is not one the viewer may see, or a value is
    outside the schema (``field``); nothing was written."""

    def __init__(self, patient_id: str, field: str, detail: str) -> None:
        super().__init__(f"review of {patient_id} refused ({field}): {detail}")
        self.patient_id = patient_id
        self.field = field
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Review:
    """One recorded review, as the history, the worklist and the ClinicalImpression show it."""

    id: int
    public_id: str
    municipality_id: str
    patient_id: str
    reviewer: str
    reviewer_name: str | None  # users.full_name when the user still exists and has one
    reviewed_at: datetime
    outcome: str
    note: str
    triage: str
    risk: float | None
    model_version: str | None
    risk_assessment_id: str | None  # the FHIR id of the RiskAssessment the reviewer saw
    synthetic: bool  # the patient was enrolled as synthetic


def week_start(now: datetime) -> datetime:
    """Monday 00:00 in Copenhagen of the week ``now`` falls in (an aware datetime)."""
    local = now.astimezone(REVIEW_TIME_ZONE)
    monday = (local - timedelta(days=local.weekday())).date()
    return datetime(monday.year, monday.month, monday.day, tzinfo=REVIEW_TIME_ZONE)


def review_expressions(alias: str, synthetic: sql.Composable) -> list[sql.Composable]:
    """SQL: the values of a ``Review`` in field order, over ``reviews`` as ``alias``; ``synthetic`` says
    whether its patient was enrolled as synthetic. The reviewer's name comes from ``users``."""
    r = sql.Identifier(alias)
    columns = (
        "{r}.id",
        "{r}.public_id::text",
        "{r}.municipality_id",
        "{r}.patient_id",
        "{r}.reviewer",
        "(SELECT u.full_name FROM users u WHERE u.username = {r}.reviewer)",
        "{r}.reviewed_at",
        "{r}.outcome",
        "{r}.note",
        "{r}.triage",
        "{r}.risk",
        "{r}.model_version",
        "{r}.risk_assessment::text",
    )
    return [*(sql.SQL(c).format(r=r) for c in columns), synthetic]


def review_columns(alias: str = "rv", patient: str = "p") -> sql.Composable:
    """SQL: the columns of a ``Review``, over ``reviews`` as ``alias`` joined to its ``patient``."""
    return sql.SQL(", ").join(review_expressions(alias, patient_enrolled_synthetic(patient)))


# How many values a ``Review`` is read from (``review_expressions``).
REVIEW_FIELDS = 14


def review_from(values: Sequence[Any]) -> Review:
    """A ``Review`` from the values of ``review_expressions``, in order."""
    (
        id_,
        public_id,
        municipality_id,
        patient_id,
        who,
        name,
        at,
        outcome,
        note,
        triage,
        risk,
        model,
        seen,
        synthetic,
    ) = values
    return Review(
        id=int(id_),
        public_id=str(public_id),
        municipality_id=municipality_id,
        patient_id=patient_id,
        reviewer=who,
        reviewer_name=name,
        reviewed_at=at,
        outcome=outcome,
        note=note,
        triage=triage,
        risk=None if risk is None else float(risk),
        model_version=model,
        risk_assessment_id=seen,
        synthetic=bool(synthetic),
    )


# What a note may not hold: control characters other than line breaks and tabs (PostgreSQL refuses NUL),
# and lone surrogates, which UTF-8 cannot encode.
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def note_storable(note: str) -> bool:
    """Whether ``note`` holds only text a review can keep."""
    return _UNSTORABLE.search(note) is None


def _check(patient_id: str, outcome: str, note: str, triage: str) -> None:
    if outcome not in OUTCOMES:
        raise ReviewRefused(patient_id, "outcome", f"must be one of {', '.join(OUTCOMES)}")
    if triage not in TRIAGE:
        raise ReviewRefused(patient_id, "triage", f"must be one of {', '.join(TRIAGE)}")
    if outcome in NOTE_REQUIRED and not note.strip():
        raise ReviewRefused(patient_id, "note", f"an outcome of {outcome!r} needs a note")
    if len(note) > NOTE_MAX_CHARS:
        raise ReviewRefused(patient_id, "note", f"at most {NOTE_MAX_CHARS} characters")
    if not note_storable(note):
        raise ReviewRefused(patient_id, "note", "control characters cannot be stored")


def record_review(
    conn: psycopg.Connection[Any],
    viewer: access.Viewer,
    patient_id: str,
    outcome: str,
    note: str,
    triage: str,
    *,
    seen_risk_id: str | None = None,
    now: datetime | None = None,
    client: str | None = None,
) -> Review:
    """Record ``viewer``'s review of the patient with its audit row, in one transaction.

    ``seen_risk_id`` is the FHIR id (``scores.public_id``) of the 30-day risk the reviewer was shown: its
    probability and model version are stored from that row when it is the patient's (anything else is
    stored as not seen). Raises ``ReviewRefused`` for a patient the viewer may not see or a value outside
    ``OUTCOMES`` / ``TRIAGE`` / the note's rules; nothing is written then. ``now`` is the review's time
    (None: the database's clock); ``client`` the address the review came from, for the audit log.
    """
    _check(patient_id, outcome, note, triage)
    query = sql.SQL(
        "WITH seen AS (SELECT s.score, s.detail ->> 'model' AS model, s.public_id FROM scores s"
        "  JOIN patients sp ON sp.municipality_id = s.municipality_id AND sp.id = s.patient_id"
        "  WHERE sp.id = %(patient)s AND s.method = %(method)s AND s.public_id::text = %(seen)s)"
        " , added AS (INSERT INTO reviews (municipality_id, patient_id, reviewer, reviewed_at, outcome,"
        "  note, triage, risk, model_version, risk_assessment)"
        "  SELECT p.municipality_id, p.id, %(reviewer)s, coalesce(%(now)s, now()), %(outcome)s, %(note)s,"
        "  %(triage)s, seen.score, seen.model, seen.public_id"
        "  FROM patients p LEFT JOIN seen ON true WHERE p.id = %(patient)s AND {scope} RETURNING *)"
        " SELECT {columns} FROM added rv JOIN patients p ON p.id = rv.patient_id"
    ).format(scope=access.patient_scope(viewer, "p"), columns=review_columns())
    params = {
        "patient": patient_id,
        "method": ADMISSION_RISK,
        "seen": seen_risk_id or "",
        "reviewer": viewer.username,
        "now": now,
        "outcome": outcome,
        "note": note.strip(),
        "triage": triage,
    }
    with conn.transaction():
        row = conn.execute(query, params).fetchone()
        if row is None:
            raise ReviewRefused(patient_id, "patient", "no such patient among the viewer's")
        review = review_from(row)
        record_audit(conn, viewer, AUDIT_ACTION, [patient_id], f"{outcome}, {triage}", client=client)
    return review


def reviews_of(conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str) -> list[Review]:
    """The patient's reviews, newest first; none when the viewer may not see the patient."""
    query = sql.SQL(
        "SELECT {columns} FROM reviews rv JOIN patients p ON p.id = rv.patient_id"
        " AND p.municipality_id = rv.municipality_id"
        " WHERE rv.patient_id = %s AND {scope} ORDER BY rv.reviewed_at DESC, rv.id DESC"
    ).format(columns=review_columns(), scope=access.patient_scope(viewer, "p"))
    return [review_from(row) for row in conn.execute(query, (patient_id,)).fetchall()]


def reviewed_since(conn: psycopg.Connection[Any], viewer: access.Viewer, since: datetime) -> frozenset[str]:
    """The ids of the viewer's patients reviewed (by anyone) at or after ``since``."""
    query = sql.SQL(
        "SELECT DISTINCT p.id FROM patients p JOIN reviews rv ON rv.patient_id = p.id"
        " AND rv.municipality_id = p.municipality_id WHERE rv.reviewed_at >= %s AND {scope}"
    ).format(scope=access.patient_scope(viewer, "p"))
    return frozenset(row[0] for row in conn.execute(query, (since,)).fetchall())


def review_by_public_id(
    conn: psycopg.Connection[Any], viewer: access.Viewer, public_id: str
) -> Review | None:
    """The review whose ClinicalImpression id is ``public_id``, when the viewer may see its patient."""
    query = sql.SQL(
        "SELECT {columns} FROM reviews rv JOIN patients p ON p.id = rv.patient_id"
        " AND p.municipality_id = rv.municipality_id WHERE rv.public_id::text = %s AND {scope}"
    ).format(columns=review_columns(), scope=access.patient_scope(viewer, "p"))
    row = conn.execute(query, (public_id.lower(),)).fetchone()
    return None if row is None else review_from(row)


@dataclass(frozen=True, slots=True)
class ReviewPage:
    """One page of a review search, newest first: the reviews, whether more follow, and how many match."""

    reviews: list[Review]
    has_more: bool
    total: int


def search_reviews(
    conn: psycopg.Connection[Any],
    viewer: access.Viewer,
    *,
    patient_ids: tuple[str, ...] = (),
    count: int,
    after: tuple[datetime, str] | None = None,
) -> ReviewPage:
    """The viewer's patients' reviews (only of ``patient_ids`` when given), newest first, ``count`` per
    page, starting after the review at (``reviewed_at``, ``public_id``) ``after``."""
    wanted = sql.SQL("rv.patient_id = ANY(%(patients)s)") if patient_ids else sql.SQL("true")
    position = sql.SQL("true")
    params: dict[str, Any] = {"patients": list(patient_ids), "limit": count + 1}
    if after is not None:
        position = sql.SQL("(rv.reviewed_at, rv.public_id::text) < (%(at)s, %(key)s)")
        params.update(at=after[0], key=after[1])
    matches = sql.SQL(
        "FROM reviews rv JOIN patients p ON p.id = rv.patient_id AND p.municipality_id = rv.municipality_id"
        " WHERE {scope} AND {wanted}"
    ).format(scope=access.patient_scope(viewer, "p"), wanted=wanted)
    # The total counts every match; the page is the part after the cursor (keyset paging).
    total_row = conn.execute(sql.SQL("SELECT count(*) {}").format(matches), params).fetchone()
    page_query = sql.SQL(
        "SELECT {columns} {matches} AND {position}"
        " ORDER BY rv.reviewed_at DESC, rv.public_id::text DESC LIMIT %(limit)s"
    ).format(columns=review_columns(), matches=matches, position=position)
    rows = conn.execute(page_query, params).fetchall()
    reviews = [review_from(row) for row in rows[:count]]
    return ReviewPage(reviews, len(rows) > count, int(total_row[0]) if total_row else 0)
