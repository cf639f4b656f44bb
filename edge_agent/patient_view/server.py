"""The patient view served by uvicorn inside the hub's own event loop, as one task of HubService.

uvicorn runs on the hub's loop (no thread): the pages read the hub's configuration and put into its
outbox without crossing threads. The listening socket is bound here, so a port in use is a clear
:class:`OSError` at start (uvicorn would call ``sys.exit``) and a test may ask for port 0 and read the
port it got. uvicorn's signal handling is switched off: SIGTERM belongs to ``homewatch edge run``, which
stops the hub, and the hub stops this server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

log = logging.getLogger(__name__)

# A browser's open connection does not keep the hub from stopping longer than this.
STOP_TIMEOUT_S = 5.0


class _Embedded(uvicorn.Server):
    """uvicorn without its signal handlers (the hub's process owns them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class PatientViewServer:
    """Serves one ASGI app on ``host:port`` until :meth:`stop`."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._server: _Embedded | None = None
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None

    async def start(self) -> None:
        """Bind, then serve in a task; return once it accepts connections (OSError: the port is taken)."""
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError:
            sock.close()
            raise
        sock.listen(64)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
        )
        self._server = _Embedded(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="patient-view")
        while not self._server.started:
            if self._task.done():
                await self._task  # raises what stopped it
                raise OSError(f"the patient view did not start on {self._host}:{self._port}")
            await asyncio.sleep(0.01)
        log.info("patient view: serving on http://%s:%d/", self._host, self.port)

    async def stop(self) -> None:
        server, task, self._server, self._task = self._server, self._task, None, None
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await task
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        log.info("patient view: stopped")
