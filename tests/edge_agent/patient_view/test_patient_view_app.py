"""The patient view's pages on the real app (Starlette's test client over ASGI): the PIN, the session
cookie, forms that are ours only, "who are you" with each resident seeing only their own data, today's
plan and what arrived, the questionnaire and "contact my nurse" reaching the real outbox as resources the
gateway's contract accepts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from view_helpers import ANNA, BENT, NOW, PIN, Hub, blood_pressure, client_for, config, csrf, log_in, make_hub
from view_helpers import weight as weight_obs

from edge_agent.config import NurseMessage
from edge_agent.outbox.priority import REQUEST_KIND, RESPONSE_KIND
from edge_agent.patient_view.security import COOKIE, PinGate
from fhir_contract.contact import validate_contact_request
from fhir_contract.questionnaire import current, validate_response


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    hub = make_hub(tmp_path, config(tmp_path, residents=(ANNA,)))
    yield hub
    hub.close()


@pytest.fixture
def household(tmp_path: Path) -> Iterator[Hub]:
    messages = (
        NurseMessage(
            id="m1", patient_id="p-anna", sent_at=NOW - timedelta(hours=2), text="Husk vægten, Anna"
        ),
        NurseMessage(
            id="m2", patient_id="p-bent", sent_at=NOW - timedelta(hours=1), text="Bent, ring til os"
        ),
    )
    hub = make_hub(tmp_path, config(tmp_path, residents=(ANNA, BENT), messages=messages))
    yield hub
    hub.close()


def test_every_page_but_the_pin_sends_a_stranger_to_the_pin(hub: Hub) -> None:
    client = client_for(hub)
    for path in ("/", "/trends", "/messages", "/questionnaire", "/contact", "/who-measured", "/who"):
        page = client.get(path)
        assert page.url.path == "/login", path
        assert 'name="pin"' in page.text


def test_the_right_pin_opens_today_in_danish_with_a_strict_httponly_cookie(hub: Hub) -> None:
    client = client_for(hub)
    form = client.get("/login")
    assert '<html lang="da">' in form.text and "Skriv husstandens kode" in form.text
    page = client.post("/login", data={"pin": PIN, "csrf": csrf(form.text)}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/"
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    today = client.get("/")
    assert today.url.path == "/" and "Hej Anna" in today.text
    assert "Kontakt min sygeplejerske" in today.text
    assert "default-src 'none'" in today.headers["content-security-policy"]


def test_a_wrong_pin_is_refused_and_five_lock_even_the_right_one(hub: Hub) -> None:
    clock = [1000.0]
    client = client_for(hub, gate=PinGate(PIN, monotonic=lambda: clock[0]))
    token = csrf(client.get("/login").text)
    for _ in range(4):
        page = client.post("/login", data={"pin": "0000", "csrf": token})
        assert page.status_code == 401 and "Koden var forkert" in page.text
    page = client.post("/login", data={"pin": "0000", "csrf": token})
    assert page.status_code == 429 and "Vent 5 minutter" in page.text
    page = client.post("/login", data={"pin": PIN, "csrf": token})
    assert page.status_code == 429 and page.url.path == "/login"
    clock[0] += 301
    page = client.post("/login", data={"pin": PIN, "csrf": token})
    assert page.status_code == 200 and page.url.path == "/"


def test_posts_without_the_sessions_token_or_from_another_site_are_refused(hub: Hub) -> None:
    client = client_for(hub)
    token = csrf(client.get("/login").text)
    assert client.post("/login", data={"pin": PIN}).status_code == 403
    assert client.post("/login", data={"pin": PIN, "csrf": "forged"}).status_code == 403
    cross = client.post("/login", data={"pin": PIN, "csrf": token}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    as_json = client.post("/login", json={"pin": PIN, "csrf": token})
    assert as_json.status_code == 403
    huge = client.post("/login", data={"pin": PIN, "csrf": token, "x": "9" * 5000})
    assert huge.status_code == 403
    log_in(client)
    assert client.post("/contact", data={"reason": "question"}).status_code == 403
    assert hub.queued() == []


def test_a_token_from_before_the_pin_is_not_the_one_after(hub: Hub) -> None:
    client = client_for(hub)
    before = csrf(client.get("/login").text)
    log_in(client)
    assert client.post("/contact", data={"reason": "", "csrf": before}).status_code == 403


def test_a_cookie_of_another_start_of_the_hub_is_no_session(hub: Hub) -> None:
    first = client_for(hub)
    log_in(first)
    second = client_for(hub)  # the hub restarted: a new key
    second.cookies.set(COOKIE, first.cookies[COOKIE])
    assert second.get("/").url.path == "/login"


def test_the_language_switch_gives_english_and_back(hub: Hub) -> None:
    client = client_for(hub)
    log_in(client)
    page = client.post("/language", data={"lang": "en", "next": "/", "csrf": csrf(client.get("/").text)})
    assert '<html lang="en">' in page.text and "Hello Anna" in page.text and "Contact my nurse" in page.text
    page = client.post("/language", data={"lang": "da", "next": "//evil.example/", "csrf": csrf(page.text)})
    assert page.url.path == "/" and page.url.host == "hub.local" and "Hej Anna" in page.text


def test_today_shows_the_plan_and_what_arrived_with_its_time(hub: Hub) -> None:
    # 08:14 local: the 08:00 blood pressure is done; 20:00 is later today.
    hub.history.add([blood_pressure("p-anna", NOW - timedelta(hours=2, minutes=16), 132, 84)], now=NOW)
    client = client_for(hub)
    page = log_in(client)
    assert 'data-state="done" data-measurement="blood-pressure"' in page
    assert "Målt 08.14" in page and "Senere i dag" in page
    assert "Blodtryk modtaget 08.14" in page and "132/84 mmHg" in page


def test_a_plan_time_without_a_reading_is_missed_then(hub: Hub) -> None:
    hub.now = NOW + timedelta(hours=1)  # 11:30 local: 08:00 + 120 min grace has passed
    page = log_in(client_for(hub))
    assert 'data-state="missed"' in page and "Ikke målt" in page
    assert "Ingen målinger modtaget i dag endnu." in page


def test_two_residents_say_who_they_are_and_see_only_their_own(household: Hub) -> None:
    household.history.add(
        [
            blood_pressure("p-anna", NOW - timedelta(hours=1), 131, 81),
            weight_obs("p-bent", NOW - timedelta(minutes=30), "92.5"),
        ],
        now=NOW,
    )
    client = client_for(household)
    who = client.post("/login", data={"pin": PIN, "csrf": csrf(client.get("/login").text)})
    assert who.url.path == "/who" and "Hvem er du?" in who.text and "Anna" in who.text and "Bent" in who.text
    assert client.get("/").url.path == "/who"  # nothing until the resident is known
    bent = client.post("/who", data={"resident": "p-bent", "csrf": csrf(who.text)})
    assert "Hej Bent" in bent.text and "92,5 kg" in bent.text
    assert "131/81" not in bent.text and "Dagens målinger" not in bent.text  # the plan is Anna's
    messages = client.get("/messages").text
    assert "Bent, ring til os" in messages and "Husk vægten" not in messages
    assert "131" not in client.get("/trends").text
    # Bent cannot make himself someone who does not live here.
    page = client.post("/who", data={"resident": "p-stranger", "csrf": csrf(messages)})
    assert page.url.path == "/who"
    anna = client.post("/who", data={"resident": "p-anna", "csrf": csrf(page.text)})
    assert "Hej Anna" in anna.text and "131/81 mmHg" in anna.text and "92.5" not in anna.text


def test_the_questionnaire_one_question_a_screen_reaches_the_outbox(hub: Hub) -> None:
    client = client_for(hub)
    log_in(client)
    q = current("heart-failure-daily")
    start = client.get("/questionnaire")
    assert q.title.da in start.text
    page = client.post("/questionnaire", data={"csrf": csrf(start.text)})
    for number, item in enumerate(q.questions, start=1):
        assert page.url.path == f"/questionnaire/{number}"
        assert item.text.da in page.text and f"Spørgsmål {number} af {len(q.questions)}" in page.text
        answer = item.options[-1].code
        page = client.post(f"/questionnaire/{number}", data={"answer": answer, "csrf": csrf(page.text)})
    assert page.url.path == "/questionnaire/sent" and "Tak for dine svar" in page.text
    (response,) = hub.queued()
    valid = validate_response(response, now=NOW)
    assert valid.patient_id == "p-anna" and valid.hub_id == "hub-view"
    assert valid.answers == {item.link_id: item.options[-1].code for item in q.questions}
    assert hub.outbox.after(0, 10)[0].kind == RESPONSE_KIND
    assert "Du har svaret i dag kl. 10.30" in client.get("/").text


def test_an_answer_that_is_no_option_is_not_taken(hub: Hub) -> None:
    client = client_for(hub)
    log_in(client)
    page = client.post("/questionnaire", data={"csrf": csrf(client.get("/questionnaire").text)})
    page = client.post("/questionnaire/1", data={"answer": "maybe", "csrf": csrf(page.text)})
    assert page.url.path == "/questionnaire/1"
    assert client.get("/questionnaire/2").url.path == "/questionnaire/2"  # in order: allowed to look back
    assert hub.queued() == []


def test_contact_my_nurse_puts_a_task_in_the_outbox_and_says_so(hub: Hub) -> None:
    client = client_for(hub)
    log_in(client)
    form = client.get("/contact")
    assert "Jeg har det dårligere" in form.text
    page = client.post("/contact", data={"reason": "feeling-worse", "csrf": csrf(form.text)})
    assert page.url.path == "/contact/sent" and "Din sygeplejerske har fået besked" in page.text
    (task,) = hub.queued()
    valid = validate_contact_request(task, now=NOW)
    assert valid.patient_id == "p-anna" and valid.reason == "feeling-worse" and valid.urgent
    assert hub.outbox.after(0, 10)[0].kind == REQUEST_KIND


def test_contact_without_a_reason_and_with_an_unknown_one(hub: Hub) -> None:
    client = client_for(hub)
    log_in(client)
    page = client.post("/contact", data={"reason": "lonely", "csrf": csrf(client.get("/contact").text)})
    assert page.url.path == "/contact" and hub.queued() == []
    client.post("/contact", data={"reason": "", "csrf": csrf(page.text)})
    (task,) = hub.queued()
    assert validate_contact_request(task, now=NOW).reason is None


def test_a_resident_without_a_questionnaire_is_offered_none(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, config(tmp_path))  # no residents listed: the hub's patient, no questionnaire
    try:
        client = client_for(hub)
        page = log_in(client)
        assert 'href="/questionnaire"' not in page
        assert "Der er ikke noget spørgeskema til dig." in client.get("/questionnaire").text
        assert client.post("/questionnaire", data={"csrf": csrf(page)}).url.path == "/questionnaire"
        assert hub.queued() == []
    finally:
        hub.close()


def test_logout_ends_the_session(hub: Hub) -> None:
    client = client_for(hub)
    page = log_in(client)
    out = client.post("/logout", data={"csrf": csrf(page)})
    assert out.url.path == "/login" and client.get("/").url.path == "/login"


def test_numbers_and_units_are_written_the_way_the_residents_language_writes_them() -> None:
    """Danish has a decimal comma and says "slag/min"; English a decimal point and "beats/min"."""
    from datetime import UTC, datetime

    from edge_agent.patient_view.history import LocalReading

    taken = datetime(2026, 12, 7, 8, 14, tzinfo=UTC)
    weight = LocalReading("w", "p", "body-weight", "weight", taken, {"value": 78.4}, "kg")
    pulse = LocalReading("h", "p", "pulse", None, taken, {"value": 72.0}, "/min")
    assert (weight.summary("da"), weight.summary("en")) == ("78,4 kg", "78.4 kg")
    assert (pulse.summary("da"), pulse.summary("en")) == ("72 slag/min", "72 beats/min")
