"""The nurse's weekly risk review in a real browser, in Danish, over six weeks of scored home readings.

One gateway for the module (``review_world.seed_review_world``: team Nord's patients with daily 30-day
risks by the shipped model, a deteriorating one, a stale one, another team, another municipality, a GP
of both, an administrator). Tests run in file order against the same database; each one touches its own
patients so that none depends on another having run: the review flow reviews Karen, the limits test
changes Ole's, the audit test reviews Birthe, and the isolation test reads the review of Karen that was
recorded last week. With ``HOMEWATCH_SCREENSHOTS=docs/img`` the tests write the documentation's pictures.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_skeleton
from playwright.sync_api import Locator, Page, ViewportSize, expect

from browser.helpers import LiveGateway, Screenshots, horizontal_overflow, log_in, serve_world
from browser.review_world import ReviewWorld, seed_review_world
from browser.world import NORD, SYD, Person
from models.admission_risk import MODEL_VERSION

Gateway = LiveGateway[ReviewWorld]
COPENHAGEN = ZoneInfo("Europe/Copenhagen")
TABLET_UPRIGHT: ViewportSize = {"width": 768, "height": 1024}


@pytest.fixture(scope="module")
def gateway(pg_admin_url: str) -> Iterator[Gateway]:
    """This module's own gateway, over the weekly review's world (instead of ``world.seed``)."""
    with serve_world(pg_admin_url, seed_review_world) as live:
        yield live


def card(page: Page, name: str) -> Locator:
    """A patient's card (worklist, review mode, review history): an article named by its heading."""
    return page.get_by_role("article", name=re.compile(rf"(^|\. ){re.escape(name)}$"))


def percent(text: str) -> float:
    """A percentage as the page writes it in Danish ("8,6 %") as a number."""
    return float(text.replace("%", "").replace(",", ".").strip())


def danish_points(points: float) -> str:
    """Percentage points as the page writes them: one decimal, a decimal comma ("39,2")."""
    return f"{round(points, 1):g}".replace(".", ",")


def shown_time(moment: datetime) -> str:
    """``moment`` as the pages write a time in Danish: Copenhagen's date and wall clock ("7. dec. 2026
    09.30")."""
    local = moment.astimezone(COPENHAGEN)
    return f"{format_skeleton('yMMMd', local, locale='da')} {local:%H.%M}"


def expect_copenhagen_time(element: Locator, earliest: datetime, latest: datetime) -> None:
    """A ``<time>`` between ``earliest`` and ``latest`` (a minute's grace each side), its offset
    Copenhagen's and its text Copenhagen's wall clock, never UTC's."""
    stamp = element.get_attribute("datetime")
    assert stamp is not None
    moment = datetime.fromisoformat(stamp)
    assert earliest - timedelta(minutes=1) <= moment <= latest + timedelta(minutes=1), stamp
    assert moment.utcoffset() == COPENHAGEN.utcoffset(moment.replace(tzinfo=None)), stamp
    expect(element).to_have_text(shown_time(moment))
    assert f"{moment.astimezone(UTC):%H.%M}" not in (element.text_content() or "")


def fhir_token(page: Page, person: Person, password: str) -> str:
    answer = page.request.post(
        "/login/access-token", form={"username": person.username, "password": password}
    )
    assert answer.status == 200, answer.text()
    token: str = answer.json()["access_token"]
    return token


def fhir_get(page: Page, path: str, token: str) -> tuple[int, dict[str, Any]]:
    answer = page.request.get(path, headers={"Authorization": f"Bearer {token}"})
    body: dict[str, Any] = answer.json()
    return answer.status, body


