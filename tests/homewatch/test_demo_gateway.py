"""The demo runs the gateway ``homewatch gateway serve`` runs (``gateway.service.Gateway``), with nothing
of its own wired in beside it, and that gateway scores the 30-day admission risk: a short demo ends with
admission-risk RiskAssessments for its patients, counted in the summary and served at
``GET /fhir/RiskAssessment``.

One short demo is run for the module and watched at three moments: when it prints the logins (every
nurse's patients have a 30-day risk by then), after the play while it keeps serving (a token minted the
way the demo prints is accepted, one signed with another secret refused), and at its end (what its mail
sink received: the end-to-end tests of the demo's mail, tests/homewatch/test_demo_mail.py, read this
same run, so the suite plays one demo, not two)."""

from __future__ import annotations

import ast
import asyncio
import io
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from rich.console import Console

from gateway.broker import free_port
from gateway.service import Gateway
from homewatch.demo.home import DEVICE_KINDS, battery_level
from homewatch.demo.logins import homewatch_command
from homewatch.demo.mail import Mail
from homewatch.demo.provision import EMAILS, GP, Login
from homewatch.demo.runner import Demo, DemoOptions
from homewatch.demo.summary import DemoSummary

ROOT = Path(__file__).resolve().parents[2]
# What the gateway assembles: the demo must take all of it from gateway.service, as serve does.
GATEWAY_PARTS = {
    "IngestWorker",
    "IngestWorkers",
    "Scorer",
    "AdmissionRiskSchedule",
    "create_app",
    "open_pool",
    "start_http",
    "run_worker",
}
WIRING_MODULES = {
    "gateway.ingest.mqtt_ingest",
    "gateway.workers",
    "gateway.http_server",
    "gateway.alerts.scorer",
    "gateway.api.app",
    "gateway.api.pool",
}
ADMISSION_RISK = "Risk of hospital admission within 30 days"


def test_the_demo_wires_no_gateway_part_of_its_own() -> None:
    built_from = set()
    for path in sorted((ROOT / "homewatch" / "demo").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gateway"):
                names = {alias.name for alias in node.names}
                assert node.module not in WIRING_MODULES, f"{path.name} imports {node.module}"
                assert not names & GATEWAY_PARTS, f"{path.name} builds {names & GATEWAY_PARTS} itself"
                if node.module == "gateway.service":
                    built_from |= names
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("gateway.") for a in node.names), path.name
    assert {"Gateway", "GatewayOptions"} <= built_from


def test_a_run_bounded_by_duration_stops_after_its_summary_and_one_without_serves_on() -> None:
    assert not DemoOptions(duration=60).serves_after
    assert DemoOptions().serves_after
    assert DemoOptions(duration=60, serve_after=True).serves_after


# -- reading the running demo ------------------------------------------------------------------------


def _bearer(client: httpx.Client, login: Login) -> dict[str, str]:
    form = {"username": login.username, "password": login.password}
    return {"Authorization": f"Bearer {client.post('/login/access-token', data=form).json()['access_token']}"}


def _entries(client: httpx.Client, url: str, headers: dict[str, str]) -> list[dict[str, object]]:
    """Every resource of a FHIR search, all pages."""
    found: list[dict[str, object]] = []
    page: str | None = url
    while page is not None:
        bundle = client.get(page, headers=headers).json()
        found += [e["resource"] for e in bundle.get("entry", [])]
        page = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    return found


def _admission_risks(client: httpx.Client, headers: dict[str, str]) -> list[dict[str, object]]:
    return [
        r
        for r in _entries(client, f"{client.base_url}/fhir/RiskAssessment?_count=100", headers)
        if r["code"]["text"] == ADMISSION_RISK  # type: ignore[index]
    ]


@dataclass(frozen=True)
class _NurseView:
    patients: set[str]  # the patients the FHIR API shows her
    risked: set[str]  # those with a 30-day admission risk (RiskAssessment)
    risks_on_page: int  # 30-day risks on her worklist page (each has its probability as data-risk)


def _worklist_html(url: str, login: Login) -> str:
    """The worklist page a nurse sees after logging in through the form (its anti-forgery token first)."""
    with httpx.Client(base_url=url, timeout=10, follow_redirects=True) as browser:
        form = re.search(
            r'action="/login".*?name="csrf" value="([^"]+)"', browser.get("/login").text, re.DOTALL
        )
        assert form is not None
        fields = {"username": login.username, "password": login.password, "csrf": form[1]}
        return browser.post("/login", data=fields).text


