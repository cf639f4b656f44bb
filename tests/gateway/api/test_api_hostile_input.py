"""Hostile input over HTTP: every malformed value is a 400 (or 404) answer, never a server error.

Each case here was a 500 (a plain-text answer and a closed connection) or a wrongly accepted value before
it was fixed: values at the end of time, NUL bytes and lone surrogates that PostgreSQL cannot hold,
digits that are not ASCII, numbers too long for ``int()``, cursors nested too deep for ``json``. The
client answers server errors instead of raising them, so a regression shows as a wrong status.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.operationoutcome import OperationOutcome
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.conninfo import make_conninfo
from seed import World, login, seed_world

from gateway.api.app import create_app
from gateway.api.auth import mint_token
from gateway.api.errors import FhirError
from gateway.api.fhir_search import (
    ID_PATTERN,
    MAX_COUNT,
    SEARCH_PARAMS,
    Period,
    Token,
    format_search,
    parse_search,
)
from gateway.api.pool import open_pool
from gateway.settings import GatewaySettings
from gateway.store.migrate import migrate

FHIR_JSON = "application/fhir+json"


@pytest.fixture(scope="module")
def served(pg_admin_url: str) -> Iterator[tuple[TestClient, GatewaySettings, World]]:
    """One seeded database and app for the whole module (these requests only read), and a client that
    gets the server's 500 as a response instead of an exception."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    database_url = make_conninfo(pg_admin_url, dbname=name)
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            migrate(conn)
            world = seed_world(conn, datetime.now(UTC))
        settings = GatewaySettings(database_url=database_url, environment="development")
        with (
            open_pool(database_url) as pool,
            TestClient(create_app(settings, pool), raise_server_exceptions=False) as client,
        ):
            yield client, settings, world
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def hostile(served: tuple[TestClient, GatewaySettings, World]) -> Iterator[TestClient]:
    client = served[0]
    yield client
    client.cookies.clear()


@pytest.fixture
def world(served: tuple[TestClient, GatewaySettings, World]) -> World:
    return served[2]


@pytest.fixture
def nurse(served: tuple[TestClient, GatewaySettings, World]) -> dict[str, str]:
    _, settings, world = served
    token = mint_token(settings, role="nurse", municipality_id=world.own, subject=world.nurse)
    return {"Authorization": f"Bearer {token}"}


def _invalid(response: Any, status: int = 400) -> str:
    """The diagnostics of an OperationOutcome answer with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    outcome = OperationOutcome.model_validate(response.json())
    return str(outcome.issue[0].diagnostics)


def _cursor(fields: Any) -> str:
    """A cursor in the server's encoding (base64url of JSON) around any fields."""
    raw = json.dumps(fields).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


# --- dates -----------------------------------------------------------------------------------------

END_OF_TIME = [
    "9999-12-31",  # the day after it is year 10000
    "gt9999-12-31",
    "le9999-12-31",
    "9999-12",
    "9999-12-31T23:59",
    "9999-12-31T23:59:59",
    "9999-12-31T23:59:59.9999999Z",  # the fraction rounds up to the next second
    "9999-12-31T23:00:00-01:00",  # in UTC it is year 10000
    "0001-01-01T00:30:00+01:00",  # in UTC it is year 0
]


@pytest.mark.parametrize("value", END_OF_TIME)
def test_a_date_at_the_end_of_time_is_400(hostile: TestClient, nurse: dict[str, str], value: str) -> None:
    _invalid(hostile.get("/fhir/Observation", params={"date": value}, headers=nurse))


# Arabic-Indic digits: Python's \\d and int() read them as if they were ASCII.
NOT_ASCII_DATES = [
    "\u0662\u0660\u0662\u0664",  # 2024
    "2024-0\u0665",
    "2024-05-01T10:15:30.\u0665Z",
    "2024-05-01T10:15+\u0660\u0662:00",
]