def test_the_weekly_review_in_danish(page: Page, gateway: Gateway, screenshots: Screenshots) -> None:
    world = gateway.world
    ranked = world.team(NORD)
    top, stale, unscored = ranked[0], "p-inge", "p-erik"
    # The seed did what its story says: Karen on top, Erik (no risk yet) last, another team exists.
    assert top == "p-karen" and ranked[-1] == unscored
    assert any(p.care_team_id == SYD for p in world.patients.values())

    # The Danish login page, then the worklist.
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log ind")
    page.get_by_label("Brugernavn").fill(world.nurse.username)
    page.get_by_label("Adgangskode").fill(world.password)
    page.get_by_role("button", name="Log ind").click()
    page.wait_for_url(f"{gateway.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Arbejdsliste — København")
    expect(page.get_by_text(f"model {MODEL_VERSION}, syntetiske træningsdata")).to_be_visible()

    # Her team's patients, highest 30-day risk first; the patient without one last.
    cards = page.locator("ol.worklist > li > article")
    expect(cards.get_by_role("heading", level=2)).to_have_text(
        [f"{rank}. {world.name(pid)}" for rank, pid in enumerate(ranked, 1)]
    )
    expect(page.get_by_text(f"{len(ranked)} borgere", exact=True)).to_be_visible()
    for pid in ranked[:-1]:
        shown = percent(card(page, world.name(pid)).locator(".risk-percent").inner_text())
        assert abs(shown - 100 * world.risks[pid]) <= 0.5, (pid, shown, world.risks[pid])
    last = card(page, world.name(unscored))  # no risk yet: placed by NEWS2, its trend line NEWS2's
    expect(last.locator(".risk-percent")).to_have_count(0)
    expect(last).to_contain_text("placeret efter NEWS2")
    expect(last.get_by_role("img", name=re.compile(r"^NEWS2 "))).to_be_visible()
    for patient in world.patients.values():  # another team's, another municipality's: not here
        if patient.care_team_id != NORD:
            expect(page.get_by_role("link", name=patient.name)).to_have_count(0)

    # The deteriorating patient: risk up since last week, by as much as the model's scores say; a trend
    # line from four weeks ago to today's figure; NEWS2 with its band; her open alert.
    karen = card(page, world.name(top))
    shown_risk = karen.locator(".risk-percent").inner_text()
    rise = 100 * (world.risks[top] - world.week_before[top])
    expect(karen).to_contain_text(f"steget {danish_points(rise)} procentpoint siden sidste uge")
    trend = re.compile(rf"risiko.* de seneste 4 uger: fra .+ til {re.escape(shown_risk)}$")
    expect(karen.get_by_role("img", name=trend)).to_be_visible()
    expect(karen.get_by_text(re.compile(r"^NEWS2 \d+$"))).to_be_visible()
    expect(karen).to_contain_text("Åben alarm")
    expect(karen).to_contain_text("Ikke gennemgået i denne uge")
    expect(karen.get_by_text("Data mangler")).to_have_count(0)

    # The patient whose newest reading is three days old: lagging, with her number to call.
    inge = card(page, world.name(stale))
    expect(inge).to_contain_text(re.compile(r"Data mangler\W+ring til borgeren"))
    phone = world.patients[stale].phone
    assert phone is not None
    call = inge.get_by_role("link", name=f"Ring til {phone}")
    expect(call).to_have_attribute("href", "tel:" + phone.replace(" ", ""))
    expect(inge.locator(".reading-age")).to_have_text(["for 3 dage siden"] * 3)  # BP, pulse, SpO2
    screenshots.take(page, "worklist-da")

    # The top patient's page: a chart per vital sign with the baseline band and the limits.
    karen.get_by_role("link", name=world.name(top)).click()
    page.wait_for_url(f"**/patients/{top}")
    expect(page.get_by_role("heading", level=1)).to_have_text(world.name(top))
    periods = page.get_by_role("navigation", name="Vist periode")
    expect(periods.get_by_role("link", name="30 dage")).to_have_attribute("aria-current", "page")
    spo2 = page.get_by_role("img", name=re.compile(r"^SpO₂, seneste 30 dage"))
    expect(spo2.locator("path.chart-band")).to_have_count(1)
    expect(spo2.locator("path.chart-baseline")).to_have_count(1)
    limits = spo2.locator("line[stroke-dasharray='4 3'] + text")
    expect(limits).to_have_text(["92", "96"])  # SpO2 scale 1: red below 92, yellow below 96
    expect(page.locator("#chart-spo2 .chart-newest")).to_contain_text("Rød")
    # SpO2, pulse, systolic, diastolic, temperature, weight (no respiration rate is measured at home)
    expect(page.locator("svg.chart")).to_have_count(6)
    screenshots.take(page, "patient-da")

    marks = {}
    for days in (7, 90, 30):
        periods.get_by_role("link", name=f"{days} dage").click()
        page.wait_for_url(re.compile(rf"/patients/{top}\?days={days}#vitals$"))
        chart = page.get_by_role("img", name=re.compile(rf"^SpO₂, seneste {days} dage"))
        count = chart.locator("title:not([id])")  # one <title> per reading's mark
        described = chart.locator("desc").text_content() or ""
        marks[days] = count.count()
        assert described.startswith(f"{marks[days]} målinger de seneste {days} dage"), described
        expect(periods.get_by_role("link", name=f"{days} dage")).to_have_attribute("aria-current", "page")
    assert 7 <= marks[7] < marks[30] < marks[90] == 43, marks  # one round a day for 42 days and today

    # Review mode: the highest risk not yet reviewed this week comes first.
    page.get_by_role("navigation", name="Hovedmenu").get_by_role("link", name="Ugentlig gennemgang").click()
    page.wait_for_url("**/review")
    expect(page.get_by_text(f"{len(ranked)} borgere er ikke gennemgået i denne uge")).to_be_visible()
    expect(page.get_by_role("heading", name=f"Din gennemgang af {world.name(top)}")).to_be_visible()
    expect(card(page, world.name(top))).to_be_visible()

    # She fills in the form: a phone call, a note, red.
    note = "Ringet op: mere åndenød i nat og feber. Aftalt hjemmebesøg i dag."
    page.get_by_label("Telefonopkald").check()
    page.get_by_label("Notat").fill(note)
    page.get_by_label("Rød: handl i dag").check()
    screenshots.take(page, "review-da")

    # "Other" without a note: the error summary at the top, the form kept as it was filled in.
    page.get_by_label("Andet", exact=True).check()
    page.get_by_label("Notat").clear()
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Gem og gå til næste borger").click()
    assert answer.value.status == 400
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Der er et problem")
    expect(
        summary.get_by_role("link", name="Skriv, hvad du gjorde: udfaldet “Andet” kræver et notat")
    ).to_have_attribute("href", "#note")
    expect(page).to_have_title(re.compile(r"^Fejl: "))
    summary_box, card_box = summary.bounding_box(), card(page, world.name(top)).bounding_box()
    assert summary_box is not None and card_box is not None and summary_box["y"] < card_box["y"]
    expect(page.get_by_label("Andet", exact=True)).to_be_checked()
    expect(page.get_by_label("Rød: handl i dag")).to_be_checked()
    expect(page.get_by_label("Notat")).to_have_attribute("aria-describedby", re.compile("note-error"))
    expect(page.get_by_label("Notat")).to_have_value("")

    # Corrected: saved, and on to the next patient.
    page.get_by_label("Telefonopkald").check()
    page.get_by_label("Notat").fill(note)
    before = datetime.now(UTC)
    page.get_by_role("button", name="Gem og gå til næste borger").click()
    page.wait_for_url(re.compile(r"/review\?position=0$"))
    after = datetime.now(UTC)
    expect(page.get_by_role("heading", name=f"Din gennemgang af {world.name(ranked[1])}")).to_be_visible()
    expect(page.get_by_text(f"{len(ranked) - 1} borgere er ikke gennemgået i denne uge")).to_be_visible()

    # On the worklist row: by her, just now, a phone call, red; reviewed this week.
    page.get_by_role("navigation", name="Hovedmenu").get_by_role("link", name="Arbejdsliste").click()
    page.wait_for_url(f"{gateway.url}/")
    karen = card(page, world.name(top))
    expect(karen.locator(".review-line")).to_contain_text(
        f"Rød Gennemgået af {world.nurse.full_name} lige nu: telefonopkald"
    )
    expect(karen).not_to_contain_text("Ikke gennemgået i denne uge")
    expect(
        page.get_by_role("link", name=f"Start den ugentlige gennemgang ({len(ranked) - 1} ikke")
    ).to_be_visible()

    # On the patient page and in the review history: her name, a Copenhagen time, what she saw.
    karen.get_by_role("link", name=world.name(top)).click()
    page.wait_for_url(f"**/patients/{top}")
    newest = page.locator("#reviews tbody tr").first
    expect(newest.get_by_role("cell")).to_have_text(
        [re.compile("."), world.nurse.full_name, "Rød: handl i dag", "Telefonopkald", note]
    )
    expect_copenhagen_time(newest.locator("time"), before, after)
    expect(page.locator("#reviews tbody tr")).to_have_count(2)  # and last week's, below it

    page.get_by_role("link", name="Gennemgå borgeren").click()
    page.wait_for_url(f"**/patients/{top}/reviews")
    newest = page.get_by_role("table").locator("tbody tr").first
    expect(newest.get_by_role("cell")).to_have_text(
        [
            re.compile("."),
            world.nurse.full_name,
            "Telefonopkald",
            "Rød",
            f"{shown_risk} ({MODEL_VERSION})",
            note,
        ]
    )
    expect_copenhagen_time(newest.locator("time"), before, after)


