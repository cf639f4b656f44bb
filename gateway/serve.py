"""``homewatch gateway serve``: the gateway as a long-running service with ingest in worker processes.

The main process serves HTTP (web UI, FHIR API, ``/metrics``) and runs the scorer and the scheduled
30-day admission risk (``gateway.alerts.admission_risk``, every ``risk_interval_hours``); N ingest worker
processes (multiprocessing, spawn) each run one ``IngestWorker`` with its own client id
(``{ingest_client_prefix}-{n}``) in one MQTT 5 shared-subscription group, so adding workers adds
throughput. Workers tell the scorer about new data with PostgreSQL NOTIFY from inside the batch's
transaction (``gateway.alerts.scorer``), and count what they did in their own metrics row.

With no URLs the embedded PostgreSQL and broker are started (as the demo does) and stopped at exit;
with URLs the external ones are used, and the external broker is probed once for the queue limits the
gateway needs (``gateway.broker_check``: one log line). Migrations are applied at start either way. A
broker that speaks MQTT 3.1.1 only (amqtt, or ``HOMEWATCH_MQTT_V5=false``) has no shared subscriptions: one
worker then takes everything, and a log line says so.

A worker that dies is restarted by ``IngestWorkers`` with back-off; it gets back its broker session
(the fixed client id), so what it left unacknowledged is redelivered. SIGTERM/SIGINT stop everything
in reverse order; workers finish their batch first. Left to others: ingest itself
(``gateway.ingest``), scoring (``gateway.alerts``), the routes (``gateway.api``).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg_pool import ConnectionPool

from gateway.alerts.admission_risk import AdmissionRiskSchedule
from gateway.alerts.scorer import Scorer
from gateway.api.app import create_app
from gateway.api.pool import open_pool
from gateway.broker import BrokerEndpoint, EmbeddedBroker
from gateway.broker_check import check_external_broker
from gateway.server import GatewayError, check_port_free, start_http
from gateway.settings import GatewaySettings
from gateway.store.embedded import EmbeddedPostgres
from gateway.store.errors import MigrationError
from gateway.store.migrate import migrate
from models.admission_risk import SHIPPED_MODEL, ModelError
from models.admission_risk import load as load_risk_model

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "homewatch"
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
CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True, slots=True)
class MqttTarget:
    """An external broker, from ``mqtt://[user[:password]@]host[:port]`` or ``mqtts://...``."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def parse_mqtt_url(url: str) -> MqttTarget:
    """The broker a URL names; GatewayError saying what is wrong with it otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise GatewayError(f"--mqtt-url must look like mqtt://host:port or mqtts://host:port, not {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise GatewayError(f"--mqtt-url {url!r} has an invalid port") from None
    if not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise GatewayError(f"--mqtt-url must be mqtt://host:port or mqtts://host:port, not {url!r}")
    tls = parts.scheme == "mqtts"
    return MqttTarget(
        parts.hostname,
        port or (8883 if tls else 1883),
        tls,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
    )


def check_broker(host: str, port: int) -> None:
    """GatewayError unless something accepts TCP connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise GatewayError(f"cannot reach the MQTT broker at {host}:{port}: {exc.strerror or exc}") from exc


def prepare_database(database_url: str) -> None:
    """Connect and bring the schema up to date; GatewayError when the database is unusable."""
    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            applied = migrate(conn)
    except psycopg.ProgrammingError as exc:  # not a connection string at all
        raise GatewayError(f"--database-url is not a PostgreSQL URL: {str(exc).strip()}") from exc
    except psycopg.OperationalError as exc:
        raise GatewayError(f"cannot connect to the database: {str(exc).strip()}") from exc
    except MigrationError as exc:
        raise GatewayError(str(exc)) from exc
    if applied:
        log.info("applied migrations %s", applied)


