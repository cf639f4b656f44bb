"""Login throttling: growing delays per account and per client address, shared by every gateway process.

Every password attempt (``POST /login``, ``POST /login/access-token``) is first charged as a failure to
its client address, then to its account (the username as typed, known or not), each under a row lock
in PostgreSQL (``gateway.store.logins``), so concurrent attempts and other gateway processes count
together. When either is blocked the attempt is refused unchecked (429 with ``Retry-After``): the
password is not even hashed, so a blocked attempt tells nothing and costs the server nothing. A right
password then takes its charge back: the account's counter is cleared, the address's lowered by one.

The counters only ever delay: past a few free failures each further failure blocks the next attempt for
twice as long as the one before, up to a cap. There is no lockout an attacker could make permanent: a
nurse whose name is under attack waits at most ``ACCOUNT.max_delay`` for her next try. ``Policy`` is a
pure value; only ``log_in`` and its helpers touch the database.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from fastapi import Request

from gateway.api.auth import User, authenticate
from gateway.store import logins
from gateway.store.logins import Counter, Scope


@dataclass(frozen=True, slots=True)
class Policy:
    """How many failures are free, how long the first block is, its cap, and when failures are forgotten."""

    free_failures: int
    first_delay: timedelta
    max_delay: timedelta
    forget_after: timedelta

    def delay(self, failures: int) -> timedelta:
        """How long the attempt after the ``failures``-th is blocked: 0, then doubling up to the cap."""
        if failures <= self.free_failures:
            return timedelta(0)
        doublings = min(failures - self.free_failures - 1, 30)  # 2**30 s is past any cap
        return min(self.max_delay, self.first_delay * (1 << doublings))

    def charge(self, counter: Counter, now: datetime) -> Counter | None:
        """The counter with one more failure, or None when an attempt now must be refused unchecked."""
        if counter.blocked_until is not None and now < counter.blocked_until:
            return None
        recent = counter.last_failure is not None and now - counter.last_failure < self.forget_after
        failures = (counter.failures if recent else 0) + 1
        delay = self.delay(failures)
        return Counter(failures, now + delay if delay else None, now)


# Per account: 5 free failures cover a nurse's typos. Then 1 s, 2 s, 4 s ... capped at 5 minutes: an
# attacker gets at most about 300 guesses a day at one account from however many addresses, and a nurse
# whose account is attacked waits 5 minutes at worst (a longer cap would lock her out for longer).
ACCOUNT = Policy(5, timedelta(seconds=1), timedelta(minutes=5), timedelta(hours=1))
# Per address: 20 free failures, because a care centre's nurses may share one address (NAT). Then the
# same doubling up to 15 minutes: one address spraying guesses over many accounts gets about 100 a day.
ADDRESS = Policy(20, timedelta(seconds=1), timedelta(minutes=15), timedelta(hours=1))
# Longer usernames than this are not real ones; the cut keeps counter keys small.
_MAX_KEY_CHARS = 200
# An IPv6 client controls at least a /64, so it is counted as one address.
_IPV6_PREFIX = 64


@dataclass(frozen=True, slots=True)
class Throttled:
    """The attempt was refused unchecked; try again in ``retry_after`` seconds."""

    retry_after: int


def client_address(request: Request) -> str:
    """The address a login is counted against: the client's IP (behind a proxy, uvicorn's
    ``--proxy-headers`` puts the forwarded one here), an IPv6 client's /64."""
    host = request.client.host if request.client else "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:_MAX_KEY_CHARS]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/{_IPV6_PREFIX}", strict=False))
    return str(ip)


def _charge(conn: psycopg.Connection[Any], scope: Scope, key: str, policy: Policy) -> Throttled | None:
    with conn.transaction():
        counter, now = logins.locked_counter(conn, scope, key)
        charged = policy.charge(counter, now)
        if charged is None:
            assert counter.blocked_until is not None  # charge refuses only while blocked
            wait = (counter.blocked_until - now).total_seconds()
            return Throttled(max(1, math.ceil(wait)))
        logins.save_counter(conn, scope, key, charged)
    if counter == Counter():  # a new row: time to delete the ones nobody has tried for long
        logins.forget_idle(conn, max(ACCOUNT.forget_after, ADDRESS.forget_after))
    return None


def _forgive(conn: psycopg.Connection[Any], account: str, address: str) -> None:
    with conn.transaction():
        logins.save_counter(conn, "account", account, Counter())
        counter, _ = logins.locked_counter(conn, "address", address)
        lowered = Counter(max(counter.failures - 1, 0), None, counter.last_failure)
        logins.save_counter(conn, "address", address, lowered if lowered.failures else Counter())


def log_in(
    conn: psycopg.Connection[Any], username: str, password: str, address: str
) -> User | Throttled | None:
    """The user for a right password; ``Throttled`` when the address or account must wait; else None."""
    # PostgreSQL text cannot hold NUL, so a name with one is nobody's; it is still counted, under a key
    # that can be stored, and never sent to ``users``.
    storable = "\x00" not in username
    account = username.replace("\x00", "\ufffd")[:_MAX_KEY_CHARS]
    checks: tuple[tuple[Scope, str, Policy], ...] = (
        ("address", address, ADDRESS),
        ("account", account, ACCOUNT),
    )
    for scope, key, policy in checks:
        throttled = _charge(conn, scope, key, policy)
        if throttled is not None:
            return throttled
    user = authenticate(conn, username, password) if storable else None
    if user is not None:
        _forgive(conn, account, address)
    return user
