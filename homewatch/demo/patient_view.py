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
from edge_agent.patient_view.history import HistoryFeed

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
    _feed: HistoryFeed | None = None

    @property
    def url(self) -> str | None:
        return (
            None if self.server is None or self.server.port is None else f"http://{HOST}:{self.server.port}/"
        )

    async def start(self) -> None:
        history = self.history = LocalHistory(LocalHistory.path_next_to(self.config.outbox_path))
        feed = self._feed = HistoryFeed(history, self.clock)  # forgets by the demo's clock
        for session in self.agent.sessions.values():
            session.on_stored = feed.add
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
        feed, self._feed, self.history = self._feed, None, None
        if feed is not None:
            await feed.close()
