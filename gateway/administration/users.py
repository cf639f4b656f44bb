"""Users by invitation: an administrator invites a person, who sets her own password once through a link.

``invite_user`` checks what the administrator typed, makes the user at once through the one path every
user is made by (``gateway.api.auth.create_user``, as ``homewatch gateway user add --sso-only`` does: no
password matches until she sets one), and returns the link ``{web_base_url}/invite/{token}``. The token
is 256 random bits (``secrets.token_urlsafe``); only its SHA-256 is stored (``gateway.store.invitations``),
so the link is shown once and nobody can rebuild it from the database. It is valid for
``INVITATION_LIFETIME``. Inviting again someone who has not yet set her password gives a new link (the old
one stops working); anyone else already a user is refused.

``invitation_state`` and ``accept_invitation`` serve the link's page (``gateway.api.invitation_pages``):
a password is set once, under a row lock, with the same rules and scrypt hashing as every password
(``gateway.api.auth``). A link that is unknown, used or expired raises ``InvitationGone`` and changes
nothing. Each invitation, each password set and each refused use of a used or expired link is an audit
row. Messages are in the reader's language on a page and English in the CLI (``gateway.api.i18n``).
Throttling guesses at links is the page's (as logins are the login page's).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg

from gateway.administration.errors import AdministrationError
from gateway.api.auth import create_user, hash_password
from gateway.api.i18n import gettext as _
from gateway.settings import GatewaySettings
from gateway.store import invitations, users
from gateway.store.access import GP, MUNICIPALITY_ADMIN, NURSE
from gateway.store.audit import Attempt, record_audit
from gateway.store.training_reads import municipality_exists

# A week: long enough for a person to open her mail after a weekend or a few days off, short enough
# that a forgotten link in a mailbox does not stay a way in for long.
INVITATION_LIFETIME = timedelta(days=7)
# Where a link leads (gateway.api.invitation_pages serves it).
INVITE_PATH = "/invite/"
# 32 random bytes: 256 bits, never guessed; token_urlsafe writes them as 43 characters of [A-Za-z0-9_-].
_TOKEN_BYTES = 32
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")
# The rule every password meets (gateway.api.auth.create_user); the upper bound only keeps a pasted book
# from being hashed, it is no rule a person meets.
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
# The roles an administrator invites, in the words of the CLI (`--role nurse|gp|admin`), and the stored
# role each one is. A system administrator is made by `homewatch gateway user add`, not invited.
ROLE_WORDS = {"nurse": NURSE, "gp": GP, "admin": MUNICIPALITY_ADMIN, MUNICIPALITY_ADMIN: MUNICIPALITY_ADMIN}
# RFC 5321 caps an address at 254 characters; a username is cut at 200 where logins are counted.
_MAX_EMAIL_CHARS = 254
_MAX_USERNAME_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x20\x7f|]")

AUDIT_INVITE = "invite-user"
AUDIT_ACCEPT = "accept-invitation"
AUDIT_REFUSED = "invitation-refused"


@dataclass(frozen=True, slots=True)
class Invitation:
    """What the administrator passes on: who, the link (shown once: only its hash is kept), its expiry."""

    username: str
    url: str
    expires_at: datetime


class InvitationGone(AdministrationError):
    """A link that sets no password: ``unknown`` (never made, or a newer one replaced it), ``used`` or
    ``expired``. The page answers 404 for the first, 410 for the others."""

    def __init__(self, reason: Literal["unknown", "used", "expired"]) -> None:
        self.reason = reason
        super().__init__(f"the invitation is {reason}")


@dataclass(frozen=True, slots=True)
class OpenInvitation:
    """A link that may set a password now: for whom, until when."""

    username: str
    expires_at: datetime


def token_sha256(token: str) -> bytes:
    """What is stored of a link's token."""
    return hashlib.sha256(token.encode("utf-8", "replace")).digest()


def _actor(conn: psycopg.Connection[Any], by: str, municipality_id: str) -> Attempt:
    """Who invites, as the audit log records her: the user ``by`` names, or (the CLI's operator, no user
    of the gateway) that name in the municipality acted on."""
    found = users.user_by_name(conn, by)
    if found is None:
        return Attempt(by, municipality_id, None)
    return Attempt(found.username, found.municipality_id, found.role)


def _checked_role(role: str) -> str:
    stored = ROLE_WORDS.get(role.strip().lower())
    if stored is None:
        raise AdministrationError(_("The role must be nurse, gp or admin, not %(role)r.", role=role))
    return stored


def _checked_email(email: str) -> str:
    cleaned = email.strip()
    if len(cleaned) > _MAX_EMAIL_CHARS or not users.EMAIL.match(cleaned) or _CONTROL.search(cleaned):
        raise AdministrationError(
            _("The e-mail address must look like name@kommune.dk, not %(email)r.", email=email)
        )
    return cleaned


def _checked_username(username: str) -> str:
    cleaned = username.strip()
    if not cleaned or len(cleaned) > _MAX_USERNAME_CHARS or _CONTROL.search(cleaned):
        raise AdministrationError(
            _(
                "The username must be 1 to %(chars)d characters without spaces or '|', not %(username)r.",
                chars=_MAX_USERNAME_CHARS,
                username=username,
            )
        )
    return cleaned


def _checked_teams(
    conn: psycopg.Connection[Any], municipality_id: str, role: str, teams: Sequence[str]
) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(t.strip() for t in teams if t.strip()))
    if wanted and role != NURSE:
        raise AdministrationError(_("Only a nurse belongs to care teams."))
    known = dict(invitations.care_teams_in(conn, municipality_id))
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise AdministrationError(
            _(
                "%(team)r is no care team of municipality %(municipality)s (its teams: %(teams)s).",
                team=unknown[0],
                municipality=municipality_id,
                teams=", ".join(known) or "-",
            )
        )
    return wanted


