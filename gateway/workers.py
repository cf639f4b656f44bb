"""Ingest workers: ``count`` supervised processes, each running one ``IngestWorker``; or, with ``count``
0, one ``IngestWorker`` in a thread of this process.

Processes (multiprocessing, spawn) run validation and COPY on every core; each has its own client id
(``{ingest_client_prefix}-{n}``) in one MQTT 5 shared-subscription group, so adding workers adds
throughput. With 0 the same ``IngestWorker`` runs in a thread under the name of slot 1 (so it takes over
that slot's broker session): one process to watch in a debugger, at the cost of sharing one core with
the HTTP server and the scorer. Either way a worker announces the patients with new data by
PostgreSQL NOTIFY from inside its batch's transaction (``notify_channel``), so there is one path to the
scorer (``gateway.alerts.scorer``), and counts what it did in its own rows (``gateway.store.ingest_metrics``).

A worker process that dies is restarted by ``IngestWorkers`` with back-off; it gets back its broker
session (the fixed client id), so what it left unacknowledged is redelivered. Stopping SIGTERMs every
worker, which finishes its batch first. Left to others: ingest itself (``gateway.ingest``), when the
workers start and stop (``gateway.service``).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event as ProcessEvent
from typing import TYPE_CHECKING

from gateway.broker import BrokerEndpoint
from gateway.errors import GatewayError
from gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from gateway.ingest.mqtt_ingest import IngestWorker

log = logging.getLogger(__name__)

# One worker process per core: bench/ingest_throughput.py found more add no throughput
# (docs/ingest-benchmark.md). The default of `gateway serve` and of the demo alike.
DEFAULT_WORKERS = os.cpu_count() or 1
# Spawning a worker imports paho, psycopg and the FHIR contract: a few seconds on a busy 2-core machine.
START_TIMEOUT_S = 60.0
# Restart back-off for a worker that died: 1 s doubling to 30 s, so a worker that dies at once (say, a
# bad configuration) does not spin; reset once a worker has lived STABLE_AFTER_S.
RESTART_FIRST_S = 1.0
RESTART_MAX_S = 30.0
STABLE_AFTER_S = 60.0
SUPERVISE_EVERY_S = 0.2
# A stopping worker finishes its batch (a commit) and disconnects well within this; then SIGKILL.
WORKER_STOP_TIMEOUT_S = 15.0
# How often a worker process looks whether it was asked to stop (and whether it has subscribed yet).
STOP_POLL_S = 0.1


def _exit_with_parent() -> None:
    """Ask Linux to SIGTERM this worker when the process that started it dies (even by SIGKILL).

    Linux ties this to the starting *thread*: the supervisor, which lives until the workers are stopped
    (so it does not matter which thread of the caller, an asyncio executor's in the demo, called start)."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _ingest_worker(
    settings: GatewaySettings, endpoint: BrokerEndpoint | None, client_id: str
) -> IngestWorker:
    """The one way a worker is made, in a process or a thread: announcing new data on the scorer's channel."""
    from gateway.ingest.mqtt_ingest import IngestWorker  # the heavy imports: in a child, only there

    return IngestWorker(
        settings, endpoint=endpoint, client_id=client_id, notify_channel=settings.scorer_channel
    )


def run_worker(
    settings: GatewaySettings,
    endpoint: BrokerEndpoint | None,
    client_id: str,
    ready: ProcessEvent,
    log_level: int,
) -> None:
    """A worker process: one IngestWorker until SIGTERM. SIGINT is left to the main process, which
    stops the workers in order after a Ctrl-C reached the whole process group."""
    _exit_with_parent()
    asked_to_stop = False

    def stop_asked(*_: object) -> None:
        # A flag only. A handler that takes a lock (threading.Event.set) deadlocks when the signal lands
        # while the main thread holds that lock, and SIGTERM comes twice in a row here: from Linux when
        # the supervisor thread ends (_exit_with_parent), and from IngestWorkers.stop.
        nonlocal asked_to_stop
        asked_to_stop = True

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, stop_asked)
    logging.basicConfig(
        level=log_level, format="%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
    )
    logging.getLogger("paho").setLevel(max(log_level, logging.WARNING))
    worker = _ingest_worker(settings, endpoint, client_id)
    worker.start()
    while not asked_to_stop:
        if not ready.is_set() and worker.wait_until_subscribed(0):
            ready.set()
        time.sleep(STOP_POLL_S)
    worker.stop()


@dataclass(slots=True)
class _Slot:
    client_id: str
    process: SpawnProcess | None = None
    ready: ProcessEvent | None = None
    started_at: float = 0.0
    restart_delay: float = RESTART_FIRST_S
    restart_at: float | None = None
    restarts: int = 0


