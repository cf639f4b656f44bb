"""Setting a patient's measurement plan: stored, audited, and sent to the patient's hub.

``set_plan`` is the one way a plan changes, for the nurse's page (``gateway.api.plan_pages``) and for the
command line (``homewatch.plan_cli``). It checks the plan with the contract's own rule
(``fhir_contract.plan.parse_plan``, which the hub runs on what it is sent), and, in one transaction,
stores it as the plan in force (``gateway.store.plans``: a new row, the older ones kept as history),
counts one change of the configuration of each hub in service that measures the patient (enrolled for
them, or the one they live with as a resident: ``plans.patient_hubs_in_service``; ``config_version``, as a
device change does: ``gateway.administration.homes``) and writes the audit row (``set-plan``, the plan's
JSON as detail). After the commit it publishes each hub's retained config
(``gateway.hub_config.publish_hub_config``); when the broker is away, or no publisher is given, the
gateway's config job publishes it later, so the plan reaches the hub either way. Saving the plan in force
again changes nothing and tells nobody.

Who: with ``viewer`` (a page's user), only a nurse, and only of a patient she may see
(``access.patient_scope``: her care teams'); anyone else's patient looks unknown. Without a viewer (the
command line), ``within`` is the one municipality the caller may act in (None: any), as in
``gateway.administration.homes``. An empty plan removes the plan: the hub is sent an empty one and stops
reminding, and the missing-measurement alert falls back to its defaults (``gateway.alerts.missing``). What
is wrong is one ``AdministrationError`` line in the reader's language; nothing is changed then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg

from fhir_contract.limits import is_fhir_id
from fhir_contract.plan import MEASUREMENTS, PlanError, PlanItem, parse_plan, plan_json
from gateway.administration.checks import checked_by as _by
from gateway.administration.checks import fail as _fail
from gateway.administration.transactions import committed as _committed
from gateway.api.i18n import gettext as _
from gateway.hub_config import ConfigPublisher, publish_hub_config
from gateway.store import access, plans
from gateway.store import administration as store

AUDIT_ACTION = "set-plan"


@dataclass(frozen=True, slots=True)
class PlanChange:
    """What ``set_plan`` did: the plan in force now, whether it changed, the hubs whose configuration
    changed with it, and whether every one of them has it retained on the broker already (False: the
    broker was away or no publisher was given; the config job sends it)."""

    plan: plans.StoredPlan | None
    changed: bool
    hubs: tuple[str, ...]
    published: bool


def checked_plan(items: Sequence[PlanItem]) -> tuple[PlanItem, ...]:
    """``items`` as the contract reads them back (times sorted), in the order of
    ``fhir_contract.plan.MEASUREMENTS``, so that the same plan is always stored the same way;
    AdministrationError naming what the contract refuses."""
    try:
        parsed = parse_plan(plan_json(items))
    except PlanError as exc:
        raise _fail(_("The plan cannot be used: %(reason)s", reason=str(exc))) from exc
    return tuple(sorted(parsed, key=lambda item: MEASUREMENTS.index(item.measurement)))


def plan_from_json(data: object) -> tuple[PlanItem, ...]:
    """A plan in its JSON form (decoded; a command line's file) as checked items."""
    try:
        return checked_plan(parse_plan(data))
    except PlanError as exc:
        raise _fail(_("The plan cannot be used: %(reason)s", reason=str(exc))) from exc


def _municipality_of(
    conn: psycopg.Connection[Any], patient_id: str, viewer: access.Viewer | None, within: str | None
) -> str:
    """The patient's municipality, when the caller may set their plan (module docstring)."""
    if viewer is not None:
        if not is_fhir_id(patient_id) or not access.may_see_patient(conn, viewer, patient_id):
            raise _fail(_("There is no such patient among yours."))
        if viewer.role != access.NURSE:
            raise _fail(_("Only a nurse of the patient's care team sets the measurement plan."))
    record = store.patient_record(conn, patient_id) if is_fhir_id(patient_id) else None
    if record is None or (within is not None and record.municipality_id != within):
        raise _fail(_("There is no patient %(patient)s.", patient=patient_id))
    return record.municipality_id


def set_plan(
    conn: psycopg.Connection[Any],
    patient_id: str,
    items: Sequence[PlanItem],
    *,
    by: str,
    at: datetime,
    publisher: ConfigPublisher | None,
    viewer: access.Viewer | None = None,
    within: str | None = None,
    client: str | None = None,
) -> PlanChange:
    """Make ``items`` the patient's plan from ``at`` (the gateway's clock) on, and send it to their hubs
    (module docstring); an empty ``items`` removes the plan."""
    if at.tzinfo is None:
        raise ValueError("at must be an aware datetime")
    plan, by = checked_plan(items), _by(by)
    with _committed(conn):
        municipality_id = _municipality_of(conn, patient_id, viewer, within)
        known = plans.current_plan(conn, municipality_id, patient_id)
        if (known.items if known is not None else ()) == plan:
            return PlanChange(known, False, (), True)
        plans.insert_plan(conn, municipality_id, patient_id, plan, set_by=by, set_at=at)
        hubs = tuple(plans.patient_hubs_in_service(conn, municipality_id, patient_id))
        for hub_id in hubs:
            store.bump_config_version(conn, hub_id)
        detail = orjson.dumps(plan_json(plan)).decode()
        store.audit_administration(
            conn, by, municipality_id, AUDIT_ACTION, [patient_id], detail, client=client
        )
        now = plans.current_plan(conn, municipality_id, patient_id)
    published = [publish_hub_config(conn, publisher, municipality_id, hub_id) for hub_id in hubs]
    return PlanChange(now, True, hubs, all(published))
