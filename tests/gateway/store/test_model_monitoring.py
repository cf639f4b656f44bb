"""``gateway.store.model_monitoring``: a municipality's scored patient-days joined with the admissions that
followed them and the NEWS2 of the day, on a real PostgreSQL.

The scores are stored by their real writers (``record_admission_risk``, ``record_score`` as the scorer
stores NEWS2) and the stays by ``store_encounter`` (H4's), so the query reads the shapes the gateway
writes. Each planted row is a case: an admission 30 days after a score is one, 31 days after is not; a
window not yet closed without an admission is not counted, with one it is; a day in hospital and a
withdrawn stay count for nothing; the newest of two scores of a day counts; another municipality's
scores, stays and NEWS2 never reach this one's figures, even under this one's patient ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from gateway.alerts import admission_risk
from gateway.store.findr_inputs import HospitalStay, store_encounter
from gateway.store.model_monitoring import NEWS2_METHOD, RISK_METHOD, MonitoredDay, monitored_patient_days
from gateway.store.scoring import NewScore, record_score

Conn = psycopg.Connection[Any]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=90)
OWN, OTHER = "0101", "0202"


def day(offset: int, hour: int = 10) -> datetime:
    """``offset`` days from NOW's date, at ``hour`` UTC."""
    return NOW.replace(hour=hour) + timedelta(days=offset)


def risk(conn: Conn, municipality: str, patient: str, at: datetime, p: float, version: str = "v1") -> None:
    admission_risk.record_admission_risk(conn, municipality, patient, p, ["reason"], version, at)


def news2(conn: Conn, municipality: str, patient: str, at: datetime, total: int) -> None:
    record_score(
        conn,
        NewScore(
            municipality,
            patient,
            NEWS2_METHOD,
            total,
            "low",
            at,
            at,
            {"total": total},
            {"resourceType": "RiskAssessment"},
        ),
    )


