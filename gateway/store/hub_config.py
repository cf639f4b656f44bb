"""What a hub's retained configuration is made of, and which hubs' published configuration lags.

``hubs.config_version`` counts changes to what a hub should run (its devices, its settings: the
administration layer bumps it); ``config_published`` is the version last published retained on the
broker (migration 0015). ``lock_hub_config`` reads one hub's configuration with its row locked, so that
two publishers of the same hub (an administrator's change and the gateway's config job) take turns: the
later one reads the later version, and an older payload can never be published over a newer one.
``mark_published`` then records the version that went out (never lowering it). ``lagging_hubs`` lists
the hubs to publish again; a revoked hub gets no configuration and is never listed. The hub's patient's
measurement plan in force comes with it (``gateway.store.plans``; migration 0019). Building and
publishing the payload is ``gateway.hub_config``'s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg

from fhir_contract.plan import PlanItem
from gateway.store.plans import PlanUnreadable, current_plan

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConfigDevice:
    """A device in use on the hub (``removed_at IS NULL``); ``address`` None when none was enrolled."""

    id: str
    kind: str
    address: str | None


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
        "SELECT id, kind, address FROM devices"
        " WHERE municipality_id = %s AND hub_id = %s AND removed_at IS NULL ORDER BY id",
        (municipality_id, hub_id),
    ).fetchall()
    plan: tuple[PlanItem, ...] | None
    try:
        stored = current_plan(conn, municipality_id, str(patient_id))
        plan = () if stored is None else stored.items
    except PlanUnreadable as exc:
        log.warning("hub %s: %s; its plan is left out of its config", hub_id, exc)
        plan = None
    return HubConfigRecord(
        municipality_id,
        hub_id,
        str(patient_id),
        tuple(ConfigDevice(str(d), str(k), None if a is None else str(a)) for d, k, a in devices),
        dict(settings or {}),
        int(version),
        int(published),
        bool(revoked),
        plan,
    )


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
