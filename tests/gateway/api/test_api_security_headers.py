"""Issue 15, item 3: every answer carries a Content-Security-Policy without inline script or style
(issue 18: only the UI's own script file may run, for the live alerts),
refuses framing, is never sniffed, sends no referrer, and is not stored by any cache (pages and FHIR
answers hold patient data); only the stylesheet may be cached.

Before the fix no answer carried any of these headers, and base.html held an inline <style> block.
"""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.testclient import TestClient
from seed import World, bearer, login

EXPECTED = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _policy(response: httpx.Response) -> dict[str, str]:
    """The Content-Security-Policy as directive -> sources."""
    text = response.headers["content-security-policy"]
    return dict(part.strip().partition(" ")[::2] for part in text.split(";"))


def _assert_protected(response: httpx.Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (response.request.url, name)
    policy = _policy(response)
    assert policy["default-src"] == "'none'"
    # Only the UI's own script file (static/alerts-live.js) and its stream back to this server.
    assert policy["script-src"] == "'self'" and policy["connect-src"] == "'self'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'self'"
    assert response.headers.get("cache-control") == "no-store", response.request.url


def test_every_page_and_fhir_answer_is_protected_and_never_stored(client: TestClient, world: World) -> None:
    anonymous = [
        client.get("/login"),
        client.get("/", follow_redirects=False),  # the redirect to /login
        client.get("/fhir/metadata"),
        client.get("/fhir/Patient/p-high"),  # 401 OperationOutcome
        client.get("/healthz"),
        client.get("/metrics"),
        client.post("/login", data={"username": world.nurse, "password": "wrong"}),
    ]
    auth = bearer(client, world.nurse)
    fhir = [
        client.get("/fhir/Patient/p-high", headers=auth),
        client.get("/fhir/RiskAssessment", params={"patient": "p-high"}, headers=auth),
        client.get("/fhir/Patient/nobody", headers=auth),  # 404 OperationOutcome
    ]
    login(client, world.nurse)
    pages = [client.get("/"), client.get("/patients/p-high"), client.get("/patients/nobody")]
    for response in anonymous + fhir + pages:
        _assert_protected(response)
    assert [r.status_code for r in pages] == [200, 200, 404]


def test_the_stylesheet_is_served_and_may_be_cached(client: TestClient) -> None:
    response = client.get("/static/homewatch.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert response.headers["cache-control"].startswith("public")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert ".news2" in response.text and "band-high" in response.text


@pytest.mark.parametrize("path", ["/", "/patients/p-high", "/login"])
def test_pages_have_no_inline_style_or_script_and_link_the_stylesheet(
    client: TestClient, world: World, path: str
) -> None:
    login(client, world.nurse)
    html = client.get(path).text
    assert '<link rel="stylesheet" href="/static/homewatch.css">' in html
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html, re.IGNORECASE), path
    # The one script is the UI's own file, never inline.
    scripts = re.findall(r"<script[^>]*>", html, re.IGNORECASE)
    assert all(re.fullmatch(r'<script src="/static/[a-z-]+\.js" defer>', s) for s in scripts), scripts
    assert not re.search(r"<script[^>]*>[^<]", html, re.IGNORECASE), path
