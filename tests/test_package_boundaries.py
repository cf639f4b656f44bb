"""Guard: data flows one way, and the contract knows neither side.

``fhir_contract`` is shared by the hub and the server, so it may import neither; ``models`` is trained
and evaluated offline and used by the server, so it may import neither the hub nor the server. Every
import in every module counts, also one inside a function.
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
}


def imported_packages(source: str) -> set[str]:
    """The top-level names of every absolute import in ``source``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def offending_imports(package: str) -> list[str]:
    bad: list[str] = []
    for path in sorted((ROOT / package).rglob("*.py")):
        found = imported_packages(path.read_text()) & set(FORBIDDEN[package])
        bad += [f"{path.relative_to(ROOT)} imports {name}" for name in sorted(found)]
    return bad


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_it_may(package: str) -> None:
    assert offending_imports(package) == []


def test_the_guard_sees_imports_inside_functions() -> None:
    source = "def f():\n    from gateway.store import repository\n    import edge_agent.gatt\n"
    assert imported_packages(source) == {"gateway", "edge_agent"}


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
