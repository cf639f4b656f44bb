"""``homewatch admin``: a municipality's administrator enrols and runs homes without SQL.

Municipalities, care teams, users (by invitation), patients, hubs (identity, broker account and the
folder a hub is configured from), device assignments (published to the hub in its retained config),
revocation, and the fleet table. Each command is a thin shell over the one service layer the
administrators' pages use too (``gateway.administration``); docs/municipality.md walks through them.

Every command takes ``--database-url`` (or ``HOMEWATCH_DATABASE_URL``); without it, the embedded
PostgreSQL in ``HOMEWATCH_DATA_DIR``/postgres (``~/.local/share/homewatch/postgres``), started when not
running (``homewatch gateway serve --data-dir`` serves the same one), its database created and migrated.
Who acts is ``--by`` (default: the operating-system user), recorded in the audit log. Bad input, a
refused change and an unreachable database are one line on stderr and exit code 2; adding again updates,
assigning the same device again changes nothing and says so, revoking again is safe.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from homewatch import broker_cli, plan_cli, quarantine_cli
from homewatch.cli_common import By, DatabaseUrl
from homewatch.cli_common import acting as _by
from homewatch.cli_common import admin_database as _database
from homewatch.cli_common import fail as _fail
from homewatch.cli_common import gateway_settings as _settings

if TYPE_CHECKING:
    from gateway.fleet import FleetHub

app = typer.Typer(
    help="A municipality's homes: municipalities, users, patients, hubs, devices and the fleet"
    " (docs/municipality.md).",
    no_args_is_help=True,
)
municipality_app = typer.Typer(help="Municipalities: one database serves many.", no_args_is_help=True)
team_app = typer.Typer(help="Care teams: the nurses of a team see the team's patients.", no_args_is_help=True)
user_app = typer.Typer(help="Nurses, GPs and administrators, by invitation.", no_args_is_help=True)
patient_app = typer.Typer(help="Patients monitored at home.", no_args_is_help=True)
hub_app = typer.Typer(
    help="Hubs: enrol one (its folder and broker account), revoke one.", no_args_is_help=True
)
device_app = typer.Typer(help="A patient's devices on their hub.", no_args_is_help=True)
app.add_typer(municipality_app, name="municipality")
app.add_typer(team_app, name="team")
app.add_typer(user_app, name="user")
app.add_typer(patient_app, name="patient")
app.add_typer(hub_app, name="hub")
app.add_typer(device_app, name="device")
app.add_typer(broker_cli.app, name="broker")
app.add_typer(quarantine_cli.app, name="quarantine")
app.add_typer(plan_cli.app, name="plan")

Municipality = Annotated[str, typer.Option(help="The municipality's code, e.g. 0101.")]


# --- municipalities, teams, users, patients -----------------------------------------------------------


@municipality_app.command("add")
def municipality_add(
    code: Annotated[str, typer.Option(help="The municipality's four-digit code, e.g. 0101.")],
    name: Annotated[str, typer.Option(help="Its name, e.g. København.")],
    database_url: DatabaseUrl = None,
    by: By = None,
) -> None:
    """Add a municipality (its default care team, id = its code, comes with it), or rename it."""
    from gateway.administration.homes import add_municipality

    settings = _settings()
    with _database(database_url, settings) as conn:
        outcome = add_municipality(conn, code, name, by=_by(by))
    typer.echo(f"municipality {code} ({name}): {outcome}")


@team_app.command("add")
def team_add(
    municipality: Municipality,
    team_id: Annotated[str, typer.Option("--id", help="The team's id (unique across municipalities).")],
    name: Annotated[str, typer.Option(help="The team's name, as nurses know it.")],
    database_url: DatabaseUrl = None,
    by: By = None,
) -> None:
    """Add a care team to a municipality, or rename it."""
    from gateway.administration.homes import add_care_team

    settings = _settings()
    with _database(database_url, settings) as conn:
        outcome = add_care_team(conn, municipality, team_id, name, by=_by(by))
    typer.echo(f"care team {team_id} ({name}) of municipality {municipality}: {outcome}")


@user_app.command("add")
def user_add(
    municipality: Municipality,
    role: Annotated[str, typer.Option(help="nurse, gp or admin (the municipality's administrator).")],
    email: Annotated[str, typer.Option(help="Where the invitation and the alerts reach the person.")],
    username: Annotated[
        str | None, typer.Option(help="The login name.", show_default="the e-mail address, lower-case")
    ] = None,
    team: Annotated[
        list[str] | None,
        typer.Option(
            help="A care team of the nurse (repeat it).", show_default="the municipality's default team"
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    by: By = None,
) -> None:
    """Invite a person: prints the link with which she sets her password once (pass it on to her)."""
    from gateway.administration.users import invite_user

    settings = _settings()
    with _database(database_url, settings) as conn:
        invitation = invite_user(
            conn, settings, municipality, role, email, username=username, teams=tuple(team or ()), by=_by(by)
        )
    typer.echo(f"invited {invitation.username} ({role}) of municipality {municipality}")
    typer.echo(f"link (valid until {invitation.expires_at:%Y-%m-%d %H:%M %Z}, shown once): {invitation.url}")


@patient_app.command("add")
def patient_add(
    municipality: Municipality,
    patient_id: Annotated[str, typer.Option("--id", help="The patient's id (a FHIR id, e.g. p-0412).")],
    name: Annotated[str, typer.Option(help="The patient's name, as the nurses know them.")],
    care_team: Annotated[
        str | None,
        typer.Option(help="The care team whose nurses see the patient.", show_default="the default team"),
    ] = None,
    phone: Annotated[str | None, typer.Option(help="The number a nurse calls.")] = None,
    condition: Annotated[
        list[str] | None,
        typer.Option(help="hf (heart failure), copd, diabetes or frailty (repeat it)."),
    ] = None,
    birth_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD.")] = None,
    database_url: DatabaseUrl = None,
    by: By = None,
) -> None:
    """Enrol a patient, or update what was enrolled (adding them again replaces it)."""
    from gateway.administration.homes import add_patient

    try:
        born = None if birth_date is None else date.fromisoformat(birth_date)
    except ValueError:
        raise _fail(f"--birth-date {birth_date!r} is not a date (YYYY-MM-DD)") from None
    settings = _settings()
    with _database(database_url, settings) as conn:
        outcome = add_patient(
            conn,
            municipality,
            patient_id,
            name=name,
            care_team=care_team,
            phone=phone,
            conditions=tuple(condition or ()),
            birth_date=born,
            by=_by(by),
        )
    typer.echo(f"patient {patient_id} of municipality {municipality}: {outcome}")


# --- hubs and devices ----------------------------------------------------------------------------------


@hub_app.command("enroll")
def hub_enroll(
    municipality: Municipality,
    hub: Annotated[str, typer.Option(help="The hub's id (a FHIR id, e.g. hub-0412).")],
    patient: Annotated[str, typer.Option(help="The patient in whose home it stands.")],
    out: Annotated[Path, typer.Option(help="The folder to write hub.toml, mqtt-password and ca.crt into.")],
    outbox_path: Annotated[
        str | None,
        typer.Option(
            help="Where the hub keeps its outbox (relative: to the folder).",
            show_default="/var/lib/homewatch/outbox.sqlite3",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    by: By = None,
) -> None:
    """Enrol a patient's hub, or give it new credentials (the old password stops working), and write the
    folder `homewatch edge run --config OUT/hub.toml` runs it from."""
    from gateway.administration.homes import enroll_hub, write_kit
    from gateway.administration.kit import DEFAULT_OUTBOX_PATH
    from gateway.broker_accounts import broker_accounts

    settings = _settings()
    accounts = broker_accounts(settings)
    with _database(database_url, settings) as conn:
        kit = enroll_hub(
            conn,
            settings,
            municipality,
            hub,
            patient,
            by=_by(by),
            accounts=accounts,
            outbox_path=outbox_path or DEFAULT_OUTBOX_PATH,
        )
        written = write_kit(kit, out)
    typer.echo(
        f"{'enrolled' if kit.new else 'new credentials for'} hub {hub} of patient {patient}"
        f" (municipality {municipality}); wrote {', '.join(str(p) for p in written)}"
    )
    if kit.password is None:
        typer.echo(
            "the broker keeps no accounts (HOMEWATCH_BROKER_ADMIN_USERNAME is not set): the hub connects"
            " without a password"
        )
    if kit.pin is not None:
        typer.echo(
            f"the household's PIN for the patient view (http://<hub>:8080/): {kit.pin}"
            " (also in patient-view-pin; give it to the household, enrolling again makes a new one)"
        )
    typer.echo(f"start it with: homewatch edge run --config {out / 'hub.toml'}")


@hub_app.command("revoke")
def hub_revoke(
    hub: Annotated[str, typer.Option(help="The hub's id.")],
    database_url: DatabaseUrl = None,
    by: By = None,
) -> None:
    """Take a hub out of service at once: the gateway refuses it, the broker deletes its account (which
    disconnects it) and its retained config. Safe to run again; its id is never used again."""
    from gateway.administration.homes import revoke_hub
    from gateway.broker_accounts import broker_accounts
    from gateway.hub_config import config_publisher

    settings = _settings()
    with _database(database_url, settings) as conn:
        done = revoke_hub(
            conn,
            settings,
            hub,
            by=_by(by),
            accounts=broker_accounts(settings),
            publisher=config_publisher(settings),
        )
    when = f"{done.revoked_at:%Y-%m-%d %H:%M %Z}"
    typer.echo(
        f"hub {hub} {'was revoked already' if done.already else 'revoked'} ({when}): the gateway refuses it"
    )
    if done.account_removed is None:
        typer.echo("the broker keeps no accounts (HOMEWATCH_BROKER_ADMIN_USERNAME is not set)")
    else:
        typer.echo(f"broker account {'deleted' if done.account_removed else 'was gone already'}")


@hub_app.command("configure")
def hub_configure(
    hub: Annotated[str, typer.Option(help="The hub's id.")],
    status_interval: Annotated[
        float | None,
        typer.Option(
            help="Seconds between the hub's status messages (10 to 3600; docs/scaling.md).", show_default="60"
        ),
    ] = None,
    timezone: Annotated[
        str | None, typer.Option(help="The home's time zone.", show_default="Europe/Copenhagen")
    ] = None,
    bundle_size: Annotated[
        int | None, typer.Option(help="Readings per Bundle at most.", show_default="50")
    ] = None,
    max_connections: Annotated[
        int | None, typer.Option(help="Devices the hub keeps connected at once.", show_default="7")
    ] = None,
    reset: Annotated[
        list[str] | None,
        typer.Option(help="Give a setting back to the hub's own file (repeat it): status_interval_s, ..."),
    ] = None,
    database_url: DatabaseUrl = None,
    by: By = None,
) -> None:
    """Set a hub's settings; the hub gets them in its retained config and applies them without a restart."""
    from gateway.administration.homes import HubSettings, configure_hub
    from gateway.hub_config import config_publisher

    wanted = HubSettings(status_interval, timezone, bundle_size, max_connections, tuple(reset or ()))
    settings = _settings()
    with _database(database_url, settings) as conn:
        now, changed = configure_hub(
            conn, settings, hub, wanted, by=_by(by), publisher=config_publisher(settings)
        )
    shown = ", ".join(f"{k}={v}" for k, v in sorted(now.items())) or "the hub's own file"
    typer.echo(f"hub {hub}: {'settings changed' if changed else 'nothing changed'} ({shown})")


