"""POST /fhir: a hub's batch Bundle over HTTPS, decided and stored exactly as over MQTT."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from injected_faults import refuse_quarantine
from psycopg import sql
from psycopg_pool import ConnectionPool

from fhir_contract.observation import build_bundle, build_observation
from fhir_contract.readings import Quantity, Reading
from gateway.api.app import create_app
from gateway.api.auth import SESSION_COOKIE, create_user, mint_token
from gateway.api.fhir_model import observation_id
from gateway.settings import GatewaySettings
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.repository import Municipality, Patient, quarantined

FHIR_JSON = "application/fhir+json"
OWN, OTHER = "0101", "0147"
AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.fixture
def enrolled(database_url: str) -> str:
    """Two municipalities, each with one patient, hub and pulse oximeter: hub1 (own) and hub2 (other)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        homes = [
            Home(
                Patient(municipality, patient, f"Patient {patient}"),
                hub,
                (HomeDevice(oximeter, "pulse-oximeter"),),
            )
            for municipality, patient, hub, oximeter in (
                (OWN, "p1", "hub1", "OXI1"),
                (OTHER, "p2", "hub2", "OXI2"),
            )
        ]
        enroll_homes(conn, [Municipality(m, f"Municipality {m}") for m in (OWN, OTHER)], homes)
        create_user(conn, "anna", OWN, "nurse", "a password of anna's")  # nurse_token's subject
    return database_url


def spo2(value: float, at: datetime = AT, patient: str = "p1", device: str = "OXI1") -> dict[str, Any]:
    return build_observation(
        Reading("spo2", Quantity(Decimal(str(value)), "%")),
        patient_id=patient,
        device_id=device,
        hub_id="hub1",
        effective=at,
    )


def payload(*observations: dict[str, Any]) -> bytes:
    return orjson.dumps(build_bundle(list(observations)))


