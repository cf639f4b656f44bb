"""Users, passwords and the gateway's own tokens (JSON Web Tokens, made and checked with PyJWT).

Passwords are stored as scrypt hashes (random salt, parameters kept in the stored string, constant-time
comparison) in ``users``, whose rows ``gateway.store.users`` reads and writes. A user made for single
sign-on only (``password=None``) gets a hash no password matches.

A token is a JWT signed HS256 with a key derived from ``GatewaySettings.signing_key`` (HMAC-SHA256 of the
secret and ``_TOKEN_CONTEXT``, so the same secret never signs two kinds of thing and the key is always 32
bytes). Its claims: ``iss`` (``settings.token_issuer``), ``aud`` (``settings.token_audience``), ``sub``
(the username, or a hub's id), ``municipality``, ``role``, ``sid`` (a random session id that logout
revokes: ``gateway.store.logins``), ``iat``, ``exp`` (``session_hours`` later) and ``scope`` (the SMART
scopes of the role, ``gateway.api.scopes``, space-separated). The web UI carries it in an HttpOnly cookie,
the FHIR API as ``Authorization: Bearer``. ``read_token`` refuses any other algorithm (``none`` among
them), another issuer or audience, an expired token, a missing claim and a role outside ``TOKEN_ROLES``.

A signature only proves who made the token, so a person's token is also checked against ``users``
(``registered_user``): what the audit log records is a user that exists, in that municipality, with that
role. ``mint_token`` signs one for any role without a password, for local use (the CLI). Tokens of the
region's OpenID Connect provider are ``gateway.api.oidc``'s; reading a token from a request and refusing
access is left to ``deps.py``.

``csrf_token`` binds a form to a session (or, for the login form, to a random pre-session nonce kept in
its own cookie: ``login_nonce``); ``cookie_name`` gives a cookie the ``__Host-`` prefix wherever cookies
are ``Secure``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import psycopg

from gateway.api.scopes import HOMECARE_SYSTEM, HOSPITAL_SYSTEM, HUB, ROLE_SCOPES, parse_scope_claim
from gateway.settings import GatewaySettings
from gateway.store import access, users

# Roles of people, who log in with a password (``gateway.store.access`` says what each may see).
ROLES = frozenset(access.ROLES)
# The role of a hub's token: it may post Observations and read nothing.
HUB_ROLE = HUB
# Roles of system accounts: users of one municipality (``users`` rows), token only (no password, no
# web session), that may only POST FiNDR's inputs to /fhir (``gateway.api.findr_fhir``).
SYSTEM_ACCOUNT_ROLES = frozenset({HOMECARE_SYSTEM, HOSPITAL_SYSTEM})
TOKEN_ROLES = ROLES | {HUB_ROLE} | SYSTEM_ACCOUNT_ROLES
# A hub's id is a level of its MQTT topic, so it may not hold a topic separator or wildcard.
_TOPIC_RESERVED = "/+#"
SESSION_COOKIE = "homewatch_session"
# The login form's pre-session nonce (login CSRF): random, bound to the form's token, lives an hour.
LOGIN_COOKIE = "homewatch_login"
LOGIN_COOKIE_SECONDS = 3600
# A cookie with this prefix is refused by browsers unless Secure, path / and without Domain: no
# sibling subdomain can plant or overwrite it (RFC 6265bis, "Cookie Name Prefixes").
_HOST_PREFIX = "__Host-"

# scrypt cost: n=2**14, r=8, p=1 is the interactive-login setting of the scrypt paper and of Python's
# docs; it needs 16 MiB and about 50 ms here, slow enough for guessing, fast enough for a login.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SALT_BYTES = 16
_KEY_BYTES = 32
# Separates the token key from any other use of the secret key (the CSRF tokens below).
_TOKEN_CONTEXT = b"homewatch-jwt-v1"
_CSRF_CONTEXT = b"homewatch-csrf-v1"
_LOGIN_CSRF_PREFIX = "login:"
ALGORITHM = "HS256"
# Claims every token of this gateway has (PyJWT refuses a token without one).
_REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "exp", "sid", "role", "municipality", "scope"]
# A session id (what logout revokes): 96 random bits, never guessed nor repeated.
_SESSION_ID_BYTES = 12
# A stored "hash" that no password matches: a user who signs in only through the region's provider.
NO_PASSWORD = "!"


@dataclass(frozen=True, slots=True)
class User:
    """A logged-in user: who, which municipality they belong to, and their role."""

    username: str
    municipality_id: str
    role: str


@dataclass(frozen=True, slots=True)
class Claims:
    """What a token with a right signature says: its user, session id (None: a provider's token, which
    this server cannot revoke), expiry, and SMART scopes."""

    user: User
    session_id: str | None
    expires: datetime
    scopes: frozenset[str] = field(default_factory=frozenset)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """An scrypt hash of ``password`` with a new random salt, as ``scrypt$n$r$p$salt$key``."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_KEY_BYTES
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (from ``hash_password``); a malformed hash never matches."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(key)
        actual = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


