"""A care team's weeks of home readings and daily 30-day risks, for the weekly review's browser tests.

What the nurses of ``world.py`` have after six weeks of home monitoring, made the way the product makes
it: homes enrolled with ``gateway.store.enrolment.enroll_homes``, users with ``gateway.api.auth``,
readings as FHIR Observations built by the contract's builder, checked by ``validate_observation`` and
stored by ``insert_observations`` (ingest's storage), NEWS2 and the disease rules scored by the real
scorer after each day's readings of the last week, and the 30-day admission risk scored once a day for
the last four weeks by the shipped model (``score_admission_risk``, what the daily schedule runs), so
the worklist's ranking, "change since last week" and trend line are the model's own. Earlier reviews
are recorded with ``record_review``. Only ``users.full_name`` is set with plain SQL (no store function
writes it yet).

København, team Nord (nurse anna): Karen Holm deteriorates over the last three days (SpO2 down, pulse
and temperature up, weight up: NEWS2 5 with a red SpO2, an open alert); Ole Madsen gains 3 kg in a week (heart
failure); Inge Sørensen stopped measuring three days ago (data lagging, a phone number to call); Poul
Andersen and Birthe Larsen are steady; Erik Poulsen was enrolled today (no 30-day risk yet). Team Syd
(nurse bo): Jens Nielsen. Frederiksberg (nurse carl): Frede Berg. GP dr_lund is the GP of Karen, Jens
and Frede (two municipalities); lis administers København.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from browser.world import FREDERIKSBERG, KOBENHAVN, NORD, PASSWORD, SYD, Person
from fhir_contract.observation import build_observation
from fhir_contract.readings import Component, Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.alerts.admission_risk import score_admission_risk
from gateway.alerts.scorer import score_patient
from gateway.api.auth import User, create_user
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.repository import Municipality, Patient, insert_observations
from gateway.store.reviews import record_review
from gateway.store.users import create_care_team
from models.admission_risk import SHIPPED_MODEL, load

Conn = psycopg.Connection[Any]
HISTORY_DAYS = 42  # days of readings before now
RISK_DAYS = 28  # days with a daily 30-day risk (the worklist's trend line covers 28)
NEWS2_DAYS = 7  # days whose readings are scored as they arrive (older ones were scored long ago)
# The device kinds the worklist expects daily readings from (gateway.store.worklist.EXPECTED_BY_DEVICE).
OXIMETER, CUFF, THERMOMETER, SCALE = "pulse-oximeter", "blood-pressure-cuff", "thermometer", "scale"
# A patient's daily round: what each device sends (reading kinds) and its unit.
_SENDS: Mapping[str, tuple[str, ...]] = {
    OXIMETER: ("spo2", "pulse-rate-oximeter"),
    CUFF: ("blood-pressure", "pulse-rate-cuff"),
    THERMOMETER: ("body-temperature",),
    SCALE: ("body-weight",),
}
_UNIT = {
    "spo2": "%",
    "pulse-rate-oximeter": "/min",
    "pulse-rate-cuff": "/min",
    "body-temperature": "Cel",
    "body-weight": "kg",
}


@dataclass(frozen=True, slots=True)
class Vitals:
    """One day's values: SpO2 %, pulse /min, blood pressure mmHg, temperature °C, weight kg."""

    spo2: float
    pulse: float
    systolic: float
    diastolic: float
    temperature: float
    weight: float


@dataclass(frozen=True, slots=True)
class Seeded:
    """A patient of the world: who, where, which devices, and how their days went."""

    patient: Patient
    devices: tuple[str, ...]
    usual: Vitals
    # Days back (0: the newest round) -> that day's values, where they differ from the usual.
    days: Mapping[int, Vitals] = field(default_factory=dict)
    hours_before: float = 3.0  # the newest round was taken this many hours before now
    first_day: int = HISTORY_DAYS  # the oldest round, in days back
    last_day: int = 0  # the newest round, in days back (3: measuring stopped three days ago)

    @property
    def id(self) -> str:
        return self.patient.id


@dataclass(frozen=True, slots=True)
class ReviewWorld:
    """What ``seed_review_world`` made, as of ``now``."""

    now: datetime
    nurse: Person  # anna: team Nord, København
    other_team_nurse: Person  # bo: team Syd, København
    other_municipality_nurse: Person  # carl: Frederiksberg
    gp: Person  # dr_lund: GP of Karen (Nord), Jens (Syd) and Frede (Frederiksberg)
    admin: Person  # lis: municipality administrator of København
    patients: Mapping[str, Patient]  # by id
    risks: Mapping[str, float]  # the newest 30-day risk of each patient that has one
    week_before: Mapping[str, float]  # the 30-day risk of the run a week before the newest
    reviewed: Mapping[str, str]  # patient id -> the public id of the review anna recorded last week
    password: str = PASSWORD

    def name(self, patient_id: str) -> str:
        return self.patients[patient_id].name

    def ranked(self, patient_ids: Iterable[str]) -> list[str]:
        """``patient_ids`` in worklist order: by the newest 30-day risk, highest first; those without
        one after them (this world gives only one patient no risk)."""
        return sorted(patient_ids, key=lambda pid: -self.risks.get(pid, -1.0))

    def team(self, team_id: str) -> list[str]:
        """The care team's patients in worklist order."""
        return self.ranked(p.id for p in self.patients.values() if p.care_team_id == team_id)