@hub_app.command("add-resident")
def hub_add_resident(
    hub: Annotated[str, typer.Option(help="The hub's id.")],
    patient: Annotated[str, typer.Option(help="The patient who lives with the hub too.")],
    database_url: DatabaseUrl = None,
    by: By = None,
) -> None:
    """A second patient of the home lives with the hub: it measures them too (their own devices, or a
    slot on a shared one: device assign --user-index)."""
    from gateway.administration.household import add_resident
    from gateway.hub_config import config_publisher

    settings = _settings()
    with _database(database_url, settings) as conn:
        done = add_resident(conn, hub, patient, by=_by(by), publisher=config_publisher(settings))
    if not done.changed:
        typer.echo(f"patient {patient} lives with hub {hub} already: nothing changed")
        return
    typer.echo(f"patient {patient} lives with hub {hub}")
    typer.echo(_published(hub, done.published))


@hub_app.command("remove-resident")
def hub_remove_resident(
    hub: Annotated[str, typer.Option(help="The hub's id.")],
    patient: Annotated[str, typer.Option(help="The patient who no longer lives with the hub.")],
    database_url: DatabaseUrl = None,
    by: By = None,
) -> None:
    """A resident moved out: their slots on shared devices go, the gateway refuses their readings from the
    hub. Remove their own devices first."""
    from gateway.administration.household import remove_resident
    from gateway.hub_config import config_publisher

    settings = _settings()
    with _database(database_url, settings) as conn:
        done = remove_resident(conn, hub, patient, by=_by(by), publisher=config_publisher(settings))
    if not done.changed:
        typer.echo(f"patient {patient} does not live with hub {hub}: nothing changed")
        return
    typer.echo(f"patient {patient} no longer lives with hub {hub}")
    typer.echo(_published(hub, done.published))


