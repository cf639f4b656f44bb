"""``homewatch admin plan set | show``: a patient's measurement plan from the command line.

The same change as the nurse's plan form (``gateway.api.plan_pages``), through the same service
(``gateway.administration.plans.set_plan``): checked by the contract's rule, stored as the plan in force
(the older ones kept), audited under ``--by``, and sent to the patient's hubs in their retained config
(the gateway's config job sends it later when the broker is away). ``set`` takes the plan in its JSON
form (``fhir_contract.plan``: a list of ``{"measurement", "times", "days", "grace_minutes"}``) from a
file or ``-`` for stdin, or one measurement from options (``--measurement blood-pressure --at 08:00
--at 20:00 --grace 120``); ``set --clear`` removes the plan. ``show`` prints the plan in force (``--json``:
its JSON form, ready for ``set``). Whoever runs this runs the server: any municipality, unless
``--municipality`` narrows it. Bad input is one line on stderr and exit code 2, and nothing changes.
``app`` is mounted by ``homewatch.admin_cli``.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from homewatch.cli_common import By, DatabaseUrl, acting, admin_database, gateway_settings
from homewatch.cli_common import fail as _fail

if TYPE_CHECKING:
    from fhir_contract.plan import PlanItem

app = typer.Typer(help="Measurement plans: what a patient measures, and when.", no_args_is_help=True)

PatientOption = Annotated[str, typer.Option("--patient", help="The patient's id.")]
MunicipalityOption = Annotated[
    str | None, typer.Option("--municipality", help="Act only in this municipality (its id, e.g. 0101).")
]


def _items(
    file: Path | None,
    measurement: str | None,
    at: list[str] | None,
    days: list[int] | None,
    grace: int,
    clear: bool,
) -> tuple[PlanItem, ...]:
    """The plan the options give, checked by the contract (``AdministrationError`` otherwise)."""
    from gateway.administration.plans import plan_from_json

    given = [file is not None, measurement is not None, clear]
    if sum(given) != 1:
        raise _fail("give one of --file, --measurement (with --at) or --clear")
    if clear:
        return ()
    if file is not None:
        try:
            text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
            data: Any = json.loads(text)
        except OSError as exc:
            raise _fail(f"{file}: {exc.strerror or exc}") from exc
        except json.JSONDecodeError as exc:
            raise _fail(f"{file}: not JSON ({exc})") from exc
        return plan_from_json(data)
    item: dict[str, Any] = {"measurement": measurement, "times": at or [], "grace_minutes": grace}
    if days:
        item["days"] = days
    return plan_from_json([item])


@app.command("set")
def plan_set(
    patient: PatientOption,
    file: Annotated[
        Path | None, typer.Option("--file", help="The plan's JSON form (fhir_contract.plan), or - for stdin.")
    ] = None,
    measurement: Annotated[
        str | None, typer.Option(help="One measurement: blood-pressure, spo2, weight, temperature, glucose.")
    ] = None,
    at: Annotated[
        list[str] | None, typer.Option("--at", help="A time of day, HH:MM (repeat for more).")
    ] = None,
    day: Annotated[
        list[int] | None,
        typer.Option("--day", help="An ISO weekday, 1 = Monday (repeat; default every day)."),
    ] = None,
    grace: Annotated[int, typer.Option(help="Minutes after the due time a reading still counts.")] = 120,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the plan: no reminders, no plan.")] = False,
    municipality: MunicipalityOption = None,
    database_url: DatabaseUrl = None,
    by: By = None,
) -> None:
    """Set (or with --clear remove) a patient's measurement plan and send it to their hubs."""
    from gateway.administration.errors import AdministrationError
    from gateway.administration.plans import set_plan
    from gateway.hub_config import config_publisher

    settings = gateway_settings()
    try:
        items = _items(file, measurement, at, day, grace, clear)
        with admin_database(database_url, settings) as conn:
            change = set_plan(
                conn,
                patient,
                items,
                by=acting(by),
                at=datetime.now(UTC),
                publisher=config_publisher(settings),
                within=municipality,
            )
    except AdministrationError as exc:
        raise _fail(str(exc)) from exc
    if not change.changed:
        typer.echo(f"patient {patient}: the plan is in force already: nothing changed")
        return
    what = "plan removed" if not items else f"plan set ({len(items)} measurement(s))"
    sent = "sent to" if change.published else "to be sent by the gateway to"
    hubs = ", ".join(change.hubs) or "no hub in service"
    typer.echo(f"patient {patient}: {what}; {sent}: {hubs}")


@app.command("show")
def plan_show(
    patient: PatientOption,
    as_json: Annotated[
        bool, typer.Option("--json", help="The plan's JSON form, ready for set --file.")
    ] = False,
    municipality: MunicipalityOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Show a patient's measurement plan in force."""
    from fhir_contract.plan import plan_json
    from gateway.store import plans
    from gateway.store.administration import patient_record

    with admin_database(database_url, gateway_settings()) as conn:
        record = patient_record(conn, patient)
        if record is None or (municipality is not None and record.municipality_id != municipality):
            raise _fail(f"there is no patient {patient}")
        stored = plans.current_plan(conn, record.municipality_id, patient)
    items = stored.items if stored is not None else ()
    if as_json:
        typer.echo(json.dumps(plan_json(items), indent=2))
        return
    if stored is None or not items:
        typer.echo(f"patient {patient}: no measurement plan")
        return
    typer.echo(f"patient {patient}: plan set by {stored.set_by} at {stored.set_at:%Y-%m-%d %H:%M %Z}")
    for item in plan_json(items):
        days = item.get("days")
        on = "every day" if not days or len(days) == 7 else "days " + ",".join(str(d) for d in days)
        typer.echo(
            f"  {item['measurement']}: {', '.join(item['times'])}, {on}, grace {item['grace_minutes']} min"
        )
