"""Resident memory of one hub: the agent with eight emulated devices connected, next to the same process
with the eight devices and no agent, and the interpreter with the imports alone.

Each figure comes from a fresh process (the script runs itself with ``--phase``), so one phase's garbage
never inflates the next:

- ``hub imports``: Python with what a hub on BlueZ loads (``edge_agent.agent``: bleak, paho, pydantic,
  fhir_contract; no Bumble), for reference.
- ``imports``: Python with bleak, Bumble, paho, pydantic, fhir_contract and edge_agent imported.
- ``devices``: plus one home radio (Bumble LocalLink, the hub's central) and eight emulated devices
  advertising, no agent.
- ``agent``: plus a started ``HubAgent`` (scanner, eight links, sessions, outbox, MQTT publisher to a
  broker in its own process) with all eight devices connected and ``--readings`` values from each
  stored and published.
- ``agent-traced``: the same under ``tracemalloc``, started just before the agent is built, so its peak
  counts the agent's own allocations (and bleak's and Bumble's on the hub's side of the links).

RSS is ``VmRSS`` from ``/proc/self/status`` after a ``gc.collect()``; ``VmHWM`` is its high-water mark.
The agent's cost is ``agent`` minus ``devices``. Target: the hub process under 100 MB resident.

    .venv/bin/python bench/agent_memory.py [--readings 50]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# Everything the hub process imports, measured in every phase.
import bleak  # noqa: F401
import bumble.device  # noqa: F401
import paho.mqtt.client  # noqa: F401

from edge_agent.agent import HubAgent
from edge_agent.ble.connection import LinkPolicy
from edge_agent.config import DeviceConfig, DeviceKind, HubConfig, MqttConfig
from edge_agent.emulation.clock import DeviceClock
from edge_agent.emulation.peripheral import EmulatedPeripheral, create_peripheral
from edge_agent.emulation.radio import HomeRadio
from edge_agent.gatt.blood_pressure import BloodPressureMeasurement, encode_blood_pressure_measurement
from edge_agent.gatt.cgm import CgmMeasurement, encode_cgm_measurement
from edge_agent.gatt.health_thermometer import TemperatureMeasurement, encode_temperature_measurement
from edge_agent.gatt.pulse_oximeter import PlxSpotCheckMeasurement, encode_plx_spot_check_measurement
from edge_agent.gatt.weight_scale import WeightMeasurement, encode_weight_measurement
from gateway.broker import EmbeddedBroker

TARGET_MB = 100.0
ZONE = ZoneInfo("Europe/Copenhagen")
# Eight kinds that stay connected (a glucose meter is released after each transfer).
KINDS: tuple[DeviceKind, ...] = (
    "blood-pressure-cuff",
    "pulse-oximeter",
    "scale",
    "thermometer",
    "heart-rate-monitor",
    "continuous-oximeter",
    "body-composition-scale",
    "cgm",
)
POLICY = LinkPolicy(scan_timeout=2.0, connect_timeout=5.0, settle=0.2)


def _local_now() -> datetime:
    return datetime.now(ZONE).replace(tzinfo=None)


def _status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (kB there) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def _value(kind: DeviceKind, device: EmulatedPeripheral, n: int) -> bytes:
    """The n-th measurement of a device of ``kind``, stamped with its clock n minutes ago.

    Live kinds carry no stamp: the hub dates them on receipt, to the second, so a burst of them within one
    second is one Observation (as a 1 Hz stream never is).
    """
    when = (device.device_now() - timedelta(minutes=n)).replace(microsecond=0)
    match kind:
        case "blood-pressure-cuff":
            return encode_blood_pressure_measurement(
                BloodPressureMeasurement(Decimal(120 + n % 20), Decimal(80), Decimal(93), time_stamp=when)
            )
        case "pulse-oximeter":
            return encode_plx_spot_check_measurement(
                PlxSpotCheckMeasurement(Decimal(94 + n % 5), Decimal(70), time_stamp=when)
            )
        case "scale":
            return encode_weight_measurement(WeightMeasurement(Decimal("80.00") + n, time_stamp=when))
        case "thermometer":
            return encode_temperature_measurement(TemperatureMeasurement(Decimal("36.5"), time_stamp=when))
        case "heart-rate-monitor":
            return bytes([0x00, 60 + n % 40])  # uint8 heart rate
        case "continuous-oximeter":
            return bytes.fromhex("00 6000 4800")  # SpO2 96 %, pulse 72 /min
        case "body-composition-scale":
            return bytes.fromhex("0000 2c01")  # body fat 30.0 %
        case "cgm":
            return encode_cgm_measurement(CgmMeasurement(glucose=Decimal(110), time_offset=5 * n))
    raise ValueError(kind)


async def _home(radio: HomeRadio) -> list[EmulatedPeripheral]:
    return [await create_peripheral(radio, kind, clock=DeviceClock.correct(_local_now)) for kind in KINDS]


async def _run_agent(
    radio: HomeRadio, devices: list[EmulatedPeripheral], readings: int, traced: bool
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as folder:
        config = HubConfig(
            municipality="0101",
            hub_id="hub-bench",
            patient_id="p-bench",
            devices=tuple(
                DeviceConfig(id=f"dev-{n}", address=d.address, kind=kind)
                for n, (d, kind) in enumerate(zip(devices, KINDS, strict=True))
            ),
            mqtt=MqttConfig(host=broker.host, port=broker.port, mqtt5=broker.mqtt5),
            outbox_path=Path(folder) / "outbox.sqlite3",
            timezone=str(ZONE),
            # All eight at once (a BlueZ adapter would take turns above seven; the emulated one does not).
            max_connections=len(KINDS),
        )
        if traced:
            tracemalloc.start(1)
        agent = HubAgent(config, backend=radio.backend, link_policy=POLICY)
        await agent.start()
        try:
            async with asyncio.timeout(20):
                await agent.wait_connected()
                for n in range(readings):
                    for kind, device in zip(KINDS, devices, strict=True):
                        await device.measure(_value(kind, device, n))
                # Counters written by the agent and the publisher thread: polled.
                while agent.stats.values_received < readings * len(devices) or agent.outbox.depth():  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            gc.collect()
            if traced:
                current, peak = tracemalloc.get_traced_memory()
                result |= {"traced_current_mb": current / 2**20, "traced_peak_mb": peak / 2**20}
                result["top"] = _top_packages(tracemalloc.take_snapshot())
                tracemalloc.stop()
            result |= {
                "rss_mb": _status_mb("VmRSS"),
                "hwm_mb": _status_mb("VmHWM"),
                "connected": sum(s.connected for s in agent.device_states().values()),
                "values": agent.stats.values_received,
                "observations": agent.stats.observations_stored,
                "sent": agent.publisher.stats.observations_sent,
            }
        finally:
            await agent.stop()
    return result


def _top_packages(snapshot: tracemalloc.Snapshot, count: int = 6) -> list[tuple[str, float]]:
    """Live traced memory by top-level package (edge_agent, bleak, bumble, ...), largest first."""
    totals: dict[str, int] = {}
    for stat in snapshot.statistics("filename"):
        path = stat.traceback[0].filename
        if "site-packages/" in path:
            package = path.split("site-packages/", 1)[1].split("/", 1)[0]
        elif "/work/" in path or path.startswith(str(Path.cwd())):
            package = (
                Path(path).relative_to(Path.cwd()).parts[0] if path.startswith(str(Path.cwd())) else path
            )
        else:
            package = "stdlib"
        totals[package] = totals.get(package, 0) + stat.size
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:count]
    return [(package, size / 2**20) for package, size in ranked]


async def _phase(phase: str, readings: int) -> dict[str, Any]:
    gc.collect()
    if phase == "imports":
        return {"rss_mb": _status_mb("VmRSS"), "hwm_mb": _status_mb("VmHWM")}
    async with HomeRadio("bench") as radio:
        devices = await _home(radio)
        if phase == "devices":
            await asyncio.sleep(0.5)  # advertising, as they do while the agent runs
            gc.collect()
            return {"rss_mb": _status_mb("VmRSS"), "hwm_mb": _status_mb("VmHWM")}
        return await _run_agent(radio, devices, readings, traced=phase == "agent-traced")


# A hub on BlueZ never imports Bumble or the emulation: its baseline, in a process of its own.
_HUB_IMPORTS = """
import json, edge_agent.agent
from pathlib import Path
fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
mb = {key: int(fields[name].split()[0]) / 1024 for key, name in (("rss_mb", "VmRSS"), ("hwm_mb", "VmHWM"))}
print(json.dumps(mb))
"""


def _hub_imports() -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", _HUB_IMPORTS], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def _child(phase: str, readings: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--phase", phase, "--readings", str(readings)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--readings", type=int, default=50, help="values each device sends (default 50)")
    parser.add_argument(
        "--phase", choices=("imports", "devices", "agent", "agent-traced"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(asyncio.run(_phase(args.phase, args.readings))))
        return
    started = time.perf_counter()
    hub_imports = _hub_imports()
    imports, devices, agent, traced = (
        _child(phase, args.readings) for phase in ("imports", "devices", "agent", "agent-traced")
    )
    print(
        f"hub agent memory, {len(KINDS)} emulated devices, {args.readings} values each ({', '.join(KINDS)})"
    )
    print(f"{'process':<58}{'VmRSS MB':>10}{'VmHWM MB':>10}")
    for label, figures in (
        ("interpreter + hub imports (BlueZ hub: no Bumble)", hub_imports),
        ("interpreter + imports (bleak, Bumble, paho, edge_agent)", imports),
        ("+ radio and 8 emulated devices, no agent", devices),
        (f"+ hub agent, {agent['connected']} devices connected", agent),
    ):
        print(f"{label:<58}{figures['rss_mb']:>10.1f}{figures['hwm_mb']:>10.1f}")
    print(f"agent's cost (RSS, agent - devices): {agent['rss_mb'] - devices['rss_mb']:.1f} MB")
    print(
        f"tracemalloc, from building the agent: peak {traced['traced_peak_mb']:.2f} MB,"
        f" live at the end {traced['traced_current_mb']:.2f} MB"
    )
    print("  live by package: " + ", ".join(f"{name} {size:.2f} MB" for name, size in traced["top"]))
    print(
        f"values received {agent['values']}, Observations stored {agent['observations']},"
        f" published {agent['sent']}"
    )
    verdict = "under" if agent["rss_mb"] < TARGET_MB else "OVER"
    print(f"target: {verdict} {TARGET_MB:.0f} MB resident ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
