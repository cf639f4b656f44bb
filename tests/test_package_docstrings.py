"""Every package says what it owns: its ``__init__.py`` docstring is sentences, not just its name.

A newcomer reads ``gateway/__init__.py`` to learn what the gateway holds and what it leaves to others;
a docstring that only said "gateway." told them nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edge_agent", "gateway", "models", "fhir_contract", "homewatch")
INITS = sorted(path for package in PACKAGES for path in (ROOT / package).rglob("__init__.py"))
# Enough for a sentence that names what the package does; "gateway." and "store." are far below.
MINIMUM_CHARACTERS = 60


@pytest.mark.parametrize("init", INITS, ids=[str(p.parent.relative_to(ROOT)) for p in INITS])
def test_package_docstring_says_what_the_package_owns(init: Path) -> None:
    docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    name = init.parent.name
    assert docstring.strip().rstrip(".").lower() != name.lower()
    assert len(docstring) >= MINIMUM_CHARACTERS, docstring