def hub_token(settings: GatewaySettings, hub: str = "hub1", municipality: str = OWN) -> dict[str, str]:
    token = mint_token(settings, role="hub", municipality_id=municipality, subject=hub)
    return {"Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON}


def nurse_token(settings: GatewaySettings, municipality: str = OWN) -> dict[str, str]:
    token = mint_token(settings, role="nurse", municipality_id=municipality, subject="anna")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def post(client: TestClient, settings: GatewaySettings, enrolled: str) -> Iterator[Any]:
    def send(body: bytes, headers: dict[str, str] | None = None) -> Any:
        return client.post("/fhir", content=body, headers=headers or hub_token(settings))

    yield send


def statuses(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    Bundle.model_validate(body)
    assert body["type"] == "batch-response"
    return [entry["response"]["status"] for entry in body["entry"]]


def outcome_codes(response: Any, status: int) -> list[str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    OperationOutcome.model_validate(response.json())
    return [issue["details"]["coding"][0]["code"] for issue in response.json()["issue"]]


def stored_count(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM observations").fetchone()
    return int(row[0]) if row else 0


# --- storing -------------------------------------------------------------------------------------


def test_new_observations_are_201_and_readable_at_their_location(
    post: Any, client: TestClient, settings: GatewaySettings, enrolled: str
) -> None:
    observations = [spo2(95), spo2(96, AT + timedelta(minutes=1))]
    response = post(payload(*observations))
    assert statuses(response) == ["201 Created", "201 Created"]
    locations = [entry["response"]["location"] for entry in response.json()["entry"]]
    ids = [
        observation_id(OWN, o["device"]["reference"][7:], o["identifier"][0]["value"]) for o in observations
    ]
    assert locations == [f"Observation/{i}" for i in ids]
    read = client.get(f"/fhir/{locations[1]}", headers=nurse_token(settings))
    assert read.status_code == 200 and read.json()["valueQuantity"]["value"] == 96
    assert stored_count(enrolled) == 2


def test_posting_the_same_bundle_twice_stores_once_and_answers_200(post: Any, enrolled: str) -> None:
    body = payload(spo2(95), spo2(96, AT + timedelta(minutes=1)))
    assert statuses(post(body)) == ["201 Created", "201 Created"]
    assert statuses(post(body)) == ["200 OK", "200 OK"]
    assert stored_count(enrolled) == 2


def test_a_reading_repeated_within_one_bundle_is_created_once(post: Any, enrolled: str) -> None:
    reading = spo2(95)
    assert statuses(post(payload(reading, reading))) == ["201 Created", "200 OK"]
    assert stored_count(enrolled) == 1


def test_rejected_entries_get_their_own_outcome_in_order_and_spare_their_neighbours(
    post: Any, enrolled: str
) -> None:
    impossible = spo2(97, AT + timedelta(minutes=1))
    impossible["valueQuantity"]["value"] = 127  # the hub would send it as dataAbsentReason; another sender
    foreign = spo2(93, AT + timedelta(minutes=2), patient="p2", device="OXI2")
    not_an_observation = {"resourceType": "Patient", "id": "p1"}
    response = post(
        payload(spo2(95), impossible, foreign, not_an_observation, spo2(94, AT + timedelta(hours=1)))
    )
    assert statuses(response) == [
        "201 Created",
        "422 Unprocessable Entity",
        "403 Forbidden",
        "400 Bad Request",
        "201 Created",
    ]
    entries = response.json()["entry"]
    codes = [
        entry["response"]["outcome"]["issue"][0]["details"]["coding"][0]["code"] for entry in entries[1:4]
    ]
    assert codes == ["impossible-value", "not-authorised", "invalid-fhir"]
    assert entries[2]["response"]["outcome"]["issue"][0]["expression"] == ["Bundle.entry[2].resource"]
    assert stored_count(enrolled) == 2
    with psycopg.connect(enrolled) as conn:
        rows = quarantined(conn, OWN)
    assert sorted(row.reason.split(":")[0] for row in rows) == [
        "impossible-value",
        "invalid-fhir",
        "not-authorised",
    ]
    assert {row.topic for row in rows} == {"homewatch/v1/0101/hub1/observations"}
    assert {row.hub_id for row in rows} == {"hub1"}
    with psycopg.connect(enrolled) as conn:  # counted in /metrics beside the MQTT workers
        counted = conn.execute(
            "SELECT messages_received, observations_stored, duplicates FROM ingest_metrics"
            " WHERE worker = 'http-post'"
        ).fetchone()
        by_reason = dict(
            conn.execute("SELECT reason, count FROM ingest_rejections WHERE worker = 'http-post'").fetchall()
        )
    assert counted == (1, 2, 0)
    assert by_reason == {"impossible-value": 1, "not-authorised": 1, "invalid-fhir": 1}


def test_a_row_the_database_refuses_is_rejected_alone(post: Any, enrolled: str) -> None:
    # jsonb cannot hold \u0000, which FHIR and the contract allow in a string (as on the MQTT path).
    poisoned = spo2(96, AT + timedelta(minutes=7))
    poisoned["note"] = [{"text": "nurse wrote \x00 here"}]
    response = post(payload(spo2(95), poisoned, spo2(94, AT + timedelta(minutes=9))))
    assert statuses(response) == ["201 Created", "422 Unprocessable Entity", "201 Created"]
    issue = response.json()["entry"][1]["response"]["outcome"]["issue"][0]
    assert issue["details"]["coding"][0]["code"] == "unstorable"
    assert stored_count(enrolled) == 2
    with psycopg.connect(enrolled) as conn:
        [row] = quarantined(conn, OWN)
    assert row.reason.startswith("unstorable:")


def test_patients_with_new_data_are_announced_to_the_scorer_once(
    post: Any, settings: GatewaySettings, enrolled: str
) -> None:
    body = payload(spo2(95))
    with psycopg.connect(enrolled, autocommit=True) as listener:
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(settings.scorer_channel)))
        assert statuses(post(body)) == ["201 Created"]
        assert statuses(post(body)) == ["200 OK"]  # nothing new: nothing to announce
        heard = [orjson.loads(n.payload) for n in listener.notifies(timeout=1.0)]
    # The patient, with the earliest effective time of the readings stored: the scorer scores from there.
    assert heard == [{"m": OWN, "p": {"p1": AT.isoformat()}}]


# --- whole-message rejections --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "not-json"),
        (b'{"resourceType": "Observation"}', "not-a-bundle"),
        (b'{"resourceType": "Bundle", "type": "transaction", "entry": []}', "not-a-bundle"),
    ],
)
def test_a_payload_that_is_not_a_batch_bundle_is_a_400_and_quarantined(
    post: Any, enrolled: str, body: bytes, code: str
) -> None:
    assert outcome_codes(post(body), 400) == [code]
    with psycopg.connect(enrolled) as conn:
        [row] = quarantined(conn, OWN)
    assert row.reason.startswith(f"{code}:") and row.payload == body.decode()


