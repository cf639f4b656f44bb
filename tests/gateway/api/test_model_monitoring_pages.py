"""Issue 19: the administrator watches the active model on live data (``GET /admin/models/monitoring``).

The real app on a real PostgreSQL. Copenhagen (0101) has SYNTHETIC scored patient-days of its active
model (the registered default, whose held-out report promised AUROC 0.75) that no longer fit: every
patient was admitted, the model predicted 2 % and ranked at random, so the page must show the deciles
and the drift warning; an earlier version scored some days too, so both versions are listed. Aarhus
(0202) has a handful of days of its own version, too few admissions to judge. Each administrator sees
her own municipality only, a system administrator picks one, a nurse gets 403.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from gateway.alerts.admission_risk import record_admission_risk
from gateway.api.app import create_app
from gateway.api.auth import SESSION_COOKIE, User, create_user, issue_token
from gateway.api.language import LANGUAGE_COOKIE
from gateway.settings import GatewaySettings
from gateway.store import model_registry as registry
from gateway.store.findr_inputs import HospitalStay, store_encounter
from gateway.store.migrate import migrate
from models.monitoring import MIN_ADMISSIONS

Conn = psycopg.Connection[Any]
KBH, AARHUS = "0101", "0202"
ADMIN_KBH = User("admin-kbh", KBH, "municipality_admin")
ADMIN_AARHUS = User("admin-aarhus", AARHUS, "municipality_admin")
OPS = User("ops", KBH, "system_admin")
NURSE = User("nurse-kbh", KBH, "nurse")
DEFAULT = "admission-risk-test-default"
OLD = "admission-risk-0101-old"
AARHUS_LOCAL = "admission-risk-0202-local"
KBH_PATIENTS = 30
AARHUS_PATIENTS = 3
NOW = datetime.now(UTC)
PROMISE = {
    "held_out": {"patients": 120, "patient_days": 9000, "admissions": 60},
    "methods": {
        "model": {"auroc": 0.75, "auroc_ci": [0.72, 0.78]},
        "news2": {"auroc": 0.6, "auroc_ci": [0.57, 0.63]},
    },
    "margin": 0.02,
}


def _patients(conn: Conn, municipality: str, count: int) -> list[str]:
    ids = [f"pt-{municipality}-{i:02d}" for i in range(count)]
    for pid in ids:
        conn.execute(
            "INSERT INTO patients (municipality_id, id, name) VALUES (%s, %s, %s)",
            (municipality, pid, f"Secret Name {pid}"),
        )
    return ids


def _plant(conn: Conn, municipality: str, ids: list[str], now: datetime, versions: dict[int, str]) -> None:
    """Daily risks (about 2 %, at random) on days -89 .. -31 of each patient, by the version ``versions``
    names for that day (the first key at or below it), and one admission of each patient on a day
    between -60 and -36 (three days in hospital)."""
    rng = np.random.default_rng(7)
    with conn.transaction():
        for i, pid in enumerate(ids):
            admitted = now - timedelta(days=60 - (i % 25), hours=2)
            store_encounter(
                conn,
                HospitalStay(
                    municipality,
                    pid,
                    f"urn:h|{pid}",
                    "finished",
                    "IMP",
                    admitted,
                    admitted + timedelta(days=3),
                    "hospital",
                    "fhir",
                    {},
                ),
            )
            for offset in range(-89, -30):
                at = now + timedelta(days=offset)
                if admitted.date() <= at.date() <= (admitted + timedelta(days=3)).date():
                    continue
                version = versions[max(k for k in versions if k <= offset)]
                p = float(rng.uniform(0.01, 0.03))
                record_admission_risk(conn, municipality, pid, p, ["SYNTHETIC"], version, at)


@pytest.fixture(scope="module")
def monitoring_url(pg_admin_url: str) -> Iterator[str]:
    """One migrated database with the planted world for the whole module: the pages only read it (and
    write audit rows), so planting 1,800 scores once is enough."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, query = pg_admin_url.partition("?")
    url = f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
            _world(conn, NOW)
        yield url
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _world(db: Conn, now: datetime) -> None:
    db.execute(
        "INSERT INTO municipalities (id, name) VALUES (%s, 'København'), (%s, 'Aarhus')", (KBH, AARHUS)
    )
    for user in (ADMIN_KBH, ADMIN_AARHUS, OPS, NURSE):
        create_user(db, user.username, user.municipality_id, user.role, "a-long-password-1")
    registry.register_version(
        db,
        version=DEFAULT,
        municipality_id=None,
        kind="default",
        created_by="homewatch",
        source="shipped",
        model_bytes=b"not a model: the page never loads it",
        metadata={"model": DEFAULT},
        card="SYNTHETIC test card",
        metrics=PROMISE,
    )
    _plant(db, KBH, _patients(db, KBH, KBH_PATIENTS), now, {-89: OLD, -80: DEFAULT})
    _plant(db, AARHUS, _patients(db, AARHUS, AARHUS_PATIENTS), now, {-89: AARHUS_LOCAL})
    # A Copenhagen patient scored 5 days ago and admitted 2 days ago: the outcome is known, but the day's
    # 30 days have not passed, so it waits (and is not in the figures).
    db.execute(
        "INSERT INTO patients (municipality_id, id, name) VALUES (%s, 'pt-0101-recent', 'Recent')", (KBH,)
    )
    record_admission_risk(db, KBH, "pt-0101-recent", 0.02, ["SYNTHETIC"], DEFAULT, now - timedelta(days=5))
    store_encounter(
        db,
        HospitalStay(
            KBH,
            "pt-0101-recent",
            "urn:h|recent",
            "in-progress",
            "IMP",
            now - timedelta(days=2),
            None,
            "hospital",
            "fhir",
            {},
        ),
    )


