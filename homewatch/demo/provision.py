"""Enrol the demo's municipalities, care teams, SYNTHETIC patients, hubs and devices, and its users.

What an administrator does in production before a hub is switched on: the gateway accepts readings only
from enrolled hubs, for their own patient and devices, and shows a patient only to the nurses of the
patient's care team and to the patient's GP (``gateway.store.access``).

The demo's world: København has two home-nursing teams, Nord (its default team, renamed) and Syd;
Frederiksberg has its default team. Each team has one nurse. One GP, whose practice is in København,
has patients in both municipalities (the first, third, ... patient of every team), and København has a
municipality administrator, who sees no patient's data. Every password is new and random on every run.

The cohort's deteriorating patients are the synthetic truth the demo is judged by; they are dealt out
over the teams first (``municipalities_for`` before the homes are made, ``provision`` after), so every
nurse has someone to find on her list. Phone numbers are made up and cannot ring anyone: Danish
subscriber numbers begin with 2-9, and every demo number is "+45 00 00 ..". Every user has an e-mail
address (``EMAILS``) on a ``.example`` domain, which no mail server delivers to (RFC 2606): the gateway
e-mails a patient's alert to the nurse of the patient's care team and to the GP, and the demo's local
SMTP sink receives them (``homewatch.demo.mail``). Every team's first deteriorating patient has the GP,
so she is told of a deterioration in each municipality.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dt_time
from typing import Any, Protocol

import psycopg

from fhir_contract.plan import PlanItem
from gateway.api.auth import create_user
from gateway.store import access
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.repository import Municipality, Patient
from gateway.store.users import create_care_team
from homewatch.demo.home import SimulatedHome
from models.cohort.profiles import DAILY_PLAN

#: Danish municipality codes and names used by the demo.
MUNICIPALITIES: tuple[Municipality, ...] = (
    Municipality("0101", "København"),
    Municipality("0147", "Frederiksberg"),
)
_NAMES = {m.id: m.name for m in MUNICIPALITIES}


@dataclass(frozen=True, slots=True)
class CareTeam:
    municipality_id: str
    id: str
    name: str
    nurse: str  # the username of the team's nurse


#: The demo's care teams, in the order patients are dealt out (the municipalities alternate). A team
#: whose id is its municipality's is that municipality's default team (migration 0008).
CARE_TEAMS: tuple[CareTeam, ...] = (
    CareTeam("0101", "0101", "Hjemmesygeplejen Nord", "nurse.nord"),
    CareTeam("0147", "0147", "Hjemmesygeplejen", "nurse.frederiksberg"),
    CareTeam("0101", "0101-syd", "Hjemmesygeplejen Syd", "nurse.syd"),
)
GP = "gp.hansen"
GP_MUNICIPALITY = "0101"  # where the GP's practice is; her patients live in either municipality
ADMIN = "admin.kobenhavn"
ADMIN_MUNICIPALITY = "0101"
DEMO_USERS: tuple[str, ...] = (*(team.nurse for team in CARE_TEAMS), GP, ADMIN)
#: Where alerts reach the demo's users: the municipality's staff on one domain, the GP's practice on another.
EMAILS: dict[str, str] = {
    **{team.nurse: f"{team.nurse}@kommune.example" for team in CARE_TEAMS},
    GP: f"{GP}@laege.example",
    ADMIN: f"{ADMIN}@kommune.example",
}


class _Patient(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def number(self) -> int: ...

    @property
    def deteriorating(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a patient belongs: their care team, their GP (or none) and their (made-up) phone number."""

    team: CareTeam | None  # None: the default team of a municipality the demo has no teams for
    gp: str | None
    phone: str


@dataclass(frozen=True, slots=True)
class Login:
    """A user of the demo, with the password printed for them and what they may see."""

    role: str  # gateway.store.access: nurse, gp, municipality_admin
    municipality_id: str
    municipality: str  # its name
    sees: str  # whose data, in words
    username: str
    password: str
    email: str | None = None  # where the gateway e-mails this user's alerts


def fake_phone(number: int) -> str:
    """A phone number for patient ``number`` that exists nowhere (no Danish number begins with 0)."""
    return f"+45 00 00 {number // 100 % 100:02d} {number % 100:02d}"


def _deal_order(patients: Sequence[_Patient]) -> list[_Patient]:
    """Deteriorating patients first, so dealing them round-robin gives every team its share."""
    return sorted(patients, key=lambda p: (not p.deteriorating, p.number))


def municipalities_for(patients: Sequence[_Patient]) -> list[str]:
    """Each patient's municipality (in the order given): the municipality of the team they are dealt to."""
    team_of = {p.id: CARE_TEAMS[i % len(CARE_TEAMS)] for i, p in enumerate(_deal_order(patients))}
    return [team_of[p.id].municipality_id for p in patients]


