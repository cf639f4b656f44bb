"""``homewatch models train`` (from a gateway database or an NDJSON export) and ``homewatch models import``.

Training on a municipality's own history is the normal way to get a model it can trust:

- ``models train --database-url URL --municipality CODE``: reads the municipality's history from the
  gateway's database (``gateway.store.training_reads``), splits it by patient and by time, trains on the
  training part and compares the new model with NEWS2, the weight rule and the model the municipality
  scores with now on the same held-out patient-days (``models.validation``). It prints the comparison,
  writes it to ``--out DIR`` when given, and registers the new model as a local version
  (``gateway.store.model_registry.register_version``: kind 'local', source 'database', the held-out
  report as its metrics, the generated model card) unless ``--no-register``. It never activates: an
  administrator does (``homewatch models activate``), and the gate's verdict is printed with the command.
  The version registered is the very model the held-out figures describe (trained on the training part
  only), so the figures the registry gates on and the monitoring page promises are its own.
- ``models train --ndjson DIR --out FILE``: as before, trains on the whole cohort and writes the model
  file with its sidecar; then prints the same held-out comparison for the same training on the split
  (against the shipped default), when the cohort is large enough.
- ``models import --ndjson DIR --database-url URL --municipality CODE``: puts the cohort into the
  database (``gateway.store.cohort_import``), so that a gateway can train on a history it did not record.

Every refusal (unreachable database, unknown municipality, too little history) is one line on stderr and
exit code 2 (``homewatch.cli_common.fail``). The helpers of ``homewatch.cli`` are imported where used, so this
module can be imported by it first.
"""

from __future__ import annotations

import getpass
import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from homewatch.cli_common import fail as _fail

if TYPE_CHECKING:
    import psycopg

    from models.admission_risk import RiskModel
    from models.cohort_reader import Cohort
    from models.validation import Validation

SOURCE_DATABASE: Final = "database"
# Columns of the table when the output is not a terminal (Rich would take 80 and wrap every row).
_PLAIN_WIDTH: Final = 130


def version_name(municipality: str, now: datetime | None = None) -> str:
    """The registry's name for a new local version: the municipality and the UTC time it was trained."""
    at = (now or datetime.now(UTC)).astimezone(UTC)
    return f"admission-risk-{municipality}-{at:%Y%m%dT%H%M%SZ}"


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment or the password database
        return "cli"


# --- output -------------------------------------------------------------------------------------------


def print_report(metrics: dict[str, Any], title: str) -> None:
    """The held-out comparison as a table on the terminal."""
    from rich.console import Console
    from rich.table import Table

    from models.validation import report_rows

    held = metrics["held_out"]
    table = Table(
        title=title,
        caption=f"Held out: {held['patients']} patients, {held['patient_days']} patient-days at home,"
        f" {held['from']} to {held['to']}, {held['admissions']} admissions. AUROC with a 95 % patient-"
        f"bootstrap interval; every method at the same alert burden.",
    )
    for column in (
        "Method",
        "AUROC (95 % CI)",
        "Calibration slope / intercept",
        "Sensitivity",
        "Lead (days)",
    ):
        table.add_column(column)
    for name, auroc, calibrated, sensitivity, _per_week, lead in report_rows(metrics):
        table.add_row(name, auroc, calibrated, sensitivity, lead)
    console = Console()
    if not console.is_terminal:  # a pipe or a log: wide enough for a version name in one line
        console = Console(width=_PLAIN_WIDTH)
    console.print(table)


def _write_report(out: Path, metrics: dict[str, Any], card: str, model: RiskModel, heading: str) -> None:
    from models.admission_risk import save
    from models.validation import markdown_report

    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(f"# {heading}\n\n{markdown_report(metrics)}", encoding="utf-8")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (out / "card.md").write_text(card, encoding="utf-8")
    save(model, out / "model.joblib")


# --- training -----------------------------------------------------------------------------------------


def _validate(
    cohort: Cohort, active: RiskModel | None, active_version: str | None, seed: int, description: str
) -> Validation:
    """``models.validation.validate``; too little history is one line and exit 2."""
    from models.errors import ModelsError
    from models.validation import validate

    try:
        return validate(
            cohort, active=active, active_version=active_version, seed=seed, description=description
        )
    except ModelsError as exc:
        raise _fail(f"cannot train and test a model: {exc}") from None