def test_a_patient_limit_turns_a_green_reading_yellow(page: Page, gateway: Gateway) -> None:
    world = gateway.world
    log_in(page, world.nurse.username, world.password)
    page.goto("/patients/p-ole")
    newest = page.locator("#chart-weight .chart-newest")
    expect(newest).to_contain_text("Grøn")  # no default limit for weight
    weight = newest.inner_text().split("Nyeste: ")[1].split(",")[0]  # "87" of "87,2 kg, 7. dec. ..."
    assert int(weight) >= 87  # three kilos up in a week

    page.get_by_role("link", name="Ret tærskelværdier").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Tærskelværdier for Ole Madsen")
    page.get_by_role("group", name="Vægt (kg)").get_by_label("Gul over").fill("86,5")
    page.get_by_role("button", name="Gem tærskelværdier").click()
    page.wait_for_url(re.compile(r"/patients/p-ole(#limits)?$"))

    expect(newest).to_contain_text("Gul")
    expect(newest).to_contain_text("Gul: over 86,5 kg")
    chart = page.get_by_role("img", name=re.compile(r"^Vægt, seneste 30 dage"))
    expect(chart.locator("line[stroke-dasharray='4 3'] + text")).to_have_text(["86,5"])
    expect(chart.locator("rect > title").last).to_contain_text("Gul")  # the newest is a yellow square now
    row = page.locator("#limits tbody tr", has=page.get_by_role("rowheader", name="Vægt (kg)"))
    expect(row.get_by_role("cell")).to_have_text(
        ["—", "—", "86,5", "—", re.compile(f"^{world.nurse.username}, ")]
    )


