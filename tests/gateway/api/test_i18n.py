"""Danish by default, English on request: complete catalogues, the language choice, times in Copenhagen.

The catalogue tests extract the marked strings from the code and templates themselves (as
``make messages`` does), so a string marked anywhere without its Danish fails here, not on a nurse's
screen.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from seed import World, login

from gateway.api.app import create_app
from gateway.api.i18n import LANGUAGES, catalogue_path, translations_for, use_language
from gateway.api.language import LANGUAGE_COOKIE, accepted_languages, choose_language
from gateway.api.layout import navigation, role_name
from gateway.api.presenters import age, band, completeness, iso, measured, missing_reasons, when
from gateway.settings import GatewaySettings
from gateway.store.worklist import Measured

ROOT = Path(__file__).resolve().parents[3]
SECRET = "test-secret-of-the-i18n-tests-0123456789"


def _marked_messages() -> dict[tuple[str | None, str], str]:
    """(context, msgid) of every string babel.cfg's extraction finds -> where it was found."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: dict[tuple[str | None, str], str] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(ROOT, method_map, options_map):
        msgid = message if isinstance(message, str) else message[0]
        found.setdefault((context, msgid), f"{filename}:{lineno}")
    return found


def test_extraction_finds_python_marks_and_template_calls() -> None:
    found = _marked_messages()
    assert (None, "Log in") in found  # {{ _("Log in") }} in login.html
    assert (None, "Worklist") in found  # N_("Worklist") in layout.py
    assert (None, "%(num)d point") in found  # ngettext in presenters.py
    assert any(where.startswith("gateway/api/templates/base.html") for where in found.values())