def place(homes: Sequence[SimulatedHome]) -> dict[str, Placement]:
    """Every home's patient (by id): dealt round-robin over the teams of their home's municipality,
    deteriorating patients first; every other patient of a team, the first included, has the GP."""
    placed: dict[str, Placement] = {}
    municipalities = dict.fromkeys(home.municipality for home in homes)
    for municipality_id in municipalities:
        own: list[CareTeam | None] = [t for t in CARE_TEAMS if t.municipality_id == municipality_id]
        teams = own or [None]
        patients = _deal_order([h.patient for h in homes if h.municipality == municipality_id])
        for i, patient in enumerate(patients):
            nth_in_team = i // len(teams)
            placed[patient.id] = Placement(
                teams[i % len(teams)], GP if nth_in_team % 2 == 0 else None, fake_phone(patient.number)
            )
    return placed


def _enrolment(home: SimulatedHome, placement: Placement) -> Home:
    """What the gateway enrols of a simulated home: its patient, hub and emulated devices."""
    p = home.patient
    patient = Patient(
        home.municipality,
        p.id,
        p.name,
        birth_date=p.birth_date,
        conditions=tuple(p.conditions),
        spo2_scale2=p.spo2_scale2,
        synthetic=p.synthetic,
        care_team_id=None if placement.team is None else placement.team.id,
        gp_username=placement.gp,
        phone=placement.phone,
    )
    devices = tuple(
        HomeDevice(device_id, kind, home.devices[kind].address) for kind, device_id in home.device_ids.items()
    )
    return Home(patient, home.hub_id, devices)


def _patients(homes: Sequence[SimulatedHome]) -> str:
    """How many patients, how many of them deteriorating (the synthetic truth)."""
    sick = sum(h.patient.deteriorating for h in homes)
    return f"{len(homes)} patient{'' if len(homes) == 1 else 's'} ({sick} deteriorating)"


def provision(conn: psycopg.Connection[Any], homes: Sequence[SimulatedHome]) -> list[Login]:
    """Enrol everything the homes report on, in the demo's care teams; create the demo's users with
    fresh random passwords (replacing those of an earlier run) and return their logins."""
    placed = place(homes)

    def user(role: str, municipality_id: str, username: str, sees: str, teams: tuple[str, ...] = ()) -> Login:
        password = secrets.token_urlsafe(9)
        email = EMAILS.get(username)
        create_user(conn, username, municipality_id, role, password, care_teams=teams or None, email=email)
        return Login(role, municipality_id, _NAMES[municipality_id], sees, username, password, email)

    by_team = {team: [h for h in homes if placed[h.patient.id].team == team] for team in CARE_TEAMS}
    gps = [h for h in homes if placed[h.patient.id].gp == GP]
    gp_places = " and ".join(_NAMES.get(m, m) for m in dict.fromkeys(h.municipality for h in gps)) or "-"
    with conn.transaction():
        # An earlier run's users (a kept --data-dir): their patients lose the GP until re-enrolled below.
        conn.execute("DELETE FROM users WHERE username = ANY(%s)", (list(DEMO_USERS),))
        enroll_homes(conn, MUNICIPALITIES, [])
        logins: list[Login] = []
        for team in CARE_TEAMS:
            create_care_team(conn, team.municipality_id, team.id, team.name)
            sees = f"{team.name}: {_patients(by_team[team])}"
            logins.append(user(access.NURSE, team.municipality_id, team.nurse, sees, (team.id,)))
        # The GP exists before the patients name her (patients.gp_username refers to users).
        sees = f"{_patients(gps)} in {gp_places}"
        logins.append(user(access.GP, GP_MUNICIPALITY, GP, sees))
        sees = "no patient data"
        logins.append(user(access.MUNICIPALITY_ADMIN, ADMIN_MUNICIPALITY, ADMIN, sees))
        enroll_homes(conn, [], [_enrolment(home, placed[home.patient.id]) for home in homes])
    return logins


# The cohort's daily sessions (models.cohort.profiles.DAILY_PLAN) as the plan's measurements.
_PLAN_MEASUREMENT = {
    "blood-pressure": "blood-pressure",
    "spo2": "spo2",
    "body-weight": "weight",
    "body-temperature": "temperature",
}
#: A reading up to this long after the session's time still counts: the cohort's habits and daily jitter
#: (up to 1 h and 1.5 h) put some readings well after it.
PLAN_GRACE = timedelta(hours=3)


def demo_plan() -> tuple[PlanItem, ...]:
    """The measurement plan of every demo patient: each session of the cohort's daily plan, at its time."""
    times: dict[str, list[dt_time]] = {}
    for session in DAILY_PLAN:
        hours, minutes = divmod(round(session.hour * 60), 60)
        for kind in session.kinds:
            times.setdefault(_PLAN_MEASUREMENT[kind], []).append(dt_time(hours, minutes))
    return tuple(PlanItem(m, tuple(sorted(t)), grace=PLAN_GRACE) for m, t in times.items())


def set_plans(conn: psycopg.Connection[Any], homes: Sequence[SimulatedHome], at: datetime) -> None:
    """Give every home's patient the demo's plan from ``at`` on (after the play: the history before it
    was measured without one, so the missing-measurement alert judges only what comes after)."""
    from gateway.administration.plans import set_plan

    plan = demo_plan()
    for home in homes:
        nurse = next(team.nurse for team in CARE_TEAMS if team.municipality_id == home.municipality)
        set_plan(conn, home.patient.id, plan, by=nurse, at=at, publisher=None, within=home.municipality)
