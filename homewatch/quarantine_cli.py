"""``homewatch admin quarantine list | reprocess``: the quarantine from the command line.

The same review as the administrator's page (``gateway.api.quarantine_pages``): ``list`` shows the rows
ingest refused, newest first, with their reason code, hub and municipality (``--json`` for scripts);
``reprocess`` runs one row (``ID``), or every open row of a reason and hub (``--reason unassigned-device
--hub H``, after assigning the device), through the live ingest's rules with the enrolment as it is now
(``gateway.ingest.reprocess``), and says what became of each. Whoever runs this runs the server: rows of
every municipality (``--municipality`` narrows it), and of none. The change is audited under ``--by``
(the operating-system user by default). Without ``--database-url`` the commands use the embedded
PostgreSQL, as every ``homewatch admin`` command does (``homewatch.cli_common.admin_database``).

``reprocess`` reads the gateway's settings from the environment as ``gateway serve`` does (the payload
limit, and the scorer's channel, so a running gateway's scorer scores what is stored). Bad input is one
line on stderr and exit code 2 (``homewatch.cli_common.fail``). ``app`` is mounted by ``homewatch.admin_cli``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from homewatch.cli_common import By, DatabaseUrl, acting, admin_database, gateway_settings
from homewatch.cli_common import fail as _fail

if TYPE_CHECKING:
    import psycopg

    from gateway.store.quarantine import QuarantineRow

app = typer.Typer(
    help="The quarantine: what ingest refused, and re-processing it after an enrolment fix.",
    no_args_is_help=True,
)

MunicipalityOption = Annotated[
    str | None, typer.Option("--municipality", help="Only this municipality's rows (its id, e.g. 0101).")
]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Only rows of this reason code, e.g. unassigned-device.")
]
HubOption = Annotated[str | None, typer.Option("--hub", help="Only rows of this hub.")]


@dataclass(frozen=True, slots=True)
class CliActor:
    """Who acts, for the audit log (``gateway.store.audit.Actor``)."""

    username: str
    municipality_id: str | None = None
    role: str | None = None


def _actor(conn: psycopg.Connection[Any], by: str | None, municipality: str | None) -> CliActor:
    """``--by`` as the users table knows them (their municipality and role); else an operating-system
    account with no role, acting for ``--municipality`` (as ``homewatch.admin_cli`` records it)."""
    from gateway.store.users import user_by_name

    name = by.strip() if by and by.strip() else acting(None)
    user = user_by_name(conn, name)
    if user is None:
        return CliActor(name, municipality, None)
    return CliActor(user.username, user.municipality_id, user.role)


@contextmanager
def _database(database_url: str | None) -> Iterator[psycopg.Connection[Any]]:
    """The admin commands' connection: ``--database-url``, else the embedded PostgreSQL (started and
    migrated when needed); an unreachable database is one line and exit code 2."""
    with admin_database(database_url, gateway_settings()) as conn:
        yield conn


def _checked(reason: str | None, hub: str | None, municipality: str | None) -> None:
    from fhir_contract.limits import is_fhir_id

    if reason is not None and not reason.replace("-", "").isalnum():
        raise _fail(f"--reason {reason!r} is not a reason code (like unassigned-device)")
    for option, value in (("--hub", hub), ("--municipality", municipality)):
        if value is not None and not is_fhir_id(value):
            raise _fail(f"{option} {value!r} is not an id (letters, digits, '-' and '.', at most 64)")


def _row(row: QuarantineRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "received": row.received_at.isoformat(timespec="seconds"),
        "code": row.code,
        "municipality": row.municipality_id,
        "municipality_known": row.municipality_known,
        "hub": row.hub_id,
        "hub_state": row.hub_state,
        "reason": row.reason,
        "resolution": row.resolution,
        "resolved_by": row.resolved_by,
        "resolved": row.resolved_at.isoformat(timespec="seconds") if row.resolved_at else None,
        "note": row.resolution_note,
        "reprocessed_from": row.reprocessed_from,
    }


@app.command("list")
def quarantine_list(
    database_url: DatabaseUrl,
    municipality: MunicipalityOption = None,
    reason: ReasonOption = None,
    hub: HubOption = None,
    state: Annotated[str, typer.Option(help="open, resolved or all.")] = "open",
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many rows.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list instead of a table.")] = False,
) -> None:
    """List quarantined rows, newest first (the open ones unless --state says otherwise)."""
    from rich.console import Console
    from rich.table import Table

    from gateway.store import quarantine as q

    _checked(reason, hub, municipality)
    if state not in q.STATES:
        raise _fail(f"--state must be one of {', '.join(q.STATES)}, not {state!r}")
    scope = q.Scope.everything() if municipality is None else q.Scope(municipality)
    with _database(database_url) as conn:
        found = q.quarantine_page(conn, scope, q.QuarantineFilter(reason, hub, state=state), size=limit)
    rows = [_row(row) for row in found.rows]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table("id", "received", "code", "municipality", "hub", "state", "reason")
    for row in rows:
        hub_text = f"{row['hub']} ({row['hub_state']})" if row["hub"] else "-"
        table.add_row(
            str(row["id"]),
            row["received"],
            row["code"],
            row["municipality"] or "-",
            hub_text,
            row["resolution"] or "open",
            row["reason"][:120],
        )
    Console().print(table)
    if found.older_than is not None:
        typer.echo(f"(more rows: raise --limit above {limit})")


@app.command("reprocess")
def quarantine_reprocess(
    database_url: DatabaseUrl,
    row_id: Annotated[int | None, typer.Argument(metavar="[ID]", help="The row to re-process.")] = None,
    reason: ReasonOption = None,
    hub: HubOption = None,
    municipality: MunicipalityOption = None,
    by: By = None,
) -> None:
    """Re-process one row (ID) or every open row of --reason and/or --hub, with today's enrolment."""
    from gateway.ingest.reprocess import ReprocessFailed, reprocess, reprocess_matching
    from gateway.store import quarantine as q

    _checked(reason, hub, municipality)
    if row_id is not None and (reason or hub):
        raise _fail("give a row ID, or --reason/--hub, not both")
    if row_id is None and not (reason or hub):
        raise _fail("give a row ID, or --reason and/or --hub (e.g. --reason unassigned-device --hub H)")
    if row_id is not None and not 0 < row_id < 2**63:
        raise _fail(f"there is no quarantined row {row_id}")
    settings = gateway_settings()  # the gateway's own, so its scorer hears of what is stored
    scope = q.Scope.everything() if municipality is None else q.Scope(municipality)
    limits: dict[str, Any] = {
        "client": None,  # the command line: no address
        "max_bytes": settings.max_payload_bytes,
        "notify_channel": settings.scorer_channel,
    }
    with _database(database_url) as conn:
        actor = _actor(conn, by, municipality)
        if row_id is not None:
            try:
                done = [reprocess(conn, row_id, scope=scope, actor=actor, **limits)]
            except (q.QuarantineRefused, ReprocessFailed) as exc:
                raise _fail(str(exc)) from None
            refused: tuple[tuple[int, str], ...] = ()
        else:
            wanted = q.QuarantineFilter(reason, hub)
            result = reprocess_matching(conn, scope, wanted, actor=actor, **limits)
            done, refused = list(result.done), result.refused
    for item in done:
        typer.echo(f"{item.row_id}: {item.resolution} ({item.note})")
    for refused_id, why in refused:
        typer.echo(f"{refused_id}: not re-processed: {why}", err=True)
    if row_id is None:
        typer.echo(f"{len(done)} row(s) re-processed, {len(refused)} not")
