"""The model registry: every version of the 30-day admission-risk model, and which one each municipality
scores with (tables ``model_versions`` and ``model_activations``, migration 0014).

A version is the model's bytes (joblib; ``models.model_bytes``), its sidecar metadata, its model card and
its held-out report (``metrics``, the shape ``models.activation`` documents). Registering is idempotent
(the same version with the same bytes is a no-op); the same version name with other bytes is refused, so
a version string always means one model. ``municipality_id`` None is the shipped day-one default,
registered at gateway start; when a newer gateway ships a newer default, the newest default row is "the
default" (older ones stay, for the scores that name them).

A municipality sees its own local versions and the default; another municipality's version does not
exist for it (``version`` returns None, ``activate`` refuses it as unknown). The activations are
append-only: each row records the version active after it (None: the default) and the newest row of a
municipality is in force. ``activate`` makes a version active when its held-out report beats NEWS2 by
``models.activation.ACTIVATION_MARGIN``, or when an administrator gives a reason to override (recorded
with the activation); activating the default records a row with version None (follow the shipped
default, also after an upgrade). ``rollback`` undoes the newest activation still in force (a stack: A,
B, C, rollback -> B, rollback -> A, rollback -> the default). Each change writes the audit log in its
own transaction.

Who may activate (a municipality administrator of that municipality, a system administrator) is the
caller's rule; ``manager`` reads it from ``users`` for the CLI, and the web routes check the session
(``gateway.api.deps``). Loading the bytes into a model is ``models.model_bytes``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg.types.json import Jsonb

from gateway.store.access import MUNICIPALITY_ADMIN, SYSTEM_ADMIN
from gateway.store.audit import Actor, record_audit
from gateway.store.errors import StoreError
from gateway.store.users import StoredUser, user_by_name
from models.activation import ActivationCheck, activation_check

DEFAULT: Final = "default"
LOCAL: Final = "local"
# model_activations.action
ACTIVATE: Final = "activate"
ROLLBACK: Final = "rollback"
TO_DEFAULT: Final = "default"
# Audit actions
AUDIT_REGISTER: Final = "model-register"
AUDIT_ACTIVATE: Final = "model-activate"
AUDIT_ROLLBACK: Final = "model-rollback"


class RegistryError(StoreError):
    """Root of the registry's refusals; nothing was written."""


class RegistrationRefused(RegistryError):
    """A version that cannot be registered: its name is taken by other bytes or another municipality,
    or kind and municipality disagree."""

    def __init__(self, version: str, reason: str) -> None:
        super().__init__(f"model version {version} cannot be registered: {reason}")
        self.version = version
        self.reason = reason


class ActivationRefused(RegistryError):
    """An activation or rollback refused. ``kind``: 'unknown' (no such version for this municipality),
    'gate' (does not beat NEWS2 by the margin, and no override reason), 'active' (already active),
    'nothing' (no activation to roll back), 'no-default' (no default registered); ``reason`` is the
    sentence for a person."""

    def __init__(self, municipality_id: str, version: str | None, kind: str, reason: str) -> None:
        super().__init__(f"municipality {municipality_id}: {reason}")
        self.municipality_id = municipality_id
        self.version = version
        self.kind = kind
        self.reason = reason


class UnknownVersion(RegistryError):
    """No version of that name is registered."""

    def __init__(self, version: str) -> None:
        super().__init__(f"no model version {version!r} is registered")
        self.version = version


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """A registered version, without its bytes (``model_bytes`` reads those)."""

    version: str
    municipality_id: str | None
    kind: str
    created_at: datetime
    created_by: str
    source: str
    sha256: str
    metadata: dict[str, Any]
    card: str
    metrics: dict[str, Any]

    @property
    def is_default(self) -> bool:
        return self.kind == DEFAULT

    def check(self) -> ActivationCheck:
        """Whether its held-out report beats NEWS2 by the margin (``models.activation``)."""
        return activation_check(self.metrics)

    def held_out(self) -> HeldOut:
        """Its held-out figures (``held_out``)."""
        return held_out(self.metrics)


@dataclass(frozen=True, slots=True)
class HeldOut:
    """The figures of a held-out report a person compares versions by (None: not in the report)."""

    model_auroc: float | None
    model_ci: tuple[float, float] | None
    news2_auroc: float | None
    news2_ci: tuple[float, float] | None
    patients: int | None
    admissions: int | None


