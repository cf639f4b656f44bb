"""Guard: data flows one way, and the contract knows neither side.

``fhir_contract`` is shared by the hub and the server, so it may import neither; ``models`` is trained
and evaluated offline and used by the server, so it may import neither the hub nor the server. Inside
the gateway, ingest stores and announces but knows neither the scorer nor the routes, and the store
knows none of the parts that call it. Every import in every module counts, also one inside a function.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "fhir_contract": ("edge_agent", "gateway", "models", "homewatch"),
    "models": ("edge_agent", "gateway", "homewatch"),
    "edge_agent": ("gateway", "models", "homewatch"),
    "gateway/ingest": ("gateway.alerts", "gateway.api", "gateway.service", "gateway.workers", "homewatch"),
    "gateway/store": (
        "gateway.alerts",
        "gateway.api",
        "gateway.ingest",
        "gateway.service",
        "gateway.workers",
        "homewatch",
    ),
}


def imported_modules(source: str) -> set[str]:
    """The dotted names of every absolute import in ``source``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def offending_imports(package: str) -> list[str]:
    bad: list[str] = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in sorted(imported_modules(path.read_text())):
            bad += [
                f"{path.relative_to(ROOT)} imports {module}" for f in FORBIDDEN[package] if _within(module, f)
            ]
    return bad


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_it_may(package: str) -> None:
    assert offending_imports(package) == []


def test_the_guard_sees_imports_inside_functions() -> None:
    source = "def f():\n    from gateway.store import repository\n    import edge_agent.gatt\n"
    assert imported_modules(source) == {"gateway.store", "edge_agent.gatt"}
    assert _within("gateway.alerts.scorer", "gateway.alerts") and not _within(
        "gateway.alertsx", "gateway.alerts"
    )


def test_the_hub_service_loads_no_emulation_until_asked_to_emulate() -> None:
    # edge_agent.emulation (and Bumble under it) is for tests and the demo: the service that runs on a
    # hub in a home imports it only inside the branch that emulates ([emulation] or --emulate), as
    # bleak imports a backend only in its branch. A fresh interpreter shows what loading the service loads.
    probe = (
        "import sys, edge_agent.service, edge_agent.agent\n"
        "print(sorted(m for m in sys.modules\n"
        "             if m.startswith('edge_agent.emulation') or m.split('.')[0] == 'bumble'))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
