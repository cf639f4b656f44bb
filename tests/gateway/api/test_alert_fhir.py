"""The alerts as FHIR: ``/fhir/Flag``, ``/fhir/Task`` and ``/fhir/Communication`` (search and read by id).

Alerts are raised by the lifecycle (``gateway.alerts.lifecycle.record_trigger``) and changed by people's
actions (``gateway.store.alert_actions``); what the GP was sent is in ``alert_deliveries``. Every resource
served is validated with ``fhir.resources`` (R4B); statuses follow the lifecycle; searches page by their
``next`` links; each viewer sees only her assignment (a nurse her care teams, a GP her patients) and an
administrator nothing; a third-party client (fhirpy) searches Tasks over real HTTP.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import requests
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.task import Task
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound
from review_world import enrol, municipality
from seed import PASSWORD, audit_rows, bearer, news2_detail, score

from gateway.alerts import email
from gateway.alerts.lifecycle import Trigger, record_trigger
from gateway.api import alert_resources
from gateway.api.auth import User, create_user
from gateway.api.fhir_search import SEARCH_PARAMS
from gateway.settings import GatewaySettings
from gateway.store import alert_actions
from gateway.store.alert_deliveries import message_facts
from gateway.store.alert_fhir_reads import COMMUNICATION_NAMESPACE, FILTERS, RESOURCE_TYPES, communication_id
from gateway.store.users import create_care_team

FHIR_JSON = "application/fhir+json"
MODELS = {"Flag": Flag, "Task": Task, "Communication": Communication}
ANNA = User("anna", "0101", "nurse")
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class AlertWorld:
    """The alerts' public ids by name, and the RiskAssessment the NEWS2 alert of p-1 stood on."""

    ids: dict[str, str]
    alert_ids: dict[str, int]
    risk_assessment: str


def _alert(conn: psycopg.Connection[Any], trigger: Trigger, at: datetime) -> tuple[int, str]:
    with conn.transaction():
        outcome = record_trigger(conn, trigger, now=at)
    assert outcome.action == "raise" and outcome.alert_id is not None
    row = conn.execute("SELECT public_id::text FROM alerts WHERE id = %s", (outcome.alert_id,)).fetchone()
    assert row is not None
    return outcome.alert_id, row[0]


