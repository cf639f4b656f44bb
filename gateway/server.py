"""The gateway process: ingest, scorer and the HTTP server (web UI + FHIR API) wired together.

``ingest`` stores readings and tells the ``scorer`` which patients have new data; the scorer writes
scores and alerts; the HTTP server reads them. Each runs in its own thread, so a slow database query
in the web UI never delays ingest. Used by ``homewatch demo``; ``homewatch gateway serve``
(``gateway.serve``) runs ingest in worker processes instead and shares ``start_http`` with it.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import uvicorn
from psycopg_pool import ConnectionPool

from gateway.alerts.scorer import Scorer
from gateway.api.app import create_app
from gateway.api.pool import open_pool
from gateway.broker import BrokerEndpoint
from gateway.ingest.mqtt_ingest import IngestWorker
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


class GatewayError(RuntimeError):
    """The gateway could not start (port taken, database or broker unreachable)."""


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise GatewayError(
                f"port {port} on {host} is in use ({exc.strerror}); choose another with --port"
            ) from exc


def start_http(app: Any, host: str, port: int, timeout: float) -> tuple[uvicorn.Server, threading.Thread]:
    """Serve ``app`` with uvicorn in a thread; return once it accepts connections."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    # uvicorn installs no signal handlers outside the main thread: Ctrl-C stays ours.
    thread = threading.Thread(target=server.run, name="http", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise GatewayError(f"the HTTP server did not start on http://{host}:{port}")
        time.sleep(0.02)
    return server, thread


class GatewayServer:
    """Start with ``start()``, stop with ``stop()``; every part is stopped in reverse order."""

    def __init__(
        self, settings: GatewaySettings, *, endpoint: BrokerEndpoint | None = None, demo: bool = False
    ):
        self.settings = settings
        self._endpoint = endpoint
        self._demo = demo
        self.pool: ConnectionPool[Any] | None = None
        self.scorer: Scorer | None = None
        self.ingest: IngestWorker | None = None
        self._http: uvicorn.Server | None = None
        self._http_thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.http_host}:{self.settings.http_port}"

    def start(self, timeout: float = 15.0) -> None:
        check_port_free(self.settings.http_host, self.settings.http_port)
        self.pool = open_pool(self.settings.database_url)
        self.scorer = Scorer(self.settings.database_url)
        self.scorer.start()
        self.ingest = IngestWorker(self.settings, endpoint=self._endpoint, on_stored=self.scorer.notify)
        self.ingest.start()
        if not self.ingest.wait_until_subscribed(timeout):
            raise GatewayError("ingest did not subscribe to the broker in time")
        app = create_app(self.settings, self.pool, demo=self._demo)
        self._http, self._http_thread = start_http(
            app, self.settings.http_host, self.settings.http_port, timeout
        )

    def stop(self) -> None:
        if self._http is not None and self._http_thread is not None:
            self._http.should_exit = True
            self._http_thread.join(timeout=10)
        if self.ingest is not None:
            self.ingest.stop()
        if self.scorer is not None:
            self.scorer.wait_idle(timeout=10)
            self.scorer.stop()
        if self.pool is not None:
            self.pool.close()
