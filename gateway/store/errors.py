"""Errors of the storage layer. Outside exceptions (psycopg, the embedded server) are translated here."""

from __future__ import annotations


class StoreError(Exception):
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
