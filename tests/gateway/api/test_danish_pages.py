"""Issue 17: every page of the staff speaks Danish, with no English left.

A world with what each page can show (a worklist with a 30-day risk and its factors, NEWS2 and its
reasons, open alerts of NEWS2 and of a disease rule, a lagging reading, earlier reviews, notes, own limits,
devices named in both vocabularies, readings that are preliminary or have no value) is rendered in Danish
(the default: no cookie, no Accept-Language) as a nurse, an administrator and a visitor see it. Each page
must hold none of the English source texts of the catalogue that Danish words differently (the texts of
``gateway/locale/da/LC_MESSAGES/messages.po``, cut at their placeholders), and none of the English words
of the models' stored sentences (``gateway.api.model_words``).

Left as stored, and so not checked: the rows of the audit log (action codes, which its filter takes, and
the log's own details), and names and ids of people, teams and devices.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, get_args

import psycopg
import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from review_world import PASSWORD, blood_pressure, enrol, measure, municipality, risk, score
from seed import login

from edge_agent.config import DeviceKind
from fhir_contract.device import device_kinds
from fhir_contract.observation import build_observation
from fhir_contract.readings import Absent, Quantity, Reading
from fhir_contract.terminology import reading_types
from fhir_contract.validate import validate_observation
from gateway.api.app import create_app
from gateway.api.auth import User, create_user
from gateway.api.i18n import catalogue_path, use_language
from gateway.api.patient_pages import device_kind
from gateway.api.presenters import kind
from gateway.settings import GatewaySettings
from gateway.store import notes, thresholds
from gateway.store.repository import Device, enroll_device, insert_observations
from gateway.store.reviews import record_review
from models.triage import Limits

NURSE = User("anna", "0101", "nurse")
ADMIN = User("admin", "0101", "municipality_admin")
# The 30-day risk's factors as models.admission_risk.describe writes them.
RISK_FACTORS = (
    "Weight up 3.5 kg in 3 days",
    "SpO2 5 points below her usual 95 %",
    "Staff noted changed breathing twice this week",
)
# Words of the models' stored English sentences (alert reasons, rule reasons, risk factors, NEWS2 notes).
MODEL_WORDS = re.compile(
    r"\b(?:usual|above|below|points|aggregate|Not measured|scale \d|latest|fired|Staff noted|"
    r"Weight up|Average weight|hospital|red score|On (?:air|oxygen)|Consciousness|Heart-failure|COPD)\b"
)


def _store(conn: psycopg.Connection[Any], patient: str, resource: dict[str, Any]) -> None:
    result = insert_observations(conn, "0101", f"hub-{patient}", [validate_observation(resource)])
    assert result.inserted == 1


def _seed(conn: psycopg.Connection[Any], now: datetime) -> None:
    municipality(conn, "0101", "København")
    create_user(conn, NURSE.username, "0101", "nurse", PASSWORD)
    create_user(conn, ADMIN.username, "0101", "municipality_admin", PASSWORD)
    devices = ("blood-pressure-cuff", "pulse-oximeter", "scale", "thermometer")
    enrol(
        conn,
        "0101",
        "p-hf",
        "Karen Høj",
        devices=devices,
        conditions=("heart-failure", "copd"),
        phone="+45 11",
    )
    # Devices enrolled under the contract's names (fhir/devices.json), as hubs may report them.
    enroll_device(conn, Device("0101", "p-hf-bpm", "hub-p-hf", "p-hf", "blood-pressure-monitor"))
    enroll_device(conn, Device("0101", "p-hf-ws", "hub-p-hf", "p-hf", "weight-scale"))
    enrol(conn, "0101", "p-late", "Ole Sen", conditions=("diabetes",))
    enrol(conn, "0101", "p-none", "Nina Intet", devices=())

    def ago(**delta: float) -> datetime:
        return now - timedelta(**delta)

    # Three weeks of steady readings, then weight up 3.5 kg in 3 days, SpO2 90 %, pulse 125, 38,6 °C.
    for day in range(21, 3, -1):
        measure(conn, "0101", "p-hf", "body-weight", 80.0, ago(days=day))
        measure(conn, "0101", "p-hf", "spo2", 95, ago(days=day))
        measure(conn, "0101", "p-hf", "pulse-rate-oximeter", 72, ago(days=day))
        measure(conn, "0101", "p-hf", "body-temperature", 36.8, ago(days=day))
        blood_pressure(conn, "0101", "p-hf", 130, 80, ago(days=day))
    for day, weight in ((2, 81.5), (1, 82.5)):
        measure(conn, "0101", "p-hf", "body-weight", weight, ago(days=day, hours=1))
    measure(conn, "0101", "p-hf", "body-weight", 83.5, ago(hours=2))
    measure(conn, "0101", "p-hf", "spo2", 90, ago(hours=2))
    measure(conn, "0101", "p-hf", "pulse-rate-oximeter", 125, ago(hours=2))
    measure(conn, "0101", "p-hf", "body-temperature", 38.6, ago(hours=2))
    blood_pressure(conn, "0101", "p-hf", 95, 60, ago(hours=2))
    # A value the thermometer could not measure, and a preliminary one.
    thermometer = {"patient_id": "p-hf", "device_id": "p-hf-thermo", "hub_id": "hub-p-hf"}
    _store(
        conn,
        "p-hf",
        build_observation(
            Reading("body-temperature", Absent("error")), effective=ago(hours=3), **thermometer
        ),
    )
    preliminary = Reading("body-temperature", Quantity(Decimal("37.1"), "Cel"))
    _store(
        conn, "p-hf", build_observation(preliminary, effective=ago(hours=4), preliminary=True, **thermometer)
    )
    outcome = score(conn, "0101", "p-hf", ago(minutes=30), since=ago(days=3))  # as each reading arrived
    assert outcome.alert_raised
    risk(conn, "0101", "p-hf", 0.30, ago(days=9), reasons=RISK_FACTORS)
    risk(conn, "0101", "p-hf", 0.42, ago(hours=1), reasons=RISK_FACTORS)
    # The other patient's cuff last sent 40 hours ago: lagging, and no phone number to call.
    blood_pressure(conn, "0101", "p-late", 135, 85, ago(hours=40))
    measure(conn, "0101", "p-late", "pulse-rate-cuff", 70, ago(hours=40))

    record_review(conn, NURSE, "p-hf", "other", "Ringede; hun har det godt.", "yellow", now=ago(days=8))
    notes.add_note(conn, NURSE, "p-hf", "Hævede ankler.", client=None)
    thresholds.set_limits(conn, NURSE, "p-hf", {"spo2": Limits(88.0, 91.5, None, None)}, client=None)


@pytest.fixture
def danish(database_url: str, pool: ConnectionPool[Any]) -> Iterator[TestClient]:
    """A client of an app with the default settings (Danish), sending no Accept-Language, over the world."""
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(database_url, autocommit=True) as conn:
        _seed(conn, now)
    settings = GatewaySettings(database_url=database_url, secret_key="test-secret-of-the-danish-pages")
    app = create_app(settings, pool)
    app.state.clock = lambda: now
    with TestClient(app, headers={"Accept-Language": ""}) as client:
        yield client


@cache
def english_fragments() -> tuple[str, ...]:
    """The English source texts that Danish words differently, cut at their placeholders: what a page in
    Danish must not say."""
    with catalogue_path("da").open("rb") as po:
        catalogue = read_po(po, locale="da")
    found: set[str] = set()
    for message in catalogue:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        danish = message.string if isinstance(message.string, tuple) else (message.string,)
        for msgid in ids:
            for fragment in re.split(r"%\(\w+\)[sd]|%%", msgid):
                fragment = fragment.strip(" .,:;()\u2013\u2014-\u2192\u00b7\u201c\u201d")
                if len(re.findall(r"[A-Za-z]", fragment)) < 4 or any(fragment in text for text in danish):
                    continue  # too short to tell, or Danish says it the same way (a name, "NEWS2")
                found.add(fragment)
    return tuple(sorted(found, key=len, reverse=True))


def _visible(page: str) -> str:
    """What a person reads or hears: the text, SVG titles included, and the aria-labels."""
    labels = " ".join(re.findall(r'aria-label="([^"]*)"', page))
    text = re.sub(r"<[^>]+>", " ", page)
    return html_lib.unescape(f"{text} {labels}")


def _english_left(page: str) -> list[str]:
    text = _visible(page)
    # A word of a code ("view-patient" in the audit log's hint) is not a word of the text.
    left = [f for f in english_fragments() if re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", text)]
    left += sorted({m[0] for m in MODEL_WORDS.finditer(text)})
    return left


def _danish_page(response: Any, status: int = 200) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-language"] == "da"
    page: str = response.text
    assert '<html lang="da">' in page
    return page


def _form_token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found[1]


NURSE_PAGES = (
    "/",
    "/review",
    "/patients/p-hf",
    "/patients/p-hf?days=90",
    "/patients/p-hf/readings",
    "/patients/p-hf/reviews",
    "/patients/p-hf/thresholds",
    "/patients/p-hf/plan",
    "/patients/p-late",
    "/patients/p-late/reviews",
    "/patients/p-none",
    "/no-such-page",
    "/patients/p-nobody",
)


def test_the_catalogue_gives_the_check_english_to_look_for() -> None:
    fragments = english_fragments()
    for english in (
        "Worklist",
        "Weekly review",
        "Open alert",
        "Data lagging — call the patient",
        "Acknowledge",
    ):
        assert english in fragments
    assert "NEWS2" not in fragments and "Triage" not in fragments  # the same in Danish


def test_every_page_of_a_nurse_is_danish(danish: TestClient) -> None:
    login(danish, NURSE.username)
    problems = {}
    for path in NURSE_PAGES:
        status = 404 if path in ("/no-such-page", "/patients/p-nobody") else 200
        left = _english_left(_danish_page(danish.get(path), status))
        if left:
            problems[path] = left
    assert not problems, problems


def test_the_pages_show_what_the_check_is_about(danish: TestClient) -> None:
    """The world reaches the texts the check covers: otherwise a page without them would pass."""
    login(danish, NURSE.username)
    worklist = _visible(danish.get("/").text)
    for danish_text in (
        "Arbejdsliste",
        "Indlæggelsesrisiko inden for 30 dage",
        "Vægt steget 3,5 kg på 3 dage",  # a factor of the 30-day risk
        "SpO₂ 5 point under borgerens vanlige 95 %",
        "Åben alarm (høj)",
        "NEWS2 8 (høj, samlet score 8)",  # the alert's reason, worded from its parts
        "Data mangler — ring til borgeren",
        "Intet telefonnummer registreret.",
        "Målinger: ingen endnu",
    ):
        assert danish_text in worklist, danish_text
    patient = _visible(danish.get("/patients/p-hf").text)
    for danish_text in (
        "Kvittér for alarm",
        "Vægtøgning ved hjertesvigt",  # a disease rule's alert and its history, titled in Danish
        "Blodtryksmåler",  # blood-pressure-monitor, as the contract names it
        "Vægt",  # weight-scale
        "Tærskelværdier",
        "Ringede; hun har det godt.",  # free text, as written
    ):
        assert danish_text in patient, danish_text
    readings = _visible(danish.get("/patients/p-hf/readings").text)
    assert "ingen værdi (fejl i måleren)" in readings and "(foreløbig)" in readings


def test_forms_with_errors_are_danish(danish: TestClient) -> None:
    login(danish, NURSE.username)
    token = _form_token(danish.get("/patients/p-hf/thresholds").text)
    refused = danish.post("/patients/p-hf/thresholds", data={"csrf": token, "spo2-red_low": "meget lav"})
    page = _danish_page(refused, 400)
    assert "Tærskelværdierne blev ikke gemt" in page and not _english_left(page)
    refused = danish.post(
        "/patients/p-hf/reviews", data={"csrf": token, "return": "history", "outcome": "other"}
    )
    page = _danish_page(refused, 400)
    assert "Der er et problem" in page and "Vælg en triagefarve" in page and not _english_left(page)
    refused = danish.post("/patients/p-hf/notes", data={"csrf": token, "text": " "})
    page = _danish_page(refused, 400)
    assert "Skriv notatet, før du gemmer det." in page and not _english_left(page)


def test_the_audit_log_is_danish(danish: TestClient) -> None:
    login(danish, ADMIN.username)
    page = _danish_page(danish.get("/admin/audit"))
    rows = page.index("<tbody>")
    # The rows are the log as stored: action codes (what the filter takes) and details.
    outside_rows = page[:rows] + page[page.index("</tbody>") :]
    assert "Adgangslog" in page and not _english_left(outside_rows)
    assert "Sygeplejerske" in page[rows:]  # the role in a row is a word, in Danish


def test_the_login_page_and_a_wrong_password_are_danish(danish: TestClient) -> None:
    assert not _english_left(_danish_page(danish.get("/login")))
    token = _form_token(danish.get("/login").text)
    wrong = danish.post("/login", data={"username": NURSE.username, "password": "forkert", "csrf": token})
    page = _danish_page(wrong, 401)
    assert "Forkert brugernavn eller adgangskode." in page and not _english_left(page)
    assert not _english_left(_danish_page(danish.get("/no-such-page"), 404))


def test_the_check_finds_english(danish: TestClient) -> None:
    """The check itself: the same page in English is full of what it looks for."""
    login(danish, NURSE.username)
    english = danish.get("/patients/p-hf", headers={"Accept-Language": "en"}).text
    left = _english_left(english)
    assert "Acknowledge" in left and "Vital signs" in left and "Heart-failure" in left


# --- the names a page shows for codes: every code the contract has gets a Danish name -------------------


@pytest.mark.parametrize("code", sorted(reading_types()))
def test_every_reading_kind_of_the_contract_has_a_danish_name(code: str) -> None:
    with use_language("da"):
        shown = kind(code)
    with use_language("en"):
        english = kind(code)
    assert shown != code and english != code  # never the key itself
    assert shown != english or shown in ("SpO₂", "BMI")


@pytest.mark.parametrize("code", sorted({*device_kinds(), *get_args(DeviceKind)}))
def test_every_device_kind_in_either_vocabulary_has_a_danish_name(code: str) -> None:
    """A hub enrols "blood-pressure-cuff", the contract names it "blood-pressure-monitor": both are words."""
    with use_language("da"):
        shown = device_kind(code)
    assert shown != code and not re.search(r"[a-z]-[a-z]", shown)


def test_a_device_has_one_name_whichever_vocabulary_enrolled_it() -> None:
    with use_language("da"):
        assert device_kind("blood-pressure-monitor") == device_kind("blood-pressure-cuff") == "Blodtryksmåler"
        assert device_kind("weight-scale") == device_kind("scale") == "Vægt"
        assert device_kind(None) == "ikke registreret"
