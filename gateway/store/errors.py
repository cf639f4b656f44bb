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