def _embedded_database(admin_url: str) -> str:
    base, _, query = admin_url.partition("?")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        known = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,))
        if known.fetchone() is None:
            conn.execute(f"CREATE DATABASE {EMBEDDED_DATABASE}")
    return f"{base.rsplit('/', 1)[0]}/{EMBEDDED_DATABASE}" + (f"?{query}" if query else "")


# -- worker processes ------------------------------------------------------------------------------


def _exit_with_parent() -> None:
    """Ask Linux to SIGTERM this worker when the process that started it dies (even by SIGKILL).

    Linux ties this to the starting *thread*: the main thread or the supervisor, which both live until
    the workers are stopped anyway."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


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
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    logging.basicConfig(
        level=log_level, format="%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
    )
    logging.getLogger("paho").setLevel(max(log_level, logging.WARNING))
    from gateway.ingest.mqtt_ingest import IngestWorker  # the heavy imports, in the child only

    worker = IngestWorker(
        settings, endpoint=endpoint, client_id=client_id, notify_channel=settings.scorer_channel
    )
    worker.start()
    while not stop.is_set():
        if worker.wait_until_subscribed(0.5):
            ready.set()
            break
    stop.wait()
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
    """``count`` supervised ingest worker processes. ``start`` / ``stop``."""

    def __init__(
        self,
        settings: GatewaySettings,
        endpoint: BrokerEndpoint | None,
        count: int,
        log_level: int = logging.INFO,
    ) -> None:
        self._settings = settings
        self._endpoint = endpoint
        self._log_level = log_level
        self._context = multiprocessing.get_context("spawn")
        self._slots = [_Slot(f"{settings.ingest_client_prefix}-{n}") for n in range(1, count + 1)]
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, name="ingest-supervisor", daemon=True)

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start every worker and return once each has subscribed; GatewayError otherwise."""
        with self._lock:
            for slot in self._slots:
                self._spawn(slot)
        self._supervisor.start()
        if not self.wait_ready(timeout):
            raise GatewayError(
                f"ingest workers did not subscribe to the broker within {timeout:.0f} s: check its "
                "credentials, ACL and MQTT 5 support (HOMEWATCH_MQTT_V5=false for an MQTT 3.1.1 broker)"
            )

    def wait_ready(self, timeout: float) -> bool:
        """True once every worker (the current process of each slot) has subscribed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                events = [slot.ready for slot in self._slots]
            if all(e is not None and e.is_set() for e in events):
                return True
            time.sleep(0.05)
        return False

    def pids(self) -> dict[str, int | None]:
        with self._lock:
            return {s.client_id: s.process.pid if s.process else None for s in self._slots}

    def restarts(self) -> dict[str, int]:
        with self._lock:
            return {s.client_id: s.restarts for s in self._slots}

    def stop(self, timeout: float = WORKER_STOP_TIMEOUT_S) -> None:
        """SIGTERM every worker (each finishes its batch), then SIGKILL what is left after ``timeout``."""
        self._stopping.set()
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


# -- the service -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServeOptions:
    database_url: str | None = None  # None: embedded PostgreSQL
    mqtt_url: str | None = None  # None: embedded broker (Mosquitto, else amqtt)
    workers: int = 1
    host: str = "127.0.0.1"
    port: int = 8000


class GatewayService:
    """Everything ``homewatch gateway serve`` runs. ``start`` / ``stop`` (reverse order, safe twice)."""

    def __init__(self, options: ServeOptions, settings: GatewaySettings | None = None) -> None:
        self.options = options
        self._base = settings or GatewaySettings()
        self.settings: GatewaySettings | None = None
        self._pg: EmbeddedPostgres | None = None
        self._broker: EmbeddedBroker | None = None
        self.pool: ConnectionPool[Any] | None = None
        self.scorer: Scorer | None = None
        self.admission_risk: AdmissionRiskSchedule | None = None
        self.workers: IngestWorkers | None = None
        self._http: Any = None
        self._http_thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.options.host}:{self.options.port}"

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        opts = self.options
        target = parse_mqtt_url(opts.mqtt_url) if opts.mqtt_url is not None else None
        check_port_free(opts.host, opts.port)
        database_url = opts.database_url
        if database_url is None:
            self._pg = EmbeddedPostgres()
            database_url = _embedded_database(self._pg.start())
            log.info("embedded PostgreSQL: %s", database_url)
        prepare_database(database_url)
        update: dict[str, Any] = {
            "database_url": database_url,
            "http_host": opts.host,
            "http_port": opts.port,
        }
        endpoint: BrokerEndpoint | None = None
        if target is None:
            self._broker = EmbeddedBroker()
            endpoint = self._broker.start()
            update.update(mqtt_host=endpoint.host, mqtt_port=endpoint.port, mqtt_v5=endpoint.mqtt5)
            log.info("embedded %s broker on %s", endpoint.kind, endpoint.url)
        else:
            check_broker(target.host, target.port)
            update.update(
                mqtt_host=target.host,
                mqtt_port=target.port,
                mqtt_tls=target.tls,
                mqtt_username=target.username or self._base.mqtt_username,
                mqtt_password=target.password or self._base.mqtt_password,
            )
        settings = self.settings = self._base.model_copy(update=update)
        if target is not None:
            # One log line on whether the broker keeps a backlog for the gateway (a few seconds at most;
            # never fails start-up). The embedded broker is configured on purpose (gateway.broker).
            check_external_broker(settings)
        count = opts.workers
        if not settings.mqtt_v5 and count > 1:
            log.warning(
                "the broker speaks MQTT 3.1.1 only (no shared subscriptions): running 1 ingest worker, "
                "not %d",
                count,
            )
            count = 1
        self.pool = open_pool(database_url)
        self.scorer = Scorer(database_url)
        self.scorer.start()
        self.scorer.listen(settings.scorer_channel)
        if not self.scorer.wait_listening(timeout):
            raise GatewayError("the scorer could not LISTEN on the database in time")
        self.admission_risk = _admission_risk_schedule(database_url, settings)
        self.workers = IngestWorkers(settings, endpoint, count, logging.getLogger().getEffectiveLevel())
        self.workers.start(timeout)
        app = create_app(settings, self.pool)
        self._http, self._http_thread = start_http(app, opts.host, opts.port, timeout)
        log.info(
            "gateway serving %s with %d ingest worker(s) (%s)",
            self.url,
            count,
            "shared subscription" if settings.mqtt_v5 else "MQTT 3.1.1",
        )

    def stop(self) -> None:
        if self._http is not None and self._http_thread is not None:
            self._http.should_exit = True
            self._http_thread.join(timeout=10)
            self._http = None
        if self.workers is not None:
            self.workers.stop()
            self.workers = None
        if self.admission_risk is not None:
            self.admission_risk.stop()
            self.admission_risk = None
        if self.scorer is not None:
            self.scorer.wait_idle(timeout=10)
            self.scorer.stop()
            self.scorer = None
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if self._broker is not None:
            self._broker.stop()
            self._broker = None
        if self._pg is not None:
            self._pg.stop()
            self._pg = None


def _admission_risk_schedule(database_url: str, settings: GatewaySettings) -> AdmissionRiskSchedule | None:
    """The scheduled 30-day risk with the shipped model, or None (logged) when it cannot be loaded."""
    try:
        model = load_risk_model(SHIPPED_MODEL)
    except ModelError as exc:
        log.warning("30-day admission risk off: %s", exc)
        return None
    schedule = AdmissionRiskSchedule(database_url, model, timedelta(hours=settings.risk_interval_hours))
    schedule.start()
    return schedule


def serve(options: ServeOptions, settings: GatewaySettings | None = None) -> None:
    """Run the gateway until SIGTERM or SIGINT; everything started is stopped, also after an error."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    service = GatewayService(options, settings)
    try:
        service.start()
        while not stop.wait(0.5):
            pass
        log.info("stopping the gateway")
    finally:
        service.stop()
        for sig, handler in previous.items():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(sig, handler)
    log.info("gateway stopped cleanly")