@pytest.mark.parametrize("value", NOT_ASCII_DATES)
def test_a_date_with_digits_that_are_not_ascii_is_400(
    hostile: TestClient, nurse: dict[str, str], value: str
) -> None:
    _invalid(hostile.get("/fhir/Observation", params={"date": value}, headers=nurse))


# --- tokens and counts -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["\x00", "8867-4\x00", "http://loinc.org|\x00", "\x00|8867-4", "a\x1fb"])
def test_a_code_postgresql_cannot_hold_is_400(hostile: TestClient, nurse: dict[str, str], value: str) -> None:
    _invalid(hostile.get("/fhir/Observation", params={"code": value}, headers=nurse))


@pytest.mark.parametrize("value", ["9" * 5000, "\u0663", "\u00b2", " 5", "+5", "1_0", "5.0", "0", "-1", ""])
def test_a_count_that_is_not_plain_ascii_digits_is_400(
    hostile: TestClient, nurse: dict[str, str], value: str
) -> None:
    _invalid(hostile.get("/fhir/Observation", params={"_count": value}, headers=nurse))


def test_a_huge_count_in_plain_digits_is_capped_not_refused(
    hostile: TestClient, nurse: dict[str, str]
) -> None:
    response = hostile.get("/fhir/Observation", params={"_count": "9" * 18}, headers=nurse)
    assert response.status_code == 200, response.text


# --- cursors ---------------------------------------------------------------------------------------

BAD_OBSERVATION_CURSORS = [
    _cursor(["2024-05-01T10:00:00+00:00", "urn:x\x00y"]),  # NUL in the key
    _cursor(["2024-05-01T10:00:00+00:00", "\ud800"]),  # a lone surrogate: not UTF-8
    _cursor(["9999-12-31T23:59:59-14:00", "k"]),  # in UTC it is year 10000
    _cursor(["0001-01-01T00:00:00+14:00", "k"]),  # in UTC it is year 0
    _cursor(["2024-05-01T10:00:00\x00+00:00", "k"]),
    _cursor(["2024-05-01T10:00:00+00:00", "k", "extra"]),
    _cursor({"at": "2024-05-01T10:00:00+00:00"}),
    _cursor("ab"),
    _cursor(None),
    base64.urlsafe_b64encode(b"[" * 3000).decode(),  # nested past json's recursion limit
    base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),
    "A" * 10_000,
    "%%%",
    "\x00",
]


@pytest.mark.parametrize("value", BAD_OBSERVATION_CURSORS)
def test_a_cursor_this_server_did_not_issue_is_400(
    hostile: TestClient, nurse: dict[str, str], value: str
) -> None:
    _invalid(hostile.get("/fhir/Observation", params={"_cursor": value}, headers=nurse))


# A RiskAssessment's cursor key is its public id (a uuid); a score's sequence number (digits) is not one.
NOT_PUBLIC_IDS = ["\u00b2", "\u0663", "9" * 5000, "9" * 20, str(2**63), "-1", "1 ", "", "\x00", "1"]


@pytest.mark.parametrize("key", [*NOT_PUBLIC_IDS, "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"])
def test_a_risk_assessment_cursor_key_that_is_not_a_public_id_is_400(
    hostile: TestClient, nurse: dict[str, str], key: str
) -> None:
    value = _cursor(["2024-05-01T10:00:00+00:00", key])
    _invalid(hostile.get("/fhir/RiskAssessment", params={"_cursor": value}, headers=nurse))


def test_a_risk_assessment_cursor_with_the_largest_public_id_is_read(
    hostile: TestClient, nurse: dict[str, str]
) -> None:
    value = _cursor(["2024-05-01T10:00:00+00:00", "ffffffff-ffff-ffff-ffff-ffffffffffff"])
    response = hostile.get("/fhir/RiskAssessment", params={"_cursor": value}, headers=nurse)
    assert response.status_code == 200, response.text


