"""The web form for FiNDR's inputs (issue 19): a home-care nurse records an early-detection observation
(ten items, each "change seen", "no change" or "not checked"; a time, now by default) and a hospital
admission and its discharge; what she records is stored with source 'web' and a generated identifier,
audited, and shown on the patient page beside what the systems sent. Errors stand beside their fields;
the form needs the session's token; a GP, and a nurse for a patient not hers, are refused. Real
PostgreSQL, the real app."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient
from findr_world import ACCOUNTS, PASSWORD, bundle, change_form, encounter, seed, statuses, system_token
from seed import audit_rows, login

from gateway.api.auth import create_user
from gateway.settings import GatewaySettings
from models.codes import CHANGE_OBSERVATIONS

Conn = psycopg.Connection[Any]
COPENHAGEN = ZoneInfo("Europe/Copenhagen")


@pytest.fixture
def db(database_url: str) -> Any:
    with psycopg.connect(database_url, autocommit=True) as conn:
        seed(conn)
        yield conn


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found[1]


def _local(moment: datetime) -> str:
    return moment.astimezone(COPENHAGEN).strftime("%Y-%m-%dT%H:%M")


def _observe(client: TestClient, patient: str = "p-anna", **fields: str) -> Any:
    page = client.get(f"/patients/{patient}/early-detection")
    assert page.status_code == 200, page.text
    data = {"csrf": _csrf(page.text), **fields}
    return client.post(f"/patients/{patient}/early-detection", data=data, follow_redirects=False)


def test_the_form_offers_ten_items_not_checked_and_now_each_with_its_label(
    client: TestClient, db: Conn
) -> None:
    login(client, ACCOUNTS.nurse, PASSWORD)
    page = client.get("/patients/p-anna/early-detection").text
    assert page.count("<fieldset") == len(CHANGE_OBSERVATIONS) == 10
    for key in CHANGE_OBSERVATIONS:
        assert f'name="item-{key}" value="unchecked" checked' in page
        for value in ("seen", "none", "unchecked"):
            assert f'<label for="item-{key}-{value}">' in page
    assert "<legend>Changed breathing</legend>" in page and "Generally unwell" in page
    now = re.search(r'id="effective" name="effective" value="([^"]+)"', page)
    assert now is not None
    shown = datetime.fromisoformat(now[1]).replace(tzinfo=COPENHAGEN)
    assert abs(shown - datetime.now(UTC)) < timedelta(minutes=2)
    assert audit_rows(db, "view-early-detection-form") == [
        (ACCOUNTS.nurse, "0101", "view-early-detection-form", "p-anna")
    ]


def test_an_observation_is_stored_from_the_web_audited_and_shown_on_the_patient_page(
    client: TestClient, settings: GatewaySettings, db: Conn
) -> None:
    at = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    login(client, ACCOUNTS.nurse, PASSWORD)
    answer = _observe(
        client,
        **{"item-breathing": "seen", "item-general": "seen", "item-sleep": "none", "effective": _local(at)},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/patients/p-anna#staff-hospital"
    row = db.execute(
        "SELECT municipality_id, effective, items, recorded_by, source, identifier, resource->>'resourceType'"
        " FROM staff_observations"
    ).fetchone()
    assert row is not None
    assert row[:5] == (
        "0101",
        at,
        {"breathing": True, "general": True, "sleep": False},
        ACCOUNTS.nurse,
        "web",
    )
    assert re.fullmatch(r"urn:homewatch:web\|[0-9a-f-]{36}", row[5]) and row[6] == "Observation"
    assert audit_rows(db, "record-staff-observation") == [
        (ACCOUNTS.nurse, "0101", "record-staff-observation", "p-anna")
    ]
    # A form the home-care system sent shows beside it, with the changes seen in words.
    sent = bundle(change_form("p-anna", "v-1", at - timedelta(days=1), mobility=False, pain=False))
    assert statuses(
        client.post("/fhir", content=sent, headers=system_token(settings, ACCOUNTS.homecare)).json()
    ) == ["201"]
    page = client.get("/patients/p-anna").text
    section = page[page.index('id="staff-hospital"') : page.index('id="limits"')]
    assert "Changed breathing, generally unwell" in section and ACCOUNTS.nurse in section
    assert "No change seen (2 items checked)" in section and "from the home-care record system" in section
    assert section.index("Changed breathing") < section.index("No change seen")  # newest first
    assert 'href="/patients/p-anna/early-detection"' in section


def test_a_form_with_nothing_checked_or_a_time_in_the_future_is_shown_again_with_the_errors(
    client: TestClient, db: Conn
) -> None:
    login(client, ACCOUNTS.nurse, PASSWORD)
    nothing = _observe(client, effective=_local(datetime.now(UTC)))
    assert nothing.status_code == 400
    assert 'class="error-summary"' in nothing.text and 'href="#item-appetite-seen"' in nothing.text
    assert 'id="item-appetite-error"' in nothing.text and "Check at least one item" in nothing.text
    future = _observe(
        client, **{"item-pain": "seen", "effective": _local(datetime.now(UTC) + timedelta(days=1))}
    )
    assert future.status_code == 400 and "The time cannot be in the future." in future.text
    assert 'id="effective-error"' in future.text and 'aria-invalid="true"' in future.text
    # What she chose is kept.
    assert 'name="item-pain" value="seen" checked' in future.text
    garbled = _observe(client, **{"item-pain": "seen", "effective": "tomorrow"})
    assert garbled.status_code == 400 and "such as 2026-01-05 09:30" in garbled.text
    assert db.execute("SELECT count(*) FROM staff_observations").fetchone() == (0,)


def test_a_nurse_records_an_admission_and_later_its_discharge(client: TestClient, db: Conn) -> None:
    login(client, ACCOUNTS.nurse, PASSWORD)
    admitted = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=3)
    page = client.get("/patients/p-anna/hospital-stays")
    assert page.status_code == 200 and "No hospital stays recorded." in page.text
    answer = client.post(
        "/patients/p-anna/hospital-stays",
        data={"csrf": _csrf(page.text), "admitted": _local(admitted), "discharged": ""},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert db.execute("SELECT status, period_start, period_end, source FROM encounters").fetchall() == [
        ("in-progress", admitted, None, "web")
    ]
    assert "In hospital" in client.get("/patients/p-anna").text
    form = client.get("/patients/p-anna/hospital-stays").text
    stay = re.search(r'name="stay" value="([^"]+)"', form)
    assert stay is not None and "In hospital since" in form
    early = client.post(
        "/patients/p-anna/hospital-stays",
        data={"csrf": _csrf(form), "stay": stay[1], "discharged-0": _local(admitted - timedelta(days=1))},
    )
    assert early.status_code == 400 and "The discharge cannot be before the admission." in early.text
    assert 'id="discharged-0-error"' in early.text
    home = admitted + timedelta(days=2)
    done = client.post(
        "/patients/p-anna/hospital-stays",
        data={"csrf": _csrf(form), "stay": stay[1], "discharged-0": _local(home)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert db.execute("SELECT status, period_start, period_end FROM encounters").fetchall() == [
        ("finished", admitted, home)
    ]
    assert [r[2] for r in audit_rows(db, "record-hospital-stay")] == ["record-hospital-stay"] * 2
    assert "In hospital since" not in client.get("/patients/p-anna/hospital-stays").text


def test_a_discharge_the_hospital_system_had_not_sent_yet_updates_its_stay(
    client: TestClient, settings: GatewaySettings, db: Conn
) -> None:
    admitted = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=2)
    sent = bundle(encounter("p-anna", "e-1", admitted, klass="ACUTE"))
    assert statuses(
        client.post("/fhir", content=sent, headers=system_token(settings, ACCOUNTS.hospital)).json()
    ) == ["201"]
    login(client, ACCOUNTS.nurse, PASSWORD)
    form = client.get("/patients/p-anna/hospital-stays").text
    assert 'name="stay" value="urn:oid:1.2.208.176.2.1|e-1"' in form
    home = admitted + timedelta(days=1)
    client.post(
        "/patients/p-anna/hospital-stays",
        data={"csrf": _csrf(form), "stay": "urn:oid:1.2.208.176.2.1|e-1", "discharged-0": _local(home)},
    )
    assert db.execute("SELECT identifier, class_code, period_end, source FROM encounters").fetchall() == [
        ("urn:oid:1.2.208.176.2.1|e-1", "ACUTE", home, "web")
    ]


def test_only_a_nurse_records_and_only_for_her_own_patients_with_the_sessions_token(
    client: TestClient, db: Conn
) -> None:
    create_user(db, "gp-hansen", "0101", "gp", PASSWORD)
    db.execute("UPDATE patients SET gp_username = 'gp-hansen' WHERE id = 'p-anna'")
    login(client, "gp-hansen", PASSWORD)
    assert client.get("/patients/p-anna/early-detection").status_code == 403
    page = client.get("/patients/p-anna").text  # the GP sees the section, without the buttons
    assert 'id="staff-hospital"' in page and "/early-detection" not in page
    client.cookies.clear()
    login(client, ACCOUNTS.nurse, PASSWORD)
    assert client.get("/patients/p-other/early-detection").status_code == 404
    assert client.get("/patients/p-other/hospital-stays").status_code == 404
    csrf = _csrf(client.get("/patients/p-anna/early-detection").text)
    other = client.post("/patients/p-other/early-detection", data={"csrf": csrf, "item-pain": "seen"})
    assert other.status_code == 404
    forged = client.post("/patients/p-anna/early-detection", data={"csrf": "forged", "item-pain": "seen"})
    assert forged.status_code == 403
    assert db.execute("SELECT count(*) FROM staff_observations").fetchone() == (0,)
