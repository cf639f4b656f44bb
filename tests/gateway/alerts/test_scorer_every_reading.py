"""Every stored reading is scored, whenever the scorer gets round to it: a reading that calls for an alert
raises it although newer ones arrived before the scorer ran, a late reading is scored in its place, a
value flapping round a threshold raises one alert, and a reading outside the patient's own red limits
raises a threshold alert. Real ingest (announcing on a channel), the real scorer listening on it, real
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from scoring_homes import MUNICIPALITY, T0, alerts, enroll, reading, send

from gateway.alerts.scorer import Scorer
from gateway.api.auth import User
from gateway.ingest.batch_store import BatchStore
from gateway.settings import GatewaySettings
from gateway.store.new_data import read_new_data_notification, send_barrier
from gateway.store.thresholds import set_limits
from gateway.store.users import insert_user, join_care_team
from models.triage import Limits

CHANNEL = "t_every_reading"


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as c:
        enroll(c, "p-1", "p-2")
        yield c


@pytest.fixture
def ingest(database_url: str) -> Iterator[BatchStore]:
    store = BatchStore(GatewaySettings(database_url=database_url), "scorer-test", notify_channel=CHANNEL)
    yield store
    store.close()


@pytest.fixture
def scorer(database_url: str) -> Iterator[Scorer]:
    """A scorer that hears the announcements; it scores once started."""
    listening = Scorer(database_url)
    listening.listen(CHANNEL)
    assert listening.wait_listening(timeout=10)
    yield listening
    listening.stop()


def heard(scorer: Scorer, database_url: str) -> None:
    """Wait until every announcement so far has reached the scorer."""
    barrier = send_barrier(database_url, CHANNEL)
    assert barrier is not None and scorer.wait_heard(barrier, timeout=10)


def scored(scorer: Scorer, database_url: str) -> None:
    """Wait until the (started) scorer has scored every announcement so far."""
    heard(scorer, database_url)
    assert scorer.wait_idle(timeout=30)


def events(conn: psycopg.Connection[Any], pid: str, action: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM alert_events WHERE patient_id = %s AND action = %s", (pid, action)
    ).fetchone()
    return 0 if row is None else int(row[0])


def test_ingest_announces_each_patient_with_the_earliest_reading_it_stored(
    conn: psycopg.Connection[Any], ingest: BatchStore
) -> None:
    """What the scorer scores from: a Bundle's earliest reading, whatever its order; a patient whose new
    rows are all preliminary has nothing to score and is not announced."""
    with psycopg.connect(conn.info.dsn, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        later, earlier = T0 + timedelta(minutes=10), T0 + timedelta(minutes=2)
        send(ingest, "p-1", [reading("p-1", "heart-rate", 72, later), reading("p-1", "spo2", 97, earlier)])
        preliminary = reading("p-2", "heart-rate", 72, T0)
        preliminary["status"] = "preliminary"
        send(ingest, "p-2", [preliminary])
        send(ingest, "p-1", [reading("p-1", "heart-rate", 72, later)])  # a duplicate: nothing new
        heard = [read_new_data_notification(n.payload) for n in listener.notifies(timeout=1.0)]
    assert heard == [(MUNICIPALITY, {"p-1": earlier})]


def test_a_red_reading_followed_by_a_normal_one_before_the_scorer_runs_raises_the_alert(
    conn: psycopg.Connection[Any], ingest: BatchStore, scorer: Scorer, database_url: str
) -> None:
    """The defect measured black box: a newer normal reading arrived before the scorer got round to the
    patient, and the red one (pulse 140 /min: 3 points) was never scored."""
    send(ingest, "p-1", [reading("p-1", "heart-rate", 140, T0)])
    send(ingest, "p-1", [reading("p-1", "heart-rate", 72, T0 + timedelta(seconds=1))])
    heard(scorer, database_url)
    scorer.start()  # both readings stored and announced before the scorer looks at any
    assert scorer.wait_idle(timeout=30)
    assert alerts(conn, "p-1") == [("news2", "", "medium", T0, 1)]
    row = conn.execute(
        "SELECT a.reason, s.as_of, s.score FROM alerts a JOIN scores s ON s.id = a.score_id"
        " WHERE a.patient_id = 'p-1'"
    ).fetchone()
    assert row is not None
    reason, score_as_of, score = row
    assert "Pulse 140 /min: 3 points" in reason
    assert (score_as_of, score) == (T0, 3)  # the alert stands on the NEWS2 of the red reading
    # The patient's current NEWS2 is the newest reading's (0 points), stored after the alert's score.
    current = conn.execute(
        "SELECT score, as_of FROM scores WHERE patient_id = 'p-1' AND method = 'news2'"
        " ORDER BY computed_at DESC, id DESC LIMIT 1"
    ).fetchone()
    assert current == (0, T0 + timedelta(seconds=1))
    assert alerts(conn, "p-2") == []


def test_a_value_flapping_round_a_threshold_raises_one_alert_and_tells_once(
    conn: psycopg.Connection[Any], ingest: BatchStore, scorer: Scorer, database_url: str
) -> None:
    """20 alternations of 131 /min (3 points) and 130 /min (2 points), scored as they arrive."""
    scorer.start()
    for i in range(40):
        send(
            ingest,
            "p-1",
            [reading("p-1", "heart-rate", 131 if i % 2 == 0 else 130, T0 + timedelta(minutes=i))],
        )
    scored(scorer, database_url)
    assert alerts(conn, "p-1") == [("news2", "", "medium", T0, 20)]
    assert events(conn, "p-1", "raised") == 1


def test_a_late_reading_is_scored_in_its_place_and_the_readings_after_it_again(
    conn: psycopg.Connection[Any], ingest: BatchStore, scorer: Scorer, database_url: str
) -> None:
    """A hub that was offline sends an SpO2 of 91 % (3 points) taken at 5 s after the heart rates of 0 to
    10 s were scored: it is scored at 5 s, and so is every heart rate after it, with it."""
    scorer.start()
    for second in range(11):
        send(ingest, "p-1", [reading("p-1", "heart-rate", 72, T0 + timedelta(seconds=second))])
    scored(scorer, database_url)
    assert alerts(conn, "p-1") == []
    send(ingest, "p-1", [reading("p-1", "spo2", 91, T0 + timedelta(seconds=5))])
    scored(scorer, database_url)
    assert alerts(conn, "p-1") == [("news2", "", "medium", T0 + timedelta(seconds=5), 6)]
    # Heard again (a duplicate, or another scorer): the same readings change nothing.
    scorer.notify(MUNICIPALITY, {"p-1": T0})
    assert scorer.wait_idle(timeout=30)
    assert alerts(conn, "p-1") == [("news2", "", "medium", T0 + timedelta(seconds=5), 6)]


def test_a_reading_outside_the_patients_own_red_limits_raises_a_threshold_alert(
    conn: psycopg.Connection[Any], ingest: BatchStore, scorer: Scorer, database_url: str
) -> None:
    """p-1's nurse set her own pulse limits (red above 110 /min); p-2 has NEWS2's (red above 130)."""
    insert_user(conn, "nurse-1", MUNICIPALITY, "nurse", "!")
    join_care_team(conn, MUNICIPALITY, MUNICIPALITY, "nurse-1")
    nurse = User("nurse-1", MUNICIPALITY, "nurse")
    own = Limits(red_low=45, yellow_low=50, yellow_high=100, red_high=110)
    set_limits(conn, nurse, "p-1", {"pulse": own}, client="test")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)  # taken after they were set
    scorer.start()
    for pid in ("p-1", "p-2"):
        # 115 /min: 2 points, no NEWS2 alert; then 105: within both; then 140: 3 points, NEWS2's red too.
        for second, value in enumerate((115, 105, 140)):
            send(ingest, pid, [reading(pid, "heart-rate", value, start + timedelta(seconds=second))])
    scored(scorer, database_url)
    assert alerts(conn, "p-1") == [
        ("threshold", "pulse", "medium", start, 2),
        ("news2", "", "medium", start + timedelta(seconds=2), 1),
    ]
    assert alerts(conn, "p-2") == [("news2", "", "medium", start + timedelta(seconds=2), 1)]
    row = conn.execute(
        "SELECT reason, observation_identifier, score_id FROM alerts WHERE patient_id = 'p-1'"
        " AND kind = 'threshold'"
    ).fetchone()
    assert row is not None
    reason, identifier, score_id = row
    assert reason == "Pulse 115 /min, above the patient's own red limit of 110 /min"
    assert identifier == reading("p-1", "heart-rate", 115, start)["identifier"][0]["value"]
    assert score_id is None  # it stands on the reading, not on a score
