"""What the patient view's tests share: a hub's configuration, a real outbox and history behind a
:class:`~edge_agent.patient_view.HubPort`, a fixed clock, readings built by the contract's builder, and
logging in through the PIN form."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from starlette.testclient import TestClient

from edge_agent.config import DeviceConfig, HubConfig, NurseMessage, PatientViewConfig, ResidentConfig
from edge_agent.outbox import Outbox
from edge_agent.patient_view import HubPort, LocalHistory, create_app
from edge_agent.patient_view.app import Unattributed
from edge_agent.patient_view.security import PinGate, SessionCodec
from fhir_contract.observation import build_observation
from fhir_contract.readings import Component, Quantity, Reading

ZONE = ZoneInfo("Europe/Copenhagen")
PIN = "2468"
HUB = "hub-view"
# 10:30 in Copenhagen on a Thursday in winter.
NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
PLAN = ({"measurement": "blood-pressure", "times": ["08:00", "20:00"], "grace_minutes": 120},)


def config(
    tmp_path: Path,
    *,
    residents: Sequence[ResidentConfig] = (),
    messages: Sequence[NurseMessage] = (),
    plan: Sequence[dict[str, Any]] = PLAN,
) -> HubConfig:
    return HubConfig(
        municipality="0101",
        hub_id=HUB,
        patient_id="p-anna",
        devices=(DeviceConfig(id="cuff-1", address="AA:BB:CC:DD:EE:01", kind="blood-pressure-cuff"),),
        outbox_path=tmp_path / "outbox.sqlite3",
        timezone=str(ZONE),
        plan=tuple(plan),
        residents=tuple(residents),
        messages=tuple(messages),
        patient_view=PatientViewConfig(enabled=True, pin=PIN, host="127.0.0.1", port=0),
    )


ANNA = ResidentConfig(patient_id="p-anna", name="Anna", questionnaire="heart-failure-daily")
BENT = ResidentConfig(patient_id="p-bent", name="Bent", questionnaire="copd-daily")


def blood_pressure(patient: str, at: datetime, systolic: int, diastolic: int) -> dict[str, Any]:
    reading = Reading(
        "blood-pressure",
        components=(
            Component("systolic", Quantity(Decimal(systolic), "mm[Hg]")),
            Component("diastolic", Quantity(Decimal(diastolic), "mm[Hg]")),
        ),
    )
    return build_observation(reading, patient_id=patient, device_id="cuff-1", hub_id=HUB, effective=at)


def weight(patient: str, at: datetime, kg: str) -> dict[str, Any]:
    reading = Reading("body-weight", value=Quantity(Decimal(kg), "kg"))
    return build_observation(reading, patient_id=patient, device_id="scale-1", hub_id=HUB, effective=at)


@dataclass
class Hub:
    """A hub as the view sees it: its configuration, a real outbox and history, a settable clock."""

    config: HubConfig
    outbox: Outbox
    history: LocalHistory
    now: datetime = NOW
    unattributed: Unattributed | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, resources: list[dict[str, Any]]) -> int:
        self.sent.extend(resources)
        return await asyncio.to_thread(self.outbox.put, resources)

    def port(self) -> HubPort:
        return HubPort(
            config=lambda: self.config,
            send=self.send,
            history=self.history,
            unattributed=lambda: self.unattributed,
            now=lambda: self.now,
        )

    def queued(self) -> list[dict[str, Any]]:
        """What waits in the outbox, oldest first."""
        return [orjson.loads(row.resource) for row in self.outbox.after(0, 1000)]

    def close(self) -> None:
        self.outbox.close()
        self.history.close()


def make_hub(tmp_path: Path, hub_config: HubConfig) -> Hub:
    return Hub(
        hub_config,
        Outbox(hub_config.outbox_path),
        LocalHistory(LocalHistory.path_next_to(hub_config.outbox_path)),
    )


def client_for(hub: Hub, *, gate: PinGate | None = None, codec: SessionCodec | None = None) -> TestClient:
    app = create_app(hub.port(), PIN, gate=gate, codec=codec)
    return TestClient(app, base_url="http://hub.local", follow_redirects=True)


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "the page has a form with its anti-forgery token"
    return found[1]


def log_in(client: TestClient, pin: str = PIN, resident: str | None = None) -> str:
    """Give the PIN (and say who, when asked); return the page that followed."""
    token = csrf(client.get("/login").text)
    page = client.post("/login", data={"pin": pin, "csrf": token})
    if resident is not None and "/who" in str(page.url):
        page = client.post("/who", data={"resident": resident, "csrf": csrf(page.text)})
    return page.text