def test_another_municipalitys_nurse_sees_none_of_it(page: Page, gateway: Gateway) -> None:
    world = gateway.world
    karen, review = "p-karen", world.reviewed["p-karen"]

    # The FHIR API: the first nurse's token finds the review, the other municipality's does not.
    own = fhir_token(page, world.nurse, world.password)
    status, bundle = fhir_get(page, f"/fhir/ClinicalImpression?patient={karen}", own)
    assert status == 200 and review in [e["resource"]["id"] for e in bundle.get("entry", [])]
    assert fhir_get(page, f"/fhir/ClinicalImpression/{review}", own)[0] == 200
    other = fhir_token(page, world.other_municipality_nurse, world.password)
    status, bundle = fhir_get(page, f"/fhir/ClinicalImpression?patient={karen}", other)
    assert status == 200 and bundle["total"] == 0 and not bundle.get("entry"), bundle
    status, bundle = fhir_get(page, "/fhir/ClinicalImpression", other)
    assert status == 200 and bundle["total"] == 0, bundle
    status, outcome = fhir_get(page, f"/fhir/ClinicalImpression/{review}", other)
    assert status == 404 and outcome["resourceType"] == "OperationOutcome"

    # The pages: her own municipality's worklist only; the first nurse's patient is not found.
    log_in(page, world.other_municipality_nurse.username, world.password)
    expect(page.get_by_role("heading", level=1)).to_have_text("Arbejdsliste — Frederiksberg")
    expect(page.locator("ol.worklist > li > article").get_by_role("heading", level=2)).to_have_text(
        ["1. Frede Berg"]
    )
    for pid, patient in world.patients.items():
        if pid != "p-frede":
            expect(page.get_by_text(patient.name)).to_have_count(0)
    for path in (f"/patients/{karen}", f"/patients/{karen}/reviews", "/patients/p-ole?days=90"):
        answer = page.goto(path)
        assert answer is not None and answer.status == 404, path
        expect(page.get_by_role("heading", level=1)).to_have_text("Siden blev ikke fundet")
        expect(page.get_by_text("Borgeren findes ikke blandt dine borgere.")).to_be_visible()
        expect(page.get_by_text(world.name(karen))).to_have_count(0)
    page.goto("/review")
    expect(page.get_by_role("heading", name="Din gennemgang af Frede Berg")).to_be_visible()
    expect(page.get_by_text(world.nurse.full_name)).to_have_count(0)  # no trace of the first nurse's review


def test_the_gp_sees_her_patients_in_both_municipalities(page: Page, gateway: Gateway) -> None:
    world = gateway.world
    log_in(page, world.gp.username, world.password)
    expect(page.get_by_role("heading", level=1)).to_have_text("Arbejdsliste")  # no single municipality
    hers = world.ranked(pid for pid, p in world.patients.items() if p.gp_username == world.gp.username)
    municipalities = {world.patients[pid].municipality_id for pid in hers}
    assert len(municipalities) == 2
    expect(page.locator("ol.worklist > li > article").get_by_role("heading", level=2)).to_have_text(
        [f"{rank}. {world.name(pid)}" for rank, pid in enumerate(hers, 1)]
    )
    page.get_by_role("link", name="Frede Berg").click()  # Frederiksberg's patient, from København's GP
    page.wait_for_url("**/patients/p-frede")
    expect(page.get_by_role("heading", level=1)).to_have_text("Frede Berg")
    answer = page.goto("/patients/p-ole")  # a patient of the same municipality, but not hers
    assert answer is not None and answer.status == 404


