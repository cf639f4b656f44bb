"""Fuzzing the HTTP API from its own OpenAPI description (schemathesis): no request makes a server error.

The app runs in-process over a real, seeded database. Requests carry a nurse's bearer token and session
cookie (so the FHIR reads and the UI's pages are exercised, not only their 401s) or, for ``POST /fhir``,
an enrolled hub's token (so generated Bundles reach the FHIR contract and the quarantine). Schemathesis
runs its explicit examples, its coverage cases (boundaries, NUL bytes, huge numbers, missing and
duplicated parameters) and Hypothesis-generated requests, both valid and invalid by the description.

Everywhere, no answer may be a server error. Where the description declares the answers (the FHIR API),
each must also have a declared status, media type and body; and a FHIR read or search must refuse what
the description does not allow. The converse (accept all it allows) is not asked: no JSON Schema says
which dates exist, and a batch is answered 200 with a verdict per entry however wrong an entry is.

``HOMEWATCH_FUZZ_EXAMPLES`` sets the generated examples per operation: small by default, so ``make test``
stays fast and deterministic, larger (and random) for a fault-finding run.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import schemathesis
from fastapi import FastAPI
from psycopg_pool import ConnectionPool
from schemathesis.engine import events, from_schema
from seed import World, seed_world

from gateway.api.app import create_app
from gateway.api.auth import SESSION_COOKIE, mint_token
from gateway.settings import GatewaySettings
from gateway.store.repository import Device, Hub, enroll_device, enroll_hub

DEFAULT_EXAMPLES = 10
pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("HOMEWATCH_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
FUZZ_HUB = "hub-fuzz"
# Values that once made a server error, or would if a check were lost: Hypothesis seldom writes them by
# chance, so every generated string may be one of them (test_api_hostile_input.py pins each as a case).
HOSTILE_STRINGS = [
    "\x00",
    "a\x00b",
    "Patient/\x00",
    "http://loinc.org|\x00",
    "9999-12-31",
    "gt9999-12-31",
    "le9999-12-31T23:59:59.9999999Z",
    "9999-12-31T23:00:00-01:00",
    "0001-01-01T00:30:00+01:00",
    "\u0662\u0660\u0662\u0664",
    "\u00b2",
    "9" * 5000,
    "9" * 20,
    "-1",
    "A" * 10_000,
]


def _cursor(text: bytes) -> str:
    return base64.urlsafe_b64encode(text).decode()


# Cursors in the server's encoding around what it never issues: a NUL or a superscript digit in the key,
# an instant past the end of time in UTC, JSON nested past the parser's limit.
HOSTILE_CURSORS = [
    _cursor(b'["2024-05-01T10:00:00+00:00", "a\\u0000b"]'),
    _cursor(b'["2024-05-01T10:00:00+00:00", "\xc2\xb2"]'),
    _cursor(b'["2024-05-01T10:00:00+00:00", "00000000-0000-0000-0000-00000000000\\u0000"]'),
    _cursor(b'["9999-12-31T23:59:59-14:00", "k"]'),
    _cursor(b"[" * 3000),
]
# The answers the FHIR API declares, checked on every FHIR operation.
_DECLARED = ("status_code_conformance", "content_type_conformance", "response_schema_conformance")


@pytest.fixture
def fuzz_world(database_url: str) -> World:
    """The API tests' world, and a hub with a pulse oximeter for one of its patients."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        world = seed_world(conn, datetime.now(UTC))
        enroll_hub(conn, Hub(world.own, FUZZ_HUB, world.ranked[0]))
        enroll_device(conn, Device(world.own, "OXI-FUZZ", FUZZ_HUB, world.ranked[0], "pulse-oximeter"))
    return world


@pytest.fixture
def fuzz_app(settings: GatewaySettings, pool: ConnectionPool[Any], fuzz_world: World) -> FastAPI:
    return create_app(settings, pool)


