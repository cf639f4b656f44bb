"""How fast the hub's outbox takes readings and drains a backlog to a real Mosquitto, next to paho alone.

Three figures, on real FHIR Observations built with the contract's builder (SpO2 and pulse alternating):

- write rate: Observations/s through ``Outbox.put`` in batches of ``--batch`` (what the agent stores
  from one connection or one history download) and in single puts (one fsync each);
- drain rate: Observations/s from a full outbox (``--backlog`` rows) to the broker's PUBACK through the
  real ``MqttPublisher`` (its Bundle size, window of 16 Bundles in flight, ``delete_after = "broker"``:
  rows deleted at the PUBACK; in the default mode the gateway's receipts pace the drain instead);
- raw rate: paho publishing the same Bundle payloads at QoS 1 with the same in-flight window, no outbox.

The ratio drain/raw is what durability (read, delete, fsync per PUBACK) costs. No subscriber is attached:
Mosquitto acknowledges a QoS 1 publish whether or not anyone subscribes, so this is the hub's side alone.

    .venv/bin/python bench/outbox_throughput.py [--backlog 50000] [--batch 10]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.config import DeviceConfig, HubConfig, MqttConfig
from edge_agent.outbox import Outbox
from edge_agent.publish import MqttPublisher
from edge_agent.publish.mqtt_publisher import WINDOW
from fhir_contract.observation import build_observation
from fhir_contract.readings import Quantity, Reading
from gateway.broker import BrokerEndpoint, EmbeddedBroker

START = datetime(2026, 11, 1, tzinfo=UTC)


def observations(count: int) -> list[dict[str, Any]]:
    """``count`` distinct valid oximeter Observations, one second apart."""
    out = []
    for i in range(count):
        kind, value, unit = (
            ("spo2", 90 + i % 9, "%") if i % 2 == 0 else ("pulse-rate-oximeter", 60 + i % 30, "/min")
        )
        reading = Reading(kind, Quantity(Decimal(value), unit))
        out.append(
            build_observation(
                reading,
                patient_id="p1",
                device_id="OXI1",
                hub_id="hub1",
                effective=START + timedelta(seconds=i),
            )
        )
    return out


def hub_config(folder: Path, endpoint: BrokerEndpoint) -> HubConfig:
    return HubConfig(
        municipality="0101",
        hub_id="bench-hub",
        patient_id="p1",
        devices=(DeviceConfig(id="OXI1", address="F0:00:00:00:00:01", kind="pulse-oximeter"),),
        # Rows go at the PUBACK: this measures the hub's own side. With the default delete_after =
        # "gateway" the drain is paced by the gateway's receipts, i.e. by the gateway's store rate.
        mqtt=MqttConfig(host=endpoint.host, port=endpoint.port, mqtt5=endpoint.mqtt5, delete_after="broker"),
        outbox_path=folder / "outbox.sqlite3",
    )


def write_rates(folder: Path, obs: list[dict[str, Any]], batch: int, singles: int) -> tuple[float, float]:
    """(batched, single) Observations/s through ``Outbox.put`` into a fresh outbox."""
    box = Outbox(folder / "write.sqlite3")
    t0 = time.perf_counter()
    for i in range(0, len(obs), batch):
        box.put(obs[i : i + batch])
    batched = len(obs) / (time.perf_counter() - t0)
    box.close()
    box = Outbox(folder / "single.sqlite3")
    t0 = time.perf_counter()
    for o in obs[:singles]:
        box.put([o])
    single = singles / (time.perf_counter() - t0)
    box.close()
    return batched, single


def drain_rate(config: HubConfig, obs: list[dict[str, Any]]) -> float:
    """Observations/s from a full outbox to the last PUBACK through ``MqttPublisher``."""
    box = Outbox(config.outbox_path)
    for i in range(0, len(obs), 1000):
        box.put(obs[i : i + 1000])
    publisher = MqttPublisher(config, box)
    t0 = time.perf_counter()
    publisher.start()
    while box.depth():
        time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    publisher.stop()
    box.close()
    return len(obs) / elapsed


def raw_rate(endpoint: BrokerEndpoint, obs: list[dict[str, Any]], bundle_size: int) -> float:
    """Observations/s of paho publishing the same Bundles at QoS 1, same window, no outbox."""
    payloads = []
    for i in range(0, len(obs), bundle_size):
        entries = b",".join(
            b'{"resource":' + orjson.dumps(o) + b',"request":{"method":"POST","url":"Observation"}}'
            for o in obs[i : i + bundle_size]
        )
        payloads.append(b'{"resourceType":"Bundle","type":"batch","entry":[' + entries + b"]}")
    done = threading.Semaphore(0)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(WINDOW)
    client.max_queued_messages_set(0)
    client.on_publish = lambda *_: done.release()
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    t0 = time.perf_counter()
    for payload in payloads:
        client.publish("homewatch/v1/0101/bench-raw/observations", payload, qos=1)
    for _ in payloads:
        done.acquire()
    elapsed = time.perf_counter() - t0
    client.disconnect()
    client.loop_stop()
    return len(obs) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backlog", type=int, default=50_000, help="rows in the outbox to drain")
    parser.add_argument("--batch", type=int, default=10, help="Observations per put (batched writes)")
    parser.add_argument("--singles", type=int, default=3_000, help="single puts to time")
    args = parser.parse_args()
    obs = observations(args.backlog)
    size = sum(len(orjson.dumps(o)) for o in obs) / len(obs)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(prefer="mosquitto") as endpoint:
        folder = Path(tmp)
        config = hub_config(folder, endpoint)
        batched, single = write_rates(folder, obs, args.batch, args.singles)
        drained = drain_rate(config, obs)
        raw = raw_rate(endpoint, obs, config.bundle_size)
    print(f"Observations: {len(obs):,} of {size:,.0f} bytes JSON; Bundles of {config.bundle_size}")
    print(f"outbox write, batches of {args.batch:<4} {batched:>10,.0f} Observations/s")
    print(f"outbox write, single puts     {single:>10,.0f} Observations/s")
    print(f"outbox drain to PUBACK        {drained:>10,.0f} Observations/s")
    print(f"paho alone, same Bundles      {raw:>10,.0f} Observations/s")
    print(f"drain / raw                   {drained / raw:>10.2f}")


if __name__ == "__main__":
    main()