def _active(conn: psycopg.Connection[Any], municipality: str) -> tuple[RiskModel | None, str, str | None]:
    """The model the municipality scores with now, as the gateway chooses it (``ActiveModels``): (model,
    version, a note when it is not the registered active one). Without a registered default (a gateway
    never started on this database) the shipped default's files."""
    from gateway.alerts.active_models import ActiveModels
    from gateway.store.model_registry import RegistryError
    from models.admission_risk import ModelError
    from models.model_bytes import model_from_bytes, shipped_model

    try:
        chosen = ActiveModels().choose(conn, municipality)
        return chosen.model, chosen.version.version, chosen.fallback
    except RegistryError:
        pass
    except ModelError as exc:
        return None, "", f"the active model cannot be loaded ({exc.reason}): left out of the comparison"
    try:
        shipped = shipped_model()
        model = model_from_bytes(
            shipped.model_bytes, shipped.metadata, sha256=shipped.sha256, version=shipped.version
        )
    except ModelError as exc:
        return None, "", f"the shipped default cannot be loaded ({exc.reason}): left out of the comparison"
    return (
        model,
        shipped.version,
        "no model is registered in this database: compared with the shipped default",
    )


def train_from_database(
    database_url: str,
    municipality: str,
    *,
    by: str | None,
    register: bool,
    out: Path | None,
    seed: int,
) -> None:
    """``homewatch models train --database-url``: see the module text."""
    from gateway.store.training_reads import history_is_synthetic, municipality_exists, municipality_history
    from homewatch.cli import _database
    from homewatch.model_registry_cli import default_registered
    from models.cohort_reader import stored_cohort
    from models.validation import model_card

    actor = by or _login_name()
    started = time.monotonic()
    with _database(database_url) as conn:
        if not municipality_exists(conn, municipality):
            raise _fail(f"there is no municipality {municipality!r} in this database")
        cohort = stored_cohort(municipality_history(conn, municipality))
        cohort = replace(cohort, synthetic=history_is_synthetic(conn, municipality))
        read = time.monotonic() - started
        if register:  # the version registered next is compared with, and rolls back to, the default
            default_registered(conn)
        active, active_version, note = _active(conn, municipality)
        version = version_name(municipality)
        description = f"municipality {municipality}'s history in the gateway database, as of {version[-16:]}"
        validation = _validate(cohort, active, active_version or None, seed, description)
        model = validation.model
        model.metadata["model"] = version
        card = model_card(
            validation.metrics,
            model,
            version=version,
            municipality=municipality,
            source="the gateway database",
        )
        label = "SYNTHETIC " if cohort.synthetic else ""
        print_report(
            validation.metrics, f"New model for municipality {municipality} ({label}held-out comparison)"
        )
        if note:
            typer.echo(f"note: {note}")
        if out is not None:
            _write_report(out, validation.metrics, card, model, f"Held-out report: {version}")
            typer.echo(f"wrote report.md, metrics.json, card.md and model.joblib to {out}")
        if register:
            _register(conn, municipality, version, actor, model, validation.metrics, card)
    typer.echo(
        f"read {len(cohort.patients)} patients x {cohort.days} days in {read:.1f} s; trained and tested in"
        f" {time.monotonic() - started - read:.1f} s"
    )
    _gate(validation.metrics, municipality, version if register else None)


def _register(
    conn: psycopg.Connection[Any],
    municipality: str,
    version: str,
    actor: str,
    model: RiskModel,
    metrics: dict[str, Any],
    card: str,
) -> None:
    from gateway.store.model_registry import LOCAL, RegistryError, register_version
    from models.model_bytes import model_to_bytes

    try:
        register_version(
            conn,
            version=version,
            municipality_id=municipality,
            kind=LOCAL,
            created_by=actor,
            source=SOURCE_DATABASE,
            model_bytes=model_to_bytes(model),
            metadata=model.metadata,
            card=card,
            metrics=metrics,
        )
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"registered {version} for municipality {municipality} (by {actor}); it is not active")


