"""The patient page's forms: a patient's own limits (validated, with an error summary, kept with their
history, then used to triage every reading) and notes (append-only); both need the session's form
token, are audited, and reach only the viewer's patients. Real PostgreSQL, the real app."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from seed import World, audit_rows, login, observation

from gateway.api.limits_form import form_value, parse_limits
from models.triage import BOUNDS, VITALS

Conn = psycopg.Connection[Any]


def _csrf(html: str) -> str:
    """The session's form token, as every form of the page carries it."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found[1]


def _form_fields(html: str) -> dict[str, str]:
    """The limit fields of the thresholds form, as the browser would send them back."""
    return dict(
        re.findall(r'<input type="text" inputmode="decimal" id="[^"]+" name="([^"]+)" value="([^"]*)"', html)
    )


def _thresholds(client: TestClient, patient_id: str, **changes: str) -> Any:
    form = client.get(f"/patients/{patient_id}/thresholds").text
    data = {**_form_fields(form), **changes, "csrf": _csrf(form)}
    return client.post(f"/patients/{patient_id}/thresholds", data=data, follow_redirects=False)


def _stored(db: Conn, patient_id: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT vital, red_low, yellow_low, yellow_high, red_high, set_by FROM patient_thresholds"
        " WHERE patient_id = %s ORDER BY id",
        (patient_id,),
    ).fetchall()


def test_the_form_starts_from_the_news2_defaults_and_saving_it_unchanged_stores_nothing(
    client: TestClient, world: World, db: Conn
) -> None:
    login(client, world.nurse)
    fields = _form_fields(client.get("/patients/p-low/thresholds").text)
    assert set(fields) == {f"{vital}-{bound}" for vital in VITALS for bound in BOUNDS}
    assert (fields["spo2-red_low"], fields["spo2-yellow_low"], fields["spo2-yellow_high"]) == ("92", "96", "")
    assert fields["temperature-red_low"] == "35.1" and fields["weight-red_high"] == ""
    response = _thresholds(client, "p-low")
    assert response.status_code == 303 and response.headers["location"] == "/patients/p-low#limits"
    assert _stored(db, "p-low") == [] and audit_rows(db, "set-thresholds") == []


def test_own_limits_are_stored_audited_and_triage_every_reading(
    client: TestClient, world: World, db: Conn
) -> None:
    login(client, world.nurse)
    # p-low's SpO2 readings are 91..95 %: under the defaults 91 is red, the rest yellow.
    before = client.get("/patients/p-low/readings").text
    assert "Red: below 92 %" in before
    # A COPD patient's own normal: green from 90, red only below 88 (a decimal comma is fine).
    response = _thresholds(client, "p-low", **{"spo2-red_low": "88", "spo2-yellow_low": "90,0"})
    assert response.status_code == 303
    assert _stored(db, "p-low") == [("spo2", 88.0, 90.0, None, None, world.nurse)]
    assert audit_rows(db, "set-thresholds") == [(world.nurse, world.own, "set-thresholds", "p-low")]
    after = client.get("/patients/p-low/readings").text
    assert "Red: below" not in after and "Yellow: below" not in after and "Green: within the limits" in after
    limits = client.get("/patients/p-low").text
    row = limits[limits.index('<th scope="row">SpO₂') :].split("</tr>")[0]
    assert ">88<" in row and ">90<" in row and world.nurse in row


def test_changing_limits_again_keeps_the_history(client: TestClient, world: World, db: Conn) -> None:
    login(client, world.nurse)
    _thresholds(client, "p-low", **{"pulse-yellow_high": "100"})
    _thresholds(client, "p-low", **{"pulse-yellow_high": "95"})
    assert [row[3] for row in _stored(db, "p-low")] == [100.0, 95.0]
    form = client.get("/patients/p-low/thresholds").text
    assert _form_fields(form)["pulse-yellow_high"] == "95"
    history = form[form.index("<h2>Changes</h2>") :]
    assert history.count("<tr>") == 1 + 2


def test_limits_out_of_order_are_refused_with_an_error_summary_at_the_top(
    client: TestClient, world: World, db: Conn
) -> None:
    login(client, world.nurse)
    response = _thresholds(
        client, "p-low", **{"pulse-red_low": "60", "pulse-yellow_low": "50", "temperature-red_high": "warm"}
    )
    assert response.status_code == 400
    page = response.text
    summary = page[page.index('class="error-summary"') : page.index("<h1>")]
    assert (
        '<a href="#pulse-red_low">Pulse: red below (60) must not be more than yellow below (50)</a>'
        in summary
    )
    assert '<a href="#temperature-red_high">Temperature: red above must be a number' in summary
    assert re.search(
        r'id="pulse-red_low" name="pulse-red_low" value="60" autocomplete="off" aria-invalid="true"', page
    )
    assert 'aria-describedby="pulse-red_low-error"' in page and 'id="pulse-red_low-error"' in page
    assert 'value="warm"' in page  # what was typed is shown again
    assert _stored(db, "p-low") == [] and audit_rows(db, "set-thresholds") == []


