"""Bearer tokens of the region's OpenID Connect provider, checked against the keys it publishes.

A token whose ``iss`` is ``settings.oidc_issuer`` comes here instead of ``auth.read_token``. PyJWT checks
it: the signature with the provider's key of the token's ``kid``, fetched from ``settings.oidc_jwks_url``
by ``jwt.PyJWKClient`` (the key set is cached for ``_JWKS_LIFESPAN_S``; an unknown ``kid`` fetches it
again, at most once per ``UNKNOWN_KID_COOLDOWN_S``, so a key rotation needs nothing here); only RS256
and ES256 (an HMAC or ``none`` token claiming the provider's issuer is refused before any key is looked
at); ``iss``; ``aud`` must hold ``settings.oidc_audience``; ``exp``, ``iat`` and ``nbf`` with
``CLOCK_SKEW_S`` of leeway.

What comes out is who the provider says the person is (``oidc_username_claim``), which roles it grants
(``oidc_role_claim`` through ``oidc_role_map``, when configured) and the token's SMART scopes. Mapping
that person to a user of ``users`` (whose role and municipality count, not the token's) is ``deps.py``'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import jwt

from gateway.api.errors import ApiError
from gateway.api.scopes import parse_scope_claim
from gateway.settings import GatewaySettings

# Asymmetric only: the provider's public keys can check these, and nobody but the provider can make them.
ALGORITHMS = ("RS256", "ES256")
# The provider's clock and ours may differ by this much (iat, nbf, exp).
CLOCK_SKEW_S = 30
# How long a fetched key set is trusted before it is fetched again (PyJWKClient's default: 5 minutes).
_JWKS_LIFESPAN_S = 300
# A provider that does not answer within this is reported (503), not waited for.
_JWKS_TIMEOUT_S = 5
# A token with a kid the cached set lacks fetches the set again, but at most once in this many seconds
# after the last fetch (PyJWT's default): tokens with made-up kids cannot make the gateway hammer the
# provider. A provider publishes a new key before it signs with it, so a rotation costs nothing.
UNKNOWN_KID_COOLDOWN_S = 30.0
# A username names a ``users`` row: text PostgreSQL can hold, without control characters.
_USERNAME = re.compile(r"[^\x00-\x1f\x7f]{1,200}")


class ProviderUnavailable(ApiError):
    """The provider's key set could not be fetched: no token of it can be checked now."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"the identity provider's keys at {url} could not be fetched: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ProviderClaims:
    """What a checked provider token says: the username, the roles it grants (None: no role claim is
    configured), its SMART scopes and its expiry."""

    username: str
    roles: frozenset[str] | None
    scopes: frozenset[str]
    expires: datetime


def is_provider_token(settings: GatewaySettings, issuer: str | None) -> bool:
    """Whether a token claiming ``issuer`` is the configured provider's (to be checked here)."""
    return settings.oidc_issuer is not None and issuer == settings.oidc_issuer


@lru_cache(maxsize=8)
def _key_set(url: str) -> jwt.PyJWKClient:
    """One key-set client per URL for the process, so its cache serves every request."""
    return jwt.PyJWKClient(
        url,
        cache_keys=True,
        lifespan=_JWKS_LIFESPAN_S,
        timeout=_JWKS_TIMEOUT_S,
        cooldown_duration=UNKNOWN_KID_COOLDOWN_S,
    )


def _roles(settings: GatewaySettings, value: object) -> frozenset[str]:
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return frozenset(settings.oidc_role_map.get(v, v) for v in values if isinstance(v, str))


def read_provider_token(settings: GatewaySettings, token: str) -> ProviderClaims | None:
    """What a provider token says when PyJWT accepts it against the provider's keys, else None.

    ProviderUnavailable when the keys cannot be fetched (the token may be fine: the caller answers 503).
    """
    assert settings.oidc_jwks_url is not None and settings.oidc_issuer is not None  # is_provider_token
    try:
        if jwt.get_unverified_header(token).get("alg") not in ALGORITHMS:
            return None
        key = _key_set(settings.oidc_jwks_url).get_signing_key_from_jwt(token)
        payload = jwt.decode(
            token,
            key,
            algorithms=list(ALGORITHMS),
            audience=settings.oidc_audience,
            issuer=settings.oidc_issuer,
            leeway=CLOCK_SKEW_S,
            options={"require": ["iss", "aud", "exp", "iat"]},
        )
    except jwt.PyJWKClientConnectionError as exc:
        raise ProviderUnavailable(settings.oidc_jwks_url, str(exc)) from exc
    except jwt.PyJWTError:
        return None
    username = payload.get(settings.oidc_username_claim)
    expiry = payload["exp"]
    if not isinstance(username, str) or not _USERNAME.fullmatch(username) or not isinstance(expiry, int):
        return None
    roles = None
    if settings.oidc_role_claim is not None:
        roles = _roles(settings, payload.get(settings.oidc_role_claim))
    scopes = parse_scope_claim(payload["scope"] if "scope" in payload else payload.get("scp"))
    return ProviderClaims(username, roles, scopes, datetime.fromtimestamp(expiry, UTC))
