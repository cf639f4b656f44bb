"""The hub's disk fills up in the middle of a steady stream of readings, then space comes back (the
ballast file is deleted): every reading reaches PostgreSQL, once.

The disk fills while the gateway is away, when a hub's backlog grows (while the drain keeps up, SQLite
reuses freed pages and a full disk changes nothing); the gateway comes back while the disk is still
full, so the drain delivers what is on disk although it cannot delete it yet.

Real parts: the hub's ``Outbox`` on a disk that really fills (``small_disk``: a 16 MiB tmpfs with a
ballast file, or SQLite's own page limit where no tmpfs can be mounted), its ``MqttPublisher``,
Mosquitto, and the gateway's ``IngestWorker`` storing into PostgreSQL. The readings are put the way a
device session puts them, a few at a time at a steady rate, from their own thread.

The test ends with a reconciliation: readings sent by the devices, stored in PostgreSQL (distinct
identifiers), duplicated (rows beyond one per identifier), lost (sent and not stored) and quarantined.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from delivery_helpers import (
    enroll,
    hub_config,
    identifiers,
    needs_mosquitto,
    readings,
    start_gateway,
    wait_for,
)
from reconciliation import reconcile
from small_disk import MECHANISMS, small_disk
from status_watch import OnlineStatuses

from edge_agent.outbox import Outbox
from edge_agent.publish import MqttPublisher
from gateway.broker import BrokerEndpoint

READINGS = 6_000
PER_PUT = 5  # a device session puts one value's Observations at a time: a few
PUT_EVERY_S = 0.005  # 1,000 readings a second, for 6 s
FILL_AT = 1_000  # readings put before the gateway goes and the disk fills
FREE_AT = 3_500  # readings put before the ballast goes: the disk is full for about 2.5 s
MiB = 1 << 20


class Stream:
    """Puts ``READINGS`` readings into the outbox at a steady rate from its own thread, as a device
    session does; keeps what it saw of the outbox."""

    def __init__(self, box: Outbox, observations: list[dict[str, Any]]) -> None:
        self._box = box
        self._observations = observations
        self.put = 0  # readings handed to the outbox
        self.refused: list[str] = []  # identifiers whose put raised: lost by the hub
        self.saw_full = False
        self.held_peak = 0
        self._thread = threading.Thread(target=self._run, name="readings", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        next_at = time.monotonic()
        for i in range(0, len(self._observations), PER_PUT):
            batch = self._observations[i : i + PER_PUT]
            try:
                self._box.put(batch)
            except Exception:
                self.refused += identifiers(batch)
            self.put = i + len(batch)
            self.saw_full |= getattr(self._box, "full", False)
            self.held_peak = max(self.held_peak, getattr(self._box, "held", 0))
            next_at += PUT_EVERY_S
            time.sleep(max(next_at - time.monotonic(), 0))

    def join(self, timeout: float) -> None:
        if self._thread.ident is not None:
            self._thread.join(timeout)
        assert not self._thread.is_alive(), "the readings stream never finished"


def _print_table(mechanism: str, extra: dict[str, object]) -> None:
    """What the hub did meanwhile (the reconciliation itself is in the run's fault table)."""
    width = max(len(k) for k in extra)
    lines = [f"the hub during the full disk ({mechanism}):"]
    lines += [f"  {name:<{width}}  {value!s:>6}" for name, value in extra.items()]
    print("\n".join(lines))


@needs_mosquitto
@pytest.mark.faults
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_disk_full_mid_stream_every_reading_is_stored_once(
    tmp_path: Path, database_url: str, broker: BrokerEndpoint, mechanism: str
) -> None:
    enroll(database_url)
    observations = readings(READINGS)
    sent = identifiers(observations)
    with small_disk(mechanism, tmp_path, size=16 * MiB) as disk:
        config = hub_config(disk.path, broker)
        box = Outbox(config.outbox_path)
        disk.attach(box)
        gateway = start_gateway(database_url, broker)
        publisher = MqttPublisher(config, box)
        statuses = OnlineStatuses(broker, config.topic("status"))
        stream = Stream(box, observations)
        drained = False
        try:
            publisher.start()
            stream.start()
            assert wait_for(lambda: stream.put >= FILL_AT, timeout=15)
            # The gateway goes away, so the hub's backlog grows (as it does whenever the gateway is
            # behind), and the disk fills: a backlog that no longer shrinks needs new pages, and there
            # are none. (While the drain keeps up, SQLite reuses freed pages and WAL space, and a full
            # disk changes nothing.)
            gateway.stop()
            disk.fill(leave=64 * 1024)
            assert wait_for(lambda: stream.saw_full, timeout=10), "the outbox never reported the full disk"
            publisher.publish_status()
            assert wait_for(lambda: statuses.any(lambda s: s.get("outboxFull") is True), timeout=5), (
                "no outboxFull in the status"
            )
            # The gateway is back while the disk is still full: the drain delivers what is on disk.
            gateway = start_gateway(database_url, broker)
            confirmed = publisher.stats.observations_sent
            assert wait_for(lambda: box.depth() == box.held and publisher.awaiting_receipt() == 0, 15)
            assert publisher.stats.observations_sent > confirmed and box.full
            assert wait_for(lambda: stream.put >= FREE_AT, timeout=15)
            assert stream.put < READINGS, "the stream ended before the disk had room again"
            disk.free()  # the ballast goes: held readings and pending deletions reach the disk
            stream.join(timeout=15)
            drained = wait_for(lambda: box.depth() == 0, timeout=30)
            figures = reconcile(database_url, f"hub's disk full mid-stream ({mechanism})", sent)
            assert stream.saw_full and stream.held_peak > 0, "the disk never filled: nothing was tested"
            assert figures.lost == 0, f"{figures.lost} readings lost"
            assert figures.duplicated == 0
            assert figures.quarantined == 0
            assert figures.stored == figures.sent == READINGS
            assert drained and publisher.awaiting_receipt() == 0 and not box.full
            publisher.publish_status()
            assert wait_for(
                lambda: statuses.any(
                    lambda s: (
                        (s.get("outboxFull"), s.get("heldInMemory"), s.get("queueDepth")) == (False, 0, 0)
                    )
                ),
                5,
            )
        finally:
            stream.join(timeout=15)
            _print_table(
                mechanism,
                {
                    "refused by the outbox": len(stream.refused),
                    "held in memory, peak": stream.held_peak,
                    "evicted": sum(box.evicted.values()),
                    "Bundles sent again": publisher.stats.bundles_resent,
                    "outbox drained": drained,
                },
            )
            publisher.stop()
            gateway.stop()
            statuses.close()
            box.close()
