"""Issue 17: the gateway's tokens are standard JWTs (PyJWT, HS256) with the claims docs/security.md lists,
and the FHIR API checks their SMART scopes per resource type and interaction.

Refused, by ``read_token`` and by the API alike: ``alg: none``, another algorithm, a wrong signature,
another issuer or audience, an expired token, a missing claim, an unknown role, a revoked session (logout,
test_api_logout.py) and a user not in ``users`` (test_api_secrets_and_tokens.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from seed import World

from gateway.api import scopes
from gateway.api.auth import User, create_user, issue_token, mint_token, read_token
from gateway.settings import GatewaySettings

SETTINGS = GatewaySettings(secret_key="unit-test-secret-of-the-jwt-tests")
ANNA = User("anna", "0101", "nurse")
NURSE_SCOPES = (
    "user/Patient.read user/Observation.read user/RiskAssessment.read user/Device.read"
    " user/ClinicalImpression.read user/ClinicalImpression.write"
    " user/Flag.read user/Task.read user/Communication.read user/QuestionnaireResponse.read"
)


def _key(settings: GatewaySettings) -> bytes:
    """The token key as docs/security.md says: HMAC-SHA256 of the secret and 'homewatch-jwt-v1'."""
    return hmac.new(settings.signing_key, b"homewatch-jwt-v1", hashlib.sha256).digest()


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {
        "iss": SETTINGS.token_issuer,
        "aud": SETTINGS.token_audience,
        "sub": "anna",
        "municipality": "0101",
        "role": "nurse",
        "sid": "a-session",
        "iat": now,
        "exp": now + 3600,
        "scope": NURSE_SCOPES,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_issued_token_is_an_hs256_jwt_with_the_documented_claims() -> None:
    issued = datetime(2026, 3, 1, 8, tzinfo=UTC)
    token = issue_token(SETTINGS, ANNA, now=issued)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(
        token,
        _key(SETTINGS),
        algorithms=["HS256"],
        audience="urn:homewatch:api",
        options={"verify_exp": False},
    )
    sid = claims.pop("sid")
    assert len(sid) >= 16
    assert claims == {
        "iss": "urn:homewatch:gateway",
        "aud": "urn:homewatch:api",
        "sub": "anna",
        "municipality": "0101",
        "role": "nurse",
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(hours=12)).timestamp()),
        "scope": NURSE_SCOPES,
    }


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("gp", NURSE_SCOPES),
        ("municipality_admin", ""),
        ("system_admin", ""),
        ("hub", "system/Observation.write"),
    ],
)
def test_each_role_gets_its_smart_scopes(role: str, expected: str) -> None:
    token = mint_token(SETTINGS, role=role, municipality_id="0101", subject="someone")
    assert jwt.decode(token, options={"verify_signature": False})["scope"] == expected


def test_a_token_made_by_pyjwt_with_the_key_and_claims_is_read() -> None:
    claims = read_token(SETTINGS, jwt.encode(_claims(), _key(SETTINGS), algorithm="HS256"))
    assert claims is not None and claims.user == ANNA and claims.session_id == "a-session"
    assert "user/Observation.read" in claims.scopes


@pytest.mark.parametrize(
    ("case", "changes"),
    [
        ("another issuer", {"iss": "urn:someone-else"}),
        ("another audience", {"aud": "urn:another-api"}),
        ("expired", {"exp": int(datetime.now(UTC).timestamp()) - 1}),
        ("issued in the future", {"iat": int(datetime.now(UTC).timestamp()) + 3600}),
        ("no session id", {"sid": None}),
        ("no role", {"role": None}),
        ("no scope claim", {"scope": None}),
        ("no expiry", {"exp": None}),
        ("an unknown role", {"role": "root"}),
        ("a subject that is no text", {"sub": 7}),
    ],
)
def test_a_token_with_a_wrong_or_missing_claim_is_refused_even_when_signed_with_the_key(
    case: str, changes: dict[str, Any], client: TestClient, settings: GatewaySettings, world: World
) -> None:
    signed = jwt.encode(_claims(**changes), _key(SETTINGS), algorithm="HS256")
    assert read_token(SETTINGS, signed) is None, case
    # And over HTTP, with the app's own key.
    served = {**_claims(**changes), "iss": changes.get("iss", settings.token_issuer)}
    token = jwt.encode({k: v for k, v in served.items() if v is not None}, _key(settings), algorithm="HS256")
    assert client.get("/fhir/Patient/p-high", headers=_bearer(token)).status_code == 401, case


def test_alg_none_and_other_algorithms_are_refused(
    client: TestClient, settings: GatewaySettings, world: World
) -> None:
    claims = {**_claims(), "sub": world.nurse, "municipality": world.own}
    unsigned = (
        f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}."
    )
    hs512 = jwt.encode(claims, _key(settings), algorithm="HS512")
    for token in (unsigned, hs512):
        assert read_token(settings, token) is None
        assert client.get("/fhir/Patient/p-high", headers=_bearer(token)).status_code == 401
    right = jwt.encode(claims, _key(settings), algorithm="HS256")
    assert client.get("/fhir/Patient/p-high", headers=_bearer(right)).status_code == 200


def test_a_token_signed_with_the_raw_secret_instead_of_the_derived_key_is_refused() -> None:
    assert read_token(SETTINGS, jwt.encode(_claims(), SETTINGS.signing_key, algorithm="HS256")) is None


# --- SMART scopes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("granted", "resource", "interaction", "allowed"),
    [
        ("user/Observation.read", "Observation", "read", True),
        ("user/Observation.read", "Observation", "search", True),
        ("user/Observation.read", "Patient", "read", False),
        ("user/*.read", "RiskAssessment", "search", True),
        ("user/*.*", "Observation", "create", True),
        ("user/Observation.write", "Observation", "read", False),
        ("user/Observation.rs", "Observation", "search", True),  # SMART 2
        ("user/Observation.r", "Observation", "search", False),
        ("user/Observation.s", "Observation", "read", False),
        ("user/Observation.cruds", "Observation", "create", True),
        ("user/Observation.sr", "Observation", "read", False),  # letters out of order: no scope
        ("patient/Observation.read", "Observation", "read", False),  # another context
        ("system/*.read", "Observation", "read", False),
        ("user/observation.read", "Observation", "read", False),  # a resource type is capitalised
        ("", "Observation", "read", False),
    ],
)
def test_scopes_grant_exactly_what_smart_says(
    granted: str, resource: str, interaction: str, allowed: bool
) -> None:
    assert scopes.allows(granted.split(), "user", resource, interaction) is allowed  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("granted", "path", "status"),
    [
        (("user/Patient.read",), "/fhir/Patient/p-high", 200),
        (("user/Patient.read",), "/fhir/Observation?patient=p-high", 403),
        (("user/Observation.rs",), "/fhir/Observation?patient=p-high", 200),
        (("user/Observation.s",), "/fhir/Observation?patient=p-high", 200),
        (("user/Observation.r",), "/fhir/Observation?patient=p-high", 403),
        (("user/*.read",), "/fhir/RiskAssessment?patient=p-high", 200),
        (("user/*.write",), "/fhir/Patient/p-high", 403),
        (("patient/*.read",), "/fhir/Patient/p-high", 403),
        ((), "/fhir/Patient/p-high", 403),
        # A token cannot widen what its role may do: system scopes give a nurse nothing.
        (("system/*.*",), "/fhir/Patient/p-high", 403),
    ],
)
def test_the_fhir_api_checks_the_tokens_scopes_per_type_and_interaction(
    granted: tuple[str, ...],
    path: str,
    status: int,
    client: TestClient,
    settings: GatewaySettings,
    world: World,
) -> None:
    token = mint_token(settings, role="nurse", municipality_id=world.own, subject=world.nurse, scopes=granted)
    response = client.get(path, headers=_bearer(token))
    assert response.status_code == status, response.text
    if status == 403:
        issue = response.json()["issue"][0]
        assert response.json()["resourceType"] == "OperationOutcome" and issue["code"] == "forbidden"
        assert "scope" in issue["diagnostics"]


def test_an_administrators_token_with_wide_scopes_still_reads_no_clinical_data(
    client: TestClient, settings: GatewaySettings, world: World, db: Any
) -> None:
    create_user(db, "kim", world.own, "municipality_admin", None)
    token = mint_token(
        settings, role="municipality_admin", municipality_id=world.own, subject="kim", scopes=("user/*.*",)
    )
    response = client.get("/fhir/Patient/p-high", headers=_bearer(token))
    assert response.status_code == 403 and "clinical" in response.json()["issue"][0]["diagnostics"]


def test_a_hub_token_without_its_write_scope_may_not_post(
    client: TestClient, settings: GatewaySettings
) -> None:
    token = mint_token(settings, role="hub", municipality_id="0101", subject="hub-1", scopes=())
    response = client.post(
        "/fhir", content=b"{}", headers={**_bearer(token), "Content-Type": "application/fhir+json"}
    )
    assert (
        response.status_code == 403
        and "system/Observation.write" in response.json()["issue"][0]["diagnostics"]
    )
