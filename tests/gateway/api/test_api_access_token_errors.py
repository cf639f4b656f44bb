"""Issue 16: ``POST /login/access-token`` (the FHIR API's login) answers errors as OperationOutcomes, the
error shape of the rest of the API, where it answered ``{"detail": ...}``; the HTML login form keeps
answering browsers with its page."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient
from fhir.resources.R4B.operationoutcome import OperationOutcome
from seed import World, post_login

from gateway.api.login_throttle import ACCOUNT

FHIR_JSON = "application/fhir+json"


def _issue(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    OperationOutcome.model_validate(body)
    issue: dict[str, str] = body["issue"][0]
    return issue


def test_a_wrong_password_is_a_401_operation_outcome(client: TestClient, world: World) -> None:
    response = client.post("/login/access-token", data={"username": world.nurse, "password": "guess"})
    issue = _issue(response, 401)
    assert issue["code"] == "login" and "password" in issue["diagnostics"]
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_throttled_login_is_a_429_operation_outcome_with_retry_after(
    client: TestClient, world: World
) -> None:
    form = {"username": world.nurse, "password": "guess"}
    for _ in range(ACCOUNT.free_failures + 1):
        assert client.post("/login/access-token", data=form).status_code == 401
    response = client.post("/login/access-token", data=form)
    assert _issue(response, 429)["code"] == "throttled"
    assert int(response.headers["retry-after"]) >= 1


def test_a_get_of_the_token_endpoint_is_an_operation_outcome(client: TestClient) -> None:
    assert _issue(client.get("/login/access-token"), 405)["code"] == "not-supported"


def test_the_html_login_form_still_answers_a_page(client: TestClient, world: World) -> None:
    response = post_login(client, world.nurse, "guess")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert "Wrong username or password." in response.text
