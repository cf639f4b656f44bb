"""What the ``homewatch`` commands share: one-line failures, the gateway's settings, and the
``homewatch admin`` commands' options and database (``--database-url``, else the embedded PostgreSQL in
``HOMEWATCH_DATA_DIR``/postgres, started when not running, created and migrated)."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import psycopg

    from gateway.settings import GatewaySettings

# The embedded server's database, as `homewatch gateway serve` names it (gateway.service.EMBEDDED_DATABASE;
# a test keeps them equal: importing the gateway's composition root would slow every command down).
EMBEDDED_DATABASE = "homewatch"


DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        envvar="HOMEWATCH_DATABASE_URL",
        help="PostgreSQL URL.",
        show_default="the embedded PostgreSQL in HOMEWATCH_DATA_DIR/postgres",
    ),
]
By = Annotated[
    str | None,
    typer.Option(help="Who does it (recorded in the audit log).", show_default="the operating-system user"),
]


def fail(message: str) -> typer.Exit:
    """One line on stderr, no traceback, non-zero exit."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def gateway_settings() -> GatewaySettings:
    """The gateway's settings from the environment; a refusal (no secret outside development, a bad
    value) is one line and exit code 2."""
    from pydantic import ValidationError

    from gateway.settings import GatewaySettings

    try:
        return GatewaySettings()
    except ValidationError as exc:
        error = exc.errors()[0]
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["loc"]:  # a field's own error names the variable; the secret check names it itself
            message = f"HOMEWATCH_{str(error['loc'][0]).upper()}: {message}"
        raise fail(f"settings: {message}") from None


def acting(by: str | None) -> str:
    return by if by is not None else getpass.getuser()


def embedded_database_url(settings: GatewaySettings) -> tuple[str, Any]:
    """The URL of the embedded PostgreSQL's database (started unless running, created and migrated) and
    the handle to let go of afterwards (which stops the server only when nothing else uses it)."""
    import warnings

    # platformdirs warns on every start where XDG_RUNTIME_DIR is unset (a root shell, a service); the
    # embedded server's lock file falls back to /tmp then, which is all it needs.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from gateway.store.embedded import EmbeddedPostgres, create_database
    from gateway.store.migrate import migrate_database

    server = EmbeddedPostgres(settings.embedded_data_dir / "postgres")
    try:
        url = create_database(server.start(), EMBEDDED_DATABASE)
        migrate_database(url)
    except BaseException:
        server.stop()
        raise
    return url, server


@contextmanager
def admin_database(database_url: str | None, settings: GatewaySettings) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection for the command; whatever goes wrong in it that a person can act on is
    one line and exit code 2."""
    import psycopg

    from gateway.administration.errors import AdministrationError
    from gateway.store.errors import StoreError

    server = None
    try:
        if database_url is None:
            database_url, server = embedded_database_url(settings)
        conn = _connect(database_url)
        with conn:
            yield conn
    except AdministrationError as exc:
        raise fail(str(exc)) from None
    except StoreError as exc:  # the embedded server would not start, a migration failed
        raise fail(str(exc)) from None
    except psycopg.OperationalError as exc:
        raise fail(f"the database connection failed: {one_line(exc)}") from None
    except psycopg.Error as exc:
        raise fail(f"the database refused it: {one_line(exc)}") from None
    finally:
        if server is not None:
            server.stop()


def _connect(database_url: str) -> psycopg.Connection[Any]:
    import psycopg

    try:
        return psycopg.connect(database_url, autocommit=True, connect_timeout=5)
    except psycopg.ProgrammingError as exc:
        raise fail(f"--database-url is not a PostgreSQL URL: {one_line(exc)}") from None
    except psycopg.OperationalError as exc:
        raise fail(f"cannot connect to the database: {one_line(exc)}") from None


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
