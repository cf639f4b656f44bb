"""Issue 17: in production the FHIR API takes the bearer tokens of the region's OpenID Connect provider.

The provider is real enough to be wrong in every way that matters: an RSA (and an EC) key made in the
test, its JWKS served by ``http.server`` on 127.0.0.1 from a thread, tokens signed with PyJWT, and the
real app over PostgreSQL. The gateway fetches the keys itself (``jwt.PyJWKClient``), maps the token's
``preferred_username`` to a user of ``users`` (whose role and municipality count, not the token's) and
checks the token's SMART scopes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from pydantic import ValidationError
from seed import World

from gateway.api import oidc
from gateway.api.app import create_app
from gateway.api.auth import mint_token
from gateway.broker import free_port
from gateway.settings import GatewaySettings

ISSUER = "https://login.regionh.example/realms/sundhed"
AUDIENCE = "homewatch-fhir"
READ_SCOPES = "openid user/Patient.read user/Observation.read"


@dataclass
class Provider:
    """The region's identity provider as the gateway sees it: a JWKS URL, and keys to sign with."""

    url: str
    keys: dict[str, Any] = field(default_factory=dict)  # kid -> private key
    published: list[dict[str, Any]] = field(default_factory=list)
    fetches: int = 0

    def add_key(self, kid: str, private: Any, algorithm: str) -> None:
        self.keys[kid] = private
        cls = jwt.algorithms.RSAAlgorithm if algorithm == "RS256" else jwt.algorithms.ECAlgorithm
        public: dict[str, Any] = cls.to_jwk(private.public_key(), as_dict=True)  # type: ignore[assignment]
        self.published.append({**public, "kid": kid, "use": "sig", "alg": algorithm})

    def token(self, kid: str = "rsa-1", algorithm: str = "RS256", **changes: Any) -> str:
        now = datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": [AUDIENCE, "account"],
            "sub": "f:3c1a9b:anna",
            "preferred_username": "anna",
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(minutes=5)).timestamp()),
            "scope": READ_SCOPES,
        }
        claims.update(changes)
        claims = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode(claims, self.keys[kid], algorithm=algorithm, headers={"kid": kid})