def _fhir_operations(app: FastAPI, method: str | None = None) -> list[str]:
    """The labels ("GET /fhir/Observation") of the app's FHIR operations, of one ``method`` or all."""
    return [
        f"{verb.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        if path == "/fhir" or path.startswith("/fhir/")
        for verb in operations
        if method is None or verb.upper() == method
    ]


def _config(app: FastAPI, settings: GatewaySettings, world: World) -> dict[str, Any]:
    """Schemathesis' configuration (its TOML, as a dict): budget, callers and checks per operation."""
    nurse = mint_token(settings, role="nurse", municipality_id=world.own, subject=world.nurse)
    hub = mint_token(settings, role="hub", municipality_id=world.own, subject=FUZZ_HUB)
    enabled = {"enabled": True}
    fixed = EXAMPLES == DEFAULT_EXAMPLES  # make test: the same requests every run; larger: new ones
    return {
        **({"seed": 15} if fixed else {}),
        "continue-on-failure": True,  # every distinct failure, not only an operation's first
        "generation": {
            "max-examples": EXAMPLES,
            "deterministic": fixed,
            "database": "none",
            "with-security-parameters": False,  # the callers' headers below, not generated ones
            "dictionaries": {"string": {"dictionary": "hostile", "probability": 0.2}},
        },
        "dictionaries": {"hostile": {"values": HOSTILE_STRINGS}, "cursors": {"values": HOSTILE_CURSORS}},
        "parameters": {"query._cursor": {"dictionary": "cursors", "probability": 0.5}},
        "phases": {"stateful": {"enabled": False}},  # the description declares no links
        "headers": {"Authorization": f"Bearer {nurse}", "Cookie": f"{SESSION_COOKIE}={nurse}"},
        "checks": {"enabled": False, "not_a_server_error": enabled},
        # An entry applies to the operations any of its include-* names (they are alternatives).
        "operations": [
            {"include-name": "POST /fhir", "headers": {"Authorization": f"Bearer {hub}"}},
            {"include-name": _fhir_operations(app), "checks": dict.fromkeys(_DECLARED, enabled)},
            {"include-name": _fhir_operations(app, "GET"), "checks": {"negative_data_rejection": enabled}},
        ],
    }


@dataclass(frozen=True, slots=True)
class Found:
    """One failing request: the operation, the check it failed and how to send it again."""

    operation: str
    check: str
    title: str
    curl: str

    def __str__(self) -> str:
        return f"{self.operation}: {self.check} ({self.title})\n    {self.curl}"


@dataclass(frozen=True, slots=True)
class Run:
    """What a schemathesis run did: requests sent, failures found, errors raised in the app."""

    requests: int
    found: tuple[Found, ...]
    errors: tuple[str, ...]


def fuzz(app: FastAPI, config: dict[str, Any]) -> Run:
    """Run schemathesis' phases against ``app``'s own /openapi.json."""
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", app, config=schemathesis.Config.from_dict(config)
    )
    requests = 0
    found: list[Found] = []
    errors: list[str] = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            requests += len(recorder.interactions)
            for nodes in recorder.checks.values():
                for node in nodes:
                    if node.failure_info is not None:
                        failure = node.failure_info.failure
                        found.append(
                            Found(recorder.label, node.name, failure.title, node.failure_info.code_sample)
                        )
        elif isinstance(event, events.NonFatalError):
            errors.append(f"{event.label}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            errors.append(f"fatal: {event.exception!r}")
    return Run(requests, tuple(dict.fromkeys(found)), tuple(errors))


def test_no_request_the_description_allows_or_forbids_makes_a_server_error(
    fuzz_app: FastAPI, settings: GatewaySettings, fuzz_world: World
) -> None:
    run = fuzz(fuzz_app, _config(fuzz_app, settings, fuzz_world))
    print(
        f"\nschemathesis sent {run.requests} requests ({EXAMPLES} generated examples per operation and mode)"
    )
    assert run.requests > 0
    assert not run.found and not run.errors, "\n".join([*map(str, run.found), *run.errors])
    assert not run.found, "\n".join(map(str, run.found))
