"""Shared fixtures: a real PostgreSQL (embedded, one server per test session, a fresh database per test)
and a real MQTT broker (its own process on a free port per test). Nothing here is a mock."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from gateway.broker import BrokerEndpoint, EmbeddedBroker, mosquitto_binary
from gateway.store.embedded import EmbeddedPostgres
from gateway.store.migrate import migrate

# The suite runs the gateway as a developer does (no secret needed, /metrics open), whatever the shell
# exports; subprocesses inherit this. Tests of what production refuses ask for it themselves
# (tests/gateway/api/test_web_security_settings.py).
os.environ["HOMEWATCH_ENVIRONMENT"] = "development"
for _variable in ("HOMEWATCH_SECRET_KEY", "HOMEWATCH_METRICS_TOKEN"):
    os.environ.pop(_variable, None)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """Admin URL of an embedded PostgreSQL server living for the whole test session."""
    server = EmbeddedPostgres()
    try:
        yield server.start()
    finally:
        server.stop()


def _with_database(admin_url: str, name: str) -> str:
    # The embedded server listens on a Unix socket: its URL ends in '/postgres?host=...'.
    base, _, query = admin_url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


@pytest.fixture
def empty_database_url(pg_admin_url: str) -> Iterator[str]:
    """URL of a new, empty database, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(pg_admin_url, name)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """URL of a new database with the current schema."""
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        migrate(conn)
    return empty_database_url


BROKER_KINDS = ["mosquitto", "amqtt"] if mosquitto_binary() else ["amqtt"]


@pytest.fixture
def broker() -> Iterator[BrokerEndpoint]:
    """A broker of its own (Mosquitto when installed, else amqtt) on a free port."""
    with EmbeddedBroker() as endpoint:
        yield endpoint


@pytest.fixture(params=BROKER_KINDS)
def any_broker(request: pytest.FixtureRequest) -> Iterator[BrokerEndpoint]:
    """Each broker this machine can run: tests using it prove both brokers work."""
    with EmbeddedBroker(prefer=request.param) as endpoint:
        yield endpoint


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fault tests' reconciliation table (``tests/reconciliation.py``), when any fault test ran."""
    from reconciliation import RESULTS, table

    if RESULTS:
        terminalreporter.section("fault reconciliation (from PostgreSQL)")
        for line in table(RESULTS):
            terminalreporter.write_line(line)
