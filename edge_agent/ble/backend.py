"""The pair of bleak backend classes a hub uses: passed in, never chosen inside the agent.

A hub on BlueZ passes nothing (``None``: bleak picks its platform backend); tests and the demo pass the
pair that :func:`edge_agent.ble.bumble_backend.backend_for` binds to one emulated home radio. This module
imports neither BlueZ nor Bumble.
"""

from __future__ import annotations

from typing import NamedTuple

from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import BaseBleakScanner


class BleBackend(NamedTuple):
    """bleak backend classes to hand to ``BleakScanner(backend=...)`` and ``BleakClient(backend=...)``."""

    scanner: type[BaseBleakScanner]
    client: type[BaseBleakClient]
