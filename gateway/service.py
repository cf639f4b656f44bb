"""The gateway: the one composition root of the server, run by ``homewatch gateway serve`` and by the demo.

``Gateway`` starts, in this order: the database (an embedded PostgreSQL unless ``database_url`` is
given; migrated either way), the broker (an embedded one unless ``mqtt_url`` or ``broker`` is given),
the scorer LISTENing for new data, the alert dispatcher (``gateway.alerts.dispatcher``: e-mails and
webhooks of the alerts' outbox, escalations, ended snoozes, every ``alert_jobs_interval_s`` of its
clock), the 30-day admission risk on its schedule (at start, then every ``risk_interval_hours``), the
missing-measurement job (every ``missing_check_minutes`` of its clock), the config job (hubs' retained
configuration whose published version lags, every ``config_publish_interval_s``), the ingest workers, and
the HTTP server (web UI, FHIR API, ``/healthz``, ``/metrics``). ``stop`` undoes it in reverse order and
stops only what it started.

One path from ingest to the scorer, whatever the options: an ingest worker announces the patients with
new data by PostgreSQL NOTIFY from inside its batch's transaction, and the scorer LISTENs
(``gateway.workers``, ``gateway.alerts.scorer``). ``workers`` only says where ingest runs: N processes
(the default, one per core, as production runs it) or 0, a thread of this process. The demo
(``homewatch.demo.runner``) takes the same default as ``gateway serve``: what a newcomer watches is the
gateway as deployed, worker processes, supervisor, NOTIFY and all, at the cost of a few seconds more to
start. The demo hands in the PostgreSQL and broker it started itself (it enrols homes before the gateway
starts), ``demo`` for the synthetic-data banner, and its simulated ``clock``: the one its homes stamp
readings with. The scorer and the 30-day risk stamp scores and alerts with that clock, and the web UI
measures ages from it (``gateway.api.clock``), so mid-demo a reading taken minutes ago in simulated time
reads "minutes ago" and an alert is raised when its data arrived, not days later. ``gateway serve`` has
no clock option: the wall clock.

An external broker given by ``mqtt_url`` is probed once for the queue limits the gateway needs
(``gateway.broker_check``: one log line); a broker handed in as a ``BrokerEndpoint`` was configured by
whoever started it (``gateway.broker``) and is not. A broker that speaks MQTT 3.1.1 only (amqtt, or
``HOMEWATCH_MQTT_V5=false``) has no shared subscriptions: one worker takes everything, and a log line
says so. Left to others: ingest (``gateway.ingest``), scoring (``gateway.alerts``), the routes
(``gateway.api``), SQL (``gateway.store``).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import psycopg
import uvicorn
from psycopg_pool import ConnectionPool

from gateway.alerts.active_models import ActiveModels, register_shipped_default
from gateway.alerts.admission_risk import AdmissionRiskSchedule
from gateway.alerts.dispatcher import Dispatcher
from gateway.alerts.missing_job import MissingMeasurementJob
from gateway.alerts.scorer import Scorer
from gateway.api.app import create_app
from gateway.api.pool import open_pool
from gateway.broker import BrokerEndpoint, EmbeddedBroker
from gateway.broker_check import check_external_broker
from gateway.config_job import ConfigJob
from gateway.errors import GatewayError
from gateway.http_server import check_port_free, start_http, stop_http
from gateway.hub_config import config_publisher
from gateway.settings import GatewaySettings
from gateway.store.embedded import EmbeddedPostgres, create_database
from gateway.store.ingest_metrics import IngestTotals, ingest_totals
from gateway.store.migrate import migrate_database
from gateway.store.model_registry import RegistryError
from gateway.store.new_data import send_barrier
from gateway.workers import DEFAULT_WORKERS, START_TIMEOUT_S, IngestWorkers
from models.admission_risk import ModelError

__all__ = ["Gateway", "GatewayError", "GatewayOptions", "MqttTarget", "parse_mqtt_url", "serve"]

log = logging.getLogger(__name__)

# The database the gateway creates in an embedded PostgreSQL it starts itself.
EMBEDDED_DATABASE = "homewatch"
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


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    """Where the gateway finds its parts; what it is not given, it starts itself (embedded)."""

    database_url: str | None = None  # None: an embedded PostgreSQL in ``data_dir``/postgres
    mqtt_url: str | None = None  # an external broker, probed at start
    broker: BrokerEndpoint | None = None  # a broker already running (the demo's); not with mqtt_url
    workers: int | None = None  # ingest worker processes; 0: a thread of this process; None: one per core
    host: str = "127.0.0.1"
    port: int = 8000
    demo: bool = False  # the web UI says its data are SYNTHETIC (homewatch demo)
    # The gateway's "now" for scores, alerts and the web UI; None: the wall clock. The demo's simulated
    # clock (homewatch.demo.clock), which never runs ahead of the wall clock.
    clock: Callable[[], datetime] | None = None
    # The embedded PostgreSQL's folder is ``data_dir``/postgres, kept (`homewatch admin` uses the same one);
    # None: a temporary folder, deleted at stop. Last, so the fields before it keep their positions.
    data_dir: Path | None = None


class Gateway:
    """Everything the server runs. ``start``, then ``stop``: in reverse order, safe twice and after a
    failed start."""

    def __init__(self, options: GatewayOptions, settings: GatewaySettings | None = None) -> None:
        if options.mqtt_url is not None and options.broker is not None:
            raise GatewayError("give the gateway a broker URL or a running broker, not both")
        self.options = options
        self._base = settings or GatewaySettings()
        self.settings: GatewaySettings | None = None
        self._pg: EmbeddedPostgres | None = None
        self._broker: EmbeddedBroker | None = None
        self.pool: ConnectionPool[Any] | None = None
        self.scorer: Scorer | None = None
        self.admission_risk: AdmissionRiskSchedule | None = None
        self.dispatcher: Dispatcher | None = None
        self.missing: MissingMeasurementJob | None = None
        self.config_job: ConfigJob | None = None
        self.workers: IngestWorkers | None = None
        self._counted_at_start = IngestTotals()
        self._http: tuple[uvicorn.Server, threading.Thread] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.options.host}:{self.options.port}"

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        opts = self.options
        target = parse_mqtt_url(opts.mqtt_url) if opts.mqtt_url is not None else None
        check_port_free(opts.host, opts.port)
        database_url = self._database()
        update: dict[str, Any] = {
            "database_url": database_url,
            "http_host": opts.host,
            "http_port": opts.port,
        }
        endpoint = opts.broker
        if target is not None:
            check_broker(target.host, target.port)
            update.update(
                mqtt_host=target.host,
                mqtt_port=target.port,
                mqtt_tls=target.tls,
                mqtt_username=target.username or self._base.mqtt_username,
                mqtt_password=target.password or self._base.mqtt_password,
            )
        else:
            if endpoint is None:
                self._broker = EmbeddedBroker()
                endpoint = self._broker.start()
                log.info("embedded %s broker on %s", endpoint.kind, endpoint.url)
            update.update(mqtt_host=endpoint.host, mqtt_port=endpoint.port, mqtt_v5=endpoint.mqtt5)
        settings = self.settings = self._base.model_copy(update=update)
        if target is not None:
            # One log line on whether the broker keeps a backlog for the gateway (a few seconds at most;
            # never fails start-up). An embedded broker is configured on purpose (gateway.broker).
            check_external_broker(settings)
        count = DEFAULT_WORKERS if opts.workers is None else opts.workers
        if not settings.mqtt_v5 and count > 1:
            log.warning(
                "the broker speaks MQTT 3.1.1 only (no shared subscriptions): running 1 ingest worker, "
                "not %d",
                count,
            )
            count = 1
        self.pool = open_pool(database_url)
        self.scorer = Scorer(database_url, clock=opts.clock)
        self.scorer.start()
        self.scorer.listen(settings.scorer_channel)
        if not self.scorer.wait_listening(timeout):
            raise GatewayError("the scorer could not listen for new data on the database in time")
        # Alerts reach people outside the page: the outbox's deliveries, escalations, ended snoozes.
        self.dispatcher = Dispatcher(database_url, settings, clock=opts.clock)
        self.dispatcher.start()
        self.admission_risk = _admission_risk_schedule(database_url, settings, opts.clock)
        # Missing measurements ('missing' alerts) on the same clock as the scores.
        self.missing = MissingMeasurementJob(
            database_url,
            timedelta(minutes=settings.missing_check_minutes),
            clock=opts.clock,
            zone=ZoneInfo(settings.time_zone),  # a plan's times of day, for a hub that names no zone
        )
        self.missing.start()
        # Hubs' retained configuration that an administrator changed while the broker was away.
        self.config_job = ConfigJob(
            database_url, config_publisher(settings), settings.config_publish_interval_s
        )
        self.config_job.start()
        self.workers = IngestWorkers(settings, endpoint, count, logging.getLogger().getEffectiveLevel())
        self._counted_at_start = self._ingest_totals()
        self.workers.start(timeout)
        app = create_app(settings, self.pool, demo=opts.demo)
        if opts.clock is not None:
            app.state.clock = opts.clock  # read by gateway.api.clock.ui_now
        if self.admission_risk is not None:
            app.state.rescore = self.admission_risk.wake  # a model activated: rank by it (model_pages)
        self._http = start_http(app, opts.host, opts.port, timeout)
        log.info(
            "gateway serving %s with %s (%s)",
            self.url,
            "ingest in a thread" if count == 0 else f"{count} ingest worker(s)",
            "shared subscription" if settings.mqtt_v5 else "MQTT 3.1.1",
        )

    def _database(self) -> str:
        """The database URL, starting an embedded PostgreSQL when none was given; migrated."""
        database_url = self.options.database_url
        if database_url is None:
            data_dir = self.options.data_dir
            self._pg = EmbeddedPostgres(None if data_dir is None else data_dir / "postgres")
            database_url = create_database(self._pg.start(), EMBEDDED_DATABASE)
            log.info("embedded PostgreSQL: %s", database_url)
        applied = migrate_database(database_url)
        if applied:
            log.info("applied migrations %s", applied)
        return database_url

    def stop(self) -> None:
        if self._http is not None:
            stop_http(*self._http)
            self._http = None
        if self.workers is not None:
            self.workers.stop()
            self.workers = None
        if self.config_job is not None:
            self.config_job.stop()
            self.config_job = None
        if self.missing is not None:
            self.missing.stop()
            self.missing = None
        if self.admission_risk is not None:
            self.admission_risk.stop()
            self.admission_risk = None
        if self.dispatcher is not None:
            self.dispatcher.stop()
            self.dispatcher = None
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

    # -- what a caller that waits on the gateway asks (the demo, tests) -------------------------------

    def ingest_counts(self) -> IngestTotals:
        """What this gateway's ingest workers committed since it started, and the messages they hold
        now (as of their last heartbeat, every 2 s): read from their rows, wherever the workers run.
        All zero before the gateway started and after it stopped."""
        if self.pool is None or self.workers is None:
            return IngestTotals()
        return self._ingest_totals().since(self._counted_at_start)

    def wait_scored(self, timeout: float) -> bool:
        """True once the scorer has heard of every batch committed before this call and scored it; False
        after ``timeout``. A barrier goes through the scorer's channel behind those batches'
        announcements (``gateway.store.new_data.send_barrier``); once the scorer has read it, it is asked
        whether it is idle."""
        if self.scorer is None or self.settings is None:
            return False
        deadline = time.monotonic() + timeout
        barrier = send_barrier(self.settings.database_url, self.settings.scorer_channel)
        if barrier is None or not self.scorer.wait_heard(barrier, timeout):
            return False
        return self.scorer.wait_idle(max(0.0, deadline - time.monotonic()))

    def wait_delivered(self, timeout: float) -> bool:
        """True once the alert dispatcher has sent (or put off to a retry) every delivery due now;
        False after ``timeout`` or when it is not running (``Dispatcher.wait_delivered``)."""
        return self.dispatcher is not None and self.dispatcher.wait_delivered(timeout)

    def score_admission_risk_now(self, timeout: float) -> bool:
        """Score everyone's 30-day admission risk now and wait for it (``AdmissionRiskSchedule.run_now``);
        False when the schedule is off (no model), the run failed or took longer than ``timeout``."""
        return self.admission_risk is not None and self.admission_risk.run_now(timeout)

    def _ingest_totals(self) -> IngestTotals:
        if self.pool is None or self.workers is None:
            return IngestTotals()
        with self.pool.connection() as conn:
            return ingest_totals(conn, self.workers.client_ids)


def _admission_risk_schedule(
    database_url: str, settings: GatewaySettings, clock: Callable[[], datetime] | None = None
) -> AdmissionRiskSchedule | None:
    """The scheduled 30-day risk, each municipality with its active model version (the registry's), once
    the shipped default is registered; None (logged) when the default cannot be read or registered (a
    retrained model file under a version already registered with other bytes)."""
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            default = register_shipped_default(conn)
    except (ModelError, RegistryError) as exc:
        log.warning("30-day admission risk off: %s", exc)
        return None
    log.info("30-day admission risk: the shipped default is model %s", default.version)
    schedule = AdmissionRiskSchedule(
        database_url, ActiveModels(), timedelta(hours=settings.risk_interval_hours), clock=clock
    )
    schedule.start()
    return schedule


def serve(options: GatewayOptions, settings: GatewaySettings | None = None) -> None:
    """Run the gateway until SIGTERM or SIGINT; everything started is stopped, also after an error."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    gateway = Gateway(options, settings)
    try:
        gateway.start()
        while not stop.wait(0.5):
            pass
        log.info("stopping the gateway")
    finally:
        gateway.stop()
        for sig, handler in previous.items():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(sig, handler)
    log.info("gateway stopped cleanly")