# Checked against when the username is unknown, so a wrong username costs as long as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def create_user(
    conn: psycopg.Connection[Any],
    username: str,
    municipality_id: str,
    role: str,
    password: str | None,
    care_teams: tuple[str, ...] | None = None,
    *,
    email: str | None = None,
) -> User:
    """Insert a user with an scrypt hash of ``password``; the municipality must exist.

    ``password`` None makes a user who signs in only through the region's OpenID Connect provider (no
    password matches); a system account (``SYSTEM_ACCOUNT_ROLES``) must have none: it uses tokens of
    ``homewatch gateway token`` only. A nurse joins ``care_teams`` (default: her municipality's default
    team, whose id is the municipality's); the other roles belong to no team. ``email``: where alerts
    reach the user.
    """
    for name, value in (("username", username), ("municipality_id", municipality_id), ("role", role)):
        if not value or "|" in value:
            raise ValueError(f"{name} must be non-empty and must not contain '|'")
    if role not in ROLES | SYSTEM_ACCOUNT_ROLES:
        raise ValueError(f"role must be one of {sorted(ROLES | SYSTEM_ACCOUNT_ROLES)}, not {role!r}")
    if role in SYSTEM_ACCOUNT_ROLES and password is not None:
        raise ValueError(f"a {role} account has no password: it uses tokens (homewatch gateway token)")
    if password is not None and len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    if care_teams and role != access.NURSE:
        raise ValueError(f"only a nurse belongs to care teams, not a {role}")
    if email is not None and not users.EMAIL.match(email):
        raise ValueError(f"email must be an address such as name@kommune.dk, not {email!r}")
    stored = NO_PASSWORD if password is None else hash_password(password)
    with conn.transaction():
        users.insert_user(conn, username, municipality_id, role, stored, email)
        if role == access.NURSE:
            for team in (municipality_id,) if care_teams is None else care_teams:
                users.join_care_team(conn, municipality_id, team, username)
    return User(username, municipality_id, role)


def authenticate(conn: psycopg.Connection[Any], username: str, password: str) -> User | None:
    """The user when ``username`` exists and ``password`` is right, else None (same cost either way)."""
    stored = users.user_by_name(conn, username)
    # A system account never logs in with a password, whatever its row holds.
    if stored is None or stored.password_hash == NO_PASSWORD or stored.role in SYSTEM_ACCOUNT_ROLES:
        verify_password(password, _DUMMY_HASH)
        return None
    if not verify_password(password, stored.password_hash):
        return None
    return User(stored.username, stored.municipality_id, stored.role)


def registered_user(conn: psycopg.Connection[Any], user: User) -> User | None:
    """``user`` when ``users`` has them, in that municipality and with that role; else None."""
    return user if users.user_exists(conn, user.username, user.municipality_id, user.role) else None


def _token_key(settings: GatewaySettings) -> bytes:
    return hmac.new(settings.signing_key, _TOKEN_CONTEXT, hashlib.sha256).digest()


def _signed(
    settings: GatewaySettings, user: User, issued: datetime, expires: datetime, scopes: tuple[str, ...]
) -> str:
    claims = {
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
        "sub": user.username,
        "municipality": user.municipality_id,
        "role": user.role,
        "sid": secrets.token_urlsafe(_SESSION_ID_BYTES),
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
        "scope": " ".join(scopes),
    }
    return jwt.encode(claims, _token_key(settings), algorithm=ALGORITHM)


def issue_token(settings: GatewaySettings, user: User, now: datetime | None = None) -> str:
    """A signed session token for ``user`` with its role's scopes, valid for ``settings.session_hours``."""
    issued = now or datetime.now(UTC)
    expires = issued + timedelta(hours=settings.session_hours)
    return _signed(settings, user, issued, expires, ROLE_SCOPES.get(user.role, ()))