@pytest.fixture(scope="module")
def settings(monitoring_url: str) -> GatewaySettings:
    return GatewaySettings(
        database_url=monitoring_url, secret_key=SecretStr("test-secret-of-the-monitoring-tests")
    )


@pytest.fixture(scope="module")
def client(settings: GatewaySettings, monitoring_url: str) -> Iterator[TestClient]:
    with (
        ConnectionPool(monitoring_url, min_size=1, max_size=4, open=True) as pool,
        TestClient(create_app(settings, pool)) as test_client,
    ):
        yield test_client


@pytest.fixture
def db(monitoring_url: str) -> Iterator[Conn]:
    with psycopg.connect(monitoring_url, autocommit=True) as conn:
        yield conn


def _as(client: TestClient, settings: GatewaySettings, user: User, language: str = "en") -> None:
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, issue_token(settings, user))
    client.cookies.set(LANGUAGE_COOKIE, language)


def _table(html: str, css_class: str) -> str:
    found = re.search(rf'<table class="{css_class}">.*?</table>', html, re.DOTALL)
    assert found is not None, f"no table {css_class}"
    return found[0]


def test_the_administrator_sees_deciles_auroc_against_news2_and_the_drift_warning(
    client: TestClient, settings: GatewaySettings, db: Conn
) -> None:
    _as(client, settings, ADMIN_KBH)
    page = client.get("/admin/models/monitoring")
    assert page.status_code == 200, page.text
    html = page.text
    assert f"Active model: {DEFAULT}" in html
    assert "SYNTHETIC" in html and "no evidence of clinical validity" in html
    # The drift warning, with the findings that hold: calibration far off (every patient was admitted,
    # 2 % predicted) and an AUROC whose interval lies below the 0.72 promised.
    warning = re.search(
        r'<div class="alert alert-error verdict verdict-drift" role="alert">.*?</div>', html, re.DOTALL
    )
    assert warning is not None
    assert "Drift warning" in warning[0]
    assert "Calibration has drifted" in warning[0]
    assert "Discrimination has fallen" in warning[0] and "0.720" in warning[0]
    # The deciles: ten rows with a caption and header cells scoped, adding up to the patient-days.
    deciles = _table(html, "deciles")
    assert "<caption>" in deciles and '<th scope="col"' in deciles and '<th scope="row">10</th>' in deciles
    shown = [int(n) for n in re.findall(r'<th scope="row">\d+</th>\s*<td class="number">(\d+)</td>', deciles)]
    assert len(shown) == 10
    figures = _table(html, "monitoring-figures")
    assert "AUROC of NEWS2 on the same patient-days" in figures
    days = int(re.search(r"<dt>Patient-days</dt><dd>(\d+)</dd>", html)[1])  # type: ignore[index]
    admissions = int(re.search(r"<dt>Admissions</dt><dd>(\d+)</dd>", html)[1])  # type: ignore[index]
    assert sum(shown) == days > 0
    assert admissions == KBH_PATIENTS >= MIN_ADMISSIONS
    assert "1 more patient-day is already followed by an admission" in html
    # The chart: a labelled SVG image with one point per decile.
    chart = re.search(r'<svg class="chart calibration-chart" role="img".*?</svg>', html, re.DOTALL)
    assert chart is not None and chart[0].count("<circle") == 10 and "<title" in chart[0]
    # Both versions that scored in the window, side by side.
    versions = _table(html, "monitoring-versions")
    assert DEFAULT in versions and OLD in versions
    # No patient: neither a name nor an id.
    assert "Secret Name" not in html and "pt-0101" not in html
    # Aarhus's version never appears in Copenhagen's page.
    assert AARHUS_LOCAL not in html
    # The view is audited, without a patient.
    row = db.execute(
        "SELECT username, patient_id, detail FROM audit_log WHERE action = 'view-model-monitoring'"
    ).fetchone()
    assert row is not None and row[0] == ADMIN_KBH.username and row[1] is None and KBH in row[2]