def held_out(metrics: Mapping[str, Any]) -> HeldOut:
    """Read the AUROC (with its interval) of the model and of NEWS2 from a held-out report (the shape of
    ``models.activation``); whatever is missing or malformed is None."""
    methods = metrics.get("methods")
    methods = methods if isinstance(methods, Mapping) else {}
    count = metrics.get("held_out")
    count = count if isinstance(count, Mapping) else {}

    def auroc(name: str) -> tuple[float | None, tuple[float, float] | None]:
        entry = methods.get(name)
        if not isinstance(entry, Mapping):
            return None, None
        ci = entry.get("auroc_ci")
        low, high = (
            (_number(ci[0]), _number(ci[1]))
            if isinstance(ci, list | tuple) and len(ci) == 2
            else (None, None)
        )
        return _number(entry.get("auroc")), (low, high) if low is not None and high is not None else None

    def whole(value: object) -> int | None:
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else None

    model, model_ci = auroc("model")
    news2, news2_ci = auroc("news2")
    return HeldOut(
        model, model_ci, news2, news2_ci, whole(count.get("patients")), whole(count.get("admissions"))
    )


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class Activation:
    """One row of a municipality's activation history: the version active after it (None: the default),
    what was done, by whom, when, and the reason given to override the gate (None: none needed)."""

    id: int
    municipality_id: str
    version: str | None
    action: str
    actor: str
    at: datetime
    override_reason: str | None


@dataclass(frozen=True, slots=True)
class _Named:
    """An actor known only by name (the audit log's role and municipality come from ``users``)."""

    username: str
    municipality_id: str | None
    role: str | None


_VERSION_COLUMNS: Final = (
    "version, municipality_id, kind, created_at, created_by, source, sha256, metadata, card, metrics"
)
_ACTIVATION_COLUMNS: Final = "id, municipality_id, version, action, actor, at, override_reason"


def _version(row: tuple[Any, ...]) -> ModelVersion:
    name, municipality_id, kind, created_at, created_by, source, sha256, metadata, card, metrics = row
    return ModelVersion(
        name,
        municipality_id,
        kind,
        created_at,
        created_by,
        source,
        sha256,
        dict(metadata),
        card,
        dict(metrics),
    )


def _activation(row: tuple[Any, ...]) -> Activation:
    return Activation(*row)


def _named(conn: psycopg.Connection[Any], username: str, municipality_id: str | None) -> _Named:
    user = user_by_name(conn, username)
    if user is None:
        return _Named(username, municipality_id, None)
    return _Named(user.username, user.municipality_id, user.role)


# --- versions -----------------------------------------------------------------------------------------


def register_version(
    conn: psycopg.Connection[Any],
    *,
    version: str,
    municipality_id: str | None,
    kind: str,
    created_by: str,
    source: str,
    model_bytes: bytes,
    metadata: Mapping[str, Any],
    card: str,
    metrics: Mapping[str, Any],
    sha256: str | None = None,
    client: str | None = None,
) -> ModelVersion:
    """Store a version (audited as ``created_by``'s); the same version with the same bytes again returns
    the stored one unchanged. RegistrationRefused when the name is held by other bytes or another
    municipality, or ``kind`` ('default' | 'local') disagrees with ``municipality_id`` (None = default).
    ``sha256`` defaults to the bytes' own (``models.model_bytes.digest``)."""
    from models.model_bytes import digest  # the one definition of a model's fingerprint

    if kind not in (DEFAULT, LOCAL) or (kind == DEFAULT) != (municipality_id is None):
        raise RegistrationRefused(version, "a default version has no municipality; a local one has one")
    if not version.strip():
        raise RegistrationRefused(version, "the version name is empty")
    fingerprint = digest(model_bytes)
    if sha256 is not None and sha256 != fingerprint:
        raise RegistrationRefused(version, "the bytes do not match the sha256 given with them")
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO model_versions (version, municipality_id, kind, created_by, source, sha256,"
            " model_bytes, metadata, card, metrics) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            f" ON CONFLICT (version) DO NOTHING RETURNING {_VERSION_COLUMNS}",
            (
                version,
                municipality_id,
                kind,
                created_by,
                source,
                fingerprint,
                model_bytes,
                Jsonb(dict(metadata)),
                card,
                Jsonb(dict(metrics)),
            ),
        ).fetchone()
        if row is not None:
            detail = f"{version} ({kind}, {source}, sha256 {fingerprint[:12]})"
            actor = _named(conn, created_by, municipality_id)
            record_audit(conn, actor, AUDIT_REGISTER, [None], detail, client=client)
            return _version(row)
        stored = _stored_version(conn, version)
    if stored is None:  # pragma: no cover - the conflicting row cannot vanish: versions are never deleted
        raise RegistrationRefused(version, "the version was being registered concurrently")
    if stored.sha256 != fingerprint:
        raise RegistrationRefused(
            version, f"already registered with other bytes (sha256 {stored.sha256[:12]})"
        )
    if stored.municipality_id != municipality_id:
        raise RegistrationRefused(version, "already registered for another municipality")
    return stored