def _person(conn: Conn, municipality: str, person: Person, teams: tuple[str, ...] | None = None) -> Person:
    create_user(conn, person.username, municipality, person.role, PASSWORD, care_teams=teams)
    conn.execute("UPDATE users SET full_name = %s WHERE username = %s", (person.full_name, person.username))
    return person


def _jitter(rng: random.Random, usual: Vitals) -> Vitals:
    """A steady day: the usual values with the small day-to-day scatter of home measurements."""
    return Vitals(
        spo2=round(usual.spo2 + rng.choice((-1, 0, 0, 1))) if usual.spo2 < 99 else 99,
        pulse=round(usual.pulse + rng.gauss(0, 3)),
        systolic=round(usual.systolic + rng.gauss(0, 5)),
        diastolic=round(usual.diastolic + rng.gauss(0, 3)),
        temperature=round(usual.temperature + rng.gauss(0, 0.15), 1),
        weight=round(usual.weight + rng.gauss(0, 0.2), 1),
    )


def _readings(kind: str, v: Vitals) -> Reading:
    if kind == "blood-pressure":
        systolic, diastolic = (Quantity(Decimal(str(x)), "mm[Hg]") for x in (v.systolic, v.diastolic))
        return Reading(kind, components=(Component("systolic", systolic), Component("diastolic", diastolic)))
    value = {
        "spo2": min(v.spo2, 100),
        "pulse-rate-oximeter": v.pulse,
        "pulse-rate-cuff": v.pulse,
        "body-temperature": v.temperature,
        "body-weight": v.weight,
    }[kind]
    return Reading(kind, Quantity(Decimal(str(value)), _UNIT[kind]))


def _round(conn: Conn, seeded: Seeded, at: datetime, vitals: Vitals, now: datetime) -> None:
    """Store one round of the patient's devices, taken at ``at``, as ingest stores it."""
    patient = seeded.patient
    rows = []
    for minute, device in enumerate(seeded.devices):
        for kind in _SENDS[device]:
            resource = build_observation(
                _readings(kind, vitals),
                patient_id=patient.id,
                device_id=f"{device}-{patient.id}",
                hub_id=f"hub-{patient.id}",
                effective=at + timedelta(minutes=2 * minute),
            )
            rows.append(validate_observation(resource, now=now))
    insert_observations(conn, patient.municipality_id, f"hub-{patient.id}", rows)


def _patients(gp: str) -> list[Seeded]:
    def nord(pid: str, name: str, born: date, conditions: tuple[str, ...], **kw: Any) -> Patient:
        return Patient(KOBENHAVN, pid, name, born, conditions, care_team_id=NORD, synthetic=True, **kw)

    karen_usual = Vitals(95, 80, 132, 82, 36.8, 71.0)
    ole_usual = Vitals(96, 72, 134, 84, 36.7, 84.0)
    return [
        Seeded(
            nord(
                "p-karen",
                "Karen Holm",
                date(1941, 3, 2),
                ("copd", "heart-failure"),
                gp_username=gp,
                phone="+45 00 00 01 01",
            ),
            (OXIMETER, CUFF, THERMOMETER, SCALE),
            karen_usual,
            days={
                2: Vitals(94, 86, 128, 80, 37.1, 71.4),
                1: Vitals(93, 92, 122, 76, 37.4, 71.9),
                0: Vitals(91, 98, 112, 70, 38.1, 72.4),
            },
            hours_before=2,
        ),
        Seeded(
            nord("p-ole", "Ole Madsen", date(1938, 11, 17), ("heart-failure",), phone="+45 00 00 01 02"),
            (OXIMETER, CUFF, SCALE),
            ole_usual,
            # 3 kg in two weeks: the disease rule's weight gain. Slow enough that the model ranks him below
            # Karen whichever day (UTC) his newest round falls on, at any hour the tests run.
            days={
                d: Vitals(96, 74 + max(0, 6 - d), 136, 86, 36.7, round(84.0 + 0.225 * (14 - d), 1))
                for d in range(14)
            },
            hours_before=5,
        ),
        Seeded(
            nord("p-inge", "Inge Sørensen", date(1950, 6, 24), ("diabetes",), phone="+45 00 00 01 03"),
            (OXIMETER, CUFF),
            Vitals(97, 70, 142, 88, 36.8, 68.0),
            hours_before=2,
            last_day=3,  # stopped measuring three days ago
        ),
        Seeded(
            nord("p-poul", "Poul Andersen", date(1945, 1, 9), ("copd",), phone="+45 00 00 01 04"),
            (OXIMETER, CUFF, THERMOMETER),
            Vitals(95, 84, 128, 78, 36.9, 77.0),
            hours_before=4,
        ),
        Seeded(
            nord("p-birthe", "Birthe Larsen", date(1952, 9, 30), ("heart-failure",), phone="+45 00 00 01 05"),
            (OXIMETER, CUFF, SCALE),
            Vitals(97, 68, 124, 76, 36.6, 66.0),
            hours_before=6,
        ),
        Seeded(
            nord("p-erik", "Erik Poulsen", date(1949, 4, 12), ()),
            (OXIMETER, CUFF),
            Vitals(97, 72, 148, 90, 36.8, 80.0),
            hours_before=0.6,  # enrolled today, after this morning's risk run: no 30-day risk yet
            first_day=0,
        ),
        Seeded(
            Patient(
                KOBENHAVN,
                "p-jens",
                "Jens Nielsen",
                date(1944, 8, 3),
                ("copd",),
                spo2_scale2=True,
                synthetic=True,
                care_team_id=SYD,
                gp_username=gp,
                phone="+45 00 00 01 06",
            ),
            (OXIMETER, CUFF, THERMOMETER),
            Vitals(89, 88, 142, 88, 37.0, 74.0),
            hours_before=1,
        ),
        Seeded(
            Patient(
                FREDERIKSBERG,
                "p-frede",
                "Frede Berg",
                date(1940, 2, 14),
                ("heart-failure",),
                synthetic=True,
                gp_username=gp,
                phone="+45 00 00 01 07",
            ),
            (OXIMETER, CUFF, SCALE),
            Vitals(94, 76, 150, 95, 36.8, 90.0),
            hours_before=3,
        ),
    ]


