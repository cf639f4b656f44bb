"""Request bodies are limited before they are read (``gateway.api.body_limit``), on every route.

In-process first (the test client sends a body in one piece), then against a real uvicorn server in its
own process, fed through a raw socket: an announced body over the limit is refused before it is sent, an
unannounced (chunked) one is cut off at the limit, and the server's peak memory does not grow with the
body's size.
"""

from __future__ import annotations

import os
import secrets
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.operationoutcome import OperationOutcome
from psycopg_pool import ConnectionPool
from seed import login_form_token

from gateway.api.app import create_app
from gateway.api.auth import mint_token
from gateway.api.body_limit import FORM_LIMIT_BYTES
from gateway.broker import free_port
from gateway.settings import GatewaySettings
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.repository import Municipality, Patient

ROOT = Path(__file__).resolve().parents[3]
FHIR_JSON = "application/fhir+json"
FORM = "application/x-www-form-urlencoded"
PAYLOAD_LIMIT = 2_000
MB = 1024 * 1024


@pytest.fixture
def enrolled(database_url: str) -> str:
    """One municipality with a patient, a hub and a pulse oximeter: the hub's posts are read."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        home = Home(Patient("0101", "p1", "Patient p1"), "hub1", (HomeDevice("OXI1", "pulse-oximeter"),))
        enroll_homes(conn, [Municipality("0101", "Municipality 0101")], [home])
    return database_url


@pytest.fixture
def limited(enrolled: str, pool: ConnectionPool[Any]) -> Iterator[tuple[TestClient, GatewaySettings]]:
    """A client of an app whose hubs may post ``PAYLOAD_LIMIT`` bytes."""
    settings = GatewaySettings(
        database_url=enrolled, environment="development", max_payload_bytes=PAYLOAD_LIMIT
    )
    with TestClient(create_app(settings, pool), raise_server_exceptions=False) as client:
        yield client, settings


def _too_large_outcome(response: Any) -> None:
    """``response`` is the 413 OperationOutcome ingest gives a ``too-large`` message."""
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    OperationOutcome.model_validate(response.json())
    assert [issue["details"]["coding"][0]["code"] for issue in response.json()["issue"]] == ["too-large"]
    assert response.headers["connection"] == "close"


def test_a_post_to_fhir_announcing_more_than_the_payload_limit_is_413_before_any_token_is_read(
    limited: tuple[TestClient, GatewaySettings],
) -> None:
    client, _ = limited
    _too_large_outcome(client.post("/fhir", content=b"{" * (PAYLOAD_LIMIT + 1)))


def test_a_hubs_unannounced_bundle_over_the_payload_limit_is_413(
    limited: tuple[TestClient, GatewaySettings],
) -> None:
    client, settings = limited
    token = mint_token(settings, role="hub", municipality_id="0101", subject="hub1")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON}
    chunks = iter([b" " * 1000] * 3)  # no Content-Length: httpx sends it chunked
    _too_large_outcome(client.post("/fhir", content=chunks, headers=headers))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/login"),
        ("POST", "/login/access-token"),
        ("POST", "/logout"),
        ("POST", "/alerts/1/acknowledge"),
        ("GET", "/"),
        ("GET", "/healthz"),
        ("POST", "/fhir/Observation"),
        ("GET", "/fhir/metadata"),
    ],
)
def test_a_body_over_the_form_limit_is_413_on_every_other_route(
    limited: tuple[TestClient, GatewaySettings], method: str, path: str
) -> None:
    client, _ = limited
    response = client.request(
        method, path, content=b"a" * (FORM_LIMIT_BYTES + 1), headers={"Content-Type": FORM}
    )
    assert response.status_code == 413, response.text
    if path.startswith("/fhir") or path == "/login/access-token":
        assert response.headers["content-type"].startswith(FHIR_JSON)
        OperationOutcome.model_validate(response.json())
    else:
        assert response.headers["content-type"].startswith("text/plain")


def test_a_form_of_exactly_the_limit_is_read(limited: tuple[TestClient, GatewaySettings]) -> None:
    client, _ = limited
    fields = f"csrf={login_form_token(client)}&username=nobody&password=".encode()
    form = fields + b"x" * (FORM_LIMIT_BYTES - len(fields))
    response = client.post("/login", content=form, headers={"Content-Type": FORM})
    assert response.status_code == 401  # read, and the password is wrong


# --- a real server, a raw socket ------------------------------------------------------------------

_SERVE = """
import uvicorn
from gateway.api.app import create_app
from gateway.api.pool import open_pool
from gateway.settings import GatewaySettings

settings = GatewaySettings()
with open_pool(settings.database_url) as pool:
    uvicorn.run(create_app(settings, pool), host="127.0.0.1", port=settings.http_port, log_level="warning")
"""


@pytest.fixture
def server(database_url: str) -> Iterator[tuple[int, int]]:
    """(port, pid) of the app served by uvicorn in a process of its own."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOMEWATCH_ENVIRONMENT": "development",
        "HOMEWATCH_DATABASE_URL": database_url,
        "HOMEWATCH_SECRET_KEY": secrets.token_urlsafe(32),
        "HOMEWATCH_HTTP_PORT": str(port),
    }
    process = subprocess.Popen([sys.executable, "-c", _SERVE], env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not answer in time"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def _memory_kib(pid: int) -> tuple[int, int]:
    """(resident, peak resident) KiB of process ``pid`` (Linux)."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def _post_until_answered(port: int, path: str, total: int, *, chunked: bool) -> tuple[int, int]:
    """POST ``total`` bytes of form to ``path``, stopping once the server answers: (status, bytes sent).

    Announced (Content-Length) or chunked; the body is made one 64 KiB piece at a time, so the client
    holds no more than that.
    """
    piece = b"a" * 65_536
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {FORM}\r\n{framing}\r\n\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        try:
            while sent < total and not select.select([sock], [], [], 0)[0]:
                data = piece[: total - sent]
                sock.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                sent += len(data)
            if chunked and sent == total:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed the connection while the body was still coming
        answer = sock.recv(4096)
    return int(answer.split(b" ", 2)[1]), sent


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "announced"])
def test_a_200_mb_body_to_login_is_refused_without_the_server_holding_it(
    server: tuple[int, int], chunked: bool
) -> None:
    port, pid = server
    # Once through the refusal first, so that what it allocates once is not counted below.
    assert _post_until_answered(port, "/login", 64 * 1024, chunked=chunked)[0] == 413
    rss_before, peak_before = _memory_kib(pid)
    status, sent = _post_until_answered(port, "/login", 200 * MB, chunked=chunked)
    rss_after, peak_after = _memory_kib(pid)
    print(
        f"\n{'chunked' if chunked else 'announced'}: sent {sent / MB:.1f} MB of 200 MB;"
        f" server RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MB,"
        f" peak {peak_before / 1024:.1f} -> {peak_after / 1024:.1f} MB"
    )
    assert status == 413
    assert sent < 16 * MB  # the server stopped taking the body; only socket buffers were filled
    assert peak_after - peak_before < 4 * 1024  # KiB: a few MB at most, not the body's 200
