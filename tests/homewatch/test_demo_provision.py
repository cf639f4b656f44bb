"""The demo's world in the database: København's two care teams and Frederiksberg's default team, a
nurse per team who sees her team's patients (a deteriorating one among them), one GP with patients in
both municipalities, a municipality administrator who sees no patient, made-up phone numbers, and
fresh passwords on every run. Who sees whom is asked of the gateway's own rule
(``gateway.store.access``) on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import psycopg
import pytest

from gateway.api.auth import authenticate
from gateway.store.access import visible_patient_ids
from homewatch.demo.home import SimulatedHome
from homewatch.demo.provision import CARE_TEAMS, Login, municipalities_for, provision
from models.cohort.synthetic import SyntheticPatient, make_cohort


@dataclass(frozen=True, slots=True)
class _Device:
    address: str


@dataclass(frozen=True, slots=True)
class _Home:
    """What provisioning reads of a simulated home (no radio needed to enrol it)."""

    municipality: str
    hub_id: str
    patient: SyntheticPatient
    device_ids: dict[str, str]
    devices: dict[str, _Device]


def _homes(n: int) -> list[SimulatedHome]:
    patients = make_cohort(n, seed=7, days=30)
    homes = [
        _Home(
            m, f"hub-{p.number}", p, {"scale": f"dev-{p.number}"}, {"scale": _Device(f"00:00:{p.number:02x}")}
        )
        for p, m in zip(patients, municipalities_for(patients), strict=True)
    ]
    return cast(list[SimulatedHome], homes)


@pytest.fixture
def conn(database_url: str) -> Any:
    with psycopg.connect(database_url, autocommit=True) as c:
        yield c


def _login(logins: Sequence[Login], username: str) -> Login:
    return next(login for login in logins if login.username == username)


def _seen(conn: psycopg.Connection[Any], login: Login) -> set[str]:
    user = authenticate(conn, login.username, login.password)
    assert user is not None, f"{login.username} cannot log in with the printed password"
    return set(visible_patient_ids(conn, user))


def test_every_nurse_sees_her_own_team_with_a_deteriorating_patient_in_it(
    conn: psycopg.Connection[Any],
) -> None:
    homes = _homes(12)
    logins = provision(conn, homes)
    assert [login.role for login in logins] == ["nurse", "nurse", "nurse", "gp", "municipality_admin"]
    assert {login.municipality for login in logins if login.role == "nurse"} == {"København", "Frederiksberg"}
    deteriorating = {h.patient.id for h in homes if h.patient.deteriorating}
    teams_seen: list[set[str]] = []
    for team in CARE_TEAMS:
        seen = _seen(conn, _login(logins, team.nurse))
        in_team = {
            row[0] for row in conn.execute("SELECT id FROM patients WHERE care_team_id = %s", (team.id,))
        }
        assert seen == in_team and len(seen) == 4
        assert seen & deteriorating, f"{team.name} has no deteriorating patient to find"
        assert f"{team.name}: 4 patients (1 deteriorating)" == _login(logins, team.nurse).sees
        teams_seen.append(seen)
    # The teams split the patients: nobody is in two, nobody is left out.
    assert sorted(p for seen in teams_seen for p in seen) == sorted(h.patient.id for h in homes)
    assert len(conn.execute("SELECT 1 FROM care_teams WHERE municipality_id = '0101'").fetchall()) == 2


def test_the_gp_sees_some_patients_in_both_municipalities_and_the_administrator_none(
    conn: psycopg.Connection[Any],
) -> None:
    homes = _homes(12)
    logins = provision(conn, homes)
    gp = _seen(conn, _login(logins, "gp.hansen"))
    municipality_of = {h.patient.id: h.municipality for h in homes}
    assert 0 < len(gp) < len(homes)
    assert {municipality_of[p] for p in gp} == {"0101", "0147"}
    assert _seen(conn, _login(logins, "admin.kobenhavn")) == set()


def test_phone_numbers_are_made_up_and_each_patient_has_their_own(conn: psycopg.Connection[Any]) -> None:
    provision(conn, _homes(12))
    phones = [row[0] for row in conn.execute("SELECT phone FROM patients ORDER BY id")]
    assert len(phones) == 12 and len(set(phones)) == 12
    # Danish subscriber numbers begin with 2-9: "+45 00 .." rings nobody.
    assert all(phone.startswith("+45 00 00 ") for phone in phones)


def test_a_second_run_gets_new_passwords_and_the_old_ones_stop_working(conn: psycopg.Connection[Any]) -> None:
    homes = _homes(6)
    first = provision(conn, homes)
    second = provision(conn, homes)  # a kept --data-dir: the same database again
    for old, new in zip(first, second, strict=True):
        assert old.username == new.username and old.password != new.password
        assert authenticate(conn, new.username, new.password) is not None
        assert authenticate(conn, old.username, old.password) is None
    assert _seen(conn, _login(second, "gp.hansen"))  # the GP is her patients' GP again