# --- ids -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("resource_type", ["Patient", "Device"])
@pytest.mark.parametrize("ident", ["%00", "p%00high", "a%1Fb", "x" * 65, "a_b", "%C3%A6"])
def test_a_read_of_an_id_that_is_not_a_fhir_id_is_400(
    hostile: TestClient, nurse: dict[str, str], resource_type: str, ident: str
) -> None:
    _invalid(hostile.get(f"/fhir/{resource_type}/{ident}", headers=nurse))


@pytest.mark.parametrize("ident", ["%00", "p%00high", "a%1Fb", "x" * 65])
def test_the_patient_page_of_an_id_that_cannot_exist_is_a_404_page(
    hostile: TestClient, world: World, ident: str
) -> None:
    login(hostile, world.nurse)
    response = hostile.get(f"/patients/{ident}")
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "Borgeren findes ikke blandt dine borgere." in response.text  # the app speaks Danish by default


# --- the parser itself, without a server: any text is a value or a 400 -----------------------------

_ZONES = ["Z", "+00:00", "-01:00", "+14:00", "-14:00", "+23:59", "-23:59", "+24:00"]
# Dates near the edges of what datetime holds, of every precision; Hypothesis' digits include other
# scripts' digits, which \d and int() would read.
_DATES = st.builds(
    lambda prefix, year, month, day, clock, zone: f"{prefix}{year}{month}{day}{clock}{zone}",
    st.sampled_from(["", "eq", "gt", "ge", "lt", "le", "sa"]),
    st.sampled_from(["0000", "0001", "2024", "9999"]) | st.from_regex(r"\A\d{4}\Z"),
    st.sampled_from(["", "-01", "-12", "-13", "-00"]),
    st.sampled_from(["", "-01", "-29", "-31", "-32"]),
    st.sampled_from(["", "T00:00", "T23:59", "T23:59:59", "T23:59:59.9999999", "T24:00", "T00:00:00.5"]),
    st.sampled_from(["", *_ZONES]),
)
_INSTANTS = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from(
        [UTC, *(datetime.fromisoformat(f"2024-01-01T00:00{z}").tzinfo for z in _ZONES[1:7])]
    ),
)
_CURSORS = st.builds(
    lambda at, key: _cursor([at, key]),
    st.one_of(_INSTANTS.map(datetime.isoformat), st.text(max_size=40)),
    st.one_of(st.text(max_size=40), st.from_regex(r"\A[0-9a-f-]{36}\Z"), st.just("9" * 5000)),
)
_VALUES = st.one_of(st.text(max_size=60), _DATES, _CURSORS, st.from_regex(r"\A\d{1,30}\Z"))
_NAMES = st.sampled_from(["patient", "code", "date", "_count", "_sort", "_cursor"])


def _storable(text: str) -> bool:
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


@settings(max_examples=500, deadline=None)
@given(
    resource_type=st.sampled_from(sorted(SEARCH_PARAMS)),
    items=st.lists(st.tuples(_NAMES, _VALUES), max_size=4),
)
def test_any_query_is_a_search_postgresql_can_run_or_a_400(
    resource_type: str, items: list[tuple[str, str]]
) -> None:
    try:
        search = parse_search(resource_type, items)
    except FhirError as refused:
        assert refused.status == 400
        return
    assert 1 <= search.count <= MAX_COUNT
    for criterion in search.criteria:
        for value in criterion.alternatives:
            if isinstance(value, Period):
                for bound in (value.lower, value.upper):
                    assert bound is None or bound.utcoffset() == timedelta(0)
            elif isinstance(value, Token):
                assert _storable(value.code) and _storable(value.system or "")
            else:
                assert ID_PATTERN.fullmatch(value.id)
    if search.cursor is not None:
        assert search.cursor.at.utcoffset() == timedelta(0) and _storable(search.cursor.key)
    format_search(search, search.cursor)  # the self and next links can be written
