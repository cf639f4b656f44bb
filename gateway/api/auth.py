"""Users, passwords and session tokens, with the standard library only.

Passwords are stored as scrypt hashes (random salt, parameters kept in the stored string, constant-time
comparison) in ``users``, whose rows ``gateway.store.users`` reads and writes. A session token is
``base64url(username|municipality|role|expiry|session) . base64url(HMAC-SHA256)`` signed with
``GatewaySettings.signing_key``; the web UI carries it in an HttpOnly cookie, the FHIR API as
``Authorization: Bearer``. A token ends at its expiry
(``session_hours``) or when its session id is revoked (logout; ``gateway.store.logins``).

A token names a user (a person who logged in) or, with role ``hub``, a hub (its id in place of the
username) that posts its ``batch`` Bundles over HTTPS instead of MQTT. A role outside ``TOKEN_ROLES`` is
refused even when the signature is right. A signature only proves who made the token, so a person's
token is also checked against ``users`` (``registered_user``): what the audit log records is a user that
exists, in that municipality, with that role. ``mint_token`` signs one for any role without a password,
for local use (the CLI). Reading the token from a request and refusing access is left to ``deps.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from gateway.settings import GatewaySettings
from gateway.store import access, users

# Roles of people, who log in with a password (``gateway.store.access`` says what each may see).
ROLES = frozenset(access.ROLES)
# The role of a hub's token: it may post Observations and read nothing.
HUB_ROLE = "hub"
TOKEN_ROLES = ROLES | {HUB_ROLE}
# A hub's id is a level of its MQTT topic, so it may not hold a topic separator or wildcard.
_TOPIC_RESERVED = "/+#"
SESSION_COOKIE = "homewatch_session"

# scrypt cost: n=2**14, r=8, p=1 is the interactive-login setting of the scrypt paper and of Python's
# docs; it needs 16 MiB and about 50 ms here, slow enough for guessing, fast enough for a login.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SALT_BYTES = 16
_KEY_BYTES = 32
# Separates token signatures from any other use of the secret key (the CSRF token below).
_TOKEN_CONTEXT = b"homewatch-session-v2"  # v2 added the session id
_CSRF_CONTEXT = b"homewatch-csrf-v1"
# A session id (what logout revokes): 96 random bits, never guessed nor repeated.
_SESSION_ID_BYTES = 12


@dataclass(frozen=True, slots=True)
class User:
    """A logged-in user: who, which municipality they may see, and their role."""

    username: str
    municipality_id: str
    role: str


@dataclass(frozen=True, slots=True)
class Claims:
    """What a token with a right signature says: its user, its session id and its expiry."""

    user: User
    session_id: str
    expires: datetime


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
    password: str,
    care_teams: tuple[str, ...] | None = None,
) -> User:
    """Insert a user with an scrypt hash of ``password``; the municipality must exist.

    A nurse joins ``care_teams`` (default: her municipality's default team, whose id is the
    municipality's); the other roles belong to no team.
    """
    for name, value in (("username", username), ("municipality_id", municipality_id), ("role", role)):
        if not value or "|" in value:
            raise ValueError(f"{name} must be non-empty and must not contain '|'")
    if role not in ROLES:
        raise ValueError(f"role must be one of {sorted(ROLES)}, not {role!r}")
    if len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    with conn.transaction():
        users.insert_user(conn, username, municipality_id, role, hash_password(password))
        if role == access.NURSE:
            for team in (municipality_id,) if care_teams is None else care_teams:
                users.join_care_team(conn, municipality_id, team, username)
    return User(username, municipality_id, role)


def authenticate(conn: psycopg.Connection[Any], username: str, password: str) -> User | None:
    """The user when ``username`` exists and ``password`` is right, else None (same cost either way)."""
    stored = users.user_by_name(conn, username)
    if stored is None:
        verify_password(password, _DUMMY_HASH)
        return None
    if not verify_password(password, stored.password_hash):
        return None
    return User(stored.username, stored.municipality_id, stored.role)


def registered_user(conn: psycopg.Connection[Any], user: User) -> User | None:
    """``user`` when ``users`` has them, in that municipality and with that role; else None."""
    return user if users.user_exists(conn, user.username, user.municipality_id, user.role) else None


def _signature(key: bytes, context: bytes, payload: bytes) -> bytes:
    derived = hmac.new(key, context, hashlib.sha256).digest()
    return hmac.new(derived, payload, hashlib.sha256).digest()


def _signed(settings: GatewaySettings, user: User, expires: datetime) -> str:
    session_id = _b64(secrets.token_bytes(_SESSION_ID_BYTES))
    fields = (user.username, user.municipality_id, user.role, str(int(expires.timestamp())), session_id)
    payload = "|".join(fields).encode()
    return f"{_b64(payload)}.{_b64(_signature(settings.signing_key, _TOKEN_CONTEXT, payload))}"


def issue_token(settings: GatewaySettings, user: User, now: datetime | None = None) -> str:
    """A signed session token for ``user``, valid for ``settings.session_hours``."""
    issued = now or datetime.now(UTC)
    return _signed(settings, user, issued + timedelta(hours=settings.session_hours))


def mint_token(
    settings: GatewaySettings,
    *,
    role: str,
    municipality_id: str,
    subject: str,
    hours: float | None = None,
    now: datetime | None = None,
) -> str:
    """A bearer token for ``subject`` (a username, or a hub id when ``role`` is ``hub``), no password asked.

    For local use by whoever holds the secret key (``homewatch gateway token``); the API accepts a
    person's token only when ``subject`` is a user of that municipality and role. Valid for ``hours``
    (default ``settings.session_hours``); ValueError for an unknown role, an empty or unsafe field, or
    a lifetime that is not positive.
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
    return _signed(settings, User(subject, municipality_id, role), issued + timedelta(hours=lifetime))


def read_token(settings: GatewaySettings, token: str, now: datetime | None = None) -> Claims | None:
    """What a token says when its signature is right, its role known and it has not expired, else None.

    Whether its session was revoked, or its user still exists, needs the database: ``deps.py`` asks.
    """
    try:
        encoded_payload, encoded_signature = token.split(".")
        payload = _unb64(encoded_payload)
        signature = _unb64(encoded_signature)
    except ValueError:
        return None
    if not hmac.compare_digest(signature, _signature(settings.signing_key, _TOKEN_CONTEXT, payload)):
        return None
    try:
        username, municipality_id, role, expiry, session_id = payload.decode().split("|")
        expires = datetime.fromtimestamp(int(expiry), UTC)
    except (ValueError, OverflowError, OSError):
        return None
    if role not in TOKEN_ROLES or not session_id:
        return None
    if (now or datetime.now(UTC)) >= expires:
        return None
    return Claims(User(username, municipality_id, role), session_id, expires)


def verify_token(settings: GatewaySettings, token: str, now: datetime | None = None) -> User | None:
    """The user a token names when ``read_token`` accepts it, else None."""
    claims = read_token(settings, token, now)
    return None if claims is None else claims.user


def csrf_token(settings: GatewaySettings, session_token: str) -> str:
    """The anti-forgery token that the session's forms carry (bound to the session token)."""
    return _b64(_signature(settings.signing_key, _CSRF_CONTEXT, session_token.encode()))


def csrf_ok(settings: GatewaySettings, session_token: str, submitted: str) -> bool:
    """Whether a submitted form's anti-forgery token belongs to this session."""
    return hmac.compare_digest(csrf_token(settings, session_token).encode(), submitted.encode())
