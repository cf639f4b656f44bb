"""The demo runs the gateway ``homewatch gateway serve`` runs (``gateway.service.Gateway``), with nothing
of its own wired in beside it, and that gateway scores the 30-day admission risk: a short demo ends with
admission-risk RiskAssessments for its patients, counted in the summary and served at
``GET /fhir/RiskAssessment``."""

from __future__ import annotations

import ast
import asyncio
import io
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from gateway.broker import free_port
from gateway.service import Gateway
from homewatch.demo.provision import Login
from homewatch.demo.runner import Demo, DemoOptions
from homewatch.demo.summary import DemoSummary

ROOT = Path(__file__).resolve().parents[2]
# What the gateway assembles: the demo must take all of it from gateway.service, as serve does.
GATEWAY_PARTS = {
    "IngestWorker",
    "IngestWorkers",
    "Scorer",
    "AdmissionRiskSchedule",
    "create_app",
    "open_pool",
    "start_http",
    "run_worker",
}
WIRING_MODULES = {
    "gateway.ingest.mqtt_ingest",
    "gateway.workers",
    "gateway.http_server",
    "gateway.alerts.scorer",
    "gateway.api.app",
    "gateway.api.pool",
}
ADMISSION_RISK = "Risk of hospital admission within 30 days"


def test_the_demo_wires_no_gateway_part_of_its_own() -> None:
    built_from = set()
    for path in sorted((ROOT / "homewatch" / "demo").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gateway"):
                names = {alias.name for alias in node.names}
                assert node.module not in WIRING_MODULES, f"{path.name} imports {node.module}"
                assert not names & GATEWAY_PARTS, f"{path.name} builds {names & GATEWAY_PARTS} itself"
                if node.module == "gateway.service":
                    built_from |= names
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("gateway.") for a in node.names), path.name
    assert {"Gateway", "GatewayOptions"} <= built_from


def _admission_risk_assessments(url: str, logins: list[Login]) -> int:
    """30-day admission-risk RiskAssessments the FHIR API serves to the demo's nurses (one per
    municipality), every page."""
    found = 0
    with httpx.Client(base_url=url, timeout=10) as client:
        for login in logins:
            form = {"username": login.username, "password": login.password}
            token = client.post("/login/access-token", data=form).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            page: str | None = f"{url}/fhir/RiskAssessment?_count=100"
            while page is not None:
                bundle = client.get(page, headers=headers).json()
                found += sum(e["resource"]["code"]["text"] == ADMISSION_RISK for e in bundle.get("entry", []))
                page = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    return found


class _ObservedDemo(Demo):
    """The demo, reading the FHIR API after its summary, before it stops."""

    served = 0

    async def _finish(self) -> DemoSummary:
        summary = await super()._finish()
        assert self.gateway is not None
        self.served = await asyncio.to_thread(_admission_risk_assessments, self.gateway.url, self.logins)
        return summary


@pytest.mark.e2e
def test_a_short_demo_ends_with_admission_risk_assessments_from_the_readings() -> None:
    options = DemoOptions(homes=2, days=7, duration=15, port=free_port(), seed=11)
    demo = _ObservedDemo(options, Console(file=io.StringIO(), width=160))
    summary = asyncio.run(demo.run())
    assert type(demo.gateway) is Gateway
    assert summary.readings_stored > 0
    # Only a patient with readings gets a 30-day risk: both were scored from what arrived.
    assert summary.patients_risk_assessed == 2
    assert summary.admission_risk_assessments >= 2
    assert all(p.admission_risk is not None for p in summary.top)
    # Served as FHIR, as `gateway serve` serves them (the schedule may have run once more meanwhile).
    assert demo.served >= summary.admission_risk_assessments
