"""A hub process for the crash test: stores readings in its outbox while its publisher drains it, and
prints each identifier after the ``put`` that stored it returned. The test SIGKILLs it at random.

Usage: ``python hub_child.py OUTBOX_PATH HOST PORT FIRST``: readings start FIRST seconds after ``START``.
"""

from __future__ import annotations

import sys
import threading
from datetime import timedelta
from pathlib import Path

from delivery_helpers import START, hub_config, readings

from edge_agent.outbox import Outbox
from edge_agent.publish import MqttPublisher
from gateway.broker import BrokerEndpoint

POOL = 4_000
PER_PUT = 50  # a history download (RACP) stores this many at once: faster than one Bundle a PUBACK


def main() -> None:
    path, host, port, first = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    config = hub_config(path.parent, BrokerEndpoint(host, port, "mosquitto", mqtt5=True))
    box = Outbox(path)
    pool = readings(POOL, START + timedelta(seconds=first))  # built first: stored faster than sent
    publisher = MqttPublisher(config, box)
    publisher.start()
    for i in range(0, POOL, PER_PUT):
        batch = pool[i : i + PER_PUT]
        box.put(batch)
        sys.stdout.write("".join(obs["identifier"][0]["value"] + "\n" for obs in batch))
        sys.stdout.flush()
    threading.Event().wait()  # publishing goes on until the test kills us


if __name__ == "__main__":
    main()