def _stored_version(conn: psycopg.Connection[Any], version: str) -> ModelVersion | None:
    row = conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE version = %s", (version,)
    ).fetchone()
    return None if row is None else _version(row)


def default_version(conn: psycopg.Connection[Any]) -> ModelVersion | None:
    """The shipped day-one default in force: the newest default registered; None before any."""
    row = conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE kind = 'default'"
        " ORDER BY created_at DESC, version DESC LIMIT 1"
    ).fetchone()
    return None if row is None else _version(row)


def versions(conn: psycopg.Connection[Any], municipality_id: str) -> list[ModelVersion]:
    """The municipality's local versions and the default in force, newest first."""
    rows = conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE municipality_id = %s"
        " ORDER BY created_at DESC, version DESC",
        (municipality_id,),
    ).fetchall()
    found = [_version(row) for row in rows]
    default = default_version(conn)
    if default is not None:
        found.append(default)
        found.sort(key=lambda v: (v.created_at, v.version), reverse=True)
    return found


def version(conn: psycopg.Connection[Any], municipality_id: str, version: str) -> ModelVersion | None:
    """The version as the municipality may see it: its own or a default (also an earlier shipped one,
    whose scores may still be on record); None when unknown or another municipality's."""
    return _visible(conn, municipality_id, version)


def _visible(conn: psycopg.Connection[Any], municipality_id: str, name: str) -> ModelVersion | None:
    row = conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM model_versions"
        " WHERE version = %s AND (municipality_id = %s OR kind = 'default')",
        (name, municipality_id),
    ).fetchone()
    return None if row is None else _version(row)


def default_versions_among(conn: psycopg.Connection[Any], names: Iterable[str]) -> set[str]:
    """Which of ``names`` (versions that scored, as the scores name them) are shipped defaults; a name
    not registered is none (a test's or an older tool's)."""
    wanted = sorted(set(names))
    if not wanted:
        return set()
    rows = conn.execute(
        "SELECT version FROM model_versions WHERE kind = 'default' AND version = ANY(%s)", (wanted,)
    ).fetchall()
    return {row[0] for row in rows}


def model_bytes(conn: psycopg.Connection[Any], version: str) -> bytes:
    """The stored model bytes of ``version``; UnknownVersion when there is none. Checking them against
    the stored sha256 is the loader's (``models.model_bytes.model_from_bytes``)."""
    row = conn.execute("SELECT model_bytes FROM model_versions WHERE version = %s", (version,)).fetchone()
    if row is None:
        raise UnknownVersion(version)
    return bytes(row[0])


# --- activations --------------------------------------------------------------------------------------


def activations(conn: psycopg.Connection[Any], municipality_id: str) -> list[Activation]:
    """The municipality's activation history, newest first."""
    rows = conn.execute(
        f"SELECT {_ACTIVATION_COLUMNS} FROM model_activations WHERE municipality_id = %s ORDER BY id DESC",
        (municipality_id,),
    ).fetchall()
    return [_activation(row) for row in rows]


def _active_name(conn: psycopg.Connection[Any], municipality_id: str) -> str | None:
    row = conn.execute(
        "SELECT version FROM model_activations WHERE municipality_id = %s ORDER BY id DESC LIMIT 1",
        (municipality_id,),
    ).fetchone()
    return None if row is None else row[0]


def active_version(conn: psycopg.Connection[Any], municipality_id: str) -> ModelVersion:
    """The version the municipality scores with: its newest activation's, else the default in force.
    RegistryError when neither exists (no default registered yet)."""
    name = _active_name(conn, municipality_id)
    found = _stored_version(conn, name) if name is not None else default_version(conn)
    if found is None:
        raise ActivationRefused(municipality_id, None, "no-default", "no default model is registered")
    return found


def in_force(history: Iterable[Activation]) -> list[str | None]:
    """The stack of activations still in force after ``history`` (oldest first; each entry the version
    made active, None = the default); its last entry is active. A rollback undoes the newest one."""
    stack: list[str | None] = []
    for row in sorted(history, key=lambda a: a.id):
        if row.action == ROLLBACK:
            if stack:
                stack.pop()
        else:
            stack.append(row.version)
    return stack


