"""``gateway.workers``: worker processes asked to stop stop cleanly, every time. A stop sends each worker
two SIGTERMs a moment apart (Linux's, when the supervisor thread that spawned it ends, and
``IngestWorkers.stop``'s); a handler that took a lock deadlocked on the second in about one stop in three
with two workers, and the worker was SIGKILLed after the stop timeout."""

from __future__ import annotations

import logging
import time

import pytest

from gateway.broker import BrokerEndpoint
from gateway.settings import GatewaySettings
from gateway.workers import IngestWorkers

# Enough stops that the old deadlock would have shown with near certainty (2 workers x 8 stops).
STOPS = 8


def test_worker_processes_stop_cleanly_every_time(
    database_url: str, broker: BrokerEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.workers")
    settings = GatewaySettings(
        database_url=database_url,
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        mqtt_v5=broker.mqtt5,
        ingest_client_prefix=f"stops-{broker.port}",
    )
    for _ in range(STOPS):
        workers = IngestWorkers(settings, broker, 2 if broker.mqtt5 else 1)
        workers.start()
        begun = time.monotonic()
        workers.stop(timeout=10)
        assert "did not stop in time" not in caplog.text
        assert time.monotonic() - begun < 10
