"""Errors of the storage layer. Outside exceptions (psycopg, the embedded server) are translated here,
and judged: ``is_transient`` tells a failure a retry may mend from one the data caused."""

from __future__ import annotations

import psycopg

from gateway.errors import GatewayFailure


class StoreError(GatewayFailure):
    """Root of every storage error."""


class DatabaseUnavailable(StoreError):
    """The database cannot be reached or started; ingest pauses and retries."""


class MigrationError(StoreError):
    """A schema migration failed; the database is left at the last good version."""

    def __init__(self, version: int, name: str, cause: str) -> None:
        super().__init__(f"migration {version:04d} ({name}) failed: {cause}")
        self.version = version
        self.name = name
        self.cause = cause


class EnrolmentConflict(StoreError):
    """An enrolment would cross municipalities (or name a patient/hub the municipality does not have).

    ``kind`` is 'patient', 'hub' or 'device'; ``id`` the row's id; nothing was changed.
    """

    def __init__(self, kind: str, id: str, municipality_id: str, detail: str) -> None:
        super().__init__(f"cannot enrol {kind} {id} in municipality {municipality_id}: {detail}")
        self.kind = kind
        self.id = id
        self.municipality_id = municipality_id
        self.detail = detail


# SQLSTATE classes a message causes, so retrying cannot mend: data exception (a value PostgreSQL refuses),
# integrity constraint violation, program limit exceeded (a key too long for an index).
_MESSAGE_SQLSTATE_CLASSES = ("22", "23", "54")


def is_transient(exc: BaseException) -> bool:
    """Whether retrying may mend ``exc`` (the database or the connection failed), rather than the message
    in hand having caused it (then the same message fails again however often it is retried).

    Everything that is not a database or network error is the message's doing: a value our code cannot
    handle fails again on every retry. A database error is the message's when its SQLSTATE class says
    so; all others (connection, resources, a missing table, a bug in a statement) are retried, and a
    worker that keeps failing that way shows on ``/healthz`` instead of quarantining every message.
    """
    if isinstance(exc, psycopg.Error):
        if exc.sqlstate is None:  # raised by psycopg itself: a lost connection, or data it cannot send
            return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
        return not exc.sqlstate.startswith(_MESSAGE_SQLSTATE_CLASSES)
    return isinstance(exc, OSError)


def describe(exc: BaseException) -> str:
    """``Type: first line of the message``, for logs and quarantine reasons."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