@pytest.fixture
def alerts(database_url: str) -> AlertWorld:
    """København (default team and "nord"), Frederiksberg; nurses anna (default), nora (nord), bo
    (Frederiksberg); dr-gp, the GP of p-1 (København) and p-frb (Frederiksberg); an administrator. Alerts:
    p-1 NEWS2 high (3 h ago, on a score) and own limit SpO2 medium (2 h); p-2 (synthetic) disease rule
    medium (1 h); p-nord NEWS2 high (1 h); p-frb NEWS2 high (30 min)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        municipality(conn, "0101", "København")
        municipality(conn, "0147", "Frederiksberg")
        create_care_team(conn, "0101", "nord", "Hjemmeplejen Nord")
        create_user(conn, "anna", "0101", "nurse", PASSWORD)
        create_user(conn, "nora", "0101", "nurse", PASSWORD, care_teams=("nord",))
        create_user(conn, "bo", "0147", "nurse", PASSWORD)
        create_user(conn, "dr-gp", "0147", "gp", PASSWORD)
        create_user(conn, "admin", "0101", "municipality_admin", PASSWORD)
        conn.execute("UPDATE users SET full_name = 'Anna Andersen' WHERE username = 'anna'")
        conn.execute("UPDATE users SET full_name = 'Dr. Grete Poulsen' WHERE username = 'dr-gp'")
        enrol(conn, "0101", "p-1", "Karen Et", gp="dr-gp")
        enrol(conn, "0101", "p-2", "Erik To", synthetic=True)
        enrol(conn, "0101", "p-nord", "Niels Nord", team="nord")
        enrol(conn, "0147", "p-frb", "Frede Frb", gp="dr-gp")
        score_id = score(
            conn, "0101", "p-1", 7, "high", NOW - timedelta(hours=3), news2_detail({"spo2": (88, 3)})
        )
        found = conn.execute("SELECT public_id::text FROM scores WHERE id = %s", (score_id,)).fetchone()
        assert found is not None
        # name -> municipality, patient, kind, key, severity, reason, hours ago
        triggers: dict[str, tuple[str, str, Any, str, str, str, float]] = {
            "news2": ("0101", "p-1", "news2", "", "high", "NEWS2 7", 3.0),
            "spo2": ("0101", "p-1", "threshold", "spo2", "medium", "SpO2 88 % under 90", 2.0),
            "copd": ("0101", "p-2", "disease-rule", "copd", "medium", "COPD: SpO2 fell", 1.0),
            "nord": ("0101", "p-nord", "news2", "", "high", "NEWS2 8", 1.0),
            "frb": ("0147", "p-frb", "news2", "", "high", "NEWS2 9", 0.5),
        }
        ids, alert_ids = {}, {}
        for name, (*fields, hours) in triggers.items():
            at = NOW - timedelta(hours=hours)
            trigger = Trigger(*fields, as_of=at, score_id=score_id if name == "news2" else None)
            alert_ids[name], ids[name] = _alert(conn, trigger, at)
        return AlertWorld(ids, alert_ids, found[0])


def _get(client: TestClient, headers: dict[str, str], url: str) -> dict[str, Any]:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = response.json()
    return body


def _search(
    client: TestClient, headers: dict[str, str], resource_type: str, query: str = ""
) -> dict[str, Any]:
    bundle = _get(client, headers, f"/fhir/{resource_type}?{query}")
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset"
    for entry in bundle.get("entry", []):
        MODELS[resource_type].model_validate(entry["resource"])
        assert entry["fullUrl"] == f"http://testserver/fhir/{resource_type}/{entry['resource']['id']}"
    return bundle


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


def _read(
    client: TestClient, headers: dict[str, str], resource_type: str, resource_id: str
) -> dict[str, Any]:
    resource = _get(client, headers, f"/fhir/{resource_type}/{resource_id}")
    MODELS[resource_type].model_validate(resource)
    return resource


def _outcome(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    return str(OperationOutcome.model_validate(response.json()).issue[0].code)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- the mapping -----------------------------------------------------------------------------------------


def test_an_open_alert_is_an_active_flag_a_requested_task_and_a_communication_to_the_gp(
    client: TestClient, alerts: AlertWorld
) -> None:
    anna = bearer(client, "anna")
    public_id = alerts.ids["news2"]
    raised = _iso(NOW - timedelta(hours=3))

    flag = _read(client, anna, "Flag", public_id)
    assert flag["id"] == public_id and flag["status"] == "active"
    assert flag["category"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/flag-category",
        "code": "clinical",
        "display": "Clinical",
    }
    assert flag["code"]["coding"][0]["system"] == "urn:homewatch:alert-kind"
    assert flag["code"]["coding"][0]["code"] == "news2"
    assert flag["code"]["text"] == "NEWS2 alert, high severity"
    assert flag["subject"] == {"reference": "Patient/p-1"}
    assert flag["period"] == {"start": raised}
    assert flag["author"] == {"type": "Device", "display": "homewatch"}

    task = _read(client, anna, "Task", public_id)
    assert (task["status"], task["intent"], task["priority"]) == ("requested", "order", "asap")
    assert task["businessStatus"]["coding"][0]["code"] == "open"
    assert task["code"]["text"] == "triage/opfølgning af alarm"
    assert task["focus"] == {"reference": f"Flag/{public_id}"}
    assert task["for"] == {"reference": "Patient/p-1"}
    assert task["authoredOn"] == raised and task["lastModified"] == raised
    assert task["requester"] == {"type": "Device", "display": "homewatch"}
    assert task["owner"] == {
        "type": "CareTeam",
        "identifier": {"system": "urn:homewatch:care-team", "value": "0101"},
        "display": "Hjemmesygeplejen",
    }
    assert task["description"] == "NEWS2 7"
    assert task["reasonReference"] == {"reference": f"RiskAssessment/{alerts.risk_assessment}"}
    assert "note" not in task and "output" not in task

    medium = _read(client, anna, "Task", alerts.ids["spo2"])
    assert medium["priority"] == "urgent" and "reasonReference" not in medium
    assert _read(client, anna, "Flag", alerts.ids["spo2"])["code"]["text"] == (
        "Own limit crossed (spo2) alert, medium severity"
    )

    message = _read(client, anna, "Communication", communication_id(public_id))
    assert message["status"] == "not-done"  # no e-mail to the GP was queued
    assert message["subject"] == {"reference": "Patient/p-1"}
    assert message["about"] == [{"reference": f"Flag/{public_id}"}]
    assert message["recipient"] == [
        {
            "type": "Practitioner",
            "identifier": {"system": "urn:homewatch:user", "value": "dr-gp"},
            "display": "Dr. Grete Poulsen",
        }
    ]
    assert message["medium"][0]["coding"][0]["code"] == "EMAILWRIT"
    assert message["priority"] == "asap"
    # Nobody has an e-mail address here: no e-mail was queued, so none was sent and none is quoted.
    assert message["statusReason"] == {"text": alert_resources.NOT_SENT}
    assert not {"sent", "payload", "topic"} & set(message)


def test_every_literal_reference_can_be_read_at_this_server(client: TestClient, alerts: AlertWorld) -> None:
    anna = bearer(client, "anna")
    public_id = alerts.ids["news2"]
    served = [
        _read(client, anna, "Flag", public_id),
        _read(client, anna, "Task", public_id),
        _read(client, anna, "Communication", communication_id(public_id)),
    ]
    references = set()
    for resource in served:
        for value in resource.values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict) and "reference" in item:
                    references.add(item["reference"])
    assert references == {"Patient/p-1", f"Flag/{public_id}", f"RiskAssessment/{alerts.risk_assessment}"}
    for reference in references:
        assert client.get(f"/fhir/{reference}", headers=anna).status_code == 200, reference


def test_the_statuses_follow_the_lifecycle_to_resolved(
    client: TestClient, alerts: AlertWorld, db: Any
) -> None:
    anna = bearer(client, "anna")
    alert_id, public_id = alerts.alert_ids["news2"], alerts.ids["news2"]

    def task() -> dict[str, Any]:
        return _read(client, anna, "Task", public_id)

    acknowledged_at = NOW - timedelta(minutes=50)
    alert_actions.acknowledge(
        db, ANNA, alert_id, "Ringede; hun har det bedre.", at=acknowledged_at, client="t"
    )
    acknowledged = task()
    assert acknowledged["status"] == "accepted"
    assert acknowledged["lastModified"] == _iso(acknowledged_at)
    assert acknowledged["note"] == [
        {
            "authorReference": {
                "type": "Practitioner",
                "identifier": {"system": "urn:homewatch:user", "value": "anna"},
                "display": "Anna Andersen",
            },
            "time": _iso(acknowledged_at),
            "text": "Ringede; hun har det bedre.",
        }
    ]

    alert_actions.assign(db, ANNA, alert_id, "anna", at=NOW - timedelta(minutes=40), client="t")
    assigned = task()
    assert assigned["status"] == "in-progress"
    assert assigned["businessStatus"]["text"] == "Acknowledged, assigned to Anna Andersen"

    until = NOW + timedelta(hours=4)
    alert_actions.snooze(
        db, ANNA, alert_id, "Ser igen i eftermiddag", until, at=NOW - timedelta(minutes=30), client="t"
    )
    snoozed = task()
    assert snoozed["status"] == "on-hold"
    assert snoozed["statusReason"]["text"] == f"Snoozed until {until.isoformat()}: Ser igen i eftermiddag"
    assert _read(client, anna, "Flag", public_id)["status"] == "active"

    resolved_at = NOW - timedelta(minutes=20)
    alert_actions.resolve(db, ANNA, alert_id, "home-visit", "Besøgt; stabil.", at=resolved_at, client="t")
    flag = _read(client, anna, "Flag", public_id)
    assert flag["status"] == "inactive"
    assert flag["period"] == {"start": _iso(NOW - timedelta(hours=3)), "end": _iso(resolved_at)}
    done = task()
    assert done["status"] == "completed" and "statusReason" not in done
    assert done["output"] == [
        {
            "type": {"text": "Outcome"},
            "valueCodeableConcept": {
                "coding": [
                    {"system": "urn:homewatch:alert-outcome", "code": "home-visit", "display": "Home visit"}
                ],
                "text": "Home visit",
            },
        }
    ]
    assert [note["text"] for note in done["note"]] == ["Ringede; hun har det bedre.", "Besøgt; stabil."]
    assert done["note"][1]["time"] == _iso(resolved_at)


def test_a_worse_alert_is_requested_again(client: TestClient, alerts: AlertWorld, db: Any) -> None:
    anna = bearer(client, "anna")
    alert_id, public_id = alerts.alert_ids["spo2"], alerts.ids["spo2"]
    alert_actions.acknowledge(db, ANNA, alert_id, "Set", at=NOW - timedelta(minutes=90), client="t")
    assert _read(client, anna, "Task", public_id)["status"] == "accepted"
    worse = Trigger(
        "0101", "p-1", "threshold", "spo2", "high", "SpO2 84 % under 85", NOW - timedelta(minutes=5)
    )
    with db.transaction():
        assert record_trigger(db, worse, now=NOW - timedelta(minutes=5)).action == "worse"
    task = _read(client, anna, "Task", public_id)
    assert (task["status"], task["priority"]) == ("requested", "asap")


def _raised_event(db: Any, alert_id: int) -> int:
    event = db.execute(
        "SELECT id FROM alert_events WHERE alert_id = %s AND action = 'raised'", (alert_id,)
    ).fetchone()
    return int(event[0])


def _delivery(db: Any, alert_id: int, status: str, recipient: str = "gp@example.dk") -> int:
    sent_at = NOW - timedelta(minutes=10) if status == "sent" else None
    row = db.execute(
        "INSERT INTO alert_deliveries (municipality_id, alert_id, event_id, channel, recipient, username,"
        " audience, status, next_attempt_at, created_at, sent_at)"
        " SELECT municipality_id, id, %s, 'email', %s, 'dr-gp', 'gp', %s, %s, %s, %s FROM alerts"
        " WHERE id = %s RETURNING id",
        (_raised_event(db, alert_id), recipient, status, NOW, NOW, sent_at, alert_id),
    ).fetchone()
    return int(row[0])


def test_the_communication_says_what_became_of_the_e_mail_to_the_gp(
    client: TestClient, alerts: AlertWorld, db: Any, settings: GatewaySettings
) -> None:
    gp = bearer(client, "dr-gp")
    alert_id, wanted = alerts.alert_ids["news2"], communication_id(alerts.ids["news2"])
    delivery = _delivery(db, alert_id, "pending")
    assert _read(client, gp, "Communication", wanted)["status"] == "in-progress"
    db.execute("UPDATE alert_deliveries SET status = 'sent', sent_at = %s WHERE id = %s", (NOW, delivery))
    sent = _read(client, gp, "Communication", wanted)
    assert sent["status"] == "completed" and sent["sent"] == _iso(NOW) and "statusReason" not in sent
    # The e-mail as the dispatcher wrote it: kind, severity, initials and a link; no name, value or reason.
    facts = message_facts(db, alert_id, _raised_event(db, alert_id))
    assert facts is not None
    assert sent["topic"] == {"text": email.subject(facts, settings.default_language)}
    assert sent["payload"] == [{"contentString": email.body(facts, settings.web_base_url, "en")}]
    text = sent["payload"][0]["contentString"]
    assert f"{settings.web_base_url}/alerts/{alert_id}" in text and "K.E." in text
    assert "NEWS2 7" not in text and "Karen" not in text and "88" not in text
    # A care-team e-mail is not the GP's.
    other = alerts.alert_ids["spo2"]
    db.execute(
        "INSERT INTO alert_deliveries (municipality_id, alert_id, event_id, channel, recipient, audience,"
        " status, next_attempt_at, created_at, sent_at) SELECT municipality_id, alert_id, id, 'email',"
        " 'team@example.dk', 'care-team', 'sent', at, at, at FROM alert_events WHERE alert_id = %s",
        (other,),
    )
    _delivery(db, other, "failed")
    failed = _read(client, gp, "Communication", communication_id(alerts.ids["spo2"]))
    assert failed["status"] == "not-done" and "sent" not in failed
    assert failed["statusReason"]["text"] == alert_resources.FAILED
    by_status = _search(client, gp, "Communication", "status=completed")
    assert _ids(by_status) == [wanted]
    assert _ids(_search(client, gp, "Communication", "status=http://hl7.org/fhir/event-status|not-done")) == [
        communication_id(alerts.ids["frb"]),
        communication_id(alerts.ids["spo2"]),
    ]
    assert _ids(_search(client, gp, "Communication", f"sent=ge{_iso(NOW)[:10]}")) == [wanted]


def test_a_communication_id_is_the_name_based_uuid_of_the_alert_in_python_and_in_sql(
    client: TestClient, alerts: AlertWorld
) -> None:
    anna = bearer(client, "anna")
    bundle = _search(client, anna, "Communication")
    served = {
        entry["resource"]["about"][0]["reference"]: entry["resource"]["id"] for entry in bundle["entry"]
    }
    expected = {
        f"Flag/{alerts.ids[name]}": str(uuid.uuid3(COMMUNICATION_NAMESPACE, alerts.ids[name]))
        for name in ("news2", "spo2")
    }
    assert served == expected  # p-2 has no GP: no Communication
    for public_id in expected.values():
        assert uuid.UUID(public_id).version == 3
    assert communication_id(alerts.ids["news2"].upper()) == expected[f"Flag/{alerts.ids['news2']}"]
    spo2 = expected[f"Flag/{alerts.ids['spo2']}"]
    assert _ids(_search(client, anna, "Communication", f"_id={spo2.upper()}")) == [spo2]


# --- search ----------------------------------------------------------------------------------------------


def test_search_by_patient_and_status_pages_by_next_links(
    client: TestClient, alerts: AlertWorld, db: Any
) -> None:
    anna = bearer(client, "anna")
    newest_first = [alerts.ids[name] for name in ("copd", "spo2", "news2")]
    for resource_type in ("Flag", "Task"):
        assert _ids(_search(client, anna, resource_type)) == newest_first
        seen: list[str] = []
        bundle = _search(client, anna, resource_type, "_count=1")
        while True:
            assert bundle["total"] == 3 and len(seen) < 3, "a page repeats what an earlier page held"
            seen.extend(_ids(bundle))
            following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
            if not following:
                break
            parts = urlsplit(following[0])
            assert "_count=1" in parts.query
            bundle = _search(client, anna, resource_type, parts.query)
        assert seen == newest_first

    assert _ids(_search(client, anna, "Task", "patient=Patient/p-1")) == [
        alerts.ids["spo2"],
        alerts.ids["news2"],
    ]
    assert _ids(_search(client, anna, "Flag", "subject=p-2")) == [alerts.ids["copd"]]
    assert _ids(_search(client, anna, "Task", "patient=p-1&_sort=authored-on")) == [
        alerts.ids["news2"],
        alerts.ids["spo2"],
    ]
    alert_actions.resolve(db, ANNA, alerts.alert_ids["spo2"], "false-alarm", "", at=NOW, client="t")
    assert _ids(_search(client, anna, "Flag", "patient=p-1&status=inactive")) == [alerts.ids["spo2"]]
    assert _ids(_search(client, anna, "Flag", "status=active")) == [alerts.ids["copd"], alerts.ids["news2"]]
    assert _ids(_search(client, anna, "Task", "status=completed,on-hold")) == [alerts.ids["spo2"]]
    assert _ids(_search(client, anna, "Task", "status=http://hl7.org/fhir/task-status|requested")) == [
        alerts.ids["copd"],
        alerts.ids["news2"],
    ]
    assert _search(client, anna, "Task", "status=urn:other|requested")["total"] == 0
    assert _ids(_search(client, anna, "Task", f"_lastUpdated=ge{_iso(NOW)}")) == [alerts.ids["spo2"]]
    since = _iso(NOW - timedelta(hours=2, minutes=30))
    assert _ids(_search(client, anna, "Task", f"authored-on=gt{since}")) == [
        alerts.ids["copd"],
        alerts.ids["spo2"],
    ]
    assert _ids(_search(client, anna, "Flag", f"date=lt{since}")) == [alerts.ids["news2"]]
    both = f"{alerts.ids['news2']},{alerts.ids['copd'].upper()}"
    assert _ids(_search(client, anna, "Flag", f"_id={both}")) == [alerts.ids["copd"], alerts.ids["news2"]]
    assert _search(client, anna, "Flag", "_id=not-a-uuid")["total"] == 0


@pytest.mark.parametrize(
    "query",
    [
        "Flag?status=",
        "Flag?patient=Observation/x",
        "Task?_count=0",
        "Task?_sort=date",
        "Communication?_sort=sent",
        "Flag?date=tomorrow",
        "Task?_cursor=bm9wZQ",
    ],
)
def test_malformed_searches_are_a_400_operation_outcome(
    client: TestClient, alerts: AlertWorld, query: str
) -> None:
    response = client.get(f"/fhir/{query}", headers=bearer(client, "anna"))
    assert _outcome(response, 400) in ("invalid", "not-supported")


def test_unknown_parameters_are_ignored_unless_handling_is_strict(
    client: TestClient, alerts: AlertWorld
) -> None:
    anna = bearer(client, "anna")
    assert _search(client, anna, "Task", "owner=CareTeam/0101")["total"] == 3
    strict = client.get("/fhir/Task?owner=CareTeam/0101", headers={**anna, "Prefer": "handling=strict"})
    assert _outcome(strict, 400) == "not-supported"


# --- who sees what ---------------------------------------------------------------------------------------


def test_each_viewer_sees_only_her_assignment(client: TestClient, alerts: AlertWorld) -> None:
    nora = bearer(client, "nora")  # another team of the same municipality
    assert _ids(_search(client, nora, "Task")) == [alerts.ids["nord"]]
    assert _search(client, nora, "Flag", "patient=p-1")["total"] == 0
    assert _search(client, nora, "Communication")["total"] == 0  # p-nord has no GP

    bo = bearer(client, "bo")  # another municipality
    for resource_type in RESOURCE_TYPES:
        bundle = _search(client, bo, resource_type, "patient=p-1")
        assert bundle["total"] == 0 and "entry" not in bundle
    for resource_type, resource_id in (
        ("Flag", alerts.ids["news2"]),
        ("Task", alerts.ids["news2"]),
        ("Communication", communication_id(alerts.ids["news2"])),
    ):
        for who in (bo, nora):
            response = client.get(f"/fhir/{resource_type}/{resource_id}", headers=who)
            assert _outcome(response, 404) == "not-found"

    gp = bearer(client, "dr-gp")  # her patients in both municipalities
    assert _ids(_search(client, gp, "Flag")) == [alerts.ids[name] for name in ("frb", "spo2", "news2")]
    assert _search(client, gp, "Task", "patient=p-2")["total"] == 0
    assert _search(client, gp, "Communication")["total"] == 3
    assert _read(client, gp, "Task", alerts.ids["frb"])["owner"]["display"] == "Hjemmesygeplejen"


def test_an_administrator_gets_403(client: TestClient, alerts: AlertWorld) -> None:
    admin = bearer(client, "admin")
    for resource_type in RESOURCE_TYPES:
        assert _outcome(client.get(f"/fhir/{resource_type}", headers=admin), 403) == "forbidden"
        url = f"/fhir/{resource_type}/{alerts.ids['news2']}"
        assert _outcome(client.get(url, headers=admin), 403) == "forbidden"
        assert _outcome(client.get(url), 401) == "login"


def test_unknown_ids_are_404(client: TestClient, alerts: AlertWorld) -> None:
    anna = bearer(client, "anna")
    for resource_type in RESOURCE_TYPES:
        for wanted in ("not-a-uuid", str(uuid.uuid4())):
            assert _outcome(client.get(f"/fhir/{resource_type}/{wanted}", headers=anna), 404) == "not-found"
    # A Flag's id is not a Communication's.
    response = client.get(f"/fhir/Communication/{alerts.ids['news2']}", headers=anna)
    assert _outcome(response, 404) == "not-found"


def test_every_read_and_search_is_audited_per_patient(
    client: TestClient, alerts: AlertWorld, db: Any
) -> None:
    anna = bearer(client, "anna")
    before = len(audit_rows(db, "fhir-read"))
    _search(client, anna, "Flag")
    _read(client, anna, "Task", alerts.ids["news2"])
    _search(client, anna, "Communication", "patient=p-2")  # nothing seen: no patient
    rows = audit_rows(db, "fhir-read")[before:]
    assert rows == [
        ("anna", "0101", "fhir-read", "p-2"),
        ("anna", "0101", "fhir-read", "p-1"),
        ("anna", "0101", "fhir-read", "p-1"),
        ("anna", "0101", "fhir-read", None),
    ]


def test_a_synthetic_patients_resources_carry_the_test_data_label(
    client: TestClient, alerts: AlertWorld
) -> None:
    anna = bearer(client, "anna")
    htest = ("http://terminology.hl7.org/CodeSystem/v3-ActReason", "HTEST")
    for resource_type in ("Flag", "Task"):
        labels = _read(client, anna, resource_type, alerts.ids["copd"])["meta"]["security"]
        assert [(label["system"], label["code"]) for label in labels] == [htest]
        assert "security" not in _read(client, anna, resource_type, alerts.ids["news2"])["meta"]


def test_the_stores_filters_are_the_declared_search_parameters() -> None:
    for resource_type in RESOURCE_TYPES:
        assert set(FILTERS[resource_type]) == set(SEARCH_PARAMS[resource_type])


# --- a third-party client --------------------------------------------------------------------------------


@pytest.fixture
def server_url(app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn on a free 127.0.0.1 port (as test_fhirpy_client.py serves it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_fhirpy_searches_tasks_and_follows_them_to_their_flags(server_url: str, alerts: AlertWorld) -> None:
    token = requests.post(
        f"{server_url}/login/access-token", data={"username": "anna", "password": PASSWORD}, timeout=10
    ).json()["access_token"]
    fhir = SyncFHIRClient(
        f"{server_url}/fhir", authorization=f"Bearer {token}", requests_config={"timeout": 10}
    )
    tasks = fhir.resources("Task").search(patient="Patient/p-1", status="requested").limit(1).fetch_all()
    assert [t["id"] for t in tasks] == [alerts.ids["spo2"], alerts.ids["news2"]]
    oldest_first = fhir.resources("Task").search(patient="p-1").sort("authored-on").fetch_all()
    assert [t["id"] for t in oldest_first] == [alerts.ids["news2"], alerts.ids["spo2"]]
    flag = fhir.reference(reference=tasks[0]["focus"]["reference"]).to_resource()
    assert flag["status"] == "active" and flag["subject"]["reference"] == "Patient/p-1"
    assert fhir.resources("Flag").search(patient="p-frb").fetch_all() == []
    with pytest.raises(ResourceNotFound):
        fhir.reference("Task", alerts.ids["frb"]).to_resource()
