"""A card's NEWS2, its reasons, its alert and its readings come from the same data, or say when they do not.

The bug: a card showed "NEWS2 6", listed reasons whose points added up to 5, and an alert "... Not
measured: spo2" beside a tile showing SpO2 95 %. That is what the real scorer leaves behind when an SpO2
reading arrives after an alert was raised: the new NEWS2 (6, SpO2 now scored) does not escalate the open
alert (same severity), which keeps the reason of the score it was raised on (5, SpO2 missing); and a
card that lists only the top three parameters drops a point. The world below is made exactly that way,
through ingest's storage and the scorer.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from review_world import PASSWORD, blood_pressure, enrol, measure, municipality, score
from seed import login

from gateway.api.auth import create_user
from gateway.api.i18n import use_language
from gateway.api.presenters import when


@pytest.fixture
def now(app: FastAPI) -> datetime:
    moment = datetime.now(UTC).replace(microsecond=0)
    app.state.clock = lambda: moment
    return moment


def _card(html: str, patient_id: str) -> str:
    start = html.index(f'id="patient-{patient_id}"')
    return html[start : html.index("</article>", start)]


def test_news2_reasons_alert_and_tiles_of_a_card_agree(
    client: TestClient, database_url: str, now: datetime
) -> None:
    earlier, later = now - timedelta(hours=3), now - timedelta(hours=1)
    with psycopg.connect(database_url, autocommit=True) as conn:
        municipality(conn, "0101", "København")
        create_user(conn, "anna", "0101", "nurse", PASSWORD)
        enrol(conn, "0101", "p1", "Karen", devices=("blood-pressure-cuff", "pulse-oximeter", "thermometer"))
        # First the cuff and the thermometer: pulse 131 (3 points), systolic 105 (1), 38.5 °C (1), no SpO2.
        blood_pressure(conn, "0101", "p1", 105, 70, earlier)
        measure(conn, "0101", "p1", "pulse-rate-cuff", 131, earlier)
        measure(conn, "0101", "p1", "body-temperature", 38.5, earlier)
        first = score(conn, "0101", "p1", earlier)
        assert (first.news2, first.alert_raised) == (5, True)
        # Then the oximeter: SpO2 95 % (1 point). NEWS2 6, the same severity: the open alert stays as it was.
        measure(conn, "0101", "p1", "spo2", 95, later)
        second = score(conn, "0101", "p1", later)
        assert (second.news2, second.alert_raised) == (6, False)
        reason = conn.execute(
            "SELECT reason FROM alerts WHERE patient_id = 'p1' AND status = 'open'"
        ).fetchone()
        assert reason is not None and "Not measured:" in reason[0] and "spo2" in reason[0]

    login(client, "anna")
    card = _card(client.get("/").text, "p1")

    # The NEWS2 shown and the points of the reasons listed under it are one score row's: they add up.
    shown = re.search(r'data-news2="(\d+)"', card)
    assert shown is not None and shown[1] == "6"
    reasons = re.search(r'<ul class="reasons news2-reasons"[^>]*>(.*?)</ul>', card, re.DOTALL)
    assert reasons is not None
    points = [int(p) for p in re.findall(r":\s*(\d+) points?</li>", reasons[1])]
    assert sum(points) == 6 and len(points) == 4
    # The SpO2 that score used is the SpO2 the tile shows.
    assert "SpO₂ 95 %: 1 point" in reasons[1]
    tile = re.search(r'data-reading="spo2">(.*?)</div>', card, re.DOTALL)
    assert tile is not None and "<dd>95 %</dd>" in tile[1]

    # The alert that says SpO2 was not measured is shown as what it is: from the earlier assessment, with
    # that assessment's time, not as the reason of the NEWS2 above.
    alert = re.search(r'<p class="alert-line">(.*?)</p>', card, re.DOTALL)
    assert alert is not None
    assert "Not measured:" in alert[1]
    assert "from another assessment than the NEWS2 above" in alert[1]
    assert f"its data as of {_when(earlier)}" in alert[1]
    assert "on the NEWS2 above" not in alert[1]

    # Every tile carries its own time.
    tiles = re.findall(r'<div class="reading[^"]*" data-reading="[^"]+">(.*?)</div>', card, re.DOTALL)
    assert len(tiles) == 4 and all("<time datetime=" in t for t in tiles)


def test_an_alert_raised_on_the_news2_shown_says_so(
    client: TestClient, database_url: str, now: datetime
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        municipality(conn, "0101", "København")
        create_user(conn, "anna", "0101", "nurse", PASSWORD)
        enrol(conn, "0101", "p1", "Karen", devices=("pulse-oximeter",))
        measure(conn, "0101", "p1", "spo2", 90, now - timedelta(hours=1))  # 3 points: a red score
        assert score(conn, "0101", "p1", now - timedelta(hours=1)).alert_raised
    login(client, "anna")
    card = _card(client.get("/").text, "p1")
    alert = re.search(r'<p class="alert-line">(.*?)</p>', card, re.DOTALL)
    assert alert is not None and "on the NEWS2 above" in alert[1]
    assert "another assessment" not in alert[1]


def _when(moment: datetime) -> str:
    """A time as the page writes it (English, Copenhagen)."""
    with use_language("en"):
        return when(moment)