def test_every_marked_string_has_a_danish_translation() -> None:
    with catalogue_path("da").open("rb") as po:
        catalogue = read_po(po, locale="da")
    untranslated = []
    for (context, msgid), where in sorted(_marked_messages().items(), key=lambda item: item[1]):
        entry = catalogue.get(msgid, context=context)
        strings = [] if entry is None else [entry.string] if isinstance(entry.string, str) else entry.string
        if entry is None or entry.fuzzy or not strings or not all(strings):
            untranslated.append(f"{where}: {msgid!r}")
    assert not untranslated, "run `make messages` and translate in gateway/locale/da:\n" + "\n".join(
        untranslated
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogues_keep_every_placeholder(language: str) -> None:
    with catalogue_path(language).open("rb") as po:
        catalogue = read_po(po, locale=language)
    problems = [f"{message.id!r}: {errors}" for message, errors in catalogue.check() if errors]
    assert not problems
    translations_for(language)  # and it compiles


def test_a_language_without_a_catalogue_is_refused() -> None:
    with pytest.raises(ValueError, match="no catalogue"):
        translations_for("de")


# --- choosing the language ---------------------------------------------------------------------------


def test_accept_language_is_ranked_by_quality_then_order() -> None:
    assert accepted_languages("en-GB,en;q=0.9,da;q=0.8") == ["en", "en", "da"]
    assert accepted_languages("de;q=0.5, da-DK;q=0.7, sv") == ["sv", "da", "de"]
    assert accepted_languages("en;q=0, da") == ["da"]  # q=0: not acceptable
    assert accepted_languages("en;q=banana") == [] and accepted_languages(None) == []


def test_cookie_then_browser_then_danish() -> None:
    assert choose_language(None, None) == "da"
    assert choose_language(None, "de-DE,fr;q=0.8") == "da"  # nothing homewatch speaks
    assert choose_language(None, "fr,en-US;q=0.7,da;q=0.5") == "en"
    assert choose_language("da", "en-US") == "da"
    assert choose_language("klingon", "en") == "en"  # a cookie of no known language counts for nothing


@pytest.fixture
def danish_client(database_url: str, pool: ConnectionPool[Any]) -> Iterator[TestClient]:
    """A client of an app with the default settings (Danish), sending no Accept-Language."""
    settings = GatewaySettings(database_url=database_url, secret_key=SECRET)
    with TestClient(create_app(settings, pool), headers={"Accept-Language": ""}) as client:
        yield client


def test_login_page_is_danish_by_default(danish_client: TestClient) -> None:
    response = danish_client.get("/login")
    assert response.headers["content-language"] == "da"
    page = response.text
    assert '<html lang="da">' in page
    assert "<h1>Log ind</h1>" in page and "Brugernavn" in page and "Adgangskode" in page
    assert "Gå til sidens indhold" in page
    assert 'lang="en"' in page and ">English</button>" in page  # the switch names the other language


def test_accept_language_english_gets_english(danish_client: TestClient) -> None:
    response = danish_client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert response.headers["content-language"] == "en"
    assert '<html lang="en">' in response.text and "<h1>Log in</h1>" in response.text
    assert ">Dansk</button>" in response.text


def _language_token(client: TestClient, path: str) -> str:
    """The anti-forgery token of the header's language form on ``path``, as a browser gets it."""
    page = client.get(path)
    found = re.search(
        r'<form class="language-switch"[^>]*>\s*<input type="hidden" name="csrf" value="([^"]+)"', page.text
    )
    assert found is not None, page.text
    return found[1]


def test_language_form_sets_a_cookie_that_wins_over_the_browser(danish_client: TestClient) -> None:
    token = _language_token(danish_client, "/login")
    response = danish_client.post(
        "/language",
        data={"language": "en", "next": "/login?next=%2F", "csrf": token},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/login?next=%2F"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{LANGUAGE_COOKIE}=en;") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = danish_client.get("/login", headers={"Accept-Language": "da"}).text
    assert '<html lang="en">' in page and "Username" in page


def test_language_form_refuses_other_sites_and_unknown_languages(danish_client: TestClient) -> None:
    token = _language_token(danish_client, "/login")
    response = danish_client.post(
        "/language",
        data={"language": "xx", "next": "https://evil.example/", "csrf": token},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/" and "set-cookie" not in response.headers


@pytest.mark.parametrize("token", ["", "forged"])
def test_language_form_without_this_browsers_token_is_refused(danish_client: TestClient, token: str) -> None:
    danish_client.get("/login")  # the browser has a pre-session nonce; the form below is not its own
    response = danish_client.post(
        "/language", data={"language": "en", "next": "/", "csrf": token}, follow_redirects=False
    )
    assert response.status_code == 403 and LANGUAGE_COOKIE not in response.headers.get("set-cookie", "")
    assert "Formularen er udløbet" in response.text


def test_another_sites_language_form_cannot_change_this_browsers_language(
    danish_client: TestClient, database_url: str, pool: ConnectionPool[Any]
) -> None:
    # The attacker copies the token of a page he was shown himself; the victim's browser posts it with its
    # own nonce cookie, which another site can neither read nor set.
    settings = GatewaySettings(database_url=database_url, secret_key=SECRET)
    with TestClient(create_app(settings, pool)) as attacker:
        token = _language_token(attacker, "/login")
    danish_client.get("/login")
    response = danish_client.post(
        "/language", data={"language": "en", "next": "/", "csrf": token}, follow_redirects=False
    )
    assert response.status_code == 403


def test_a_session_changes_its_language_with_the_sessions_token(
    danish_client: TestClient, world: World
) -> None:
    login(danish_client, world.nurse)
    token = _language_token(danish_client, "/")
    response = danish_client.post(
        "/language", data={"language": "en", "next": "/", "csrf": token}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["set-cookie"].startswith(f"{LANGUAGE_COOKIE}=en;")
    assert '<html lang="en">' in danish_client.get("/").text


def test_the_error_pages_language_form_works_without_a_session(danish_client: TestClient) -> None:
    token = _language_token(danish_client, "/no-such-page")  # a 404 page sets the pre-session nonce
    response = danish_client.post(
        "/language", data={"language": "en", "next": "/login", "csrf": token}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/login"


def test_header_shows_the_roles_navigation_and_role_in_danish(
    danish_client: TestClient, world: World
) -> None:
    login(danish_client, world.nurse)
    page = danish_client.get("/").text
    header = page[page.index("<header") : page.index("</header>")]
    assert "Sygeplejerske" in header and world.nurse in header
    assert re.search(r'<a href="/"\s+aria-current="page">Arbejdsliste</a>', header)
    assert '<a href="/review">Ugentlig gennemgang</a>' in header
    assert "/admin/audit" not in header
    assert ">Log ud</button>" in header and 'name="csrf"' in header


def test_error_page_is_danish(danish_client: TestClient) -> None:
    page = danish_client.get("/no-such-page").text
    assert '<html lang="da">' in page and "Siden blev ikke fundet" in page and "Fejlkode: 404" in page
    assert "Der er ingen side på denne adresse." in page and "Not Found" not in page


# --- times, numbers and words in Danish ----------------------------------------------------------------


def test_a_reading_late_in_the_utc_evening_is_the_next_day_in_copenhagen() -> None:
    winter = datetime(2025, 3, 1, 23, 30, tzinfo=UTC)  # CET, UTC+1
    summer = datetime(2025, 7, 1, 22, 30, tzinfo=UTC)  # CEST, UTC+2
    with use_language("da"):
        assert when(winter) == "2. mar. 2025 00.30"
        assert when(summer) == "2. jul. 2025 00.30"
        assert iso(winter) == "2025-03-02T00:30:00+01:00"
        assert iso(summer) == "2025-07-02T00:30:00+02:00"
    with use_language("en"):
        assert when(winter) == "Mar 2, 2025, 00:30"
    with use_language("da", "UTC"):  # the zone is a setting
        assert when(winter) == "1. mar. 2025 23.30"


def test_the_clock_change_is_followed() -> None:
    # 2025-03-30 01:00 UTC: Denmark moves from UTC+1 to UTC+2; one UTC hour apart is two hours on the wall.
    before, after = datetime(2025, 3, 30, 0, 30, tzinfo=UTC), datetime(2025, 3, 30, 1, 30, tzinfo=UTC)
    with use_language("da"):
        assert when(before).endswith("01.30") and when(after).endswith("03.30")


def test_ages_numbers_and_bands_in_danish() -> None:
    now = datetime(2025, 3, 1, 12, tzinfo=UTC)
    with use_language("da"):
        assert age(now - timedelta(days=2, hours=1), now) == "for 2 dage siden"
        assert age(now - timedelta(hours=5, minutes=59), now) == "for 5 timer siden"
        assert age(now - timedelta(minutes=1), now) == "for 1 minut siden"
        assert age(now - timedelta(seconds=10), now) == "lige nu"
        assert age(None, now) == "ingen målinger"
        assert measured(Measured(36.6, "Cel", now)) == "36,6 °C"
        assert band("high").label == "Høj" and band(None).label == "Ingen score"
        detail = {"complete": False, "missing": [{"name": "respiration_rate", "reason": "not-recorded"}]}
        assert completeness({**detail, "max_total": 9.0}) == (
            "Mindsteværdi: 1 af 7 parametre er ikke målt; kan være op til 9"
        )
        assert missing_reasons(detail) == ["Respirationsfrekvens ikke registreret: indgår ikke i scoren"]


def test_no_page_shows_utc(danish_client: TestClient, world: World) -> None:
    login(danish_client, world.nurse)
    for path in ("/", f"/patients/{world.ranked[0]}"):
        shown = re.sub(r'datetime="[^"]*"', "", danish_client.get(path).text)
        assert "UTC" not in shown and "+00:00" not in shown, path


def test_the_main_menu_follows_the_role() -> None:
    with use_language("da"):
        nurse = navigation("nurse", "/review/p-1")
        assert [(link.href, link.label, link.current) for link in nurse] == [
            ("/", "Arbejdsliste", False),
            ("/review", "Ugentlig gennemgang", True),
            ("/alerts", "Alarmer", False),
        ]
        assert [link.href for link in navigation("gp", "/")] == ["/", "/review", "/alerts"]
        counted = navigation("gp", "/alerts/12", open_alerts=3)
        assert [(link.href, link.current, link.count) for link in counted][1:] == [
            ("/review", False, None),
            ("/alerts", True, 3),
        ]
        for admin in ("municipality_admin", "system_admin"):
            assert [(link.href, link.label) for link in navigation(admin, "/")] == [
                ("/admin/audit", "Adgangslog"),
                ("/admin/deliveries", "Alarmafsendelser"),
                ("/admin/alert-settings", "Alarmindstillinger"),
                ("/admin/models", "Risikomodeller"),
                ("/admin/homes", "Hjem"),
                ("/admin/quarantine", "Karantæne"),
                ("/admin/fleet", "Flåde"),
            ]
        assert navigation("hub", "/") == []
        assert role_name("municipality_admin") == "Kommunal administrator"
    with use_language("en"):
        assert role_name("gp") == "General practitioner"


def test_only_pages_say_their_language(danish_client: TestClient) -> None:
    assert "content-language" not in danish_client.get("/fhir/metadata").headers
    assert "content-language" not in danish_client.get("/static/homewatch.css").headers


def test_template_text_is_translated_and_its_values_escaped(
    database_url: str, pool: ConnectionPool[Any]
) -> None:
    settings = GatewaySettings(database_url=database_url, secret_key=SECRET)
    env = create_app(settings, pool).state.templates.env
    template = env.from_string(
        '{{ _("Log in") }}|{{ _("Error code: %(status)s", status=value) }}|'
        "{% trans status=value %}Error code: {{ status }}{% endtrans %}|"
        '{{ ngettext("%(num)d day", "%(num)d days", 2) }}'
    )
    with use_language("da"):
        shown = template.render(value="<b>")
    assert shown == "Log ind|Fejlkode: &lt;b&gt;|Fejlkode: &lt;b&gt;|2 dage"


def test_an_unknown_time_zone_stops_the_start(database_url: str, pool: ConnectionPool[Any]) -> None:
    settings = GatewaySettings(database_url=database_url, secret_key=SECRET, time_zone="Europe/Atlantis")
    with pytest.raises(ZoneInfoNotFoundError):
        create_app(settings, pool)
