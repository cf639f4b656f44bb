"""Fuzzing the ingest path end to end on a real PostgreSQL: whatever arrives, ingest keeps going.

Each example runs through the worker's own ``BatchStore`` (decide, store, quarantine, set aside: the
code ``IngestWorker`` runs after MQTT hands it a batch) with a good message behind it in the same batch,
and checks the property of ``ingest_fuzzing.check_message_ends_well``. ``make test`` runs a small budget
(``HOMEWATCH_FUZZ_EXAMPLES``, default 40 per test); ``make faults`` a large one. The last test runs
the coverage-guided atheris harness (``atheris_ingest.py``) on the decision itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_fuzzing import (
    EXAMPLES,
    HOME,
    INTRUDER,
    Message,
    any_message,
    arbitrary_json,
    check_message_ends_well,
    hostile_bundles,
    hostile_topics,
)

from gateway.ingest.batch_store import BatchStore
from gateway.settings import GatewaySettings
from gateway.store.migrate import migrate

pytestmark = pytest.mark.fuzz

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture(scope="module")
def fuzz_database(pg_admin_url: str) -> Iterator[str]:
    """One database for a module's examples (each example adds its own rows, and checks only those)."""
    name = f"fuzz_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, query = pg_admin_url.partition("?")
    url = f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        HOME.enroll(conn)
        INTRUDER.enroll(conn)
    yield url
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def store(fuzz_database: str) -> Iterator[BatchStore]:
    batch_store = BatchStore(GatewaySettings(database_url=fuzz_database), "fuzz")
    yield batch_store
    batch_store.close()


@pytest.fixture(scope="module")
def conn(fuzz_database: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(fuzz_database, autocommit=True) as connection:
        yield connection


@FUZZ
@given(payload=st.binary(max_size=4000))
def test_arbitrary_bytes_end_refused_and_ingest_goes_on(
    store: BatchStore, conn: psycopg.Connection[Any], payload: bytes
) -> None:
    check_message_ends_well(store, conn, Message(HOME.topic, payload))


@FUZZ
@given(payload=arbitrary_json())
def test_arbitrary_json_ends_refused_and_ingest_goes_on(
    store: BatchStore, conn: psycopg.Connection[Any], payload: bytes
) -> None:
    check_message_ends_well(store, conn, Message(HOME.topic, payload))


@FUZZ
@given(payload=hostile_bundles())
def test_bundles_with_a_hostile_value_anywhere_end_well_and_ingest_goes_on(
    store: BatchStore, conn: psycopg.Connection[Any], payload: bytes
) -> None:
    check_message_ends_well(store, conn, Message(HOME.topic, payload))


@FUZZ
@given(topic=hostile_topics, payload=any_message)
def test_any_message_on_any_topic_ends_well_and_ingest_goes_on(
    store: BatchStore, conn: psycopg.Connection[Any], topic: str, payload: bytes
) -> None:
    check_message_ends_well(store, conn, Message(topic, payload))


# Inputs for the atheris run: a few thousand in `make test`, many more in `make faults`.
ATHERIS_RUNS = int(os.environ.get("HOMEWATCH_ATHERIS_RUNS", "5000"))


def test_coverage_guided_fuzzing_of_the_decision_finds_no_crash(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris has wheels for Linux x86_64 only")
    harness = Path(__file__).with_name("atheris_ingest.py")
    run = subprocess.run(
        [sys.executable, str(harness), f"-runs={ATHERIS_RUNS}", f"-artifact_prefix={tmp_path}/"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert f"Done {ATHERIS_RUNS} runs" in run.stderr
