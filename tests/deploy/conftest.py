"""The deploy tests run a real Mosquitto with exactly the shipped files (see shipped_mosquitto.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from shipped_mosquitto import ACCOUNTS_FILE, ShippedBroker, missing_tools, provision, shipped_broker

NEEDS_MOSQUITTO = pytest.mark.skipif(
    bool(missing_tools()),
    reason=f"tests the shipped Mosquitto configuration; this machine lacks {', '.join(missing_tools())}",
)


@pytest.fixture(scope="session")
def shipped_accounts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The accounts file (dynamic security) with the gateway and the hubs, made once per session."""
    return provision(tmp_path_factory.mktemp("accounts"))


@pytest.fixture
def shipped(tmp_path: Path, shipped_accounts: Path) -> Iterator[ShippedBroker]:
    """A Mosquitto of its own running the shipped homewatch.conf on a loopback port, with the accounts."""
    shutil.copy(shipped_accounts, tmp_path / ACCOUNTS_FILE)
    with shipped_broker(tmp_path) as broker:
        yield broker
