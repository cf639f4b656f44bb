"""``homewatch models versions | activate | rollback | card``: the model registry from the command line.

The same registry the administrator's page uses (``gateway.store.model_registry``): the versions a
municipality may score with and their held-out figures, activating one (refused, unless a reason to
override is given, when it does not beat NEWS2 on its held-out data by the margin), rolling back, and a
version's model card. Who acts is named with ``--by``, and must be, in ``users``, a municipality
administrator of that municipality or a system administrator; the audit log records them. Every refusal
is one line on stderr and exit code 2 (``homewatch.cli_common.fail``), and nothing is changed.

``register`` adds the commands to ``homewatch models`` (``homewatch.cli`` calls it); the helpers of
``homewatch.cli`` are imported where used, so this module can be imported first.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from homewatch.cli_common import fail as _fail

if TYPE_CHECKING:
    import psycopg

    from gateway.store.model_registry import ModelVersion

DatabaseUrl = Annotated[str, typer.Option(envvar="HOMEWATCH_DATABASE_URL", help="PostgreSQL URL.")]
Municipality = Annotated[str, typer.Option(help="The municipality (its id, e.g. 0101).")]
By = Annotated[
    str,
    typer.Option(help="Who acts: a municipality_admin of the municipality or a system_admin (a username)."),
]


def register(models_app: typer.Typer) -> None:
    """Add the registry's commands to ``homewatch models``."""
    models_app.command("versions")(models_versions)
    models_app.command("activate")(models_activate)
    models_app.command("rollback")(models_rollback)
    models_app.command("card")(models_card)


def _known_municipality(conn: psycopg.Connection[Any], municipality: str) -> None:
    """Refuse an unknown municipality; then make sure the shipped default is registered, as a gateway does
    when it starts, so that a database filled by `homewatch models import` (no gateway started on it yet)
    can list, activate and roll back."""
    from gateway.store.alert_admin import municipalities

    if municipality not in dict(municipalities(conn)):
        raise _fail(f"there is no municipality {municipality!r}")
    default_registered(conn)


def default_registered(conn: psycopg.Connection[Any]) -> None:
    """Register the shipped default (idempotent), as a gateway does when it starts; one line and exit 2
    when its files cannot be read or its version is taken by other bytes."""
    from gateway.alerts.active_models import register_shipped_default
    from gateway.store.model_registry import RegistrationRefused
    from models.admission_risk import ModelError

    try:
        register_shipped_default(conn)
    except (ModelError, RegistrationRefused) as exc:
        raise _fail(f"the shipped default model cannot be registered: {exc}") from None


def _not_a_manager(by: str, municipality: str) -> str:
    only = "only its municipality_admin or a system_admin"
    return f"{by} may not change the models of municipality {municipality} ({only})"


def _auroc(value: float | None, ci: tuple[float, float] | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci is not None else "")


def _row(found: ModelVersion, active: str) -> dict[str, Any]:
    figures = found.held_out()
    check = found.check()
    return {
        "version": found.version,
        "kind": found.kind,
        "created": found.created_at.isoformat(timespec="seconds"),
        "by": found.created_by,
        "source": found.source,
        "auroc": figures.model_auroc,
        "auroc_ci": list(figures.model_ci) if figures.model_ci else None,
        "news2_auroc": figures.news2_auroc,
        "news2_auroc_ci": list(figures.news2_ci) if figures.news2_ci else None,
        # The default is what a municipality falls back to: the gate is for local versions.
        "gate_passed": None if found.is_default else check.passed,
        "gate": "default: not gated" if found.is_default else check.reason,
        "active": found.version == active,
        "sha256": found.sha256,
    }


