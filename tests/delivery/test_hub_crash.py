"""A hub process killed (SIGKILL) at a random moment between writing readings and publishing them: a new
process drains the same outbox, and every reading the hub acknowledged reaches PostgreSQL, once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from delivery_helpers import (
    enroll,
    hub_config,
    needs_mosquitto,
    quarantined_count,
    start_gateway,
    stored_count,
    stored_identifiers,
    wait_for,
)
from reconciliation import reconcile

from edge_agent.outbox import Outbox
from edge_agent.publish import MqttPublisher
from gateway.broker import EmbeddedBroker

ROUNDS = 3
POOL = 4_000  # readings each hub process has to write (hub_child.POOL)
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _run_hub_and_kill_it(outbox: Path, host: str, port: int, first: int, kill_after: int) -> list[str]:
    """Start a hub process and SIGKILL it once it has acknowledged ``kill_after`` readings (so it is
    still writing and sending); return every identifier it acknowledged (printed after its put
    returned)."""
    child = subprocess.Popen(
        [sys.executable, str(HERE / "hub_child.py"), str(outbox), host, str(port), str(first)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{HERE}"},
    )
    stdout = child.stdout
    assert stdout is not None
    # Read while it runs: a full pipe would block the child in print() rather than in put().
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, b"")))
    reader.start()
    wait_for(lambda: len(lines) >= kill_after, timeout=15, interval=0.001)
    child.send_signal(signal.SIGKILL)
    reader.join()  # whatever it printed before dying is still in the pipe
    child.wait()
    assert child.returncode == -signal.SIGKILL
    return b"".join(lines).decode().split()


pytestmark = pytest.mark.faults


@needs_mosquitto
def test_hub_killed_between_write_and_publish_loses_nothing(tmp_path: Path, database_url: str) -> None:
    with EmbeddedBroker(prefer="mosquitto") as endpoint:
        enroll(database_url)
        gateway = start_gateway(database_url, endpoint)
        config = hub_config(tmp_path, endpoint)
        try:
            rng = random.Random()
            acknowledged: list[str] = []
            left: list[int] = []  # rows still in the outbox (not yet confirmed) at each kill
            for round_ in range(ROUNDS):  # each restarted hub drains what its predecessor left, then dies
                first = round_ * 1_000_000
                kill_after = rng.randrange(100, POOL - 500)
                acknowledged += _run_hub_and_kill_it(
                    config.outbox_path, endpoint.host, endpoint.port, first, kill_after
                )
                probe = Outbox(config.outbox_path)
                left.append(probe.depth())
                probe.close()
            box = Outbox(config.outbox_path)
            publisher = MqttPublisher(config, box)  # the hub restarted: a new process drains the outbox
            publisher.start()
            try:
                assert wait_for(lambda: box.depth() == 0, timeout=15), f"{box.depth()} rows not delivered"
                expected = set(acknowledged)
                assert wait_for(lambda: expected <= stored_identifiers(database_url), timeout=10), (
                    f"{len(expected - stored_identifiers(database_url))} acknowledged readings never stored"
                )
            finally:
                publisher.stop()
                box.close()
            # stored once: a row per identifier (the victim may have stored a few it had not printed yet)
            stored = stored_identifiers(database_url)
            assert stored_count(database_url) == len(stored) >= len(acknowledged)
            assert quarantined_count(database_url) == 0
            assert sum(left) > 0, f"no kill came between write and publish: {left}"
            figures = reconcile(database_url, "hub SIGKILLed between write and publish", acknowledged)
            assert (figures.lost, figures.duplicated) == (0, 0)
        finally:
            gateway.stop()