def _serve(provider: Provider) -> Iterator[ThreadingHTTPServer]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            provider.fetches += 1
            body = json.dumps({"keys": provider.published}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def provider() -> Iterator[Provider]:
    placeholder = Provider(url="")
    for server in _serve(placeholder):
        placeholder.url = (
            f"http://127.0.0.1:{server.server_address[1]}/realms/sundhed/protocol/openid-connect/certs"
        )
        placeholder.add_key("rsa-1", rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")
        placeholder.add_key("ec-1", ec.generate_private_key(ec.SECP256R1()), "ES256")
        yield placeholder


def _oidc_settings(database_url: str, jwks_url: str, **more: Any) -> GatewaySettings:
    return GatewaySettings(
        database_url=database_url,
        secret_key="test-secret-of-the-oidc-tests",
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
        oidc_jwks_url=jwks_url,
        **more,
    )


@pytest.fixture
def settings(database_url: str, provider: Provider) -> GatewaySettings:
    return _oidc_settings(database_url, provider.url)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _issue(response: Any) -> dict[str, Any]:
    assert response.json()["resourceType"] == "OperationOutcome", response.text
    issue: dict[str, Any] = response.json()["issue"][0]
    return issue


def test_a_provider_token_reads_the_fhir_api_as_the_registered_user_it_names(
    client: TestClient, provider: Provider, world: World, db: psycopg.Connection[Any]
) -> None:
    token = provider.token()
    patient = client.get("/fhir/Patient/p-high", headers=_bearer(token))
    assert patient.status_code == 200, patient.text
    assert patient.json()["id"] == "p-high"
    found = client.get("/fhir/Observation", params={"patient": "p-high"}, headers=_bearer(token))
    assert found.status_code == 200 and found.json()["total"] > 0
    rows = db.execute(
        "SELECT username, municipality_id, role, action, patient_id, client FROM audit_log"
    ).fetchall()
    assert set(rows) == {(world.nurse, world.own, "nurse", "fhir-read", "p-high", "testclient")}
    # The ES256 key of the same provider works alike.
    es256 = provider.token(kid="ec-1", algorithm="ES256")
    assert client.get("/fhir/Patient/p-high", headers=_bearer(es256)).status_code == 200


def test_role_and_municipality_come_from_users_not_from_the_token(
    client: TestClient, provider: Provider, world: World
) -> None:
    token = provider.token(role="gp", municipality=world.other, roles=["gp", "system_admin"])
    assert client.get(f"/fhir/Patient/{world.other_patient}", headers=_bearer(token)).status_code == 404
    assert client.get("/fhir/Patient/p-high", headers=_bearer(token)).status_code == 200


def test_a_provider_token_of_nobody_in_users_is_401(
    client: TestClient, provider: Provider, world: World
) -> None:
    for username in ("mallory", "anna\x00", ""):
        response = client.get(
            "/fhir/Patient/p-high", headers=_bearer(provider.token(preferred_username=username))
        )
        assert response.status_code == 401 and _issue(response)["code"] == "login"
        assert response.headers["www-authenticate"] == "Bearer"
    no_name = provider.token(preferred_username=None)
    assert client.get("/fhir/Patient/p-high", headers=_bearer(no_name)).status_code == 401


def test_a_missing_smart_scope_is_403_and_a_wildcard_scope_is_enough(
    client: TestClient, provider: Provider, world: World
) -> None:
    narrow = provider.token(scope="openid user/Patient.read")
    refused = client.get("/fhir/RiskAssessment", params={"patient": "p-high"}, headers=_bearer(narrow))
    assert refused.status_code == 403
    assert (
        _issue(refused)["code"] == "forbidden"
        and "user/RiskAssessment.read" in _issue(refused)["diagnostics"]
    )
    wide = provider.token(scope="openid user/*.read")
    assert (
        client.get("/fhir/RiskAssessment", params={"patient": "p-high"}, headers=_bearer(wide)).status_code
        == 200
    )
    listed = provider.token(scope=None, scp=["user/RiskAssessment.rs"])  # Azure AD's and Okta's claim
    assert (
        client.get("/fhir/RiskAssessment", params={"patient": "p-high"}, headers=_bearer(listed)).status_code
        == 200
    )


def _hmac_token(claims: dict[str, Any], key: bytes, kid: str) -> str:
    """An HS256 token made by hand, as an attacker would with a public key as the HMAC secret."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()
    signing_input = f"{b64(header)}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def test_forged_expired_and_misaddressed_provider_tokens_are_401(
    client: TestClient,
    provider: Provider,
    settings: GatewaySettings,
    world: World,
    db: psycopg.Connection[Any],
) -> None:
    now = int(datetime.now(UTC).timestamp())
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        provider.keys["rsa-1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    claims = {"iss": ISSUER, "aud": AUDIENCE, "preferred_username": "anna", "iat": now, "exp": now + 300}
    forged = {
        "another audience": provider.token(aud="another-client"),
        "expired": provider.token(exp=now - 120, iat=now - 600),  # past the 30 s of clock skew
        "no expiry": provider.token(exp=None),
        "a key the provider never published": jwt.encode(
            claims, stranger, algorithm="RS256", headers={"kid": "rsa-1"}
        ),
        "an unknown kid": jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "rsa-9"}),
        "HS256 with the provider's public key as secret": _hmac_token(claims, public_pem, "rsa-1"),
        "HS256 with the gateway's own key": jwt.encode(
            claims,
            hmac.new(settings.signing_key, b"homewatch-jwt-v1", hashlib.sha256).digest(),
            algorithm="HS256",
        ),
        "alg none": jwt.encode(claims, None, algorithm="none"),
        "RS384, not an allowed algorithm": jwt.encode(
            claims, provider.keys["rsa-1"], algorithm="RS384", headers={"kid": "rsa-1"}
        ),
    }
    for case, token in forged.items():
        response = client.get("/fhir/Patient/p-high", headers=_bearer(token))
        assert response.status_code == 401, f"{case}: {response.status_code} {response.text}"
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'fhir-read'").fetchone() == (0,)


def test_the_gateways_own_tokens_still_work_beside_the_providers(
    client: TestClient, settings: GatewaySettings, world: World
) -> None:
    own = mint_token(settings, role="nurse", municipality_id=world.own, subject=world.nurse)
    assert client.get("/fhir/Patient/p-high", headers=_bearer(own)).status_code == 200


def test_the_key_set_is_fetched_once_and_a_rotated_key_when_first_seen_after_the_cooldown(
    client: TestClient, provider: Provider, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(oidc, "UNKNOWN_KID_COOLDOWN_S", 0.5)  # read when the key-set client is made
    for _ in range(3):
        assert client.get("/fhir/Patient/p-high", headers=_bearer(provider.token())).status_code == 200
    assert provider.fetches == 1
    provider.add_key("rsa-2", rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")
    rotated = provider.token(kid="rsa-2")
    # Right after a fetch an unknown kid is not fetched again (tokens with made-up kids cannot make the
    # gateway hammer the provider) ...
    assert client.get("/fhir/Patient/p-high", headers=_bearer(rotated)).status_code == 401
    assert provider.fetches == 1
    time.sleep(0.6)
    # ... after the cooldown it is.
    assert client.get("/fhir/Patient/p-high", headers=_bearer(rotated)).status_code == 200
    assert provider.fetches == 2


def test_a_provider_that_cannot_be_reached_is_503_not_a_server_error(
    database_url: str, pool: ConnectionPool[Any], provider: Provider, world: World
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/certs"
    with TestClient(create_app(_oidc_settings(database_url, closed), pool)) as client:
        response = client.get("/fhir/Patient/p-high", headers=_bearer(provider.token()))
    assert response.status_code == 503 and _issue(response)["code"] == "transient"


def test_a_role_claim_when_configured_must_grant_the_users_role(
    database_url: str, pool: ConnectionPool[Any], provider: Provider, world: World
) -> None:
    settings = _oidc_settings(
        database_url, provider.url, oidc_role_claim="roles", oidc_role_map={"sygeplejerske": "nurse"}
    )
    with TestClient(create_app(settings, pool)) as client:
        for roles, status in ((["sygeplejerske"], 200), ("nurse", 200), (["laege"], 403), (None, 403)):
            token = provider.token(roles=roles)
            assert client.get("/fhir/Patient/p-high", headers=_bearer(token)).status_code == status, roles


@pytest.mark.parametrize(
    ("changes", "mentions"),
    [
        ({"oidc_issuer": ISSUER}, "needs all of"),
        ({"oidc_issuer": ISSUER, "oidc_audience": AUDIENCE}, "HOMEWATCH_OIDC_JWKS_URL"),
        (
            {
                "oidc_issuer": "urn:homewatch:gateway",
                "oidc_audience": AUDIENCE,
                "oidc_jwks_url": "https://x/certs",
            },
            "must differ",
        ),
        ({"oidc_role_map": {"boss": "root"}}, "unknown roles"),
    ],
)
def test_a_half_configured_provider_is_refused_at_start(changes: dict[str, Any], mentions: str) -> None:
    with pytest.raises(ValidationError, match=mentions):
        GatewaySettings(environment="development", **changes)


def test_production_fetches_the_providers_keys_over_https_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOMEWATCH_ENVIRONMENT")
    secret = "0123456789abcdefghijklmnopqrstuvwxyzABCDEF"
    plain = {"oidc_issuer": ISSUER, "oidc_audience": AUDIENCE, "oidc_jwks_url": "http://idp.example/certs"}
    with pytest.raises(ValidationError, match="https"):
        GatewaySettings(secret_key=secret, **plain)
    GatewaySettings(secret_key=secret, **{**plain, "oidc_jwks_url": "https://idp.example/certs"})
