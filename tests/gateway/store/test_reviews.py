"""Reviews in the store: kept with what the reviewer saw and an audit row, scoped by access, append-only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from gateway.alerts.admission_risk import METHOD, record_admission_risk
from gateway.api.auth import User, create_user
from gateway.store import reviews
from gateway.store.repository import Municipality, Patient, enroll_municipality, enroll_patient
from gateway.store.reviews import ReviewRefused, record_review, reviewed_since, reviews_of, week_start
from gateway.store.users import create_care_team

NOW = datetime(2026, 12, 9, 10, 0, tzinfo=UTC)  # a Wednesday
PASSWORD = "correct horse"


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def people(conn: psycopg.Connection[Any]) -> dict[str, User]:
    """Two municipalities; in the first a second care team; nurses of each team, a GP, an administrator."""
    enroll_municipality(conn, Municipality("0101", "København"))
    enroll_municipality(conn, Municipality("0147", "Frederiksberg"))
    create_care_team(conn, "0101", "nord", "Hjemmeplejen Nord")
    found = {
        "anna": create_user(conn, "anna", "0101", "nurse", PASSWORD),
        "nora": create_user(conn, "nora", "0101", "nurse", PASSWORD, care_teams=("nord",)),
        "bo": create_user(conn, "bo", "0147", "nurse", PASSWORD),
        "gp": create_user(conn, "dr-gp", "0147", "gp", PASSWORD),
        "admin": create_user(conn, "admin", "0101", "municipality_admin", PASSWORD),
    }
    enroll_patient(conn, Patient("0101", "p1", "Karen", gp_username="dr-gp"))
    enroll_patient(conn, Patient("0101", "p-nord", "Niels", care_team_id="nord"))
    enroll_patient(conn, Patient("0147", "p-frb", "Frede"))
    return found


def _risk(conn: psycopg.Connection[Any], patient_id: str, probability: float, model: str) -> str:
    """Store a 30-day risk for the patient as the admission-risk job does; its public id."""
    reasons = ["Weight up 2.1 kg in 3 days"]
    at = NOW - timedelta(hours=3)
    score_id = record_admission_risk(conn, "0101", patient_id, probability, reasons, model, at)
    row = conn.execute("SELECT public_id::text FROM scores WHERE id = %s", (score_id,)).fetchone()
    assert row is not None
    return str(row[0])


def _audit(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str | None]]:
    rows = conn.execute("SELECT username, action, patient_id FROM audit_log ORDER BY id").fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def _count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM reviews").fetchone()
    assert row is not None
    return int(row[0])


def test_the_store_names_the_30_day_risk_as_the_job_stores_it() -> None:
    assert reviews.ADMISSION_RISK == METHOD


def test_a_review_keeps_the_risk_and_model_the_reviewer_saw_and_is_audited(
    conn: psycopg.Connection[Any], people: dict[str, User]
) -> None:
    seen = _risk(conn, "p1", 0.31, "admission-risk-1.0")
    _risk(conn, "p1", 0.55, "admission-risk-2.0")  # newer, but not what the reviewer was shown
    review = record_review(
        conn,
        people["anna"],
        "p1",
        "phone-call",
        "  Called; feels fine.  ",
        "yellow",
        seen_risk_id=seen,
        now=NOW,
    )
    assert (review.patient_id, review.reviewer, review.outcome, review.triage) == (
        "p1",
        "anna",
        "phone-call",
        "yellow",
    )
    assert review.note == "Called; feels fine."
    assert review.reviewed_at == NOW
    assert (review.risk, review.model_version, review.risk_assessment_id) == (
        0.31,
        "admission-risk-1.0",
        seen,
    )
    assert review.municipality_id == "0101" and len(review.public_id) == 36
    assert _audit(conn) == [("anna", reviews.AUDIT_ACTION, "p1")]
    assert reviews_of(conn, people["anna"], "p1") == [review]


def test_a_risk_id_of_another_patient_is_stored_as_not_seen(
    conn: psycopg.Connection[Any], people: dict[str, User]
) -> None:
    other = _risk(conn, "p-nord", 0.4, "admission-risk-1.0")
    review = record_review(conn, people["anna"], "p1", "no-action", "", "green", seen_risk_id=other)
    assert (review.risk, review.model_version, review.risk_assessment_id) == (None, None, None)


@pytest.mark.parametrize(
    ("who", "patient"),
    [
        ("nora", "p1"),  # a nurse of another care team of the same municipality
        ("bo", "p1"),  # a nurse of another municipality
        ("gp", "p-nord"),  # a GP who is not the patient's
        ("admin", "p1"),  # an administrator sees no patient
        ("anna", "no-such-patient"),
    ],
)
def test_a_review_of_a_patient_the_viewer_may_not_see_is_refused_and_writes_nothing(
    conn: psycopg.Connection[Any], people: dict[str, User], who: str, patient: str
) -> None:
    with pytest.raises(ReviewRefused) as refused:
        record_review(conn, people[who], patient, "no-action", "", "green")
    assert refused.value.field == "patient"
    assert _count(conn) == 0 and _audit(conn) == []


def test_the_patients_gp_may_review_across_municipalities(
    conn: psycopg.Connection[Any], people: dict[str, User]
) -> None:
    review = record_review(conn, people["gp"], "p1", "gp-contacted", "Seen in clinic", "red")
    assert review.municipality_id == "0101"  # the patient's municipality, not the GP's
    assert [r.id for r in reviews_of(conn, people["anna"], "p1")] == [review.id]


@pytest.mark.parametrize(
    ("outcome", "note", "triage", "field"),
    [
        ("other", "", "green", "note"),
        ("other", "   ", "green", "note"),
        ("visited", "", "green", "outcome"),
        ("no-action", "", "blue", "triage"),
        ("no-action", "x" * (reviews.NOTE_MAX_CHARS + 1), "green", "note"),
    ],
)
def test_values_outside_the_rules_are_refused(
    conn: psycopg.Connection[Any], people: dict[str, User], outcome: str, note: str, triage: str, field: str
) -> None:
    with pytest.raises(ReviewRefused) as refused:
        record_review(conn, people["anna"], "p1", outcome, note, triage)
    assert refused.value.field == field
    assert _count(conn) == 0


def test_the_schema_itself_refuses_other_without_a_note(
    conn: psycopg.Connection[Any], people: dict[str, User]
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO reviews (municipality_id, patient_id, reviewer, outcome, note, triage)"
            " VALUES ('0101', 'p1', 'anna', 'other', ' ', 'red')"
        )


@pytest.mark.parametrize(
    "statement",
    ["UPDATE reviews SET outcome = 'no-action'", "DELETE FROM reviews", "TRUNCATE reviews"],
)
def test_reviews_are_append_only(
    conn: psycopg.Connection[Any], people: dict[str, User], statement: str
) -> None:
    review = record_review(conn, people["anna"], "p1", "home-visit", "Visited", "red")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)
    assert reviews_of(conn, people["anna"], "p1") == [review]


def test_reviews_of_is_newest_first_and_empty_for_a_viewer_who_may_not_see_the_patient(
    conn: psycopg.Connection[Any], people: dict[str, User]
) -> None:
    first = record_review(conn, people["anna"], "p1", "no-action", "", "green", now=NOW - timedelta(days=8))
    second = record_review(conn, people["anna"], "p1", "phone-call", "", "yellow", now=NOW)
    assert [r.id for r in reviews_of(conn, people["anna"], "p1")] == [second.id, first.id]
    assert reviews_of(conn, people["nora"], "p1") == []
    assert reviews_of(conn, people["bo"], "p1") == []


def test_reviewed_since_lists_the_viewers_patients_reviewed_in_the_week(
    conn: psycopg.Connection[Any], people: dict[str, User]
) -> None:
    monday = week_start(NOW)
    record_review(conn, people["anna"], "p1", "no-action", "", "green", now=monday - timedelta(minutes=1))
    assert reviewed_since(conn, people["anna"], monday) == frozenset()
    record_review(conn, people["gp"], "p1", "no-action", "", "green", now=monday)
    record_review(conn, people["nora"], "p-nord", "no-action", "", "green", now=NOW)
    assert reviewed_since(conn, people["anna"], monday) == {"p1"}
    assert reviewed_since(conn, people["nora"], monday) == {"p-nord"}


@pytest.mark.parametrize(
    ("now", "monday"),
    [
        # Wednesday morning: the Monday of the same week, 00:00 in Copenhagen (23:00 UTC on Sunday in winter).
        (datetime(2026, 12, 9, 10, 0, tzinfo=UTC), datetime(2026, 12, 6, 23, 0, tzinfo=UTC)),
        # Sunday 23:30 UTC is already Monday 00:30 in Copenhagen: a new week has begun.
        (datetime(2026, 12, 13, 23, 30, tzinfo=UTC), datetime(2026, 12, 13, 23, 0, tzinfo=UTC)),
        # Summer time: Monday 00:00 in Copenhagen is 22:00 UTC on Sunday.
        (datetime(2026, 6, 17, 12, 0, tzinfo=UTC), datetime(2026, 6, 14, 22, 0, tzinfo=UTC)),
    ],
)
def test_the_week_begins_on_monday_in_copenhagen(now: datetime, monday: datetime) -> None:
    assert week_start(now) == monday


def test_a_note_with_control_characters_is_refused(
    conn: psycopg.Connection[Any], people: dict[str, User]
) -> None:
    with pytest.raises(ReviewRefused) as refused:
        record_review(conn, people["anna"], "p1", "phone-call", "a\x00b", "green")
    assert refused.value.field == "note" and _count(conn) == 0