_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_interval(text: str) -> timedelta:
    """``24h``, ``30m``, ``2d``, ``1h30m``, ``90s`` as a duration (exit 2 on anything else)."""
    found = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or found is None:
        raise _fail(f"--expected-every {text!r} is not a duration like 24h, 30m, 2d or 1h30m")
    days, hours, minutes, seconds = (int(part or 0) for part in found.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


@device_app.command("assign")
def device_assign(
    hub: Annotated[str, typer.Option(help="The hub the device is read by.")],
    patient: Annotated[str, typer.Option(help="The hub's patient (a check: the device is theirs).")],
    kind: Annotated[
        str,
        typer.Option(
            help="blood-pressure, pulse-oximeter, scale, thermometer, heart-rate-monitor,"
            " continuous-oximeter, body-composition-scale, glucose-meter or cgm."
        ),
    ],
    address: Annotated[str, typer.Option(help="The device's Bluetooth address, AA:BB:CC:DD:EE:FF.")],
    device_id: Annotated[
        str | None,
        typer.Option(
            "--id", help="The device's id.", show_default="the hub's device at ADDRESS, else dev-<address>"
        ),
    ] = None,
    expected_every: Annotated[
        str | None,
        typer.Option(
            help="How long it may go without a reading before the fleet calls it silent (36h, 8d, 1h30m).",
            show_default="36h for a daily device, 3h for a continuous one",
        ),
    ] = None,
    user_index: Annotated[
        int | None,
        typer.Option(
            help="A device the residents share (a cuff or a scale with users): the User Index (1-254) set"
            " on it for PATIENT. Run once per resident.",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    by: By = None,
) -> None:
    """Assign a device to a patient's hub; the hub learns of it from its retained config, no restart."""
    from gateway.administration.homes import assign_device_outcome
    from gateway.administration.household import share_device
    from gateway.hub_config import config_publisher

    interval = None if expected_every is None else parse_interval(expected_every)
    settings = _settings()
    if user_index is not None:
        with _database(database_url, settings) as conn:
            found, slot = share_device(
                conn,
                settings,
                hub,
                patient,
                kind,
                address,
                user_index,
                by=_by(by),
                device_id=device_id,
                publisher=config_publisher(settings),
            )
        if not slot.changed:
            typer.echo(f"user {user_index} of device {found} is patient {patient}'s already: nothing changed")
            return
        typer.echo(f"device {found} on hub {hub}: user {user_index} is patient {patient}")
        typer.echo(_published(hub, slot.published))
        return
    with _database(database_url, settings) as conn:
        done = assign_device_outcome(
            conn,
            settings,
            hub,
            patient,
            kind,
            address,
            by=_by(by),
            device_id=device_id,
            expected_interval=interval,
            publisher=config_publisher(settings),
        )
    if done.outcome == "unchanged":
        typer.echo(f"device {done.device_id} is assigned to hub {hub} already: nothing changed")
        return
    typer.echo(f"device {done.device_id} assigned to hub {hub} of patient {patient} ({done.outcome})")
    typer.echo(_published(hub, done.published))


def _published(hub: str, published: bool) -> str:
    if published:
        return f"hub {hub}'s config published: the hub applies it without a restart"
    return (
        f"hub {hub}'s config not published now (broker away): the gateway publishes it when the broker"
        " is back"
    )


@device_app.command("remove")
def device_remove(
    device: Annotated[str, typer.Option(help="The device's id.")],
    database_url: DatabaseUrl = None,
    by: By = None,
) -> None:
    """Take a device off its hub: the gateway refuses its readings and the hub stops reading it."""
    from gateway.administration.homes import remove_device
    from gateway.hub_config import config_publisher

    settings = _settings()
    with _database(database_url, settings) as conn:
        removed = remove_device(conn, settings, device, by=_by(by), publisher=config_publisher(settings))
    typer.echo(f"device {device} {'removed' if removed else 'was removed already: nothing changed'}")


@device_app.command("remove-user")
def device_remove_user(
    device: Annotated[str, typer.Option(help="The shared device's id.")],
    patient: Annotated[str, typer.Option(help="The resident whose User Index is freed.")],
    database_url: DatabaseUrl = None,
    by: By = None,
) -> None:
    """Free a resident's User Index on a shared device: its readings with that index wait on the hub."""
    from gateway.administration.household import unassign_user
    from gateway.hub_config import config_publisher

    settings = _settings()
    with _database(database_url, settings) as conn:
        done = unassign_user(conn, device, patient, by=_by(by), publisher=config_publisher(settings))
    if not done.changed:
        typer.echo(f"patient {patient} has no user index on device {device}: nothing changed")
        return
    typer.echo(f"patient {patient}'s user index on device {device} removed")


# --- the fleet -----------------------------------------------------------------------------------------


@app.command("hubs")
def hubs(
    municipality: Annotated[
        str | None, typer.Option(help="Only this municipality's hubs.", show_default="every municipality")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """The fleet: each hub online or not, its last contact, queue, config and devices; flags first."""
    from gateway.fleet import fleet_json
    from gateway.store.fleet import fleet_report

    settings = _settings()
    with _database(database_url, settings) as conn:
        report = fleet_report(conn, municipality, datetime.now(UTC))
    if as_json:
        typer.echo(json.dumps(fleet_json(report), indent=2, default=str))
        return
    _fleet_table(report)


_FLEET_COLUMNS = (
    "municipality",
    "hub",
    "patient",
    "state",
    "last contact",
    "agent",
    "outbox",
    "unconfirmed",
    "evicted",
    "config",
    "devices",
    "flags",
)


def _fleet_table(report: Sequence[FleetHub]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(report)} hubs")
    for column in _FLEET_COLUMNS:
        table.add_column(column)
    for hub in report:
        state = "revoked" if hub.revoked else "online" if hub.online else "offline"
        silent = sum(1 for d in hub.devices if d.silent)
        devices = f"{len(hub.devices)}" + (f" ({silent} silent)" if silent else "")
        table.add_row(
            hub.municipality_id,
            hub.hub_id,
            hub.patient_id,
            state,
            "never" if hub.last_contact is None else f"{hub.last_contact:%Y-%m-%d %H:%M}",
            hub.agent_version or "",
            "" if hub.outbox_depth is None else str(hub.outbox_depth),
            "" if hub.awaiting_receipt is None else str(hub.awaiting_receipt),
            str(hub.evicted),
            f"{hub.config_applied if hub.config_applied is not None else '-'}/{hub.config_version}",
            devices,
            ", ".join(hub.flags),
        )
    Console(width=200).print(table)
