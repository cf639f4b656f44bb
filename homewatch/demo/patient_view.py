"""The demo homes' patient views: each simulated hub serves its resident's page on a loopback port.

A hub in production runs the view inside ``edge_agent.service.HubService``; the demo's homes run the
bare ``HubAgent`` (the play needs its simulated clock), so this wires the same parts around it: the
local history fed by every Observation the agent stores, the view's app (``edge_agent.patient_view``)
with the home's configuration, its outbox as the way in for the resident's answers and requests, and the
demo's clock, served on 127.0.0.1 on a free port. Each home's PIN is random on every run and printed
with the logins (``homewatch.demo.logins``); the data are SYNTHETIC.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edge_agent.agent import HubAgent
from edge_agent.config import HubConfig
from edge_agent.patient_view import HubPort, LocalHistory, PatientViewServer, create_app

HOST = "127.0.0.1"


def new_pin() -> str:
    """A household PIN for one demo run: six random digits."""
    return f"{secrets.randbelow(10**6):06d}"


@dataclass(slots=True)
class DemoPatientView:
    """One home's patient view around its running agent; :meth:`start` after the agent, :meth:`stop`
    before it closes."""

    config: HubConfig
    agent: HubAgent
    clock: Callable[[], datetime]
    pin: str = field(default_factory=new_pin)
    history: LocalHistory | None = None
    server: PatientViewServer | None = None
    _writes: set[asyncio.Future[int]] = field(default_factory=set)

    @property
    def url(self) -> str | None:
        return (
            None if self.server is None or self.server.port is None else f"http://{HOST}:{self.server.port}/"
        )

    async def start(self) -> None:
        history = self.history = LocalHistory(LocalHistory.path_next_to(self.config.outbox_path))
        loop = asyncio.get_running_loop()

        def stored(observations: list[dict[str, Any]]) -> None:
            # SQLite off the loop, as the hub's service does it; the futures are kept until done.
            write = loop.run_in_executor(None, lambda: history.add(observations, now=self.clock()))
            self._writes.add(write)
            write.add_done_callback(self._writes.discard)

        for session in self.agent.sessions.values():
            session.on_stored = stored
        port = HubPort(
            config=lambda: self.config,
            send=self._send,
            history=history,
            unattributed=lambda: getattr(self.agent, "unattributed", None),
            now=self.clock,
        )
        self.server = PatientViewServer(create_app(port, self.pin), HOST, 0)
        await self.server.start()

    async def _send(self, resources: list[dict[str, Any]]) -> int:
        return await asyncio.to_thread(self.agent.outbox.put, resources)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        if self.history is not None:
            self.history.close()
            self.history = None
