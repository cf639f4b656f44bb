"""Shared fixtures: a real PostgreSQL (embedded, one server per test session, a fresh database per test)
and a real MQTT broker (its own process on a free port per test). Nothing here is a mock.

For speed, the session's server runs without fsync, and ``database_url`` copies a database migrated
once per session instead of migrating each test's own. ``make test`` runs the suite in two processes
(pytest-xdist, ``-n 2 --dist loadfile``): each has its own server, brokers and ports are free ones, and
the fault tests' reconciliations reach the table through their test reports."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Generator, Iterator
from typing import Any, cast

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
        url = server.start()
        with psycopg.connect(url, autocommit=True) as conn:
            # A throw-away server: no fsync (and so no full-page images). A COMMIT still writes its WAL
            # to the kernel before it returns, so a server process that is killed loses nothing (what
            # the fault tests prove); only a crash of the machine would, and then the test run is lost
            # anyway. Creating, copying and dropping the suite's databases is about twice as fast.
            conn.execute("ALTER SYSTEM SET fsync = off")
            conn.execute("ALTER SYSTEM SET full_page_writes = off")
            conn.execute("SELECT pg_reload_conf()")
        yield url
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


@pytest.fixture(scope="session")
def migrated_template(pg_admin_url: str) -> str:
    """Name of a database with the current schema, migrated once for the session; ``database_url``
    copies it (nothing connects to it afterwards, as ``CREATE DATABASE ... TEMPLATE`` requires)."""
    name = "homewatch_migrated_template"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(_with_database(pg_admin_url, name), autocommit=True) as conn:
        migrate(conn)
    return name


@pytest.fixture
def database_url(pg_admin_url: str, migrated_template: str) -> Iterator[str]:
    """URL of a new database with the current schema (a copy of ``migrated_template``), dropped after
    the test. The same as migrating an empty database: the migrations only create objects (and move
    rows a new database has none of), and tests/gateway/store/test_migrations.py migrates its own."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        # FILE_COPY: copying the files (and the checkpoint it takes, cheap without fsync) is quicker
        # than WAL_LOG's page by page for a small database.
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}" STRATEGY FILE_COPY')
    try:
        yield _with_database(pg_admin_url, name)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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


# The longest files, longest first: pytest-xdist (``--no-loadscope-reorder``, see the Makefile) hands
# files out in collection order, and a 2-minute file handed out last keeps one process working alone at
# the end. Everything else keeps its order.
LONGEST_FILES = (
    "tests/gateway/api/test_api_schemathesis.py",
    "tests/homewatch/test_demo_gateway.py",
    "tests/gateway/ingest/test_ingest_faults.py",
    "tests/test_end_to_end.py",
    "tests/gateway/test_serve.py",
    "tests/delivery/test_outbox_disk_full.py",
    "tests/fhir_contract/test_fast_validation_differential.py",
)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: n for n, path in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


# The fault tests' reconciliations travel to the table on their test's report (``user_properties``), so
# the table is whole when pytest-xdist runs the tests in worker processes and the summary in another.
_RECONCILIATION = "homewatch-reconciliation"
_reported = 0  # how many of this process's ``reconciliation.RESULTS`` are on a report already
_reconciled: list[tuple[Any, ...]] = []  # what the reports carried, in report order


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    global _reported
    from reconciliation import RESULTS

    report: pytest.TestReport = yield
    for result in RESULTS[_reported:]:
        report.user_properties.append((_RECONCILIATION, dataclasses.astuple(result)))
    _reported = len(RESULTS)
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # xdist sends a report's tuples as lists.
    _reconciled.extend(
        tuple(cast("list[Any]", value)) for name, value in report.user_properties if name == _RECONCILIATION
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fault tests' reconciliation table (``tests/reconciliation.py``), when any fault test ran."""
    from reconciliation import Reconciliation, table

    if _reconciled:
        terminalreporter.section("fault reconciliation (from PostgreSQL)")
        for line in table(Reconciliation(*values) for values in _reconciled):
            terminalreporter.write_line(line)
