"""``POST /fhir`` from a system account (issue 19): a home-care system's change forms and a hospital
system's inpatient Encounters are stored per entry (201 new, 200 again or updated, a 4xx with an
OperationOutcome for a refused one), one bad entry never stops the others, a ``transaction`` is all or
nothing, nothing crosses a municipality, the roles post only their own type and read nothing, and no
JSON makes the decider fail (hypothesis). Real PostgreSQL, the real app."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from findr_world import (
    ACCOUNTS,
    OTHER,
    PASSWORD,
    bundle,
    change_form,
    change_item,
    encounter,
    person_token,
    seed,
    statuses,
    system_token,
)
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import SecretStr
from seed import post_login
from typer.testing import CliRunner

from gateway.api import findr_fhir
from gateway.api.auth import hash_password, mint_token
from gateway.settings import GatewaySettings
from gateway.store.findr_inputs import StaffObservation
from homewatch.cli import app
from models.codes import CHANGE_OBSERVATIONS

Conn = psycopg.Connection[Any]
MAX_BYTES = 64_000


@pytest.fixture
def settings(database_url: str) -> GatewaySettings:
    return GatewaySettings(
        database_url=database_url,
        secret_key=SecretStr("test-secret-of-the-api-tests"),
        default_language="en",
        max_payload_bytes=MAX_BYTES,
    )


@pytest.fixture
def db(database_url: str) -> Any:
    with psycopg.connect(database_url, autocommit=True) as conn:
        seed(conn)
        yield conn


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _post(client: TestClient, headers: dict[str, str], body: bytes) -> Any:
    return client.post("/fhir", content=body, headers=headers)


def _with_item(form: dict[str, Any], key: str) -> dict[str, Any]:
    """The form with one more component, of item ``key`` (a change seen)."""
    item = {
        "code": {"coding": [{"system": "urn:homewatch:early-detection", "code": key}]},
        "valueBoolean": True,
    }
    return form | {"component": [*form["component"], item]}


def _count(db: Conn, table: str) -> int:
    row = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_change_forms_and_a_stay_are_stored_once_and_a_discharge_updates_the_stay(
    client: TestClient, settings: GatewaySettings, db: Conn
) -> None:
    now = _now()
    homecare = system_token(settings, ACCOUNTS.homecare)
    forms = bundle(
        change_form("p-anna", "v-1", now - timedelta(days=1), breathing=True, general=True, sleep=False),
        change_item("p-anna", "v-2", now - timedelta(hours=3), "confusion", True),
    )
    first = _post(client, homecare, forms)
    assert first.status_code == 200, first.text
    assert first.json()["type"] == "batch-response" and statuses(first.json()) == ["201", "201"]
    again = _post(client, homecare, forms)
    assert statuses(again.json()) == ["200", "200"] and _count(db, "staff_observations") == 2
    stored = db.execute(
        "SELECT municipality_id, patient_id, items, recorded_by, source FROM staff_observations ORDER BY id"
    ).fetchall()
    assert stored == [
        ("0101", "p-anna", {"breathing": True, "general": True, "sleep": False}, ACCOUNTS.homecare, "fhir"),
        ("0101", "p-anna", {"confusion": True}, ACCOUNTS.homecare, "fhir"),
    ]

    hospital = system_token(settings, ACCOUNTS.hospital)
    admitted = now - timedelta(days=6)
    assert statuses(_post(client, hospital, bundle(encounter("p-anna", "e-1", admitted))).json()) == ["201"]
    assert db.execute("SELECT period_end FROM encounters").fetchall() == [(None,)]
    discharge = bundle(encounter("p-anna", "e-1", admitted, now - timedelta(days=2)))
    assert statuses(_post(client, hospital, discharge).json()) == ["200"]
    assert statuses(_post(client, hospital, discharge).json()) == ["200"]
    assert db.execute("SELECT status, period_start, period_end FROM encounters").fetchall() == [
        ("finished", admitted, now - timedelta(days=2))
    ]
    audit = db.execute(
        "SELECT username, role, patient_id FROM audit_log WHERE action = 'fhir-write' ORDER BY id"
    ).fetchall()
    assert audit[0] == (ACCOUNTS.homecare, "homecare_system", "p-anna")
    assert (ACCOUNTS.hospital, "hospital_system", "p-anna") in audit


def test_one_bad_entry_does_not_stop_the_others_and_each_gets_its_own_answer(
    client: TestClient, settings: GatewaySettings, db: Conn
) -> None:
    now = _now()
    start = now - timedelta(days=3)
    no_identifier = encounter("p-anna", "e-9", start)
    del no_identifier["identifier"]
    unstorable = encounter("p-anna", "e-8", start)
    unstorable["class"]["display"] = "inpatient\u0000"  # valid FHIR; jsonb cannot hold a NUL
    answer = _post(
        client,
        system_token(settings, ACCOUNTS.hospital),
        bundle(
            encounter("p-anna", "e-1", start),
            {"resourceType": "Encounter", "status": 12},  # not FHIR
            encounter("p-anna", "e-2", start, start - timedelta(hours=1)),  # discharged before admitted
            encounter("p-anna", "e-3", now + timedelta(days=30)),  # admitted next month
            encounter("p-anna", "e-4", start, klass="AMB"),  # not a hospital stay
            encounter("nobody", "e-5", start),  # no such patient
            encounter("p-other", "e-6", start),  # another municipality's patient
            no_identifier,
            unstorable,
            change_form("p-anna", "v-1", start, breathing=True),  # not the hospital's to send
            encounter("p-bent", "e-7", start, start + timedelta(days=1)),
        ),
    )
    assert answer.status_code == 200
    body = answer.json()
    assert statuses(body) == ["201", "400", "422", "422", "422", "404", "404", "422", "422", "403", "201"]
    outcomes = [e["response"].get("outcome") for e in body["entry"]]
    assert all(o["resourceType"] == "OperationOutcome" for o in outcomes[1:-1])
    # An unknown patient and another municipality's read alike: nothing tells which exists.
    unknown, elsewhere = (outcomes[i]["issue"][0] for i in (5, 6))
    assert unknown["code"] == elsewhere["code"] == "not-found"
    assert (unknown["code"], unknown["diagnostics"]) == (elsewhere["code"], elsewhere["diagnostics"])
    assert "p-other" not in answer.text and elsewhere["expression"] == ["Bundle.entry[6]"]
    assert db.execute("SELECT patient_id, identifier FROM encounters ORDER BY id").fetchall() == [
        ("p-anna", "urn:oid:1.2.208.176.2.1|e-1"),
        ("p-bent", "urn:oid:1.2.208.176.2.1|e-7"),
    ]


def test_a_transaction_is_stored_whole_or_not_at_all(
    client: TestClient, settings: GatewaySettings, db: Conn
) -> None:
    now = _now()
    homecare = system_token(settings, ACCOUNTS.homecare)
    bad = bundle(
        change_form("p-anna", "v-1", now, pain=True),
        _with_item(change_form("p-anna", "v-2", now, pain=True), "not-an-item"),
        kind="transaction",
    )
    refused = _post(client, homecare, bad)
    assert refused.status_code == 422 and refused.json()["resourceType"] == "OperationOutcome"
    assert refused.json()["issue"][0]["expression"] == ["Bundle.entry[1]"]
    # A patient the municipality does not have is found only when storing: the first entry is undone.
    unknown = bundle(change_form("p-anna", "v-1", now, pain=True), change_form("p-x", "v-3", now, pain=True))
    assert _post(client, homecare, unknown.replace(b'"batch"', b'"transaction"')).status_code == 404
    assert _count(db, "staff_observations") == 0
    good = _post(client, homecare, bundle(change_form("p-anna", "v-1", now, pain=True), kind="transaction"))
    assert good.json()["type"] == "transaction-response" and statuses(good.json()) == ["201"]


def test_each_system_posts_only_its_own_kind_for_its_own_municipality_and_reads_nothing(
    client: TestClient, settings: GatewaySettings, db: Conn
) -> None:
    now = _now()
    form = bundle(change_form("p-anna", "v-1", now, breathing=True))
    stay = bundle(encounter("p-anna", "e-1", now - timedelta(days=1)))
    homecare, hospital = system_token(settings, ACCOUNTS.homecare), system_token(settings, ACCOUNTS.hospital)
    assert statuses(_post(client, hospital, form).json()) == ["403"]
    assert statuses(_post(client, homecare, stay).json()) == ["403"]
    # The home-care system of 0147 cannot reach a patient of 0101 (nor learn that there is one).
    elsewhere = system_token(settings, ACCOUNTS.homecare_other, OTHER)
    assert statuses(_post(client, elsewhere, form).json()) == ["404"]
    # A token narrowed to no scope posts nothing.
    narrowed = mint_token(
        settings, role="homecare_system", municipality_id="0101", subject=ACCOUNTS.homecare, scopes=()
    )
    assert statuses(_post(client, {"Authorization": f"Bearer {narrowed}"}, form).json()) == ["403"]
    # A nurse's token may not post at all; a hub's goes the hubs' way, which takes no change form.
    nurse = {"Authorization": f"Bearer {person_token(settings, ACCOUNTS.nurse)}"}
    assert _post(client, nurse, form).status_code == 403
    hub = mint_token(settings, role="hub", municipality_id="0101", subject="hub-p-anna")
    by_hub = _post(client, {"Authorization": f"Bearer {hub}"}, form)
    assert by_hub.status_code == 200 and statuses(by_hub.json()) == ["422"]
    assert _count(db, "staff_observations") == 0 and _count(db, "encounters") == 0
    # Neither system reads anything: FHIR reads are 403, pages 403 (its token as a cookie).
    for headers in (homecare, hospital):
        for path in (
            "/fhir/Patient",
            "/fhir/Patient/p-anna",
            "/fhir/Observation?patient=p-anna",
            "/fhir/Flag",
            "/alerts/stream",
        ):
            assert client.get(path, headers=headers).status_code == 403, path
        token = headers["Authorization"].removeprefix("Bearer ")
        client.cookies.set("homewatch_session", token)
        for path in (
            "/",
            "/patients/p-anna",
            "/alerts",
            "/admin/audit",
            "/patients/p-anna/early-detection",
            "/alerts/stream",
        ):
            assert client.get(path, follow_redirects=False).status_code == 403, path
        client.cookies.clear()


def test_a_system_account_cannot_log_in_and_its_token_counts_only_while_its_user_row_does(
    client: TestClient, settings: GatewaySettings, db: Conn
) -> None:
    # No password matches a system account, whatever is typed, on the web form or the token endpoint,
    # even if its row were given a password's hash.
    db.execute(
        "UPDATE users SET password_hash = %s WHERE username = %s",
        (hash_password(PASSWORD), ACCOUNTS.homecare),
    )
    assert post_login(client, ACCOUNTS.homecare, PASSWORD).status_code == 401
    token_form = {"username": ACCOUNTS.homecare, "password": PASSWORD}
    assert client.post("/login/access-token", data=token_form).status_code == 401
    assert post_login(client, ACCOUNTS.nurse, PASSWORD).status_code == 303  # the form itself works
    client.cookies.clear()
    headers = system_token(settings, ACCOUNTS.homecare)
    form_bundle = bundle(change_form("p-anna", "v-1", _now(), breathing=True))
    assert _post(client, headers, form_bundle).status_code == 200
    db.execute("UPDATE users SET role = 'hospital_system' WHERE username = %s", (ACCOUNTS.homecare,))
    assert _post(client, headers, form_bundle).status_code == 401
    db.execute("DELETE FROM users WHERE username = %s", (ACCOUNTS.hospital,))
    assert _post(client, system_token(settings, ACCOUNTS.hospital), form_bundle).status_code == 401


def test_a_bundle_refused_whole_is_one_operation_outcome(
    client: TestClient, settings: GatewaySettings, db: Conn
) -> None:
    homecare = system_token(settings, ACCOUNTS.homecare)
    for body, status in (
        (b"not json", 400),
        (b'{"resourceType": "Patient"}', 400),
        (b'{"resourceType": "Bundle", "type": "searchset"}', 400),
        (b'{"resourceType": "Bundle", "type": "batch", "entry": {}}', 400),
        (bundle(change_form("p-anna", "v", _now(), pain=True)) + b" " * MAX_BYTES, 413),
    ):
        answer = _post(client, homecare, body)
        assert answer.status_code == status, body[:60]
        assert answer.json()["resourceType"] == "OperationOutcome"
    assert _count(db, "staff_observations") == 0
    empty = _post(client, homecare, b'{"resourceType": "Bundle", "type": "batch"}')
    assert empty.status_code == 200 and empty.json() == {"resourceType": "Bundle", "type": "batch-response"}


def test_the_closed_rules_of_a_change_form() -> None:
    account = findr_fhir.Account("ehr", "0101", "homecare_system", frozenset({"system/Observation.write"}))
    now = _now()

    def refused(resource: dict[str, Any]) -> int:
        try:
            findr_fhir.decide_resource(resource, account, now=now)
        except findr_fhir.Refused as exc:
            return exc.status
        return 0

    good = change_form("p-anna", "v", now, breathing=True, mobility=False)
    record = findr_fhir.decide_resource(good, account, now=now)
    assert isinstance(record, StaffObservation)
    assert (
        record.items == {"breathing": True, "mobility": False}
        and record.identifier == "urn:oid:1.2.208.176.9.1|v"
    )
    assert refused(good | {"status": "preliminary"}) == 422
    assert refused(good | {"effectiveDateTime": "2026-01-05"}) == 422  # no time of day
    assert refused(good | {"effectiveDateTime": "2014-12-31T10:00:00+01:00"}) == 422
    assert refused(good | {"effectiveDateTime": (now + timedelta(hours=1)).isoformat()}) == 422
    assert refused(good | {"subject": {"reference": "Group/1"}}) == 422
    assert refused(good | {"identifier": [{"system": "urn:homewatch:web", "value": "x"}]}) == 422
    assert refused(good | {"component": []}) == 422  # nothing checked
    assert refused(change_form("p", "v", now, breathing=True) | {"valueBoolean": True}) == 422
    twice = change_form("p", "v", now, breathing=True)
    twice["component"] *= 2
    assert refused(twice) == 422
    not_checked = change_form("p", "v", now, breathing=True, pain=True)
    not_checked["component"][1] = {
        "code": {"coding": [{"system": "urn:homewatch:early-detection", "code": "pain"}]},
        "dataAbsentReason": {"text": "not checked"},
    }
    assert findr_fhir.decide_resource(not_checked, account, now=now).items == {"breathing": True}  # type: ignore[union-attr]
    assert refused(good | {"unknownElement": 1}) == 400
    assert refused(good | {"resourceType": "Patient"}) == 403
    deep: Any = "x"
    for _ in range(900):  # as deep as the JSON parser lets a sender nest
        deep = [deep]
    assert refused(good | {"resourceType": deep}) == 403
    assert refused(good | {"code": deep}) == 400
    extension: dict[str, Any] = {"url": "urn:x", "valueString": "x"}
    for _ in range(400):
        extension = {"url": "urn:x", "extension": [extension]}
    assert refused(good | {"extension": [extension]}) == 400


# --- fuzzing: no JSON makes the decider fail --------------------------------------------------------------

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
_KEYS = (
    "resourceType",
    "status",
    "code",
    "component",
    "subject",
    "effectiveDateTime",
    "identifier",
    "class",
    "period",
    "valueBoolean",
    "category",
)


def _valid_resources() -> list[dict[str, Any]]:
    now = _now() - timedelta(hours=1)
    return [
        change_form("p-anna", "v-1", now, breathing=True, general=False),
        change_item("p-anna", "v-2", now, "pain", True),
        encounter("p-anna", "e-1", now - timedelta(days=2), now),
    ]


@st.composite
def _mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid resource with one element replaced by any JSON, or removed, or one nested value changed."""
    resource = dict(draw(st.sampled_from(_valid_resources())))
    key = draw(st.sampled_from(_KEYS))
    if draw(st.booleans()):
        resource.pop(key, None)
    else:
        resource[key] = draw(_JSON)
    return resource


