"""``/admin/homes`` shows a household: the hub's other residents, whose User Index is whose on a shared
device, whose a personal device is, and the hub a resident lives with (ids only, as the page names
patients)."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from gateway.administration import homes
from gateway.administration.household import add_resident, share_device
from gateway.api.auth import SESSION_COOKIE, User, create_user, issue_token
from gateway.settings import GatewaySettings

ADMIN = User("admin-kbh", "0101", "municipality_admin")


def _household(db: psycopg.Connection[Any], settings: GatewaySettings) -> None:
    homes.add_municipality(db, "0101", "København", by="setup")
    create_user(db, ADMIN.username, ADMIN.municipality_id, ADMIN.role, "a password of the test")
    for patient, name in (("pt-ane", "Ane Hansen"), ("pt-bent", "Bent Hansen")):
        homes.add_patient(
            db, "0101", patient, name=name, care_team=None, phone=None, conditions=[], birth_date=None,
            by="setup",
        )  # fmt: skip
    homes.enroll_hub(db, settings, "0101", "hub-home", "pt-ane", by="setup", accounts=None)
    add_resident(db, "hub-home", "pt-bent", by="setup", publisher=None)
    for index, patient in ((1, "pt-ane"), (2, "pt-bent")):
        share_device(
            db, settings, "hub-home", patient, "scale", "AA:BB:CC:00:00:01", index, by="setup", publisher=None
        )
    homes.assign_device(
        db, settings, "hub-home", "pt-bent", "pulse-oximeter", "AA:BB:CC:00:00:02", by="setup", publisher=None
    )


def _row(page: str, patient: str) -> str:
    found = re.search(rf'<tr id="patient-{patient}">(.*?)</tr>', page, re.S)
    assert found is not None, patient
    return " ".join(found.group(1).split())


def test_the_homes_page_shows_the_household(
    client: TestClient, db: psycopg.Connection[Any], settings: GatewaySettings
) -> None:
    _household(db, settings)
    client.cookies.set(SESSION_COOKIE, issue_token(settings, ADMIN))
    page = client.get("/admin/homes")
    assert page.status_code == 200
    ane, bent = _row(page.text, "pt-ane"), _row(page.text, "pt-bent")
    assert "Also measures: pt-bent" in ane
    assert "User 1: pt-ane · User 2: pt-bent" in ane
    assert "Patient pt-bent&#39;s" in ane or "Patient pt-bent's" in ane
    assert "Lives with hub hub-home" in bent and "No hub in service" not in bent
