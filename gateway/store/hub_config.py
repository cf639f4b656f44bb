"""What a hub's retained configuration is made of, and which hubs' published configuration lags.

``hubs.config_version`` counts changes to what a hub should run (its devices, its settings: the
administration layer bumps it); ``config_published`` is the version last published retained on the
broker (migration 0015). ``lock_hub_config`` reads one hub's configuration with its row locked, so that
two publishers of the same hub (an administrator's change and the gateway's config job) take turns: the
later one reads the later version, and an older payload can never be published over a newer one.
``mark_published`` then records the version that went out (never lowering it). ``lagging_hubs`` lists
the hubs to publish again; a revoked hub gets no configuration and is never listed. The hub's patient's
measurement plan in force comes with it (``gateway.store.plans``; migration 0019), and so do the hub's
residents (each resident other than the enrolled patient with their own plan in force) and its shared
devices' user slots (``gateway.store.household``; migration 0022), and the care team's recent messages
to the residents (``gateway.store.patient_messages``; migration 0021).
Building and publishing the payload is ``gateway.hub_config``'s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg

from fhir_contract.plan import PlanItem
from fhir_contract.questionnaire import for_conditions
from gateway.store.household import hub_device_users, hub_residents
from gateway.store.patient_messages import HubMessage, hub_messages
from gateway.store.plans import PlanUnreadable, current_plan

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConfigDevice:
    """A device in use on the hub (``removed_at IS NULL``); ``address`` None when none was enrolled.
    ``patient_id``: whose it is (a personal device); ``users``: User Index -> resident when shared."""

    id: str
    kind: str
    address: str | None
    patient_id: str | None = None
    users: dict[int, str] | None = None


@dataclass(frozen=True, slots=True)
class HubConfigRecord:
    """A hub's configuration as stored, with the versions."""

    municipality_id: str
    hub_id: str
    patient_id: str
    devices: tuple[ConfigDevice, ...]
    settings: dict[str, Any]
    config_version: int
    config_published: int
    revoked: bool
    # The patient's measurement plan in force: empty when none was set or it was removed; None when the
    # stored plan cannot be read (the payload then leaves the hub's plan as it is).
    plan: tuple[PlanItem, ...] | None = ()
    # Everyone the hub measures, (patient id, first name), its enrolled patient first.
    residents: tuple[tuple[str, str], ...] = ()
    # The care team's messages to the residents, newest last (gateway.store.patient_messages).
    messages: tuple[HubMessage, ...] = ()
    # (patient id, key of the daily symptom check the patient view offers them), for the residents with
    # a condition that has one (fhir_contract.questionnaire.for_conditions).
    questionnaires: tuple[tuple[str, str], ...] = ()
    # (patient id, plan in force) of each resident other than the enrolled patient, as ``plan`` is:
    # empty when none was set or it was removed, None when the stored plan cannot be read.
    resident_plans: tuple[tuple[str, tuple[PlanItem, ...] | None], ...] = ()


def _plan_in_force(
    conn: psycopg.Connection[Any], municipality_id: str, patient_id: str, hub_id: str
) -> tuple[PlanItem, ...] | None:
    """The patient's plan in force for the hub's config: empty when none; None when unreadable."""
    try:
        stored = current_plan(conn, municipality_id, patient_id)
    except PlanUnreadable as exc:
        log.warning("hub %s: %s; the plan is left out of its config", hub_id, exc)
        return None
    return () if stored is None else stored.items


def lock_hub_config(
    conn: psycopg.Connection[Any], municipality_id: str, hub_id: str
) -> HubConfigRecord | None:
    """The hub's configuration, its row locked until the caller's transaction ends; None when the
    municipality has no such hub. Call inside a transaction."""
    row = conn.execute(
        "SELECT patient_id, settings, config_version, config_published, revoked_at IS NOT NULL FROM hubs"
        " WHERE municipality_id = %s AND id = %s FOR UPDATE",
        (municipality_id, hub_id),
    ).fetchone()
    if row is None:
        return None
    patient_id, settings, version, published, revoked = row
    devices = conn.execute(
        "SELECT id, kind, address, patient_id FROM devices"
        " WHERE municipality_id = %s AND hub_id = %s AND removed_at IS NULL ORDER BY id",
        (municipality_id, hub_id),
    ).fetchall()
    plan = _plan_in_force(conn, municipality_id, str(patient_id), hub_id)
    living_rows = hub_residents(conn, hub_id)
    resident_plans = tuple(
        (r.patient_id, _plan_in_force(conn, municipality_id, r.patient_id, hub_id))
        for r in living_rows
        if r.patient_id != str(patient_id)
    )
    residents = tuple((r.patient_id, first_name(r.name)) for r in living_rows)
    questionnaires = tuple(
        (r.patient_id, check.key) for r in living_rows if (check := for_conditions(r.conditions)) is not None
    )
    living = {p for p, _ in residents}
    slots = {
        device: users
        for device, all_users in hub_device_users(conn, hub_id).items()
        if (users := {i: p for i, p in all_users.items() if p in living})
    }
    # As ingest counts them (repository.hub_assignments): a device measures residents only, and one
    # that would name anyone else would make the hub refuse the whole message.
    in_use = [(d, k, a, p) for d, k, a, p in devices if p in living or str(d) in slots]
    return HubConfigRecord(
        municipality_id,
        hub_id,
        str(patient_id),
        tuple(
            ConfigDevice(str(d), str(k), None if a is None else str(a), str(p), slots.get(str(d)))
            for d, k, a, p in in_use
        ),
        dict(settings or {}),
        int(version),
        int(published),
        bool(revoked),
        plan,
        residents,
        hub_messages(conn, municipality_id, [p for p, _ in residents] or [str(patient_id)]),
        questionnaires,
        resident_plans,
    )


def first_name(name: str) -> str:
    """What the hub calls a resident: the first word of their name (the rest never leaves the gateway)."""
    return (name.split() or [""])[0][:60]


def mark_published(conn: psycopg.Connection[Any], municipality_id: str, hub_id: str, version: int) -> None:
    """Record that ``version`` of the hub's configuration is retained on the broker now."""
    conn.execute(
        "UPDATE hubs SET config_published = %s, config_published_at = now()"
        " WHERE municipality_id = %s AND id = %s AND config_published <= %s",
        (version, municipality_id, hub_id, version),
    )


def lagging_hubs(conn: psycopg.Connection[Any], limit: int = 1000) -> list[tuple[str, str]]:
    """``(municipality_id, hub_id)`` of hubs in service whose published configuration is older than
    their configuration, the longest-waiting first."""
    rows = conn.execute(
        "SELECT municipality_id, id FROM hubs"
        " WHERE config_published < config_version AND revoked_at IS NULL"
        " ORDER BY config_published_at NULLS FIRST, municipality_id, id LIMIT %s",
        (limit,),
    ).fetchall()
    return [(str(m), str(h)) for m, h in rows]
