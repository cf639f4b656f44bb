"""The gateway's HTTP server: the web application (``gateway.api.app``) under uvicorn in a thread.

uvicorn runs in a thread of its own, so it installs no signal handlers: SIGTERM and Ctrl-C stay with
the process that started it (``gateway.service``), which stops the server in order with the rest.
Stopping ends the app's live alert streams first (``gateway.api.alert_stream.end_streams``): uvicorn's
graceful shutdown waits for every open response, and a stream never ends by itself (the browsers
reconnect to the next server and resume).
Left to others: the routes (``gateway.api``), what else runs beside it (``gateway.service``).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn
from fastapi import FastAPI

from gateway.api.alert_stream import end_streams
from gateway.errors import GatewayError

# A server asked to exit finishes the requests in hand; past this, stopping goes on without it.
STOP_TIMEOUT_S = 10.0


def check_port_free(host: str, port: int) -> None:
    """GatewayError, naming ``--port``, when ``host:port`` cannot be bound right now."""
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
    thread = threading.Thread(target=server.run, name="http", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise GatewayError(f"the HTTP server did not start on http://{host}:{port}")
        time.sleep(0.02)
    return server, thread


def stop_http(server: uvicorn.Server, thread: threading.Thread, timeout: float = STOP_TIMEOUT_S) -> None:
    """End the app's live streams, ask the server to exit and wait for its thread."""
    if isinstance(server.config.app, FastAPI):
        end_streams(server.config.app)
    server.should_exit = True
    thread.join(timeout=timeout)