def test_a_payload_over_the_size_limit_is_413(enrolled: str, pool: ConnectionPool[Any]) -> None:
    body = payload(spo2(95))
    settings = GatewaySettings(database_url=enrolled, secret_key="limits", max_payload_bytes=len(body) - 1)
    with TestClient(create_app(settings, pool)) as client:
        refused = client.post("/fhir", content=body + b" " * 10_000, headers=hub_token(settings))
        assert outcome_codes(refused, 413) == ["too-large"]
        exact = client.post("/fhir", content=body[:-1], headers=hub_token(settings))
        assert exact.status_code == 400  # at the limit it is read (and here is cut JSON)
    assert stored_count(enrolled) == 0


@pytest.mark.parametrize(("hub", "municipality"), [("ghost", OWN), ("hub2", OWN), ("hub1", OTHER)])
def test_a_hub_not_enrolled_in_its_tokens_municipality_is_403(
    post: Any, settings: GatewaySettings, enrolled: str, hub: str, municipality: str
) -> None:
    response = post(payload(spo2(95)), hub_token(settings, hub, municipality))
    assert outcome_codes(response, 403) == ["unknown-hub"]
    assert stored_count(enrolled) == 0


# --- who may post --------------------------------------------------------------------------------


def test_only_a_hubs_token_may_post(post: Any, client: TestClient, settings: GatewaySettings) -> None:
    body = payload(spo2(95))
    nurse = post(body, {**nurse_token(settings), "Content-Type": FHIR_JSON})
    assert nurse.status_code == 403 and nurse.json()["issue"][0]["code"] == "forbidden"
    anonymous = client.post("/fhir", content=body, headers={"Content-Type": FHIR_JSON})
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"


def test_a_hubs_token_reads_nothing(client: TestClient, settings: GatewaySettings, enrolled: str) -> None:
    headers = hub_token(settings)
    for path in ("/fhir/Observation", "/fhir/Patient/p1", "/fhir/Device/OXI1", "/fhir/RiskAssessment"):
        response = client.get(path, headers=headers)
        assert response.status_code == 403, path
        assert response.json()["issue"][0]["code"] == "forbidden"
    client.cookies.set(SESSION_COOKIE, headers["Authorization"].removeprefix("Bearer "))
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_a_body_that_is_not_json_by_its_type_is_415(post: Any, settings: GatewaySettings) -> None:
    headers = {**hub_token(settings), "Content-Type": "application/xml"}
    response = post(b"<Bundle/>", headers)
    assert response.status_code == 415 and response.json()["issue"][0]["code"] == "not-supported"


# --- no hub reaches another's readings (issue 15) --------------------------------------------------


def test_a_hub_of_another_municipality_posting_an_identifier_first_neither_hides_nor_answers_for_it(
    post: Any, client: TestClient, settings: GatewaySettings, enrolled: str
) -> None:
    genuine = spo2(93, AT + timedelta(minutes=30))
    squatter = spo2(60, AT + timedelta(minutes=30), patient="p2", device="OXI2")
    squatter["identifier"] = genuine["identifier"]
    squatter["extension"][0]["valueReference"]["reference"] = "Device/hub2"
    assert statuses(post(payload(squatter), hub_token(settings, "hub2", OTHER))) == ["201 Created"]
    response = post(payload(genuine))
    assert statuses(response) == ["201 Created"]  # before the fix: "200 OK", and nothing stored for hub1
    location = response.json()["entry"][0]["response"]["location"]
    read = client.get(f"/fhir/{location}", headers=nurse_token(settings))
    assert read.status_code == 200 and read.json()["valueQuantity"]["value"] == 93
    assert stored_count(enrolled) == 2


