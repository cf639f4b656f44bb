"""The demo's mail: a local SMTP sink that keeps what the gateway sends (in memory for its page, and as
.eml files in the demo's folder), a page that lists it with clickable links and shows nothing it was not
sent, demo users with addresses for every deteriorating patient's nurse and GP, and, end to end, a short
demo in which a deteriorating patient's alert reaches the patient's GP by e-mail: a link into the demo's
web UI at /alerts/<id>, and not the patient's name. Those two end-to-end tests live in
tests/homewatch/test_demo_gateway.py and read the one short demo it plays: one file, so that the suite
(pytest-xdist, ``--dist loadfile``) plays one demo for both, not two.

Everything is real: SMTP over TCP to aiosmtpd, the page over HTTP, PostgreSQL, and the demo's own runner
with its gateway, broker and emulated homes."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import cast

import httpx
import psycopg
import pytest

from gateway.broker import free_port
from homewatch.demo.home import SimulatedHome
from homewatch.demo.mail import DEFAULT_PAGE_PORT, MailBox, MailError, MailSink, choose_page_port
from homewatch.demo.provision import CARE_TEAMS, EMAILS, GP, municipalities_for, provision
from models.cohort.synthetic import SyntheticPatient, make_cohort

WALL = datetime(2026, 3, 2, 8, 15, tzinfo=UTC)


def _message(to: str, subject: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "homewatch@kommune.example"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    return message


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MailSink]:
    started = MailSink(tmp_path / "mail", lambda: WALL)
    started.start(free_port())
    try:
        yield started
    finally:
        started.stop()


def _send(sink: MailSink, message: EmailMessage) -> None:
    with smtplib.SMTP(sink.host, sink.smtp_port, timeout=10) as client:
        client.send_message(message)


# -- the sink and its page ---------------------------------------------------------------------------


def test_a_message_sent_over_smtp_is_kept_written_as_eml_and_shown_with_its_link_clickable(
    sink: MailSink,
) -> None:
    link = "http://127.0.0.1:8000/alerts/17"
    message = _message("gp.hansen@laege.example", "Alarm: NEWS2 (K.J.)", f"Åbn alarmen: {link}\n")
    _send(sink, message)

    (mail,) = sink.box.messages()
    assert mail.recipients == ("gp.hansen@laege.example",) and mail.subject == "Alarm: NEWS2 (K.J.)"
    assert mail.received_at == WALL and link in mail.text and "Åbn" in mail.text
    assert mail.path.parent == sink.box.folder and mail.path.read_bytes() == mail.raw
    assert sink.by_recipient() == {"gp.hansen@laege.example": 1}
    with httpx.Client(base_url=sink.url, timeout=10) as page:
        listing = page.get("/")
        assert listing.status_code == 200
        assert 'href="/messages/1"' in listing.text and "Alarm: NEWS2 (K.J.)" in listing.text
        assert "gp.hansen@laege.example" in listing.text and "2026-03-02 08:15:00" in listing.text
        shown = page.get("/messages/1")
        assert f'<a href="{link}">{link}</a>' in shown.text and "Åbn alarmen" in shown.text
        assert "default-src 'none'" in shown.headers["content-security-policy"]
        raw = page.get("/messages/1/raw")
        assert raw.headers["content-type"].startswith("text/plain") and raw.content == mail.raw
        assert page.get("/messages/2").status_code == 404
        assert page.get("/messages/2/raw").status_code == 404


def test_the_page_shows_what_a_message_says_as_text_never_as_markup(sink: MailSink) -> None:
    _send(
        sink,
        _message(
            "nurse.nord@kommune.example",
            "<script>alert(1)</script>",
            'javascript:alert(1) <img src=x onerror="alert(2)"> http://127.0.0.1:8000/alerts/3"onclick=x',
        ),
    )
    with httpx.Client(base_url=sink.url, timeout=10) as page:
        listing, shown = page.get("/").text, page.get("/messages/1").text
    for html in (listing, shown):
        assert "<script>alert" not in html and "<img" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript:' not in shown
    # A link ends where the text's quote begins: the quote cannot open an attribute.
    assert '<a href="http://127.0.0.1:8000/alerts/3">' in shown


def test_the_box_keeps_the_newest_messages_for_the_page_and_writes_and_counts_every_one(
    tmp_path: Path,
) -> None:
    box = MailBox(tmp_path / "mail", lambda: WALL, keep=2)
    for n, to in enumerate(("a@kommune.example", "b@laege.example", "a@kommune.example"), start=1):
        raw = _message(to, f"message {n}", "text").as_bytes()
        box.add("homewatch@kommune.example", [to], raw)
    assert [mail.subject for mail in box.messages()] == ["message 3", "message 2"]
    assert box.count == 3 and box.get(1) is None
    assert box.by_recipient() == {"a@kommune.example": 2, "b@laege.example": 1}
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 3


def test_a_mail_port_in_use_is_refused_naming_the_option_and_the_default_gives_way(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with pytest.raises(MailError, match="--mail-port"):
            MailSink(tmp_path, lambda: WALL).start(busy)
    with pytest.raises(MailError, match="--mail-port"):
        choose_page_port(8000, taken=(8000,))  # the web UI's port
    assert choose_page_port(None, taken=(DEFAULT_PAGE_PORT,)) != DEFAULT_PAGE_PORT


# -- the demo's users ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Device:
    address: str


@dataclass(frozen=True, slots=True)
class _Home:
    """What provisioning reads of a simulated home (no radio needed to enrol it)."""

    municipality: str
    hub_id: str
    patient: SyntheticPatient
    device_ids: dict[str, str]
    devices: dict[str, _Device]


def test_every_deteriorating_patient_s_nurse_has_an_address_and_each_team_s_first_one_the_gp_s(
    database_url: str,
) -> None:
    patients = make_cohort(12, seed=7, days=30)
    homes = cast(
        list[SimulatedHome],
        [
            _Home(
                m,
                f"hub-{p.number}",
                p,
                {"scale": f"dev-{p.number}"},
                {"scale": _Device(f"00:{p.number:02x}")},
            )
            for p, m in zip(patients, municipalities_for(patients), strict=True)
        ],
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        logins = provision(conn, homes)
        emails = dict(conn.execute("SELECT username, email FROM users").fetchall())
        rows = conn.execute(
            "SELECT p.id, p.gp_username, m.username FROM patients p"
            " JOIN care_team_members m ON m.care_team_id = p.care_team_id"
        ).fetchall()
    assert emails == EMAILS and {login.username: login.email for login in logins} == EMAILS
    assert emails[GP].endswith("@laege.example")
    assert all(address.endswith(".example") for address in emails.values())  # RFC 2606: deliverable nowhere
    deteriorating = [h.patient.id for h in homes if h.patient.deteriorating]
    team = {patient: nurse for patient, _, nurse in rows}
    gp = {patient: doctor for patient, doctor, _ in rows}
    assert all(emails[team[p]] for p in deteriorating)
    # One deteriorating patient per team (12 homes), each of them the GP's.
    assert {team[p] for p in deteriorating} == {t.nurse for t in CARE_TEAMS}
    assert all(gp[p] == GP for p in deteriorating)