def _lock(conn: psycopg.Connection[Any], municipality_id: str) -> None:
    """Serialise changes of one municipality's active version (two administrators at once)."""
    row = conn.execute(
        "SELECT id FROM municipalities WHERE id = %s FOR UPDATE", (municipality_id,)
    ).fetchone()
    if row is None:
        raise ActivationRefused(municipality_id, None, "unknown", "no such municipality")


def _insert(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    version: str | None,
    action: str,
    actor: str,
    override_reason: str | None,
) -> Activation:
    row = conn.execute(
        "INSERT INTO model_activations (municipality_id, version, action, actor, override_reason)"
        f" VALUES (%s, %s, %s, %s, %s) RETURNING {_ACTIVATION_COLUMNS}",
        (municipality_id, version, action, actor, override_reason),
    ).fetchone()
    assert row is not None  # INSERT ... RETURNING always returns the row
    return _activation(row)


def activate(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    version: str,
    *,
    actor: Actor,
    override_reason: str | None = None,
    client: str | None = None,
) -> Activation:
    """Make ``version`` the municipality's active model, as ``actor`` (audited). ActivationRefused, with
    nothing written, for a version unknown to the municipality, one already active, or one whose
    held-out report does not beat NEWS2 by the margin when no ``override_reason`` is given (the reason is
    recorded then; when the gate passes none is needed and none is kept). The default in force may be
    activated too (back to the shipped default, no gate)."""
    reason = (override_reason or "").strip() or None
    with conn.transaction():
        _lock(conn, municipality_id)
        wanted = _visible(conn, municipality_id, version)
        if wanted is None:
            raise ActivationRefused(municipality_id, version, "unknown", f"no model version {version!r} here")
        current = active_version(conn, municipality_id)
        if wanted.is_default:
            default = default_version(conn)
            if default is None or default.version != wanted.version:
                now = default.version if default is not None else "none"
                said = f"{version} is an earlier shipped default; the default now is {now}"
                raise ActivationRefused(municipality_id, version, "unknown", said)
            if _active_name(conn, municipality_id) is None:
                raise ActivationRefused(municipality_id, version, "active", f"{version} is already active")
            row = _insert(conn, municipality_id, None, TO_DEFAULT, actor.username, None)
            detail = f"{municipality_id}: back to the default {version}"
        else:
            if current.version == wanted.version:
                raise ActivationRefused(municipality_id, version, "active", f"{version} is already active")
            check = wanted.check()
            if not check.passed and reason is None:
                said = f"{version} cannot be activated: {check.reason}; give a reason to override"
                raise ActivationRefused(municipality_id, version, "gate", said)
            kept = None if check.passed else reason
            row = _insert(conn, municipality_id, wanted.version, ACTIVATE, actor.username, kept)
            detail = f"{municipality_id}: {version} (was {current.version}); {check.reason}"
            if kept is not None:
                detail += f"; override: {kept}"
        record_audit(conn, actor, AUDIT_ACTIVATE, [None], detail, client=client)
    return row


def rollback(
    conn: psycopg.Connection[Any], municipality_id: str, *, actor: Actor, client: str | None = None
) -> Activation:
    """Return the municipality to the version active before the current one (the default when none),
    as ``actor`` (audited). ActivationRefused ('nothing') when no activation is in force."""
    with conn.transaction():
        _lock(conn, municipality_id)
        stack = in_force(activations(conn, municipality_id))
        if not stack:
            said = "nothing to roll back: the default model is active and was never replaced"
            raise ActivationRefused(municipality_id, None, "nothing", said)
        undone = stack.pop()
        back_to = stack[-1] if stack else None
        if back_to is None and default_version(conn) is None:  # pragma: no cover - registered at start
            raise ActivationRefused(municipality_id, None, "no-default", "no default model is registered")
        row = _insert(conn, municipality_id, back_to, ROLLBACK, actor.username, None)
        detail = f"{municipality_id}: {undone or 'the default'} rolled back to {back_to or 'the default'}"
        record_audit(conn, actor, AUDIT_ROLLBACK, [None], detail, client=client)
    return row


def manager(conn: psycopg.Connection[Any], username: str, municipality_id: str) -> StoredUser | None:
    """The user ``username`` when they may change the municipality's model (its municipality
    administrator, or a system administrator); None otherwise."""
    user = user_by_name(conn, username)
    if user is None:
        return None
    if user.role == SYSTEM_ADMIN or (
        user.role == MUNICIPALITY_ADMIN and user.municipality_id == municipality_id
    ):
        return user
    return None