def test_the_same_reading_with_other_values_is_409_conflict_and_quarantined(post: Any, enrolled: str) -> None:
    first = spo2(95, AT + timedelta(minutes=40))
    changed = spo2(70, AT + timedelta(minutes=40))
    assert statuses(post(payload(first))) == ["201 Created"]
    response = post(payload(first, changed, spo2(96, AT + timedelta(minutes=41))))
    assert statuses(response) == ["200 OK", "409 Conflict", "201 Created"]
    issue = response.json()["entry"][1]["response"]["outcome"]["issue"][0]
    assert (issue["code"], issue["details"]["coding"][0]["code"]) == ("conflict", "conflict")
    with psycopg.connect(enrolled) as conn:
        reasons = [r[0] for r in conn.execute("SELECT reason FROM quarantine")]
    assert len(reasons) == 1 and reasons[0].startswith("conflict: ")
    assert stored_count(enrolled) == 2


# --- poison over HTTP (issue 15: the MQTT worker's poison gave 500 here) -----------------------------


def test_the_issues_poison_payloads_are_answered_per_entry_not_500(post: Any, enrolled: str) -> None:
    end_of_time = spo2(95)
    end_of_time["effectiveDateTime"] = "9999-12-31T23:59:59-14:00"
    deep = payload(spo2(96)).replace(
        b'"resource":{', b'"resource":' + b"[" * 1000 + b"]" * 1000 + b',"x":{', 1
    )
    assert statuses(post(payload(end_of_time))) == ["422 Unprocessable Entity"]
    assert statuses(post(deep)) == ["400 Bad Request"]
    with psycopg.connect(enrolled) as conn:
        reasons = sorted(str(r[0]).split(":")[0] for r in conn.execute("SELECT reason FROM quarantine"))
    assert reasons == ["implausible-time", "invalid-fhir"]


def test_a_bundle_that_cannot_be_stored_is_set_aside_and_answered_422(post: Any, enrolled: str) -> None:
    refuse_quarantine(enrolled, "NEW.reason LIKE 'impossible-value%'")
    bad = spo2(96, AT + timedelta(minutes=50))
    bad["valueQuantity"]["value"] = 140
    assert outcome_codes(post(payload(spo2(94, AT + timedelta(minutes=51)), bad)), 422) == ["unstorable"]
    assert statuses(post(payload(spo2(93, AT + timedelta(minutes=52))))) == ["201 Created"]
    with psycopg.connect(enrolled) as conn:
        [reason] = [str(r[0]) for r in conn.execute("SELECT reason FROM quarantine")]
    assert reason.startswith("unstorable: the message could not be stored")
    assert stored_count(enrolled) == 1


def test_a_bundle_that_cannot_even_be_quarantined_is_dead_lettered_and_answered_422(
    post: Any, enrolled: str
) -> None:
    refuse_quarantine(enrolled, "true")
    bad = spo2(96, AT + timedelta(minutes=55))
    bad["valueQuantity"]["value"] = 140
    body = payload(bad)
    assert outcome_codes(post(body), 422) == ["dead-lettered"]
    with psycopg.connect(enrolled) as conn:
        [(kept,)] = conn.execute("SELECT payload FROM dead_letters").fetchall()
    assert bytes(kept) == body


def test_a_database_that_is_away_is_503_with_retry_after(
    settings: GatewaySettings, pg_admin_url: str
) -> None:
    base, _, query = pg_admin_url.partition("?")
    missing = f"{base.rsplit('/', 1)[0]}/no_such_database?{query}"
    away: ConnectionPool[Any] = ConnectionPool(missing, min_size=1, open=True, timeout=1)
    try:
        with TestClient(create_app(settings, away)) as client:
            response = client.get("/fhir/Observation", headers=nurse_token(settings))
            page = client.get("/login")
    finally:
        away.close()
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["issue"][0]["code"] == "transient"
    assert page.status_code == 200  # a page that needs no database still answers