def seed_review_world(conn: Conn, now: datetime) -> ReviewWorld:
    """Enrol the world and its six weeks as of ``now``; score as the gateway would have."""
    municipalities = [Municipality(KOBENHAVN, "København"), Municipality(FREDERIKSBERG, "Frederiksberg")]
    enroll_homes(conn, municipalities, [])
    create_care_team(conn, KOBENHAVN, NORD, "Hjemmesygeplejen Nord")
    create_care_team(conn, KOBENHAVN, SYD, "Hjemmesygeplejen Syd")
    nurse = _person(conn, KOBENHAVN, Person("anna", "Anna Jensen", "nurse"), (NORD,))
    other_team = _person(conn, KOBENHAVN, Person("bo", "Bo Hansen", "nurse"), (SYD,))
    other_municipality = _person(conn, FREDERIKSBERG, Person("carl", "Carl Petersen", "nurse"))
    gp = _person(conn, KOBENHAVN, Person("dr_lund", "Mette Lund", "gp"))
    admin = _person(conn, KOBENHAVN, Person("lis", "Lis Holm", "municipality_admin"))

    seeded = _patients(gp.username)
    enroll_homes(
        conn,
        [],
        [
            Home(s.patient, f"hub-{s.id}", tuple(HomeDevice(f"{kind}-{s.id}", kind) for kind in s.devices))
            for s in seeded
        ],
    )
    rng = random.Random(17)

    def taken(s: Seeded, day: int) -> datetime:
        return now - timedelta(days=day, hours=s.hours_before)

    # Readings day by day, oldest first, as the hubs sent them; the last week scored as it arrived.
    for day in range(HISTORY_DAYS, -1, -1):
        for s in seeded:
            if s.last_day <= day <= s.first_day:
                vitals = s.days.get(day) or _jitter(rng, s.usual)
                _round(conn, s, taken(s, day), vitals, now)
                if day < NEWS2_DAYS:  # the scorer runs minutes after the round arrives
                    scored_at = taken(s, day) + timedelta(minutes=9)
                    score_patient(conn, s.patient.municipality_id, s.id, now=scored_at)

    # The 30-day risk, once a day: the last run an hour ago (before Erik's first readings).
    model = load(SHIPPED_MODEL)
    risks: dict[int, dict[str, float]] = {0: {}, 7: {}}
    for day in range(RISK_DAYS - 1, -1, -1):
        run = now - timedelta(days=day, hours=1)
        for s in seeded:
            risk = score_admission_risk(conn, model, s.patient.municipality_id, s.id, now=run)
            if risk is not None and day in risks:
                risks[day][s.id] = risk

    # Last week's reviews: anna called Ole and looked at Karen and Birthe.
    anna = User(nurse.username, KOBENHAVN, nurse.role)
    reviewed = {}
    for pid, outcome, note, triage, days_ago in (
        ("p-ole", "phone-call", "Vægten stiger lidt; aftalt daglig vejning og opfølgning.", "yellow", 9),
        ("p-karen", "no-action", "", "green", 8),
        ("p-birthe", "no-action", "", "green", 8),
    ):
        review = record_review(
            conn, anna, pid, outcome, note, triage, now=now - timedelta(days=days_ago), client="10.20.0.7"
        )
        reviewed[pid] = review.public_id

    return ReviewWorld(
        now,
        nurse,
        other_team,
        other_municipality,
        gp,
        admin,
        {s.id: s.patient for s in seeded},
        risks[0],
        risks[7],
        reviewed,
    )