def _nurses_view(url: str, logins: list[Login]) -> dict[str, _NurseView]:
    """What each nurse sees: her patients and their 30-day risks over FHIR, and her worklist page."""
    seen: dict[str, _NurseView] = {}
    with httpx.Client(base_url=url, timeout=10) as client:
        for login in (login for login in logins if login.role == "nurse"):
            headers = _bearer(client, login)
            patients = {str(p["id"]) for p in _entries(client, f"{url}/fhir/Patient?_count=100", headers)}
            risks = _admission_risks(client, headers)
            risked = {str(r["subject"]["reference"]).removeprefix("Patient/") for r in risks}  # type: ignore[index]
            page = _worklist_html(url, login)
            seen[login.username] = _NurseView(patients, risked, page.count("data-risk="))
    return seen


def _served_risks(url: str, logins: list[Login]) -> int:
    """30-day admission-risk RiskAssessments the FHIR API serves to the demo's nurses, summed."""
    with httpx.Client(base_url=url, timeout=10) as client:
        nurses = [login for login in logins if login.role == "nurse"]
        return sum(len(_admission_risks(client, _bearer(client, nurse))) for nurse in nurses)


def _mint(command_line: str, environment: dict[str, str]) -> str:
    """Run a printed ``TOKEN=$(...)`` line in a shell; the token it put in $TOKEN."""
    done = subprocess.run(
        ["bash", "-c", f'{command_line} && printf %s "$TOKEN"'],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=True,
    )
    return done.stdout


@dataclass
class _Seen:
    first_view: dict[str, _NurseView] = field(default_factory=dict)
    served_after_play: bool = False
    caught_up_when_serving: bool = False
    printed_status: int = 0
    printed_patients: int = 0
    foreign_status: int = 0
    secret_mode: int = 0
    served_risks: int = 0
    batteries: dict[str, int | None] = field(default_factory=dict)  # device id -> % the gateway stored
    # At the end, for the demo's mail (test_demo_mail.py): what the sink received, the alerts in the
    # database (id -> patient id), each patient's GP, the mail page's list, and the status the GP gets
    # opening a link of her mail.
    mails: list[Mail] = field(default_factory=list)
    alerts: dict[str, str] = field(default_factory=dict)
    gp_of: dict[str, str | None] = field(default_factory=dict)
    mail_page: str = ""
    opened: dict[str, int] = field(default_factory=dict)


class _ObservedDemo(Demo):
    """The demo, read through its own web server at the moments the tests ask about."""

    def __init__(self, options: DemoOptions, console: Console) -> None:
        super().__init__(options, console)
        self.seen = _Seen()

    async def _show_logins(self) -> None:
        if not self.logins_shown:
            assert self.gateway is not None
            self.seen.first_view = await asyncio.to_thread(_nurses_view, self.gateway.url, self.logins)
        await super()._show_logins()

    async def _finish(self) -> DemoSummary:
        summary = await super()._finish()
        assert self.gateway is not None
        self.seen.served_risks = await asyncio.to_thread(_served_risks, self.gateway.url, self.logins)
        assert self.database_url is not None
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute("SELECT device_id, battery FROM hub_status_devices").fetchall()
            for alert_id, patient_id in conn.execute("SELECT id, patient_id FROM alerts"):
                self.seen.alerts[str(alert_id)] = patient_id
            self.seen.gp_of = dict(conn.execute("SELECT id, gp_username FROM patients").fetchall())
        self.seen.batteries = dict(rows)
        assert self.mail is not None
        self.seen.mails = self.mail.box.messages()
        self.seen.mail_page = (await asyncio.to_thread(httpx.get, f"{self.mail.url}/", timeout=10)).text
        links = [link for mail in self.seen.mails if EMAILS[GP] in mail.recipients for link in _links(mail)]
        gp = next(login for login in self.logins if login.username == GP)
        self.seen.opened = await asyncio.to_thread(_open_as, self.gateway.url, gp, links[:3])
        return summary

    async def _serve(self) -> None:
        serving = asyncio.create_task(super()._serve())
        await asyncio.sleep(1.0)
        self.seen.caught_up_when_serving = self.clock.caught_up()
        await asyncio.to_thread(self._use_printed_token)
        self.seen.served_after_play = not serving.done()
        self._stop.set()  # what Ctrl-C does
        await serving

    def _use_printed_token(self) -> None:
        assert self.gateway is not None and isinstance(self.console.file, io.StringIO)
        printed = self.console.file.getvalue().splitlines()
        (command_line,) = {line.strip() for line in printed if "gateway token" in line}
        self.seen.secret_mode = stat.S_IMODE(self.secret_path.stat().st_mode)
        token = _mint(command_line, dict(os.environ))
        nurse = next(login for login in self.logins if login.role == "nurse")
        mint = ["gateway", "token", "--role", nurse.role, "--municipality", nurse.municipality_id]
        foreign = subprocess.run(
            [homewatch_command(), *mint, "--subject", nurse.username],
            capture_output=True,
            text=True,
            env={**os.environ, "HOMEWATCH_SECRET_KEY": "another-secret-" + "x7Kq2Lm9Pz4Rt8Vw" * 3},
            timeout=60,
            check=True,
        ).stdout.strip()
        with httpx.Client(base_url=self.gateway.url, timeout=10) as client:
            answer = client.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
            self.seen.printed_status = answer.status_code
            self.seen.printed_patients = len(answer.json().get("entry", []))
            refused = client.get("/fhir/Patient", headers={"Authorization": f"Bearer {foreign}"})
            self.seen.foreign_status = refused.status_code


