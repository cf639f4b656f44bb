"""Issue 17: the authorisation matrix. Every route of the app (UI and API) x every kind of caller (nurse,
GP, municipality administrator, system administrator, a hub's token, nobody) x every patient relation
(the nurse's own care team, another team of her municipality, another municipality; the GP's own patient
in her municipality and in another one), with the status each must get, and no data of a patient outside
the caller's assignment in any answer.

``MATRIX`` classifies each route by what it is (a clinical page, a clinical form, a FHIR read, ...); the
kind decides the expected status of every caller and patient. A route the app has and the table lacks
fails ``test_every_route_of_the_app_is_classified``, naming it: adding a route is one line here.
Path parameters are filled from the target patient by name (``PATH_VALUES``).

The world (``matrix_world``): municipality 0101 with care teams Nord and Syd, municipality 0147 with its
default team; a nurse of Nord, a GP of 0101 whose patients live in both municipalities, one
administrator of each kind, a home-care and a hospital system account of 0101 (issue 19); per patient
a hub, a device, an Observation, a NEWS2 score (RiskAssessment), an open alert and a review
(ClinicalImpression).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest
import seed
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from fhir_contract.contact import build_contact_request, validate_contact_request
from fhir_contract.observation import build_bundle, build_observation
from fhir_contract.questionnaire import build_response, current, validate_response
from fhir_contract.readings import Quantity, Reading
from gateway.api.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    User,
    cookie_name,
    create_user,
    csrf_token,
    issue_token,
    login_csrf_token,
    mint_token,
)
from gateway.api.fhir_model import observation_id
from gateway.settings import GatewaySettings
from gateway.store.alert_fhir_reads import communication_id
from gateway.store.contact_requests import DeliveredRequest, insert_requests
from gateway.store.questionnaires import DeliveredResponse, insert_responses
from gateway.store.reviews import record_review

# --- who asks --------------------------------------------------------------------------------------

NURSE, GP, MUNICIPALITY_ADMIN, SYSTEM_ADMIN, HUB, ANONYMOUS = (
    "nurse",
    "gp",
    "municipality_admin",
    "system_admin",
    "hub",
    "anonymous",
)
# System accounts (issue 19): post FiNDR's inputs to /fhir, read nothing, no page (403 with their token).
HOMECARE_SYSTEM, HOSPITAL_SYSTEM = "homecare_system", "hospital_system"
SYSTEMS = frozenset({HOMECARE_SYSTEM, HOSPITAL_SYSTEM})
CALLERS = (NURSE, GP, MUNICIPALITY_ADMIN, SYSTEM_ADMIN, HUB, ANONYMOUS, HOMECARE_SYSTEM, HOSPITAL_SYSTEM)
CLINICAL = frozenset({NURSE, GP})
ADMINS = frozenset({MUNICIPALITY_ADMIN, SYSTEM_ADMIN})
PEOPLE = CLINICAL | ADMINS

OWN, OTHER = "0101", "0147"
USERS: Mapping[str, User] = {
    NURSE: User("nurse-nord", OWN, NURSE),
    GP: User("gp-hansen", OWN, GP),
    MUNICIPALITY_ADMIN: User("admin-kbh", OWN, MUNICIPALITY_ADMIN),
    SYSTEM_ADMIN: User("ops", OWN, SYSTEM_ADMIN),
}
SYSTEM_USERS: Mapping[str, User] = {
    HOMECARE_SYSTEM: User("ehr-kbh", OWN, HOMECARE_SYSTEM),
    HOSPITAL_SYSTEM: User("sp-kbh", OWN, HOSPITAL_SYSTEM),
}

# --- about whom ------------------------------------------------------------------------------------

OWN_TEAM = "pt-nord"  # the nurse's team; the GP's patient in her own municipality
OTHER_TEAM = "pt-syd"  # the nurse's municipality, another team; not the GP's
GP_ELSEWHERE = "pt-frb"  # another municipality; the GP's patient there
OTHER_MUNICIPALITY = "pt-valby"  # another municipality; nobody's here


@dataclass(frozen=True, slots=True)
class Patient:
    municipality: str
    team: str
    name: str
    gp: str | None


PATIENTS: Mapping[str, Patient] = {
    OWN_TEAM: Patient(OWN, "0101-nord", "Astrid Nordlys", USERS[GP].username),
    OTHER_TEAM: Patient(OWN, "0101-syd", "Bent Sydhavn", None),
    GP_ELSEWHERE: Patient(OTHER, OTHER, "Cecilie Frederiks", USERS[GP].username),
    OTHER_MUNICIPALITY: Patient(OTHER, OTHER, "Dorte Valbyparken", None),
}
# Whose data each caller may see (gateway.store.access): the rule the matrix holds every route to.
VISIBLE: Mapping[str, frozenset[str]] = {
    NURSE: frozenset({OWN_TEAM}),
    GP: frozenset({OWN_TEAM, GP_ELSEWHERE}),
    # A hub posts for its own patient (hub-pt-nord) and reads nothing.
    HUB: frozenset(),
}
HUB_ID = f"hub-{OWN_TEAM}"


def sees(caller: str, patient: str) -> bool:
    return patient in VISIBLE.get(caller, frozenset())


# --- the world ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MatrixWorld:
    """Per patient: the ids its routes take."""

    alerts: Mapping[str, int]
    observations: Mapping[str, str]
    devices: Mapping[str, str]
    assessments: Mapping[str, str]
    impressions: Mapping[str, str]
    alert_public_ids: Mapping[str, str] = field(default_factory=dict)  # the FHIR id of Flag and Task
    # A "contact my nurse" request (its row id; issue 21) and an answered questionnaire (its FHIR id).
    contact_requests: Mapping[str, int] = field(default_factory=dict)
    responses: Mapping[str, str] = field(default_factory=dict)


def _seed(conn: psycopg.Connection[Any], now: datetime) -> MatrixWorld:
    seed.municipality(conn, OWN, "København")
    seed.municipality(conn, OTHER, "Frederiksberg")
    conn.execute(
        "INSERT INTO care_teams (municipality_id, id, name) VALUES (%s, '0101-nord', 'Team Nord'),"
        " (%s, '0101-syd', 'Team Syd')",
        (OWN, OWN),
    )
    for user in USERS.values():
        teams = ("0101-nord",) if user.role == NURSE else None
        create_user(conn, user.username, user.municipality_id, user.role, seed.PASSWORD, teams)
    for system in SYSTEM_USERS.values():
        create_user(conn, system.username, system.municipality_id, system.role, None)
    # The nurses who review the patients nobody above may see.
    create_user(conn, "nurse-syd", OWN, NURSE, seed.PASSWORD, ("0101-syd",))
    create_user(conn, "nurse-frb", OTHER, NURSE, seed.PASSWORD)
    reviewers = {OWN_TEAM: "nurse-nord", OTHER_TEAM: "nurse-syd"}
    alerts, observations, devices, assessments, impressions = {}, {}, {}, {}, {}
    alert_public_ids: dict[str, str] = {}
    contact_requests: dict[str, int] = {}
    responses: dict[str, str] = {}
    for pid, p in PATIENTS.items():
        seed.patient(conn, p.municipality, pid, p.name, ("copd",))
        conn.execute(
            "UPDATE patients SET care_team_id = %s, gp_username = %s WHERE id = %s", (p.team, p.gp, pid)
        )
        devices[pid] = seed.device(conn, p.municipality, pid, f"dev-{pid}-spo2", "pulse-oximeter")
        identifier = seed.observation(conn, p.municipality, pid, "spo2", now - timedelta(hours=2), 91)
        observations[pid] = observation_id(p.municipality, devices[pid], identifier)
        score_id = seed.score(conn, p.municipality, pid, 7, "high", now - timedelta(hours=1))
        alerts[pid] = seed.alert(conn, p.municipality, pid, score_id, now - timedelta(hours=1))
        found = conn.execute("SELECT public_id::text FROM alerts WHERE id = %s", (alerts[pid],)).fetchone()
        assert found is not None
        alert_public_ids[pid] = found[0]
        row = conn.execute("SELECT public_id::text FROM scores WHERE id = %s", (score_id,)).fetchone()
        assert row is not None
        assessments[pid] = row[0]
        reviewer = User(reviewers.get(pid, "nurse-frb"), p.municipality, NURSE)
        review = record_review(conn, reviewer, pid, "phone-call", "", "yellow", client="seed")
        impressions[pid] = review.public_id
        contact_requests[pid], responses[pid] = _patient_reports(conn, p.municipality, pid, now)
    return MatrixWorld(
        alerts, observations, devices, assessments, impressions, alert_public_ids, contact_requests, responses
    )


def _patient_reports(
    conn: psycopg.Connection[Any], municipality: str, pid: str, now: datetime
) -> tuple[int, str]:
    """Store a contact request and a questionnaire response of the patient as ingest would; their ids."""
    hub = f"hub-{pid}"
    asked = now - timedelta(minutes=30)
    task = build_contact_request(patient_id=pid, hub_id=hub, authored=asked, reason="question")
    insert_requests(conn, [DeliveredRequest(municipality, hub, validate_contact_request(task))])
    questionnaire = current("copd-daily")
    answers = {q.link_id: q.options[0].code for q in questionnaire.questions}
    response = build_response(questionnaire, answers, patient_id=pid, hub_id=hub, authored=asked)
    insert_responses(conn, [DeliveredResponse(municipality, hub, validate_response(response))])
    request_row = conn.execute("SELECT id FROM contact_requests WHERE patient_id = %s", (pid,)).fetchone()
    response_row = conn.execute(
        "SELECT public_id::text FROM questionnaire_responses WHERE patient_id = %s", (pid,)
    ).fetchone()
    assert request_row is not None and response_row is not None
    return int(request_row[0]), str(response_row[0])


@pytest.fixture
def matrix_world(database_url: str) -> MatrixWorld:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return _seed(conn, datetime.now(UTC))


# Path parameters by name -> their value for a patient. A route with a parameter missing here fails,
# naming it.
PATH_VALUES: Mapping[str, Callable[[MatrixWorld, str], str]] = {
    "patient_id": lambda world, pid: pid,
    "alert_id": lambda world, pid: str(world.alerts[pid]),
    "observation_id": lambda world, pid: world.observations[pid],
    "device_id": lambda world, pid: world.devices[pid],
    "assessment_id": lambda world, pid: world.assessments[pid],
    "impression_id": lambda world, pid: world.impressions[pid],
    "flag_id": lambda world, pid: world.alert_public_ids[pid],
    "task_id": lambda world, pid: world.alert_public_ids[pid],
    # Every patient but pt-syd and pt-valby has a GP, so a Communication: theirs is a 404 like any other.
    "communication_id": lambda world, pid: communication_id(world.alert_public_ids[pid]),
    "request_id": lambda world, pid: str(world.contact_requests[pid]),
    "response_id": lambda world, pid: world.responses[pid],
}


# --- what a route is ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """One request and what it must answer."""

    caller: str
    patient: str | None
    method: str
    url: str
    expected: int
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, str] | None = None
    content: bytes | None = None
    check: Callable[[Response], str | None] | None = None  # a further check: None when it holds
    # The markers of patients outside the assignment that the answer must not hold (names, ids).
    forbidden: tuple[str, ...] = ()


class Kind:
    """What a route is; it says what each caller gets for each patient."""

    def calls(self, ctx: Context, method: str, path: str) -> Iterator[Call]:
        raise NotImplementedError


@dataclass(frozen=True)
class Context:
    settings: GatewaySettings
    world: MatrixWorld

    def token(self, caller: str, scopes: tuple[str, ...] | None = None) -> str | None:
        if caller == ANONYMOUS:
            return None
        if caller == HUB:
            return mint_token(self.settings, role="hub", municipality_id=OWN, subject=HUB_ID, scopes=scopes)
        if caller in SYSTEMS:  # as `homewatch gateway token` makes it
            system = SYSTEM_USERS[caller]
            return mint_token(
                self.settings, role=system.role, municipality_id=OWN, subject=system.username, scopes=scopes
            )
        user = USERS[caller]
        if scopes is not None:
            return mint_token(
                self.settings,
                role=user.role,
                municipality_id=user.municipality_id,
                subject=user.username,
                scopes=scopes,
            )
        return issue_token(self.settings, user)

    def url(self, path: str, patient: str | None) -> str:
        def value(match: re.Match[str]) -> str:
            name = match[1]
            assert name in PATH_VALUES, (
                f"{path}: no value for path parameter {{{name}}}: add it to PATH_VALUES"
            )
            assert patient is not None
            return PATH_VALUES[name](self.world, patient)

        return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)  # {alert_id:int}: a Starlette convertor


def _targets(path: str) -> tuple[str | None, ...]:
    return tuple(PATIENTS) if "{" in path else (None,)


def _forbidden(caller: str, names_only: bool = False) -> tuple[str, ...]:
    hidden = [pid for pid in PATIENTS if not sees(caller, pid)]
    markers = [PATIENTS[pid].name for pid in hidden]
    return tuple(markers if names_only else markers + hidden)


def _ui(ctx: Context, caller: str) -> dict[str, str]:
    token = ctx.token(caller)
    return {} if token is None else {SESSION_COOKIE: token}


def _api(ctx: Context, caller: str, scopes: tuple[str, ...] | None = None) -> dict[str, str]:
    token = ctx.token(caller, scopes)
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def _ui_status(caller: str, may: bool, ok: int, nurse_only: bool = False) -> int:
    """A page or form of clinical data: nobody (or a hub's token as a cookie) is sent to log in; an
    administrator or a system account is 403 (and a GP on a nurse's form); a clinician gets it for her
    patients and 404 for anyone else's."""
    if caller in (ANONYMOUS, HUB):
        return 303
    if caller in ADMINS or caller in SYSTEMS or (nurse_only and caller != NURSE):
        return 403
    return ok if may else 404


def _to_login(response: Response) -> str | None:
    """For a caller without a session: the redirect goes to the login page."""
    if response.status_code == 303 and not response.headers["location"].startswith("/login"):
        return f"redirected to {response.headers['location']}, not to /login"
    return None


@dataclass(frozen=True)
class Public(Kind):
    """Anyone, with or without a token, gets ``status`` (no patient data)."""

    status: int = 200

    def calls(self, ctx: Context, method: str, path: str) -> Iterator[Call]:
        for caller in CALLERS:
            yield Call(
                caller,
                None,
                method,
                path,
                self.status,
                headers=_api(ctx, caller),
                forbidden=_forbidden(caller),
            )


@dataclass(frozen=True)
class Covered(Kind):
    """Classified, and its behaviour for every caller is proved by the tests named in ``by``."""

    by: str

    def calls(self, ctx: Context, method: str, path: str) -> Iterator[Call]:
        return iter(())


@dataclass(frozen=True)
class ClinicalPage(Kind):
    """A page of the web UI with clinical data: of one patient (a path parameter), or a list of the
    user's patients (none). ``nurse_only``: a home-care nurse's form page (a GP is 403)."""

    nurse_only: bool = False

    def calls(self, ctx: Context, method: str, path: str) -> Iterator[Call]:
        for caller in CALLERS:
            for patient in _targets(path):
                may = patient is None or sees(caller, patient)
                yield Call(
                    caller,
                    patient,
                    method,
                    ctx.url(path, patient),
                    _ui_status(caller, may, 200, self.nurse_only),
                    cookies=_ui(ctx, caller),
                    check=_to_login if caller in (ANONYMOUS, HUB) else None,
                    forbidden=_forbidden(caller),
                )


@dataclass(frozen=True)
class ClinicalForm(Kind):
    """A state-changing form of the web UI about one patient: a session and its anti-forgery token.
    ``again``: what a second clinician gets for a patient whose form the first one already posted, when
    that is not ``ok`` (an alert resolved once refuses a second resolution). ``nurse_only``: a home-care
    nurse's form (a GP is 403)."""

    fields: Mapping[str, str] = field(default_factory=dict)
    ok: int = 303
    again: int | None = None
    nurse_only: bool = False

    def calls(self, ctx: Context, method: str, path: str) -> Iterator[Call]:
        done: set[str | None] = set()
        for caller in CALLERS:
            cookies = _ui(ctx, caller)
            csrf = csrf_token(ctx.settings, cookies[SESSION_COOKIE]) if cookies else ""
            for patient in _targets(path):
                may = patient is None or sees(caller, patient)
                expected = _ui_status(caller, may, self.ok, self.nurse_only)
                if expected == self.ok and caller in CLINICAL:
                    if patient in done and self.again is not None:
                        expected = self.again
                    done.add(patient)
                yield Call(
                    caller,
                    patient,
                    method,
                    ctx.url(path, patient),
                    expected,
                    cookies=cookies,
                    data={**self.fields, "csrf": csrf},
                    check=_to_login if caller in (ANONYMOUS, HUB) else None,
                    forbidden=_forbidden(caller),
                )
        # Without the session's anti-forgery token even the nurse's own patient's form is refused.
        for forged in ("", "forged"):
            yield Call(
                NURSE,
                OWN_TEAM,
                method,
                ctx.url(path, OWN_TEAM),
                403,
                cookies=_ui(ctx, NURSE),
                data={**self.fields, "csrf": forged},
            )


@dataclass(frozen=True)
class BrowserForm(Kind):
    """A form that sets only this browser's wording (``POST /language``): anyone may post it, with the
    token of a page this browser was shown (its session's; without a session, the login token of its
    pre-session nonce cookie); without that token it is 403. No patient data either way."""

    fields: Mapping[str, str] = field(default_factory=dict)

    def calls(self, ctx: Context, method: str, path: str) -> Iterator[Call]:
        nonce_cookie = cookie_name(ctx.settings, LOGIN_COOKIE)
        for caller in CALLERS:
            session = _ui(ctx, caller)
            cookies = session or {nonce_cookie: "nonce-of-this-browser"}
            token = (
                csrf_token(ctx.settings, session[SESSION_COOKIE])
                if session
                else login_csrf_token(ctx.settings, cookies[nonce_cookie])
            )
            for csrf, expected in ((token, 303), ("", 403), ("forged", 403)):
                yield Call(
                    caller,
                    None,
                    method,
                    path,
                    expected,
                    cookies=cookies,
                    data={**self.fields, "csrf": csrf},
                    check=_changed_language if expected == 303 else None,
                    forbidden=_forbidden(caller),
                )
        # Another browser's login token (its nonce is not this one's) is refused, with or without a session.
        stranger = login_csrf_token(ctx.settings, "nonce-of-another-browser")
        for caller, cookies in (
            (ANONYMOUS, {nonce_cookie: "nonce-of-this-browser"}),
            (NURSE, _ui(ctx, NURSE)),
        ):
            yield Call(
                caller, None, method, path, 403, cookies=cookies, data={**self.fields, "csrf": stranger}
            )


def _changed_language(response: Response) -> str | None:
    if "homewatch_language=en" not in response.headers.get("set-cookie", ""):
        return f"no language cookie set: {response.headers.get('set-cookie')}"
    return None


@dataclass(frozen=True)
class AdminPage(Kind):
    """A page of the administrators (no clinical data; patient ids may appear in the audit log)."""

    def calls(self, ctx: Context, method: str, path: str) -> Iterator[Call]:
        for caller in CALLERS:
            expected = 303 if caller in (ANONYMOUS, HUB) else 200 if caller in ADMINS else 403
            forbidden = _forbidden(caller, names_only=True)
            yield Call(
                caller,
                None,
                method,
                path,
                expected,
                cookies=_ui(ctx, caller),
                check=_to_login if caller in (ANONYMOUS, HUB) else None,
                forbidden=forbidden,
            )


@dataclass(frozen=True)
class AdminForm(Kind):
    """A state-changing form of the administrators (no clinical data): an administrator's session and
    its anti-forgery token; nurses and GPs 403; without the token 403 even for an administrator."""

    fields: Mapping[str, str] = field(default_factory=dict)
    ok: int = 303

    def calls(self, ctx: Context, method: str, path: str) -> Iterator[Call]:
        for caller in CALLERS:
            cookies = _ui(ctx, caller)
            csrf = csrf_token(ctx.settings, cookies[SESSION_COOKIE]) if cookies else ""
            expected = 303 if caller in (ANONYMOUS, HUB) else self.ok if caller in ADMINS else 403
            yield Call(
                caller,
                None,
                method,
                path,
                expected,
                cookies=cookies,
                data={**self.fields, "csrf": csrf},
                check=_to_login if caller in (ANONYMOUS, HUB) else None,
                forbidden=_forbidden(caller, names_only=True),
            )
        for forged in ("", "forged"):
            yield Call(
                MUNICIPALITY_ADMIN,
                None,
                method,
                path,
                403,
                cookies=_ui(ctx, MUNICIPALITY_ADMIN),
                data={**self.fields, "csrf": forged},
            )


def _fhir_status(caller: str, ok: int) -> int:
    """A FHIR read of clinical data: no token 401; a hub's or an administrator's 403."""
    if caller == ANONYMOUS:
        return 401
    return ok if caller in CLINICAL else 403


@dataclass(frozen=True)
class FhirRead(Kind):
    """``GET /fhir/{type}/{id}``: the clinician's own patients' resources, 404 for anyone else's."""

    def calls(self, ctx: Context, method: str, path: str) -> Iterator[Call]:
        for caller in CALLERS:
            for patient in _targets(path):
                assert patient is not None, f"{path}: a FHIR read has an id"
                expected = _fhir_status(caller, 200 if sees(caller, patient) else 404)
                url = ctx.url(path, patient)
                yield Call(
                    caller,
                    patient,
                    method,
                    url,
                    expected,
                    headers=_api(ctx, caller),
                    forbidden=_forbidden(caller),
                )
        yield Call(NURSE, OWN_TEAM, method, ctx.url(path, OWN_TEAM), 403, headers=_api(ctx, NURSE, scopes=()))


def _total(expected: int) -> Callable[[Response], str | None]:
    def check(response: Response) -> str | None:
        total = response.json().get("total")
        return None if total == expected else f"total {total}, expected {expected}"

    return check


@dataclass(frozen=True)
class FhirSearch(Kind):
    """``GET /fhir/{type}?{param}=...``: only the clinician's own patients' resources match; without
    criteria, only theirs are listed. ``per_patient``: how many such resources each patient has."""

    param: str = "patient"
    per_patient: int = 1

    def calls(self, ctx: Context, method: str, path: str) -> Iterator[Call]:
        for caller in CALLERS:
            headers = _api(ctx, caller)
            forbidden = _forbidden(caller)
            for patient in PATIENTS:
                may = sees(caller, patient)
                check = _total(self.per_patient if may else 0) if caller in CLINICAL else None
                url = f"{path}?{self.param}={patient}"
                yield Call(
                    caller,
                    patient,
                    method,
                    url,
                    _fhir_status(caller, 200),
                    headers,
                    check=check,
                    forbidden=forbidden,
                )
            everyone = _total(self.per_patient * len(VISIBLE[caller])) if caller in CLINICAL else None
            yield Call(
                caller,
                None,
                method,
                path,
                _fhir_status(caller, 200),
                headers,
                check=everyone,
                forbidden=forbidden,
            )
        yield Call(NURSE, None, method, path, 403, headers=_api(ctx, NURSE, scopes=()))


def _entry_status(expected: str) -> Callable[[Response], str | None]:
    def check(response: Response) -> str | None:
        status = response.json()["entry"][0]["response"]["status"]
        return None if status.startswith(expected) else f"entry status {status}, expected {expected}"

    return check


@dataclass(frozen=True)
class HubPost(Kind):
    """``POST /fhir``: a hub's batch Bundle; its own patient's reading is stored, anyone else's refused.
    A system account's (issue 19): a home-care system's change form and a hospital system's Encounter
    are stored for the patients of its municipality (0101), 404 for any other; each refuses the other's
    kind (403) and a hub's reading; nobody else may post them."""

    def calls(self, ctx: Context, method: str, path: str) -> Iterator[Call]:
        for caller in CALLERS:
            for patient in PATIENTS:
                reading = build_observation(
                    Reading("spo2", Quantity(Decimal("93"), "%")),
                    patient_id=patient,
                    device_id=ctx.world.devices[patient],
                    hub_id=HUB_ID,
                    effective=datetime.now(UTC) - timedelta(minutes=5),
                )
                body = orjson.dumps(build_bundle([reading]))
                headers = {**_api(ctx, caller), "Content-Type": "application/fhir+json"}
                expected = 401 if caller == ANONYMOUS else 200 if caller == HUB or caller in SYSTEMS else 403
                own = patient == OWN_TEAM
                check = _entry_status("201" if own else "403") if caller == HUB else None
                if caller in SYSTEMS:  # a reading is no change form; nor the hospital's to send
                    check = _entry_status("422" if caller == HOMECARE_SYSTEM else "403")
                yield Call(caller, patient, method, path, expected, headers, content=body, check=check)
        yield Call(HUB, OWN_TEAM, method, path, 403, headers=_api(ctx, HUB, scopes=()), content=b"{}")
        yield from self._findr_calls(ctx, method, path)

    def _findr_calls(self, ctx: Context, method: str, path: str) -> Iterator[Call]:
        now = datetime.now(UTC) - timedelta(hours=1)
        for caller in CALLERS:
            for patient in PATIENTS:
                subject = {"reference": f"Patient/{patient}"}
                form = {
                    "resourceType": "Observation",
                    "identifier": [{"system": "urn:oid:1.2.208.176.9", "value": f"{caller}-{patient}"}],
                    "status": "final",
                    "code": {"coding": [{"system": "urn:homewatch:early-detection", "code": "breathing"}]},
                    "subject": subject,
                    "effectiveDateTime": now.isoformat(),
                    "valueBoolean": True,
                }
                stay = {
                    "resourceType": "Encounter",
                    "identifier": [{"system": "urn:oid:1.2.208.176.2", "value": f"{caller}-{patient}"}],
                    "status": "in-progress",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                    "subject": subject,
                    "period": {"start": now.isoformat()},
                }
                here = "201" if PATIENTS[patient].municipality == OWN else "404"
                for resource, sender in ((form, HOMECARE_SYSTEM), (stay, HOSPITAL_SYSTEM)):
                    body = orjson.dumps(
                        {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": resource}]}
                    )
                    headers = {**_api(ctx, caller), "Content-Type": "application/fhir+json"}
                    expected = (
                        401 if caller == ANONYMOUS else 200 if caller == HUB or caller in SYSTEMS else 403
                    )
                    check = None
                    if caller in SYSTEMS:
                        check = _entry_status(here if caller == sender else "403")
                    elif caller == HUB:  # the hubs' contract takes neither
                        check = _entry_status("422" if resource is form else "400")
                    forbidden = _forbidden(caller)
                    yield Call(
                        caller,
                        patient,
                        method,
                        path,
                        expected,
                        headers,
                        content=body,
                        check=check,
                        forbidden=forbidden,
                    )


# --- the table -----------------------------------------------------------------------------------------

REVIEW_FORM = {"outcome": "phone-call", "triage": "green", "note": "Called; she is well."}
# Each administrator sets her own municipality's (the system administrator's is 0101 too).
ALERT_SETTINGS_FORM = {
    "municipality": OWN,
    "on_call_email": "vagt@kbh.example",
    "message_detail": "initials",
    "escalate_high_minutes": "15",
    "escalate_medium_minutes": "60",
}

MATRIX: Mapping[tuple[str, str], Kind] = {
    # Public: no patient data.
    ("GET", "/openapi.json"): Public(),
    ("GET", "/login"): Public(),
    ("GET", "/static/homewatch.css"): Public(),
    ("GET", "/static/alerts-live.js"): Public(),
    ("GET", "/fhir/metadata"): Public(),
    ("GET", "/healthz"): Public(),
    (
        "GET",
        "/metrics",
    ): Public(),  # open in development; production asks for its token (test_api_metrics_token)
    # Logging in and out: every caller's answer is proved elsewhere.
    ("POST", "/login"): Covered("test_sessions.py, test_api_auth.py, test_api_login_throttle.py"),
    ("POST", "/login/access-token"): Covered("test_api_auth.py, test_api_access_token_errors.py"),
    ("POST", "/logout"): Covered("test_api_logout.py"),
    # An invitation's link (invitation_pages.py, issue 20): no session; a link that is no invitation is 404
    # for anyone, and nothing else is shown. Open, used and expired links, the form's token and the
    # throttle are proved with real invitations.
    ("GET", "/invite/{token}"): Public(404),
    ("POST", "/invite/{token}"): Covered("test_invitation_pages.py"),
    # The language: anyone, with this browser's token.
    ("POST", "/language"): BrowserForm({"language": "en", "next": "/"}),
    # The web UI's clinical pages and forms.
    ("GET", "/"): ClinicalPage(),
    ("GET", "/review"): ClinicalPage(),
    ("GET", "/patients/{patient_id}"): ClinicalPage(),
    ("GET", "/patients/{patient_id}/readings"): ClinicalPage(),
    ("GET", "/patients/{patient_id}/reviews"): ClinicalPage(),
    ("GET", "/patients/{patient_id}/thresholds"): ClinicalPage(),
    # FiNDR's inputs by hand (findr_pages.py, issue 19): home-care nurses only.
    ("GET", "/patients/{patient_id}/early-detection"): ClinicalPage(nurse_only=True),
    ("POST", "/patients/{patient_id}/early-detection"): ClinicalForm(
        {"item-breathing": "seen", "effective": "2025-06-01T10:00"}, nurse_only=True
    ),
    ("GET", "/patients/{patient_id}/hospital-stays"): ClinicalPage(nurse_only=True),
    ("POST", "/patients/{patient_id}/hospital-stays"): ClinicalForm(
        {"admitted": "2025-06-01T10:00"}, nurse_only=True
    ),
    # The measurement plan (plan_pages.py, issue 21): set by the patient's care team's nurse only.
    ("GET", "/patients/{patient_id}/plan"): ClinicalPage(nurse_only=True),
    ("POST", "/patients/{patient_id}/plan"): ClinicalForm(
        {"weight-on": "yes", "weight-times": "07:30", "weight-day-1": "yes", "weight-grace": "120"},
        nurse_only=True,
    ),
    # "Contact my nurse" and the nurse's messages (contact_request_pages.py, patient_message_pages.py,
    # issue 21): a request taken twice is answered as taken already (303); only a nurse writes.
    ("POST", "/patients/{patient_id}/contact-requests/{request_id:int}/take"): ClinicalForm(),
    ("POST", "/patients/{patient_id}/contact-requests/{request_id:int}/done"): ClinicalForm(),
    ("POST", "/patients/{patient_id}/messages"): ClinicalForm(
        {"text": "Jeg ringer i morgen."}, nurse_only=True
    ),
    ("POST", "/patients/{patient_id}/reviews"): ClinicalForm(REVIEW_FORM),
    ("POST", "/patients/{patient_id}/notes"): ClinicalForm({"text": "Rang; alt vel."}),
    ("POST", "/patients/{patient_id}/thresholds"): ClinicalForm(),
    # The alerts (alert_pages.py): the inbox, one alert, and what people do with it.
    ("GET", "/alerts"): ClinicalPage(),
    ("GET", "/alerts/{alert_id:int}"): ClinicalPage(),
    ("POST", "/alerts/{alert_id:int}/acknowledge"): ClinicalForm({"note": "Ringede; alt vel."}),
    ("POST", "/alerts/{alert_id:int}/snooze"): ClinicalForm({"for": "4h", "reason": "Ny måling i aften."}),
    ("POST", "/alerts/{alert_id:int}/assign"): ClinicalForm(),  # to oneself
    ("POST", "/alerts/{alert_id:int}/resolve"): ClinicalForm({"outcome": "false-alarm"}, again=409),
    # The live stream of alerts never ends, so a request of the matrix would wait for ever; its callers
    # (nurse of the team, of another team or municipality, the GP, administrators, a hub, nobody).
    ("GET", "/alerts/stream"): Covered("test_alert_stream.py"),
    # The administrators' pages.
    ("GET", "/admin/audit"): AdminPage(),
    ("GET", "/admin/deliveries"): AdminPage(),
    ("GET", "/admin/alert-settings"): AdminPage(),
    ("POST", "/admin/alert-settings"): AdminForm(ALERT_SETTINGS_FORM),
    # The model registry (model_pages.py). A version is of one municipality (the matrix world registers
    # none): its page and activation, for every caller and another municipality's administrator, are
    # proved with registered versions. Rollback with nothing activated is refused (400) past the checks.
    ("GET", "/admin/models"): AdminPage(),
    ("GET", "/admin/models/{version}"): Covered("test_model_pages.py"),
    ("POST", "/admin/models/{version}/activate"): Covered("test_model_pages.py"),
    ("POST", "/admin/models/rollback"): AdminForm({"municipality": OWN}, ok=400),
    # The active model on live data (issue 19): figures over many patients, never a patient.
    ("GET", "/admin/models/monitoring"): AdminPage(),
    # The administrator's homes (administration_pages.py, issue 20): patients by id (never a name), hubs
    # and devices; each form once by each administrator (the second is a new link, new credentials, or
    # already done). Adding a municipality (a system administrator's only) and the revoke confirmation
    # (of one hub, another municipality's 404) are proved for every caller in test_administration_pages.py.
    ("GET", "/admin/homes"): AdminPage(),
    ("GET", "/admin/homes/revoke"): Covered("test_administration_pages.py"),
    ("POST", "/admin/homes/municipalities"): Covered("test_administration_pages.py"),
    ("POST", "/admin/homes/patients"): AdminForm(
        {"municipality": OWN, "patient": "pt-new", "name": "Eva Ny", "care_team": "0101-nord"}
    ),
    ("POST", "/admin/homes/hubs"): AdminForm(
        {"municipality": OWN, "hub": HUB_ID, "patient": OWN_TEAM}, ok=200
    ),
    ("POST", "/admin/homes/devices"): AdminForm(
        {"municipality": OWN, "hub": HUB_ID, "kind": "scale", "address": "AA:BB:CC:DD:EE:01"}
    ),
    ("POST", "/admin/homes/devices/remove"): AdminForm({"device": f"dev-{OWN_TEAM}-spo2"}),
    ("POST", "/admin/homes/hubs/revoke"): AdminForm({"hub": HUB_ID}),
    ("POST", "/admin/homes/hubs/settings"): AdminForm(
        {"municipality": OWN, "hub": HUB_ID, "status_interval": "300"}
    ),
    ("POST", "/admin/homes/users"): AdminForm(
        {"municipality": OWN, "role": "nurse", "email": "new.nurse@kk.example"}, ok=200
    ),
    # The quarantine (quarantine_pages.py, issue 20): the list is the administrator's municipality's; a
    # row, its re-processing and dismissal, for every caller and another municipality's administrator, are
    # proved with quarantined rows.
    ("GET", "/admin/quarantine"): AdminPage(),
    ("GET", "/admin/quarantine/{row_id:int}"): Covered("test_quarantine_pages.py"),
    ("POST", "/admin/quarantine/{row_id:int}/reprocess"): Covered("test_quarantine_pages.py"),
    ("POST", "/admin/quarantine/{row_id:int}/dismiss"): Covered("test_quarantine_pages.py"),
    # The fleet (fleet_pages.py, issue 20): hubs and devices, patients by id (never a name). One hub's page,
    # for every caller and another municipality's administrator, is proved with hubs in test_fleet_pages.py.
    ("GET", "/admin/fleet"): AdminPage(),
    ("GET", "/admin/fleet/{hub_id}"): Covered("test_fleet_pages.py"),
    # The FHIR API.
    ("GET", "/fhir/Patient"): FhirSearch("_id"),
    ("GET", "/fhir/Patient/{patient_id}"): FhirRead(),
    ("GET", "/fhir/Observation"): FhirSearch(),
    ("GET", "/fhir/Observation/{observation_id}"): FhirRead(),
    ("GET", "/fhir/Device/{device_id}"): FhirRead(),
    ("GET", "/fhir/RiskAssessment"): FhirSearch(),
    ("GET", "/fhir/RiskAssessment/{assessment_id}"): FhirRead(),
    ("GET", "/fhir/ClinicalImpression"): FhirSearch(),
    ("GET", "/fhir/ClinicalImpression/{impression_id}"): FhirRead(),
    # The alerts as FHIR (alert_fhir.py): every patient has an open alert; pt-nord and pt-frb have a GP.
    ("GET", "/fhir/Flag"): FhirSearch(),
    ("GET", "/fhir/Flag/{flag_id}"): FhirRead(),
    # An alert's Task and a "contact my nurse" request per patient.
    ("GET", "/fhir/Task"): FhirSearch(per_patient=2),
    ("GET", "/fhir/Task/{task_id}"): FhirRead(),
    ("GET", "/fhir/Communication"): FhirSearch(),
    ("GET", "/fhir/Communication/{communication_id}"): FhirRead(),
    # What patients send from home (request_fhir.py, issue 21); their contact requests are Tasks.
    ("GET", "/fhir/QuestionnaireResponse"): FhirSearch(),
    ("GET", "/fhir/QuestionnaireResponse/{response_id}"): FhirRead(),
    ("POST", "/fhir"): HubPost(),
}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app answers (HEAD, which Starlette adds to GET, left out)."""

    def walk(routes: Any) -> Iterator[Any]:
        for route in routes:
            if hasattr(route, "effective_route_contexts"):  # FastAPI 0.16x: an included router
                yield from walk(route.effective_route_contexts())
            else:
                yield route

    found = set()
    for route in walk(app.routes):
        path = getattr(route, "path", None)
        if path is None:
            continue
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                found.add((method, path))
    return found


def test_every_route_of_the_app_is_classified(app: FastAPI) -> None:
    routes = app_routes(app)
    unclassified = sorted(routes - set(MATRIX))
    assert not unclassified, (
        f"routes the authorisation matrix does not know (add a line to MATRIX): {unclassified}"
    )
    gone = sorted(set(MATRIX) - routes)
    assert not gone, f"MATRIX lines of routes the app no longer has: {gone}"


def _run(client: TestClient, call: Call) -> list[str]:
    client.cookies.clear()
    client.cookies.update(dict(call.cookies))
    response = client.request(
        call.method,
        call.url,
        headers=dict(call.headers),
        data=dict(call.data) if call.data is not None else None,
        content=call.content,
        follow_redirects=False,
    )
    who = f"{call.caller:<18} {call.patient or '-':<10} {call.method} {call.url}"
    problems = []
    if response.status_code != call.expected:
        problems.append(f"{who}: {response.status_code}, expected {call.expected}")
    elif call.check is not None and (problem := call.check(response)) is not None:
        problems.append(f"{who}: {problem}")
    leaked = [marker for marker in call.forbidden if marker in response.text and marker not in call.url]
    if leaked:
        problems.append(f"{who}: the answer holds data of patients outside the assignment: {leaked}")
    return problems


@pytest.mark.parametrize(("method", "path"), sorted(MATRIX), ids=lambda value: str(value))
def test_route_x_caller_x_patient(
    method: str, path: str, client: TestClient, settings: GatewaySettings, matrix_world: MatrixWorld
) -> None:
    kind = MATRIX[(method, path)]
    if isinstance(kind, Covered):
        pytest.skip(f"every caller's answer is proved by {kind.by}")
    calls = list(kind.calls(Context(settings, matrix_world), method, path))
    problems = [problem for call in calls for problem in _run(client, call)]
    assert not problems, f"{len(problems)} of {len(calls)} calls of {method} {path} are wrong:\n" + "\n".join(
        problems
    )