def test_limits_need_the_form_token_and_a_patient_of_ones_own(
    client: TestClient, world: World, db: Conn
) -> None:
    login(client, world.nurse)
    forged = client.post("/patients/p-low/thresholds", data={"spo2-red_low": "80", "csrf": "forged"})
    assert forged.status_code == 403
    token = _csrf(client.get("/patients/p-low").text)
    other = client.post(
        f"/patients/{world.other_patient}/thresholds", data={"spo2-red_low": "80", "csrf": token}
    )
    assert other.status_code == 404
    assert _stored(db, "p-low") == [] and _stored(db, world.other_patient) == []


def test_a_note_is_added_shown_and_audited(client: TestClient, world: World, db: Conn) -> None:
    login(client, world.nurse)
    token = _csrf(client.get("/patients/p-high").text)
    response = client.post(
        "/patients/p-high/notes",
        data={"text": "Called: <b>short of breath</b>", "csrf": token},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/patients/p-high#notes"
    notes = client.get("/patients/p-high").text
    notes = notes[notes.index('<section id="notes"') :]
    assert "Called: &lt;b&gt;short of breath&lt;/b&gt;" in notes and world.nurse in notes
    assert audit_rows(db, "add-note") == [(world.nurse, world.own, "add-note", "p-high")]


def test_an_empty_note_is_refused_with_the_reason(client: TestClient, world: World, db: Conn) -> None:
    login(client, world.nurse)
    token = _csrf(client.get("/patients/p-high").text)
    response = client.post("/patients/p-high/notes", data={"text": "   ", "csrf": token})
    assert response.status_code == 400
    assert "The note was not saved" in response.text and "Write the note before saving it." in response.text
    assert db.execute("SELECT count(*) FROM patient_notes").fetchone() == (0,)
    assert audit_rows(db, "add-note") == []


def test_a_note_needs_the_form_token_and_a_patient_of_ones_own(
    client: TestClient, world: World, db: Conn
) -> None:
    login(client, world.nurse)
    assert client.post("/patients/p-high/notes", data={"text": "x", "csrf": "forged"}).status_code == 403
    token = _csrf(client.get("/patients/p-high").text)
    other = client.post(f"/patients/{world.other_patient}/notes", data={"text": "x", "csrf": token})
    assert other.status_code == 404
    assert db.execute("SELECT count(*) FROM patient_notes").fetchone() == (0,)


def test_a_note_cannot_be_changed_or_removed(client: TestClient, world: World, db: Conn) -> None:
    login(client, world.nurse)
    token = _csrf(client.get("/patients/p-high").text)
    client.post("/patients/p-high/notes", data={"text": "First visit", "csrf": token})
    for statement in ("UPDATE patient_notes SET text = 'changed'", "DELETE FROM patient_notes"):
        try:
            db.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            continue
        raise AssertionError(f"{statement} was allowed")
    assert db.execute("SELECT text FROM patient_notes").fetchall() == [("First visit",)]


def test_own_limits_change_the_triage_on_the_chart(client: TestClient, world: World, db: Conn) -> None:
    observation(db, world.own, "p-low", "body-weight", world.now - timedelta(hours=2), 81.4)
    login(client, world.nurse)
    page = client.get("/patients/p-low").text
    weight = page[page.index('id="chart-weight"') : page.index("</figure>", page.index('id="chart-weight"'))]
    assert "Green: within the limits" in weight and "No limits are set." in weight
    _thresholds(client, "p-low", **{"weight-yellow_high": "80", "weight-red_high": "85"})
    page = client.get("/patients/p-low").text
    weight = page[page.index('id="chart-weight"') : page.index("</figure>", page.index('id="chart-weight"'))]
    assert "Yellow: above 80 kg" in weight and ">80</text>" in weight
    assert ">85</text>" not in weight  # a limit far from every reading is listed, not drawn


def test_the_form_reads_a_decimal_comma_an_empty_field_and_refuses_what_is_no_number() -> None:
    fields = {f"{vital}-{bound}": "" for vital in VITALS for bound in BOUNDS}
    wanted, _, errors = parse_limits({**fields, "temperature-red_low": "35,5", "pulse-red_high": " 130 "})
    assert errors == [] and wanted["temperature"].red_low == 35.5 and wanted["pulse"].red_high == 130
    assert wanted["weight"].unset
    for bad in ("nan", "inf", "1e999", "92%"):
        _, typed, errors = parse_limits({**fields, "spo2-red_low": bad})
        assert [error.field for error in errors] == ["spo2-red_low"] and typed["spo2-red_low"] == bad


def test_a_limit_is_shown_with_every_decimal_so_an_unchanged_form_changes_nothing() -> None:
    assert form_value(80.25) == "80.25" and form_value(92.0) == "92" and form_value(None) == ""
    fields = {f"{vital}-{bound}": "" for vital in VITALS for bound in BOUNDS}
    wanted, _, _ = parse_limits({**fields, "weight-red_high": form_value(80.25)})
    assert wanted["weight"].red_high == 80.25