def _links(mail: Mail) -> list[str]:
    return re.findall(r"https?://\S+/alerts/\d+", mail.text)


def _open_as(url: str, login: Login, links: list[str]) -> dict[str, int]:
    """What ``login`` gets opening each link after logging in through the form (anti-forgery token first)."""
    with httpx.Client(base_url=url, timeout=10, follow_redirects=True) as browser:
        form = re.search(
            r'action="/login".*?name="csrf" value="([^"]+)"', browser.get("/login").text, re.DOTALL
        )
        assert form is not None
        browser.post("/login", data={"username": login.username, "password": login.password, "csrf": form[1]})
        return {link: browser.get(link, follow_redirects=False).status_code for link in links}


@dataclass(frozen=True)
class _Run:
    demo: _ObservedDemo
    summary: DemoSummary
    output: str


@pytest.fixture(scope="module")
def played() -> Iterator[_Run]:
    # 3 homes: one deteriorates, and is dealt first, to a team whose first patient is the GP's (the mail).
    options = DemoOptions(
        homes=3, days=7, duration=15, port=free_port(), seed=11, serve_after=True, mail_port=free_port()
    )
    console = Console(file=io.StringIO(), width=160)
    demo = _ObservedDemo(options, console)
    summary = asyncio.run(demo.run())
    assert isinstance(console.file, io.StringIO)
    yield _Run(demo, summary, console.file.getvalue())


@pytest.mark.e2e
def test_a_short_demo_ends_with_admission_risk_assessments_from_the_readings(played: _Run) -> None:
    summary = played.summary
    assert type(played.demo.gateway) is Gateway
    assert summary.readings_stored > 0
    # Only a patient with readings gets a 30-day risk: all were scored from what arrived.
    assert summary.patients_risk_assessed == 3
    assert summary.admission_risk_assessments >= 3
    assert all(p.admission_risk is not None for p in summary.top)
    # Served as FHIR to the nurses, as `gateway serve` serves them (the schedule may have run again).
    assert played.demo.seen.served_risks >= summary.admission_risk_assessments


@pytest.mark.e2e
def test_the_logins_are_printed_once_every_nurse_s_patients_have_a_30_day_risk(played: _Run) -> None:
    first = played.demo.seen.first_view
    assert set(first) == {"nurse.nord", "nurse.frederiksberg", "nurse.syd"}
    for nurse, view in first.items():
        assert view.patients, f"{nurse} sees no patient"
        assert view.patients <= view.risked, f"{nurse}'s patients are not all assessed for 30-day risk yet"
        assert view.risks_on_page == len(view.patients), f"{nurse}'s first page lacks 30-day risks"
    # Printed once mid-play and again when the demo goes on serving after it; with the URL to open.
    # (Counted by the GP's password, which only the logins table prints; her address is in the summary.)
    gp = next(login for login in played.demo.logins if login.username == "gp.hansen")
    assert played.output.count(gp.password) == 2 and "admin.kobenhavn" in played.output
    assert f"{played.demo.gateway.url}/login" in played.output  # type: ignore[union-attr]