def mint_token(
    settings: GatewaySettings,
    *,
    role: str,
    municipality_id: str,
    subject: str,
    hours: float | None = None,
    scopes: tuple[str, ...] | None = None,
    now: datetime | None = None,
) -> str:
    """A bearer token for ``subject`` (a username, or a hub id when ``role`` is ``hub``), no password asked.

    For local use by whoever holds the secret key (``homewatch gateway token``); the API accepts a
    person's token only when ``subject`` is a user of that municipality and role. Valid for ``hours``
    (default ``settings.session_hours``); ``scopes`` default to the role's (fewer narrow what it may do,
    more widen nothing: ``gateway.api.scopes``). ValueError for an unknown role, an empty or unsafe field,
    or a lifetime that is not positive.
    """
    if role not in TOKEN_ROLES:
        raise ValueError(f"role must be one of {sorted(TOKEN_ROLES)}, not {role!r}")
    for name, value in (("subject", subject), ("municipality_id", municipality_id)):
        if not value or "|" in value:
            raise ValueError(f"{name} must be non-empty and must not contain '|'")
        if role == HUB_ROLE and any(c in _TOPIC_RESERVED for c in value):
            raise ValueError(f"a hub's {name} must not contain any of {_TOPIC_RESERVED!r}: {value!r}")
    lifetime = settings.session_hours if hours is None else hours
    if lifetime <= 0:
        raise ValueError(f"hours must be positive, not {lifetime}")
    issued = now or datetime.now(UTC)
    granted = ROLE_SCOPES[role] if scopes is None else scopes
    user = User(subject, municipality_id, role)
    return _signed(settings, user, issued, issued + timedelta(hours=lifetime), granted)


def _text(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise jwt.InvalidTokenError(f"claim {name} must be non-empty text")
    return value


def read_token(settings: GatewaySettings, token: str, now: datetime | None = None) -> Claims | None:
    """What one of this gateway's tokens says when PyJWT accepts it (HS256 with this gateway's key, its
    issuer and audience, every claim there) and its role is known and it has not expired, else None.

    ``now`` judges expiry as of another time (tests). Whether its session was revoked, or its user still
    exists, needs the database: ``deps.py`` asks.
    """
    as_of_now = now is None
    try:
        payload = jwt.decode(
            token,
            _token_key(settings),
            algorithms=[ALGORITHM],
            audience=settings.token_audience,
            issuer=settings.token_issuer,
            options={"require": _REQUIRED_CLAIMS, "verify_exp": as_of_now, "verify_iat": as_of_now},
        )
        user = User(_text(payload, "sub"), _text(payload, "municipality"), _text(payload, "role"))
        session_id = _text(payload, "sid")
        expiry = payload["exp"]
        if not isinstance(expiry, int) or isinstance(expiry, bool):
            return None
        expires = datetime.fromtimestamp(expiry, UTC)
    except (jwt.PyJWTError, ValueError, OverflowError, OSError):
        return None
    if user.role not in TOKEN_ROLES:
        return None
    if now is not None and now >= expires:
        return None
    return Claims(user, session_id, expires, parse_scope_claim(payload["scope"]))


def verify_token(settings: GatewaySettings, token: str, now: datetime | None = None) -> User | None:
    """The user a token names when ``read_token`` accepts it, else None."""
    claims = read_token(settings, token, now)
    return None if claims is None else claims.user


def unverified_issuer(token: str) -> str | None:
    """The ``iss`` a token claims, read without checking it: only to choose who must check it."""
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        return None
    return issuer if isinstance(issuer, str) else None


def cookie_name(settings: GatewaySettings, name: str) -> str:
    """A cookie's name: with the ``__Host-`` prefix wherever cookies are ``Secure``."""
    return f"{_HOST_PREFIX}{name}" if settings.secure_cookies else name


def csrf_token(settings: GatewaySettings, session_token: str) -> str:
    """The anti-forgery token that the session's forms carry (bound to the session token)."""
    mac = hmac.new(settings.signing_key, _CSRF_CONTEXT, hashlib.sha256).digest()
    return _b64(hmac.new(mac, session_token.encode(), hashlib.sha256).digest())


def csrf_ok(settings: GatewaySettings, session_token: str, submitted: str) -> bool:
    """Whether a submitted form's anti-forgery token belongs to this session."""
    return hmac.compare_digest(
        csrf_token(settings, session_token).encode(), submitted.encode("utf-8", "replace")
    )


def login_nonce() -> str:
    """A new random value for the login form's cookie (the form's token is bound to it)."""
    return secrets.token_urlsafe(_SESSION_ID_BYTES)


def login_csrf_token(settings: GatewaySettings, nonce: str) -> str:
    """The login form's anti-forgery token: bound to the pre-session nonce of its cookie (signed
    double-submit), so another site can neither read it nor make one that matches."""
    return csrf_token(settings, _LOGIN_CSRF_PREFIX + nonce)


def login_csrf_ok(settings: GatewaySettings, nonce: str | None, submitted: str) -> bool:
    """Whether a login form was served by this gateway to this browser (its cookie's nonce)."""
    return bool(nonce) and csrf_ok(settings, _LOGIN_CSRF_PREFIX + (nonce or ""), submitted)