def test_the_administrator_reads_the_nurses_rows_in_the_audit_log(
    page: Page, gateway: Gateway, screenshots: Screenshots
) -> None:
    world = gateway.world
    # The nurse opens a patient and records a review; then she logs out.
    log_in(page, world.nurse.username, world.password)
    answer = page.goto("/admin/audit")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Du har ikke adgang")
    started = datetime.now(UTC)
    page.goto("/patients/p-birthe")
    page.get_by_role("link", name="Gennemgå borgeren").click()
    page.get_by_label("Hjemmebesøg").check()
    page.get_by_label("Gul: følg op i denne uge").check()
    page.get_by_role("button", name="Gem gennemgangen").click()
    page.wait_for_url("**/patients/p-birthe/reviews#history")
    finished = datetime.now(UTC)
    page.get_by_role("button", name="Log ud").click()
    page.wait_for_url("**/login")

    # The administrator lands on the audit log.
    page.get_by_label("Brugernavn").fill(world.admin.username)
    page.get_by_label("Adgangskode").fill(world.password)
    page.get_by_role("button", name="Log ind").click()
    page.wait_for_url("**/admin/audit")
    expect(page.get_by_role("heading", level=1)).to_have_text("Adgangslog")
    menu = page.get_by_role("navigation", name="Hovedmenu")
    expect(menu.get_by_role("link", name="Adgangslog")).to_have_attribute("aria-current", "page")
    rows = page.locator("table tbody tr")
    users = rows.locator("td:nth-child(2)")
    expect(users.first).to_have_text(world.admin.username)  # her own login, the newest row

    page.get_by_label("Bruger", exact=True).fill(world.nurse.username)
    page.get_by_role("button", name="Filtrér").click()
    page.wait_for_url(re.compile(rf"/admin/audit\?username={world.nurse.username}"))
    expect(page.get_by_label("Bruger", exact=True)).to_have_value(world.nurse.username)
    assert set(users.all_inner_texts()) == {world.nurse.username}  # only hers

    def row(action: str) -> Locator:
        return rows.filter(has=page.get_by_role("cell", name=action, exact=True)).filter(
            has=page.get_by_role("cell", name="p-birthe", exact=True)
        )

    review = row("review-patient").first
    expect(review.get_by_role("cell")).to_have_text(
        [
            re.compile("."),
            world.nurse.username,
            "Sygeplejerske",
            "review-patient",
            "p-birthe",
            "127.0.0.1",
            "home-visit, yellow",
        ]
    )
    expect_copenhagen_time(review.locator("time"), started, finished)
    viewed = row("view-patient").first
    expect(viewed.get_by_role("cell").nth(5)).to_have_text("127.0.0.1")
    expect_copenhagen_time(viewed.locator("time"), started, finished)
    expect(row("view-reviews")).to_have_count(2)  # the history page, before and after saving

    # Who looked at this one patient's data: her rows about Birthe only (the picture in the docs).
    page.get_by_label("Borger-id").fill("p-birthe")
    page.get_by_role("button", name="Filtrér").click()
    page.wait_for_url(re.compile(r"/admin/audit\?username=anna&patient=p-birthe"))
    assert set(rows.locator("td:nth-child(5)").all_inner_texts()) == {"p-birthe"}
    expect(row("review-patient")).to_have_count(2)  # today's, and last week's from another workstation
    expect(row("review-patient").last.get_by_role("cell").nth(5)).to_have_text("10.20.0.7")
    screenshots.take(page, "audit-da")

    page.get_by_label("Bruger", exact=True).fill(world.other_team_nurse.username)  # bo has done nothing
    page.get_by_role("button", name="Filtrér").click()
    expect(page.get_by_text("Ingen logposter matcher.")).to_be_visible()


def test_the_worklist_on_an_upright_tablet(page: Page, gateway: Gateway, screenshots: Screenshots) -> None:
    world = gateway.world
    page.set_viewport_size(TABLET_UPRIGHT)
    log_in(page, world.nurse.username, world.password)
    expect(page.locator("ol.worklist > li")).to_have_count(len(world.team(NORD)))
    assert horizontal_overflow(page) == 0
    for pid in world.team(NORD):
        box = card(page, world.name(pid)).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= TABLET_UPRIGHT["width"], pid
    screenshots.take(page, "worklist-tablet-da")
