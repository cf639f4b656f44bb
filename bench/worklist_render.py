"""How long the worklist page takes on the server for a nurse with 1,000 patients (target: 300 ms).

An embedded PostgreSQL with the current schema; ``--patients`` homes in one care team (a cuff, an
oximeter and a scale each), ``--days`` days of history per patient: the daily readings (blood pressure,
pulse, SpO2, pulse, weight: Observations built and validated with the contract and stored as ingest
stores them), a NEWS2 score of each morning's and evening's readings (``models.news2`` on the values,
stored with ``record_score``), a daily 30-day admission risk (stored as the job stores it), an open
alert for one patient in twenty (raised through ``gateway.alerts.lifecycle`` on that patient's newest
NEWS2, as the scorer raises one) and this week's review for one in three. Some homes stop sending a few
days before the end (their cards show "data lagging"). All SYNTHETIC.

Then, over ``--runs`` runs each, after two warm-up runs:

- store: ``worklist.worklist_page`` alone (the one query of a page: ranking all patients, the page's cards);
- page: ``GET /`` through the FastAPI app (TestClient, a logged-in nurse): session check, the query,
  the filter choices, the count for the review button, the template, the audit rows;
- the last page, and the first page filtered to "not reviewed yet".

``--explain`` prints the first page's query plan (EXPLAIN ANALYZE) first.

Prints the median and the 95th percentile in ms and their ratio to the target.

    .venv/bin/python bench/worklist_render.py [--patients 1000] [--days 28] [--runs 50]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from fhir_contract.observation import build_observation
from fhir_contract.readings import Component, Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.alerts.admission_risk import record_admission_risk
from gateway.alerts.lifecycle import Trigger, record_trigger
from gateway.alerts.risk_assessment import news2_risk_assessment
from gateway.api.app import create_app
from gateway.api.auth import User, create_user
from gateway.settings import GatewaySettings
from gateway.store import worklist
from gateway.store.embedded import EmbeddedPostgres
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.migrate import migrate
from gateway.store.repository import DeliveredObservation, Municipality, Patient, insert_observation_batch
from gateway.store.reviews import record_review, week_start
from gateway.store.scoring import NewScore, attach_score, record_score
from models.news2 import Measured, VitalSigns, score_news2

TARGET_MS = 300.0
MUNICIPALITY = "0101"
NURSE = User("bench-nurse", MUNICIPALITY, "nurse")
PASSWORD = "bench password"
MODEL = "admission-risk-1.0"
CONDITIONS = ("heart-failure", "copd", "diabetes", "frailty")
REASONS = ("Weight up 2.1 kg in 3 days", "SpO2 3 points below her usual 94 %", "Missed 3 of the last 7 days")
_BATCH = 5_000


def _reading(kind: str, value: float, unit: str, patient: int, device: str, at: datetime) -> dict[str, Any]:
    return build_observation(
        Reading(kind, Quantity(Decimal(str(value)), unit)),
        patient_id=f"p{patient}",
        device_id=f"{device}{patient}",
        hub_id=f"hub{patient}",
        effective=at,
    )


def _bp(systolic: int, patient: int, at: datetime) -> dict[str, Any]:
    reading = Reading(
        "blood-pressure",
        components=(
            Component("systolic", Quantity(Decimal(systolic), "mm[Hg]")),
            Component("diastolic", Quantity(Decimal(systolic - 45), "mm[Hg]")),
        ),
    )
    return build_observation(
        reading, patient_id=f"p{patient}", device_id=f"BPC{patient}", hub_id=f"hub{patient}", effective=at
    )


def _days(now: datetime, days: int) -> Iterator[tuple[int, datetime]]:
    for day in range(days, 0, -1):
        yield day, (now - timedelta(days=day)).replace(hour=7, minute=30)


def seed(conn: psycopg.Connection[Any], patients: int, days: int, now: datetime) -> dict[str, int]:
    """Enrol and fill the world; counts of what was stored."""
    rng = random.Random(17)
    homes = [
        Home(
            Patient(
                MUNICIPALITY,
                f"p{n}",
                f"Patient {n:04d}",
                conditions=(CONDITIONS[n % 4],),
                synthetic=True,
                phone=f"+45 20 {n // 100:02d} {n % 100:02d} 00",
            ),
            f"hub{n}",
            (
                HomeDevice(f"BPC{n}", "blood-pressure-cuff"),
                HomeDevice(f"OXI{n}", "pulse-oximeter"),
                HomeDevice(f"SCL{n}", "scale"),
            ),
        )
        for n in range(patients)
    ]
    enroll_homes(conn, [Municipality(MUNICIPALITY, "Bench")], homes)
    create_user(conn, NURSE.username, MUNICIPALITY, "nurse", PASSWORD)
    stored = {"observations": 0, "news2": 0, "risk": 0, "alerts": 0, "reviews": 0}
    pending: list[DeliveredObservation] = []

    def flush() -> None:
        with conn.transaction():
            stored["observations"] += insert_observation_batch(conn, pending).inserted
        pending.clear()

    for n in range(patients):
        usual_spo2, usual_pulse, usual_sys = rng.randint(90, 98), rng.randint(60, 95), rng.randint(105, 160)
        silent_from = days - rng.randint(2, 4) if n % 10 == 0 else 0  # one home in ten stops sending
        with conn.transaction():
            for day, morning in _days(now, days):
                if day <= silent_from:
                    continue
                spo2, pulse = usual_spo2 + rng.randint(-2, 1), usual_pulse + rng.randint(-5, 15)
                systolic, weight = usual_sys + rng.randint(-10, 10), 70 + n % 30 + rng.random()
                for resource in (
                    _bp(systolic, n, morning),
                    _reading("pulse-rate-cuff", pulse, "/min", n, "BPC", morning),
                    _reading("spo2", spo2, "%", n, "OXI", morning + timedelta(minutes=2)),
                    _reading(
                        "pulse-rate-oximeter", pulse + 1, "/min", n, "OXI", morning + timedelta(minutes=2)
                    ),
                    _reading("body-weight", round(weight, 1), "kg", n, "SCL", morning + timedelta(minutes=5)),
                ):
                    pending.append(
                        DeliveredObservation(MUNICIPALITY, f"hub{n}", validate_observation(resource))
                    )
                for at in (morning + timedelta(minutes=5), morning + timedelta(hours=11)):
                    vitals = VitalSigns(
                        spo2=Measured(spo2, morning),
                        pulse=Measured(pulse, morning),
                        systolic_bp=Measured(systolic, morning),
                    )
                    result = score_news2(vitals, at)
                    score_id = record_score(
                        conn,
                        NewScore(
                            MUNICIPALITY,
                            f"p{n}",
                            "news2",
                            result.total,
                            result.band,
                            at,
                            morning,
                            result.to_dict(),
                            news2_risk_assessment(
                                result, patient_id=f"p{n}", basis_identifiers=[], computed_at=at
                            ),
                        ),
                    )
                    stored["news2"] += 1
                probability = min(0.95, 0.02 + (n % 50) / 100 + rng.random() * 0.05 + (days - day) * 0.002)
                at = morning + timedelta(hours=1)
                record_admission_risk(conn, MUNICIPALITY, f"p{n}", probability, list(REASONS), MODEL, at)
                stored["risk"] += 1
            if n % 20 == 0:  # an open alert on the patient's newest NEWS2, as the scorer raises one
                trigger = Trigger(
                    MUNICIPALITY,
                    f"p{n}",
                    "news2",
                    "",
                    "medium",
                    f"NEWS2 {result.total}: bench alert",
                    now - timedelta(hours=2),
                )
                raised = record_trigger(conn, trigger, now=now - timedelta(hours=2))
                assert raised.alert_id is not None
                attach_score(conn, MUNICIPALITY, raised.alert_id, score_id)
                stored["alerts"] += 1
        if len(pending) >= _BATCH:
            flush()
    flush()
    for n in range(0, patients, 3):
        record_review(
            conn, NURSE, f"p{n}", "phone-call", "", "green", now=week_start(now) + timedelta(minutes=n)
        )
        stored["reviews"] += 1
    conn.execute("ANALYZE")
    return stored


def timed(runs: int, call: Callable[[], object]) -> list[float]:
    """Milliseconds of ``runs`` calls, after two warm-up calls."""
    for _ in range(2):
        call()
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def report(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    median = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(
        f"{label:<44} median {median:7.1f} ms  p95 {p95:7.1f} ms"
        f"  ({median / TARGET_MS:4.2f} / {p95 / TARGET_MS:4.2f} of the {TARGET_MS:.0f} ms target)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--explain", action="store_true", help="print the first page's query plan too")
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    server = EmbeddedPostgres()
    url = server.start()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
            started = time.perf_counter()
            stored = seed(conn, args.patients, args.days, now)
            print(
                f"seeded in {time.perf_counter() - started:.0f} s: "
                + ", ".join(f"{v:,} {k}" for k, v in stored.items())
            )
            week = week_start(now)
            if args.explain:
                print(worklist.explain_page(conn, NURSE, now=now, week_start=week))
            pages = (args.patients - 1) // worklist.PAGE_SIZE
            for label, wanted, offset in (
                ("store: first page", worklist.WorklistFilter(), 0),
                ("store: last page", worklist.WorklistFilter(), pages * worklist.PAGE_SIZE),
                ("store: first page, not reviewed yet", worklist.WorklistFilter(reviewed=False), 0),
            ):
                report(
                    label,
                    timed(
                        args.runs,
                        lambda w=wanted, o=offset: worklist.worklist_page(
                            conn, NURSE, now=now, week_start=week, wanted=w, offset=o
                        ),
                    ),
                )
        settings = GatewaySettings(
            environment="development",  # plain-HTTP cookies: the TestClient is no HTTPS client
            database_url=url,
            secret_key="bench-secret-of-the-worklist-benchmark",
            default_language="da",
        )
        with ConnectionPool(url, min_size=1, max_size=4, open=True) as pool:
            app = create_app(settings, pool)
            app.state.clock = lambda: now
            with TestClient(app) as client:
                form = client.get("/login").text
                token = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
                logged_in = client.post(
                    "/login",
                    data={"username": NURSE.username, "password": PASSWORD, "csrf": token},
                    follow_redirects=False,
                )
                assert logged_in.status_code == 303, logged_in.text

                def get(path: str) -> Callable[[], object]:
                    def call() -> object:
                        response = client.get(path)
                        assert response.status_code == 200, response.status_code
                        return response

                    return call

                report("page: GET / (first page)", timed(args.runs, get("/")))
                report("page: GET /?page=last", timed(args.runs, get(f"/?page={pages + 1}")))
                report("page: GET /?reviewed=no", timed(args.runs, get("/?reviewed=no")))
                report("page: GET /review (review mode)", timed(args.runs, get("/review")))
                size = len(client.get("/").content)
                print(f"first page: {size / 1024:.0f} kB of HTML for {worklist.PAGE_SIZE} cards")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