def invite_user(
    conn: psycopg.Connection[Any],
    settings: GatewaySettings,
    municipality_id: str,
    role: str,
    email: str,
    *,
    username: str | None = None,
    teams: Sequence[str] = (),
    by: str,
    client: str | None = None,
) -> Invitation:
    """Make the user (no usable password yet) and an invitation that lets her set one once; audited.

    ``role`` is nurse, gp or admin (a municipality administrator); ``username`` defaults to the address,
    lowercased; ``teams`` are care teams of the municipality (a nurse only; none: its default team).
    Someone invited before who has not set her password gets a new link (same municipality, role and
    address, else refused). ``client``: the web client's address for the audit log (None: the CLI).
    AdministrationError, one line, for anything wrong; nothing is changed then.
    """
    stored_role = _checked_role(role)
    address = _checked_email(email)
    name = _checked_username(address.lower() if username is None else username)
    if not municipality_exists(conn, municipality_id):
        raise AdministrationError(
            _("There is no municipality %(municipality)r.", municipality=municipality_id)
        )
    wanted_teams = _checked_teams(conn, municipality_id, stored_role, teams)
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    with conn.transaction():
        existing = invitations.invited_user(conn, name)
        if existing is None:
            try:
                create_user(
                    conn, name, municipality_id, stored_role, None, wanted_teams or None, email=address
                )
            except (ValueError, psycopg.errors.IntegrityError) as exc:  # a name taken meanwhile
                raise AdministrationError(
                    _("The user %(username)r cannot be made: %(reason)s", username=name, reason=str(exc))
                ) from exc
            again = False
        else:
            _may_invite_again(existing, municipality_id, stored_role, address)
            again = True
        expires_at = invitations.open_invitation(conn, name, token_sha256(token), by, INVITATION_LIFETIME)
        detail = f"{name} as {stored_role} in {municipality_id}" + (" (a new link)" if again else "")
        detail += f", valid until {expires_at.isoformat(timespec='minutes')}"
        record_audit(conn, _actor(conn, by, municipality_id), AUDIT_INVITE, [None], detail, client=client)
    return Invitation(name, f"{settings.web_base_url}{INVITE_PATH}{token}", expires_at)


def _may_invite_again(existing: invitations.InvitedUser, municipality_id: str, role: str, email: str) -> None:
    """Refuse a second invitation unless it is for the same person, who has not set her password yet."""
    if existing.used or not existing.unused:
        raise AdministrationError(
            _("The username %(username)r is taken: that user already exists.", username=existing.username)
        )
    same = (existing.municipality_id, existing.role, (existing.email or "").lower())
    if same != (municipality_id, role, email.lower()):
        raise AdministrationError(
            _(
                "%(username)r was invited with another municipality, role or e-mail address.",
                username=existing.username,
            )
        )


def _found(conn: psycopg.Connection[Any], token: str, *, lock: bool) -> invitations.FoundInvitation:
    if not TOKEN_PATTERN.match(token):  # no link of ours: no need to ask the database
        raise InvitationGone("unknown")
    read = invitations.locked_invitation if lock else invitations.invitation_by_token
    found = read(conn, token_sha256(token))
    if found is None:
        raise InvitationGone("unknown")
    return found


def invitation_state(conn: psycopg.Connection[Any], token: str) -> OpenInvitation:
    """The open invitation of ``token``; InvitationGone when it is unknown, used or expired."""
    found = _found(conn, token, lock=False)
    if found.state != "open":
        raise InvitationGone(found.state)
    return OpenInvitation(found.username, found.expires_at)


def password_problem(password: str, repeated: str) -> str | None:
    """Why a new password is refused, in the reader's language; None when it meets the rules."""
    if len(password) < MIN_PASSWORD_CHARS:
        return _("The password must have at least %(chars)d characters.", chars=MIN_PASSWORD_CHARS)
    if len(password) > MAX_PASSWORD_CHARS:
        return _("The password must have at most %(chars)d characters.", chars=MAX_PASSWORD_CHARS)
    if "\x00" in password:
        return _("The password holds a character no keyboard types.")
    if password != repeated:
        return _("The two passwords are not the same.")
    return None


def accept_invitation(
    conn: psycopg.Connection[Any], token: str, password: str, repeated: str, *, client: str | None
) -> str:
    """Set the invited user's password (scrypt, as every password) and mark the link used, once; audited.
    Return her username. InvitationGone for a link that is unknown, used or expired (a used or expired
    one is audited as refused); AdministrationError for a password that breaks the rules. Either way
    nothing is changed."""
    problem = password_problem(password, repeated)
    if problem is not None:
        invitation_state(conn, token)  # a dead link is told before a weak password
        raise AdministrationError(problem)
    stored = hash_password(password)  # before the lock: 50 ms of scrypt need not hold the row
    with conn.transaction():
        found = _found(conn, token, lock=True)
        who = Attempt(found.username, found.municipality_id, found.role)
        if found.state == "open":
            invitations.use_invitation(conn, found.id, stored)
            record_audit(conn, who, AUDIT_ACCEPT, [None], None, client=client)
            return found.username
    # Recorded after the transaction (which changed nothing): raising inside it would undo the row.
    record_audit(conn, who, AUDIT_REFUSED, [None], f"the link is {found.state}", client=client)
    raise InvitationGone(found.state)