_ENTRY = st.one_of(_JSON, _mutated().map(lambda r: {"resource": r}), st.builds(dict, resource=_JSON))


@hypothesis_settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.lists(_ENTRY, max_size=5).map(
            lambda entries: json.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries}).encode()
        ),
    )
)
def test_any_payload_is_decided_into_4xx_refusals_or_valid_records(payload: bytes) -> None:
    for role, scope in (("homecare_system", "Observation"), ("hospital_system", "Encounter")):
        account = findr_fhir.Account("x", "0101", role, frozenset({f"system/{scope}.write"}))
        try:
            decision = findr_fhir.decide(payload, account, max_bytes=MAX_BYTES, now=datetime.now(UTC))
        except findr_fhir.Refused as whole:
            assert 400 <= whole.status < 500
            continue
        for decided in decision.entries:
            if decided.refused is not None:
                assert 400 <= decided.refused.status < 500 and decided.record is None
            else:
                assert decided.record is not None and set(
                    decided.record.items if isinstance(decided.record, StaffObservation) else {}
                ) <= set(CHANGE_OBSERVATIONS)
                orjson.dumps(decided.record.resource)


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(entries=st.lists(_mutated(), min_size=1, max_size=4), nul=st.booleans())
def test_mutated_entries_sent_through_the_app_never_fail_it(
    client: TestClient, settings: GatewaySettings, db: Conn, entries: list[dict[str, Any]], nul: bool
) -> None:
    if nul:  # a NUL character, which jsonb cannot store, in a text FHIR leaves free
        first = entries[0]
        if isinstance(first.get("code"), dict):
            entries[0] = first | {"code": first["code"] | {"text": "Tidlig\u0000opsporing"}}
        if isinstance(first.get("class"), dict):
            entries[0] = first | {"class": first["class"] | {"display": "inpatient\u0000"}}
    body = bundle(
        *[e if isinstance(e.get("resourceType"), str) else e | {"resourceType": "X"} for e in entries]
    )
    for account in (ACCOUNTS.homecare, ACCOUNTS.hospital):
        answer = _post(client, system_token(settings, account), body)
        assert answer.status_code == 200, answer.text
        assert all(s in ("200", "201") or s.startswith("4") for s in statuses(answer.json())), answer.text