class IngestWorkers:
    """``count`` supervised ingest worker processes (0: one worker in a thread). ``start`` / ``stop``."""

    def __init__(
        self,
        settings: GatewaySettings,
        endpoint: BrokerEndpoint | None,
        count: int,
        log_level: int = logging.INFO,
    ) -> None:
        if count < 0:
            raise ValueError(f"a worker count is 0 or more, not {count}")
        self._settings = settings
        self._endpoint = endpoint
        self._log_level = log_level
        self._context = multiprocessing.get_context("spawn")
        prefix = settings.ingest_client_prefix
        self._slots = [_Slot(f"{prefix}-{n}") for n in range(1, count + 1)]
        # count 0: slot 1's client id, so switching between a thread and processes keeps the session.
        self._in_thread: IngestWorker | None = None
        self._thread_id = f"{prefix}-1" if count == 0 else None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, name="ingest-supervisor", daemon=True)

    @property
    def in_thread(self) -> bool:
        """Whether ingest runs in a thread of this process (``count`` 0) rather than in processes."""
        return self._thread_id is not None

    @property
    def client_ids(self) -> list[str]:
        """The workers' MQTT client ids, which are also their names in ``ingest_metrics``."""
        return [self._thread_id] if self._thread_id is not None else [s.client_id for s in self._slots]

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start every worker and return once each has subscribed; GatewayError otherwise."""
        if self._thread_id is not None:
            self._in_thread = _ingest_worker(self._settings, self._endpoint, self._thread_id)
            self._in_thread.start()
        else:
            self._supervisor.start()  # which spawns them: see _exit_with_parent
        if not self.wait_ready(timeout):
            raise GatewayError(
                f"ingest did not subscribe to the broker within {timeout:.0f} s: check its "
                "credentials, ACL and MQTT 5 support (HOMEWATCH_MQTT_V5=false for an MQTT 3.1.1 broker)"
            )

    def wait_ready(self, timeout: float) -> bool:
        """True once every worker (the current process of each slot) has subscribed."""
        if self._in_thread is not None:
            return self._in_thread.wait_until_subscribed(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                events = [slot.ready for slot in self._slots]
            if events and all(e is not None and e.is_set() for e in events):
                return True
            time.sleep(0.05)
        return False

    def pids(self) -> dict[str, int | None]:
        if self._thread_id is not None:
            return {self._thread_id: os.getpid()}
        with self._lock:
            return {s.client_id: s.process.pid if s.process else None for s in self._slots}

    def restarts(self) -> dict[str, int]:
        if self._thread_id is not None:
            return {self._thread_id: 0}
        with self._lock:
            return {s.client_id: s.restarts for s in self._slots}

    def stop(self, timeout: float = WORKER_STOP_TIMEOUT_S) -> None:
        """SIGTERM every worker (each finishes its batch), then SIGKILL what is left after ``timeout``."""
        self._stopping.set()
        if self._in_thread is not None:
            self._in_thread.stop(timeout)
            self._in_thread = None
        if self._supervisor.is_alive():
            self._supervisor.join()
        with self._lock:
            processes = [s.process for s in self._slots if s.process is not None]
        for process in processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("ingest worker %s did not stop in time; killing it", process.name)
                process.kill()
                process.join()

    def _spawn(self, slot: _Slot) -> None:
        ready = self._context.Event()
        process = self._context.Process(
            target=run_worker,
            args=(self._settings, self._endpoint, slot.client_id, ready, self._log_level),
            name=slot.client_id,
            daemon=True,  # multiprocessing also ends it if the main process exits without stop()
        )
        process.start()
        slot.process, slot.ready, slot.started_at = process, ready, time.monotonic()
        log.info("ingest worker %s started (pid %s)", slot.client_id, process.pid)

    def _supervise(self) -> None:
        with self._lock:
            for slot in self._slots:
                if not self._stopping.is_set():
                    self._spawn(slot)
        while not self._stopping.wait(SUPERVISE_EVERY_S):
            with self._lock:
                for slot in self._slots:
                    self._look_after(slot)

    def _look_after(self, slot: _Slot) -> None:
        now = time.monotonic()
        if slot.restart_at is not None:
            if now >= slot.restart_at:
                slot.restart_at = None
                slot.restarts += 1
                self._spawn(slot)
            return
        process = slot.process
        if process is None or process.is_alive():
            return
        lived = now - slot.started_at
        if lived >= STABLE_AFTER_S:
            slot.restart_delay = RESTART_FIRST_S
        log.error(
            "ingest worker %s (pid %s) exited with code %s after %.1f s; restarting it in %.1f s",
            slot.client_id,
            process.pid,
            process.exitcode,
            lived,
            slot.restart_delay,
        )
        slot.restart_at = now + slot.restart_delay
        slot.restart_delay = min(slot.restart_delay * 2, RESTART_MAX_S)