def models_versions(
    municipality: Municipality,
    database_url: DatabaseUrl,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list instead of a table.")] = False,
) -> None:
    """List the model versions a municipality may score with, their held-out figures, and which is active."""
    from gateway.store import model_registry as registry
    from homewatch.cli import _database

    with _database(database_url) as conn:
        _known_municipality(conn, municipality)
        found = registry.versions(conn, municipality)
        try:
            active = registry.active_version(conn, municipality).version
        except registry.RegistryError:
            active = ""
    rows = [_row(v, active) for v in found]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"no model versions for municipality {municipality} (the gateway registers the default)")
        return
    header = ("", "version", "kind", "created", "by", "source", "AUROC [95% CI]", "NEWS2 AUROC", "gate")
    table = [header]
    for row, version in zip(rows, found, strict=True):
        figures = version.held_out()
        gate = "-" if row["gate_passed"] is None else ("passed" if row["gate_passed"] else "not passed")
        table.append(
            (
                "*" if row["active"] else "",
                row["version"],
                row["kind"],
                row["created"][:16].replace("T", " "),
                row["by"],
                row["source"],
                _auroc(figures.model_auroc, figures.model_ci),
                _auroc(figures.news2_auroc, figures.news2_ci),
                gate,
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    typer.echo(
        "Marked *: the active version. Figures on each version's held-out data"
        " (the default's: SYNTHETIC populations it never saw)."
    )


def models_activate(
    version: Annotated[
        str, typer.Argument(help="The version to make active (see `homewatch models versions`).")
    ],
    municipality: Municipality,
    by: By,
    database_url: DatabaseUrl,
    override_reason: Annotated[
        str | None,
        typer.Option(help="Why to activate a version that does not beat NEWS2 by the margin (recorded)."),
    ] = None,
) -> None:
    """Make a version the municipality's active model (it scores from the next run of the 30-day risk)."""
    from gateway.store import model_registry as registry
    from homewatch.cli import _database

    with _database(database_url) as conn:
        _known_municipality(conn, municipality)
        actor = registry.manager(conn, by, municipality)
        if actor is None:
            raise _fail(_not_a_manager(by, municipality))
        try:
            done = registry.activate(
                conn, municipality, version, actor=actor, override_reason=override_reason
            )
        except registry.ActivationRefused as exc:
            raise _fail(exc.reason) from None
        done_version = registry.version(conn, municipality, version)
    said = f"{version} is active for municipality {municipality} (by {by}, {done.at:%Y-%m-%d %H:%M %Z})"
    check = done_version.check() if done_version is not None else None
    if check is not None and check.below_active:
        said += (
            f"; warning: on its held-out data it ranked below the model active when it was trained"
            f" (AUROC {check.model_auroc:.3f} against {check.active_auroc:.3f})"
        )
    if done.override_reason is not None:
        said += f"; override recorded: {done.override_reason}"
    typer.echo(said)


def models_rollback(municipality: Municipality, by: By, database_url: DatabaseUrl) -> None:
    """Return the municipality to the version active before the current one (the default when none)."""
    from gateway.store import model_registry as registry
    from homewatch.cli import _database

    with _database(database_url) as conn:
        _known_municipality(conn, municipality)
        actor = registry.manager(conn, by, municipality)
        if actor is None:
            raise _fail(_not_a_manager(by, municipality))
        try:
            done = registry.rollback(conn, municipality, actor=actor)
            active = registry.active_version(conn, municipality)
        except registry.ActivationRefused as exc:
            raise _fail(exc.reason) from None
    typer.echo(
        f"rolled back: {active.version} ({active.kind}) is active for municipality {municipality}"
        f" (by {by}, {done.at:%Y-%m-%d %H:%M %Z})"
    )


def models_card(
    version: Annotated[str, typer.Argument(help="The version whose model card to print.")],
    municipality: Municipality,
    database_url: DatabaseUrl,
) -> None:
    """Print a version's model card (Markdown) as registered."""
    from gateway.store import model_registry as registry
    from homewatch.cli import _database

    with _database(database_url) as conn:
        _known_municipality(conn, municipality)
        found = registry.version(conn, municipality, version)
    if found is None:
        raise _fail(f"no model version {version!r} for municipality {municipality}")
    typer.echo(found.card.rstrip("\n"))