def test_the_cli_adds_a_system_account_without_a_password_and_its_token_posts(
    client: TestClient, settings: GatewaySettings, db: Conn, database_url: str
) -> None:
    runner = CliRunner()
    added = runner.invoke(
        app,
        ["gateway", "user", "add", "ehr-new", "--municipality", "0101", "--role", "homecare_system"],
        env={"HOMEWATCH_DATABASE_URL": database_url},
    )
    assert added.exit_code == 0, added.output  # no password asked
    assert "added homecare_system ehr-new of municipality 0101" in added.stdout
    printed = runner.invoke(
        app,
        ["gateway", "token", "--role", "homecare_system", "--municipality", "0101", "--subject", "ehr-new"],
        env={"HOMEWATCH_SECRET_KEY": "test-secret-of-the-api-tests"},
    )
    assert printed.exit_code == 0, printed.output
    headers = {"Authorization": f"Bearer {printed.stdout.strip()}"}
    answer = _post(client, headers, bundle(change_form("p-anna", "v-cli", _now(), general=True)))
    assert statuses(answer.json()) == ["201"]
    with_password = runner.invoke(
        app,
        [
            *("gateway", "user", "add", "sp-new", "--municipality", "0101", "--role", "hospital_system"),
            "--password-stdin",
        ],
        env={"HOMEWATCH_DATABASE_URL": database_url},
        input="a long enough password\n",
    )
    assert with_password.exit_code == 2 and "no password" in with_password.output