@pytest.mark.e2e
def test_after_the_play_the_demo_serves_live_until_stopped(played: _Run) -> None:
    assert played.demo.seen.served_after_play and played.demo.seen.caught_up_when_serving
    assert "Ctrl-C" in played.output


@pytest.mark.e2e
def test_a_token_minted_the_printed_way_is_accepted_and_one_from_another_secret_refused(played: _Run) -> None:
    seen = played.demo.seen
    assert seen.secret_mode == 0o600
    assert seen.printed_status == 200 and seen.printed_patients > 0
    assert seen.foreign_status == 401


@pytest.mark.e2e
def test_each_home_reports_its_devices_batteries_through_its_status(played: _Run) -> None:
    # The homes' retained status (as a hub's service sends it) reaches the gateway: the battery each
    # emulated device serves is what the gateway stored for it, for every home.
    expected = {
        f"dev-{home.hub_id.removeprefix('hub-')}-{kind}": battery_level(int(home.hub_id[4:]), index)
        for home in played.demo.homes
        for index, kind in enumerate(DEVICE_KINDS)
    }
    reported = {device: level for device, level in played.demo.seen.batteries.items() if level is not None}
    assert reported, "no home reported a battery"
    assert {device: expected[device] for device in reported} == reported
    homes = {device.split("-")[1] for device in reported}
    assert len(homes) == len(played.demo.homes)


# -- the demo's mail, end to end (tests/homewatch/test_demo_mail.py tests the sink and its page) ----------


@pytest.mark.e2e
def test_a_deteriorating_patient_s_alert_reaches_the_gp_by_e_mail_with_a_link_and_without_the_name(
    played: _Run,
) -> None:
    demo, seen = played.demo, played.demo.seen
    deteriorating = {h.patient.id: h.patient for h in demo.homes if h.patient.deteriorating}
    to_gp = [mail for mail in seen.mails if EMAILS[GP] in mail.recipients]
    assert to_gp, f"the GP got no e-mail; the sink got {[m.recipients for m in seen.mails]}"
    links = {
        found: mail
        for mail in to_gp
        for found in re.findall(rf"{re.escape(demo.gateway.url)}/alerts/(\d+)", mail.text)  # type: ignore[union-attr]
    }
    about = {seen.alerts[alert]: mail for alert, mail in links.items() if alert in seen.alerts}
    assert about.keys() & deteriorating.keys(), "no e-mail to the GP links a deteriorating patient's alert"
    # The links open the alert in the demo's web UI for her, once logged in.
    assert seen.opened and set(seen.opened.values()) == {200}, seen.opened
    for patient_id, mail in about.items():
        assert seen.gp_of[patient_id] == GP  # she is told only of her own patients
        told = f"{mail.subject}\n{mail.text}\n{mail.raw.decode('utf-8', 'replace')}"
        patient = next(h.patient for h in demo.homes if h.patient.id == patient_id)
        # "Synthetic patient N": neither the name nor its given name (the initials are allowed).
        for part in (patient.name, patient.name.split()[0]):
            assert part.lower() not in told.lower(), f"an e-mail names the patient ({part!r})"


@pytest.mark.e2e
def test_the_summary_and_the_mail_page_say_what_was_delivered_to_whom(played: _Run) -> None:
    demo, summary = played.demo, played.summary
    assert demo.mail is not None
    assert summary.mail_url == demo.mail.url and f"{demo.mail.url}/" in played.output
    received: dict[str, int] = {}
    for mail in demo.seen.mails:
        for address in mail.recipients:
            received[address] = received.get(address, 0) + 1
    assert dict(summary.emails) == received and summary.emails_delivered == sum(received.values()) > 0
    assert f"to {EMAILS[GP]}" in played.output
    # Every address the sink got mail for is a demo user's; each message is listed on the page.
    assert set(received) <= set(EMAILS.values())
    assert all(f'href="/messages/{mail.number}"' in demo.seen.mail_page for mail in demo.seen.mails)
