"""``bench/hub_fleet.py`` at a small size: 50 hubs on a real Mosquitto, SIGKILLed and restarted once,
come back with the hub's jittered back-off, and every Bundle they made reaches the gateway.

The bench is run as a user runs it (its own process, ``--json``), so the smoke test covers the script
itself and not a copy of its parts; the figures at full size are in docs/scaling.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.broker import mosquitto_binary

ROOT = Path(__file__).resolve().parents[2]
HUBS = 50


@pytest.mark.skipif(mosquitto_binary() is None, reason="the fleet bench needs Mosquitto")
def test_fifty_hubs_survive_a_broker_crash_with_nothing_lost() -> None:
    run = subprocess.run(
        [
            sys.executable, "bench/hub_fleet.py", "--hubs", str(HUBS), "--interval", "1", "--steady", "2",
            "--down", "1", "--signal", "KILL", "--modes", "jitter", "--json",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2_000:]
    (result,) = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert result["mode"] == "jitter" and result["signal"] == "KILL"
    assert result["bundles_made"] > HUBS * 3  # steady, outage and storm: every hub kept making Bundles
    assert result["lost"] == 0
    assert result["received_unique"] == result["bundles_made"]
    assert result["received_total"] == result["received_unique"] + result["duplicates"]
    assert result["unconfirmed_at_end"] == 0  # every Bundle's receipt reached its hub
    assert result["all_back_since_loss_s"] >= result["down_s"]  # nobody was back before the broker
    assert 2_000 <= result["bundle_bytes_mean"] <= 12_000  # a hub's Bundle of one measurement