def _gate(metrics: dict[str, Any], municipality: str, version: str | None) -> None:
    from models.activation import activation_check

    check = activation_check(metrics)
    verdict = "would pass" if check.passed else "would not pass"
    typer.echo(f"activation gate {verdict}: {check.reason}")
    if check.below_active:
        typer.echo(
            f"warning: it ranks the held-out patient-days below the model active now"
            f" (AUROC {check.model_auroc:.3f} against {check.active_auroc:.3f}): it would rank worse"
        )
    if version is None:
        return
    override = "" if check.passed else " --override-reason '...'"
    typer.echo(
        f"to activate it: homewatch models activate {version} --municipality {municipality}"
        f" --by ADMIN --database-url URL{override}"
    )


def train_from_ndjson(ndjson: Path, out: Path, description: str, seed: int) -> None:
    """``homewatch models train --ndjson``: the model on the whole cohort (as before), then the held-out
    comparison of the same training on the split, when the cohort is large enough."""
    from models.admission_risk import SHIPPED_MODEL, ModelError, load, save, train
    from models.cohort_reader import CohortReadError, read_cohort
    from models.errors import ModelsError
    from models.validation import validate

    try:
        cohort = read_cohort(ndjson)
    except CohortReadError as exc:
        raise _fail(str(exc)) from None
    try:
        model = train(cohort, description=description)
    except ModelError as exc:
        raise _fail(str(exc)) from None
    sidecar = save(model, out)
    metrics = model.metadata["training_metrics"]
    typer.echo(
        f"trained on {len(cohort.patients)} patients x {cohort.days} days: training AUROC "
        f"{metrics['auroc']:.3f}, Brier {metrics['brier']:.4f}; wrote {out} and {sidecar}"
    )
    try:
        shipped: RiskModel | None = load(SHIPPED_MODEL)
    except ModelError:
        shipped = None
    name = None if shipped is None else str(shipped.metadata.get("model", "shipped default"))
    try:
        validation = validate(cohort, active=shipped, active_version=name, seed=seed, description=description)
    except ModelsError as exc:
        typer.echo(f"no held-out comparison: {exc}")
        return
    label = "SYNTHETIC " if cohort.synthetic else ""
    print_report(
        validation.metrics,
        f"Held-out check of the same training on a patient and time split ({label}{ndjson}); the model"
        " written above was trained on everything",
    )


# --- import -------------------------------------------------------------------------------------------


def models_import(
    ndjson: Annotated[
        Path, typer.Option(help="The cohort: a folder of FHIR Bulk Data NDJSON (`homewatch models cohort`).")
    ],
    municipality: Annotated[
        str, typer.Option(help="The municipality to import into (created when missing).")
    ],
    database_url: Annotated[str, typer.Option(envvar="HOMEWATCH_DATABASE_URL", help="PostgreSQL URL.")],
    name: Annotated[
        str | None,
        typer.Option(help="The municipality's name, when it is created.", show_default="'Municipality CODE'"),
    ] = None,
) -> None:
    """Import an NDJSON cohort into a gateway database: patients (SYNTHETIC when tagged so), readings,
    staff change forms and hospital stays. Importing the same cohort again adds nothing."""
    from gateway.store.cohort_import import CohortImportError, import_cohort
    from gateway.store.errors import EnrolmentConflict
    from homewatch.cli import _database

    started = time.monotonic()
    with _database(database_url) as conn:
        try:
            counts = import_cohort(conn, ndjson, municipality, municipality_name=name)
        except (CohortImportError, EnrolmentConflict) as exc:
            raise _fail(str(exc)) from None
    created = " (created)" if counts.municipality_created else ""
    typer.echo(
        f"imported into municipality {municipality}{created} in {time.monotonic() - started:.1f} s:"
        f" {counts.patients} new patients (of {counts.patients_in_file} in the file),"
        f" {counts.observations} readings ({counts.duplicate_observations} already stored),"
        f" {counts.staff_observations} staff change forms, {counts.encounters} hospital stays"
        + (f" ({counts.encounters_updated} updated)" if counts.encounters_updated else "")
    )
    if counts.not_stored:
        typer.echo(f"not stored: {counts.not_stored}, e.g. " + "; ".join(counts.reasons))