def test_another_municipalitys_administrator_sees_only_her_own(
    client: TestClient, settings: GatewaySettings
) -> None:
    _as(client, settings, ADMIN_AARHUS)
    page = client.get("/admin/models/monitoring")
    assert page.status_code == 200
    html = page.text
    assert AARHUS_LOCAL in html and OLD not in html
    assert "Too few admissions to judge." in html and "verdict-drift" not in html
    # Aarhus's days only: 3 patients.
    assert re.search(r"<dt>Patients</dt><dd>3</dd>", html)
    assert "pt-0101" not in html and "Secret Name" not in html
    # Asking for Copenhagen's is refused.
    assert client.get("/admin/models/monitoring?municipality=0101").status_code == 403


def test_a_system_administrator_picks_the_municipality(client: TestClient, settings: GatewaySettings) -> None:
    _as(client, settings, OPS)
    own = client.get("/admin/models/monitoring")
    assert own.status_code == 200 and "verdict-drift" in own.text
    aarhus = client.get("/admin/models/monitoring?municipality=0202")
    assert aarhus.status_code == 200 and AARHUS_LOCAL in aarhus.text and OLD not in aarhus.text
    assert client.get("/admin/models/monitoring?municipality=9999").status_code == 404


def test_a_nurse_gets_403(client: TestClient, settings: GatewaySettings) -> None:
    _as(client, settings, NURSE)
    assert client.get("/admin/models/monitoring").status_code == 403


def test_the_page_speaks_danish_with_danish_numbers(client: TestClient, settings: GatewaySettings) -> None:
    _as(client, settings, ADMIN_KBH, language="da")
    page = client.get("/admin/models/monitoring")
    assert page.status_code == 200
    assert '<html lang="da">' in page.text
    figures = _table(page.text, "monitoring-figures")
    assert re.search(r"0,\d{3}", figures)  # an AUROC with a decimal comma
