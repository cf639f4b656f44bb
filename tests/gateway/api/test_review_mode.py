"""Review mode (``GET /review``) and a patient's review history (``/patients/{id}/reviews``): the unreviewed
patients of the week in rank order, one form each, the next one after saving; errors summarised at the
top of the form; what the reviewer saw kept; audited; only the viewer's own patients."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from review_world import RankedWorld, ranked_world
from seed import audit_rows, login

from gateway.api.auth import User
from gateway.store.reviews import record_review, week_start


@pytest.fixture
def ranked(database_url: str, app: FastAPI) -> RankedWorld:
    now = datetime.now(UTC).replace(microsecond=0)
    app.state.clock = lambda: now
    with psycopg.connect(database_url, autocommit=True) as conn:
        return ranked_world(conn, now)


ANNA = User("anna", "0101", "nurse")


def shown(html: str) -> str | None:
    """The patient review mode shows."""
    found = re.search(r'data-patient="([^"]+)"', html)
    return None if found is None else found[1]


def form_fields(html: str) -> dict[str, str]:
    """The hidden fields of the review form."""
    form = html[html.index('<form class="review-form"') :]
    form = form[: form.index("</form>")]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def review(client: TestClient, page: str, patient_id: str, **fields: str) -> Any:
    """Post the review form of ``page`` (its hidden fields) with ``fields``."""
    return client.post(
        f"/patients/{patient_id}/reviews", data={**form_fields(page), **fields}, follow_redirects=False
    )


def count_reviews(db: psycopg.Connection[Any]) -> int:
    row = db.execute("SELECT count(*) FROM reviews").fetchone()
    assert row is not None
    return int(row[0])


def test_review_mode_walks_the_unreviewed_patients_in_rank_order(
    client: TestClient, ranked: RankedWorld
) -> None:
    login(client, "anna")
    seen: list[str] = []
    page = client.get("/review")
    while shown(page.text) is not None:
        patient = shown(page.text)
        assert patient is not None
        seen.append(patient)
        saved = review(client, page.text, patient, outcome="no-action", triage="green")
        assert saved.status_code == 303 and saved.headers["location"] == "/review?position=0"
        page = client.get(saved.headers["location"])
    assert seen == list(ranked.ranked)
    assert "Everyone on your list is reviewed this week." in page.text


def test_skipping_moves_on_and_saving_stays_at_the_same_place(
    client: TestClient, ranked: RankedWorld
) -> None:
    login(client, "anna")
    first = client.get("/review").text
    assert shown(first) == "p-risk-high" and "5 patients not yet reviewed this week" in first
    assert 'href="/review?position=1"' in first  # skip
    skipped = client.get("/review?position=1").text
    assert shown(skipped) == "p-risk-mid"
    saved = review(client, skipped, "p-risk-mid", outcome="phone-call", triage="yellow")
    assert saved.headers["location"] == "/review?position=1"
    after = client.get(saved.headers["location"]).text
    assert shown(after) == "p-lagging" and "4 patients not yet reviewed this week" in after


def test_review_mode_keeps_the_filters(client: TestClient, ranked: RankedWorld) -> None:
    login(client, "anna")
    page = client.get("/review?condition=copd").text
    assert shown(page) == "p-risk-mid" and "2 patients not yet reviewed" in page
    saved = review(client, page, "p-risk-mid", outcome="no-action", triage="green")
    assert saved.headers["location"] == "/review?condition=copd&position=0"
    assert shown(client.get(saved.headers["location"]).text) == "p-lagging"


def test_a_review_keeps_what_the_reviewer_saw_and_is_audited(
    client: TestClient, ranked: RankedWorld, db: psycopg.Connection[Any]
) -> None:
    login(client, "anna")
    page = client.get("/review").text
    assert form_fields(page)["seen_risk"] == ranked.risk_ids["p-risk-high"]
    review(client, page, "p-risk-high", outcome="home-visit", note="Visited; legs swollen", triage="red")
    row = db.execute(
        "SELECT reviewer, outcome, note, triage, risk, model_version, risk_assessment::text, reviewed_at"
        " FROM reviews"
    ).fetchone()
    assert row == (
        "anna",
        "home-visit",
        "Visited; legs swollen",
        "red",
        0.42,
        "admission-risk-1.0",
        ranked.risk_ids["p-risk-high"],
        ranked.now,
    )
    assert [r[3] for r in audit_rows(db, "review-patient")] == ["p-risk-high"]
    client.get("/review")
    assert [r[3] for r in audit_rows(db, "view-review")] == ["p-risk-high", "p-risk-mid"]


def test_other_without_a_note_is_shown_again_with_an_error_summary_at_the_top(
    client: TestClient, ranked: RankedWorld, db: psycopg.Connection[Any]
) -> None:
    login(client, "anna")
    page = client.get("/review").text
    answer = review(client, page, "p-risk-high", outcome="other", note="  ", triage="red")
    assert answer.status_code == 400
    html = answer.text
    assert "<title>Error: Weekly review" in html
    summary = html.index('<div class="error-summary" role="alert"')
    assert summary < html.index("<article") < html.index('<form class="review-form"')
    assert '<a href="#note">Write what you did: the outcome “Other” needs a note</a>' in html
    assert 'id="outcome-other" name="outcome" value="other" checked' in html  # the answers are kept
    assert 'id="triage-red" name="triage" value="red" checked' in html
    assert 'aria-describedby="note-hint note-error"' in html
    assert shown(html) == "p-risk-high" and count_reviews(db) == 0


def test_a_form_with_nothing_chosen_names_each_missing_answer(
    client: TestClient, ranked: RankedWorld
) -> None:
    login(client, "anna")
    html = review(client, client.get("/review").text, "p-risk-high").text
    assert '<a href="#outcome-no-action">Choose what you did</a>' in html
    assert '<a href="#triage-red">Choose a triage colour</a>' in html


def test_a_review_without_the_forms_token_is_refused(
    client: TestClient, ranked: RankedWorld, db: psycopg.Connection[Any]
) -> None:
    login(client, "anna")
    answer = client.post(
        "/patients/p-risk-high/reviews", data={"outcome": "no-action", "triage": "green", "csrf": "forged"}
    )
    assert answer.status_code == 403 and count_reviews(db) == 0


def test_another_care_teams_patient_cannot_be_reviewed_or_seen(
    client: TestClient, ranked: RankedWorld, db: psycopg.Connection[Any]
) -> None:
    login(client, "anna")
    page = client.get("/review").text
    assert review(client, page, "p-nord", outcome="no-action", triage="green").status_code == 404
    assert client.get("/patients/p-nord/reviews").status_code == 404
    assert client.get("/patients/no%00such/reviews").status_code == 404
    assert count_reviews(db) == 0


def test_the_history_page_lists_reviews_newest_first_and_its_form_returns_to_it(
    client: TestClient, ranked: RankedWorld, db: psycopg.Connection[Any]
) -> None:
    record_review(
        db,
        ANNA,
        "p-risk-mid",
        "phone-call",
        "Breathless on stairs",
        "yellow",
        now=ranked.now - timedelta(days=9),
    )
    login(client, "dr-gp")  # the patient's GP
    page = client.get("/patients/p-risk-mid/reviews").text
    saved = review(client, page, "p-risk-mid", outcome="gp-contacted", note="Diuretic raised", triage="red")
    assert saved.status_code == 303 and saved.headers["location"] == "/patients/p-risk-mid/reviews#history"
    history = client.get("/patients/p-risk-mid/reviews").text
    table = history[history.index('<table class="review-table">') :]
    rows = re.findall(r"<tr>\s*<td>(.*?)</tr>", table, re.DOTALL)
    assert len(rows) == 2
    assert (
        "dr-gp" in rows[0]
        and "GP contacted" in rows[0]
        and "Diuretic raised" in rows[0]
        and "20 %" in rows[0]
    )
    assert "anna" in rows[1] and "Phone call" in rows[1] and "Breathless on stairs" in rows[1]
    assert "Reviewed by dr-gp, just now: gp contacted" in history  # the card's line
    assert [r[3] for r in audit_rows(db, "view-reviews")] == ["p-risk-mid", "p-risk-mid"]


def test_a_review_of_last_week_does_not_count_for_this_week(
    client: TestClient, ranked: RankedWorld, db: psycopg.Connection[Any]
) -> None:
    record_review(
        db, ANNA, "p-risk-high", "no-action", "", "green", now=week_start(ranked.now) - timedelta(minutes=1)
    )
    login(client, "anna")
    assert shown(client.get("/review").text) == "p-risk-high"


@pytest.mark.parametrize("query", ["position=-1", "position=x", "condition=" + "c" * 65])
def test_malformed_review_mode_queries_are_a_400(client: TestClient, ranked: RankedWorld, query: str) -> None:
    login(client, "anna")
    assert client.get(f"/review?{query}").status_code == 400


def test_an_administrator_gets_no_review_mode(client: TestClient, ranked: RankedWorld) -> None:
    login(client, "admin")
    assert client.get("/review").status_code == 403
    assert client.get("/patients/p-risk-high/reviews").status_code == 403


def test_a_note_with_control_characters_is_refused_on_the_form(
    client: TestClient, ranked: RankedWorld, db: psycopg.Connection[Any]
) -> None:
    login(client, "anna")
    page = client.get("/review").text
    answer = review(
        client, page, "p-risk-high", outcome="phone-call", note="a\x00b", triage="green", team="x\x00"
    )
    assert answer.status_code == 400 and "cannot be stored" in answer.text
    assert count_reviews(db) == 0
    fine = review(
        client, page, "p-risk-high", outcome="phone-call", note="Line one\nline two", triage="green"
    )
    assert fine.status_code == 303 and count_reviews(db) == 1