def stay(
    conn: Conn,
    municipality: str,
    patient: str,
    start: datetime,
    end: datetime | None,
    status: str = "finished",
) -> int:
    identifier = f"urn:hospital|{patient}-{start:%Y%m%d}-{status}"
    store_encounter(
        conn,
        HospitalStay(municipality, patient, identifier, status, "IMP", start, end, "hospital", "fhir", {}),
    )
    row = conn.execute(
        "SELECT id FROM encounters WHERE municipality_id = %s AND identifier = %s", (municipality, identifier)
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as c:
        c.execute(
            "INSERT INTO municipalities (id, name) VALUES (%s, 'København'), (%s, 'Aarhus')", (OWN, OTHER)
        )
        for municipality, patient in (
            (OWN, "pt-a"),
            (OWN, "pt-b"),
            (OWN, "pt-c"),
            (OWN, "pt-d"),
            (OTHER, "pt-z"),
        ):
            c.execute(
                "INSERT INTO patients (municipality_id, id, name) VALUES (%s, %s, %s)",
                (municipality, patient, f"Name of {patient}"),
            )
        yield c


def test_the_methods_are_those_the_writers_store() -> None:
    assert admission_risk.METHOD == RISK_METHOD
    assert NEWS2_METHOD == "news2"  # gateway.alerts.scorer._news2_score


def test_each_scored_day_gets_its_outcome_and_its_news2(conn: Conn) -> None:
    # pt-a: two scores on day -60 (the newer counts), NEWS2 of that morning, admitted 10 days later.
    risk(conn, OWN, "pt-a", day(-60, 8), 0.10)
    risk(conn, OWN, "pt-a", day(-60, 10), 0.30)
    news2(conn, OWN, "pt-a", day(-60, 8), 5)
    news2(conn, OWN, "pt-a", day(-60, 11), 8)  # after the score: not what it stood beside
    first = stay(conn, OWN, "pt-a", day(-50, 14), day(-48, 9))
    # ... and on day -45, after that stay, with only a NEWS2 of 26 hours before: none that day.
    risk(conn, OWN, "pt-a", day(-45), 0.05)
    news2(conn, OWN, "pt-a", day(-46, 8), 3)
    # ... and on day -100: before the window.
    risk(conn, OWN, "pt-a", day(-100), 0.5)
    # pt-b: admitted on day -9: 31 days after day -40 (not one), 30 days after day -39 (one).
    risk(conn, OWN, "pt-b", day(-40), 0.2)
    news2(conn, OWN, "pt-b", day(-40, 6), 2)
    news2(conn, OWN, "pt-b", day(-40), 4)  # at the very time of the score: the newest it stood beside
    risk(conn, OWN, "pt-b", day(-39), 0.2)
    risk(conn, OWN, "pt-b", day(-35), 0.25, version="v2")
    second = stay(conn, OWN, "pt-b", day(-9, 23), None)
    # pt-c: day -5's window is open, but an admission has come already.
    risk(conn, OWN, "pt-c", day(-5), 0.4)
    third = stay(conn, OWN, "pt-c", day(-2, 3), None)
    # pt-d: scored while in hospital (days -22 .. -18), and before a stay that was withdrawn.
    stay(conn, OWN, "pt-d", day(-22, 15), day(-18, 10))
    risk(conn, OWN, "pt-d", day(-20), 0.6)
    risk(conn, OWN, "pt-d", day(-22), 0.6)  # the admission day itself is a day in hospital
    risk(conn, OWN, "pt-d", day(-60), 0.07)  # the stay of day -22 is 38 days later
    stay(conn, OWN, "pt-d", day(-45), day(-44), status="cancelled")
    stay(conn, OWN, "pt-d", day(-43), day(-42), status="entered-in-error")
    # ... and on day -10: no admission (yet), and its window is open: not counted.
    risk(conn, OWN, "pt-d", day(-10), 0.1)

    found = monitored_patient_days(conn, OWN, since=SINCE, now=NOW)

    # By version, patient and time.
    assert found == [
        MonitoredDay("pt-a", "v1", day(-60), 0.30, 5.0, first, True),
        MonitoredDay("pt-a", "v1", day(-45), 0.05, None, None, True),
        MonitoredDay("pt-b", "v1", day(-40), 0.2, 4.0, None, True),
        MonitoredDay("pt-b", "v1", day(-39), 0.2, None, second, True),  # day -40's is 24 h old: too old
        MonitoredDay("pt-c", "v1", day(-5), 0.4, None, third, False),
        MonitoredDay("pt-d", "v1", day(-60), 0.07, None, None, True),
        MonitoredDay("pt-b", "v2", day(-35), 0.25, None, second, True),
    ]


def test_a_window_that_has_not_closed_counts_from_its_31st_day(conn: Conn) -> None:
    # Day -30's window runs to today: not closed. Day -31's ended yesterday: closed.
    risk(conn, OWN, "pt-a", day(-30), 0.1)
    risk(conn, OWN, "pt-a", day(-31), 0.1)
    found = monitored_patient_days(conn, OWN, since=SINCE, now=NOW)
    assert [(d.as_of, d.window_closed) for d in found] == [(day(-31), True)]
    # A stay that begins later than now (booked) is no admission yet.
    risk(conn, OWN, "pt-b", day(-20), 0.1)
    stay(conn, OWN, "pt-b", NOW + timedelta(hours=3), None)
    assert all(d.patient_id != "pt-b" for d in monitored_patient_days(conn, OWN, since=SINCE, now=NOW))


def test_another_municipality_never_reaches_the_figures(conn: Conn) -> None:
    risk(conn, OWN, "pt-a", day(-60), 0.3)
    risk(conn, OWN, "pt-b", day(-40), 0.2)
    # Aarhus: its own patient scored and admitted ...
    risk(conn, OTHER, "pt-z", day(-60), 0.9)
    stay(conn, OTHER, "pt-z", day(-55), day(-50))
    # ... and rows of Aarhus that name Copenhagen's patients (a broken sender; the tables allow it): a
    # risk score, a NEWS2 and a stay. None of them may count for Copenhagen.
    risk(conn, OTHER, "pt-a", day(-50), 0.8)
    news2(conn, OTHER, "pt-a", day(-60, 9), 9)
    conn.execute(
        "INSERT INTO encounters (municipality_id, patient_id, identifier, status, class_code, period_start,"
        " period_end, recorded_by, source, resource) VALUES (%s, 'pt-b', 'urn:x|1', 'finished', 'IMP', %s,"
        " %s, 'h', 'fhir', %s)",
        (OTHER, day(-35), day(-33), Jsonb({})),
    )

    own = monitored_patient_days(conn, OWN, since=SINCE, now=NOW)
    assert [(d.patient_id, d.as_of, d.risk, d.news2, d.admitted) for d in own] == [
        ("pt-a", day(-60), 0.3, None, False),
        ("pt-b", day(-40), 0.2, None, False),
    ]
    # Aarhus sees its own patient only: a score it stored under a patient it does not have reaches nothing
    # there either (the patient is joined on municipality and id).
    other = monitored_patient_days(conn, OTHER, since=SINCE, now=NOW)
    assert [(d.patient_id, d.as_of, d.admitted) for d in other] == [("pt-z", day(-60), True)]
