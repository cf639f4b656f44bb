"""What keeps the patient view to the household: the PIN with its lockout, and the signed session.

- :class:`PinGate`: the household's PIN compared in constant time (both sides hashed first, so not
  even the length leaks); after :data:`MAX_FAILURES` wrong tries in a row every try, the right PIN
  included, is refused for :data:`LOCK_S`. One gate for the whole hub, not per address: on a home
  network anyone can take a new address, so a per-address count would not stop guessing. The price is
  that a stranger guessing locks the household out for five minutes; a 4-digit PIN then takes months.
- :class:`SessionCodec`: the session lives in a cookie, HMAC-SHA256-signed with a key made at each
  start of the hub (a restart logs everyone out, nothing to keep secret on disk). It carries whether the
  PIN was given, which resident is looking, the language, the anti-forgery token every form sends back,
  the answers of a questionnaire being filled in, and when it ends. The cookie is HttpOnly and
  SameSite=Strict; it cannot be Secure, since the view is plain HTTP on the home network.

Pure apart from the clock (injected) and the random source.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

import orjson

#: Wrong PINs in a row before the gate locks.
MAX_FAILURES: Final = 5
#: How long it stays locked: long enough that guessing a 4-digit PIN takes months, short enough that a
#: resident who mistyped five times is not locked out of calling their nurse for long.
LOCK_S: Final = 300.0
#: A session ends this long after its last page: a tablet left on the kitchen table does not stay open
#: all week; a resident reading slowly is not thrown out.
SESSION_S: Final = 8 * 3600.0
COOKIE: Final = "homewatch_patient"

Verdict = Literal["ok", "wrong", "locked"]


def _digest(pin: str) -> bytes:
    return hashlib.sha256(pin.encode("utf-8", "surrogatepass")).digest()


class PinGate:
    """The household PIN with a lockout after repeated wrong tries (in memory; a restart resets it)."""

    def __init__(
        self,
        pin: str,
        *,
        max_failures: int = MAX_FAILURES,
        lock_s: float = LOCK_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pin = _digest(pin)
        self._max_failures = max_failures
        self._lock_s = lock_s
        self._monotonic = monotonic
        self._failures = 0
        self._locked_until = float("-inf")

    def locked_for(self) -> float:
        """Seconds until tries are taken again (0 when not locked)."""
        return max(0.0, self._locked_until - self._monotonic())

    def check(self, attempt: str) -> Verdict:
        """``ok`` for the PIN, ``wrong`` for anything else, ``locked`` (without looking) while locked."""
        if self.locked_for() > 0:
            return "locked"
        if hmac.compare_digest(_digest(attempt), self._pin):
            self._failures = 0
            return "ok"
        self._failures += 1
        if self._failures >= self._max_failures:
            self._failures = 0
            self._locked_until = self._monotonic() + self._lock_s
            return "locked"
        return "wrong"


@dataclass(frozen=True, slots=True)
class Session:
    """What the cookie carries. ``resident`` is None until the resident is known."""

    csrf: str
    expires: float
    authenticated: bool = False
    resident: str | None = None
    language: str = "da"
    # A questionnaire being answered: its key and linkId -> answer code so far.
    questionnaire: str | None = None
    answers: Mapping[str, str] = field(default_factory=dict)

    def with_(self, **changes: Any) -> Session:
        return replace(self, **changes)


class SessionCodec:
    """Signs and checks session cookies with a key of this start of the hub."""

    def __init__(
        self,
        *,
        key: bytes | None = None,
        lifetime_s: float = SESSION_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key or secrets.token_bytes(32)
        self._lifetime = lifetime_s
        self._clock = clock

    def new(self, language: str) -> Session:
        """A fresh, anonymous session with its own anti-forgery token."""
        return Session(
            csrf=secrets.token_urlsafe(24), expires=self._clock() + self._lifetime, language=language
        )

    def renewed(self, session: Session) -> Session:
        return session.with_(expires=self._clock() + self._lifetime)

    def encode(self, session: Session) -> str:
        body = orjson.dumps(
            {
                "c": session.csrf,
                "x": session.expires,
                "a": session.authenticated,
                "r": session.resident,
                "l": session.language,
                "q": session.questionnaire,
                "n": dict(session.answers),
            }
        )
        payload = base64.urlsafe_b64encode(body).rstrip(b"=")
        signature = base64.urlsafe_b64encode(self._sign(payload)).rstrip(b"=")
        return (payload + b"." + signature).decode("ascii")

    def decode(self, cookie: str | None) -> Session | None:
        """The session of a cookie that this start of the hub signed and that has not expired, else None."""
        if not cookie or len(cookie) > 4096:
            return None
        payload, dot, signature = cookie.encode("ascii", "replace").partition(b".")
        if not dot:
            return None
        try:
            given = base64.urlsafe_b64decode(signature + b"=" * (-len(signature) % 4))
            if not hmac.compare_digest(given, self._sign(payload)):
                return None
            data = orjson.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
            session = Session(
                csrf=str(data["c"]),
                expires=float(data["x"]),
                authenticated=data["a"] is True,
                resident=data["r"] if isinstance(data["r"], str) else None,
                language=str(data["l"]),
                questionnaire=data["q"] if isinstance(data["q"], str) else None,
                answers={str(k): str(v) for k, v in dict(data["n"]).items()},
            )
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            return None
        return session if session.expires > self._clock() else None

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()


def same_token(given: str | None, expected: str) -> bool:
    """Whether a form's anti-forgery token is the session's (constant time)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
