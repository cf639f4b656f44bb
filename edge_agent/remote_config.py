"""Configuration the server pushes to a hub on its retained ``homewatch/v1/{m}/{hub}/config`` topic.

The payload is a JSON object with any of these keys (nothing else):

- ``patient_id`` (string), ``devices`` (list of ``{"id", "address", "kind"}``), ``timezone``,
  ``bundle_size``, ``max_connections``, ``status_interval_s``, ``plan`` (the measurement plan,
  ``fhir_contract.plan``'s JSON form: the enrolled ``patient_id``'s), ``residents`` (list of
  ``{"patient_id", "name"}``, optionally ``"questionnaire"``, the daily symptom check the patient view
  offers, and ``"plan"``, the measurement plan of a resident other than the enrolled patient, in the same
  JSON form: everyone the hub measures),
  ``messages`` (list of ``{"id", "patient_id", "sent_at", "text"}``: the care team's messages to the
  residents, newest last); a device may carry ``patient_id`` (whose it is) or
  ``users`` (User Index -> patient id, for a device residents share); optionally ``version`` (any string, only
  logged and echoed in the status so the server can see what the hub applied).

Merge rule (:func:`merge`): **a key the server sends replaces the local file's value as a whole**
(``devices`` is replaced as one list, never merged item by item); a key the server does not send keeps
the local file's value. ``null`` is not "unset": it is a bad message. The hub's identity and connection
(``municipality``, ``hub_id``, ``mqtt``, ``outbox_path``, ``emulation``) are local only: a message that
tries to set them is rejected, so a server can never redirect a hub or read its credentials.

A rejected message changes nothing; the hub keeps the configuration it runs. The last accepted payload
is cached on disk next to the outbox (:func:`save_cache`, :func:`load_cache`), so a hub restarted
without a network runs with it. Everything here but the two cache functions is pure.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edge_agent.config import (
    DeviceConfig,
    HubConfig,
    HubConfigError,
    NurseMessage,
    ResidentConfig,
    first_error,
)
from fhir_contract.limits import MAX_BUNDLE_ENTRIES
from fhir_contract.plan import PlanError, parse_plan

__all__ = ["RemoteConfig", "RemoteConfigError", "load_cache", "merge", "parse_remote", "save_cache"]


class RemoteConfigError(ValueError):
    """A config message the hub refuses; ``field`` names the bad key where there is one."""

    def __init__(self, field: str | None, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"remote config: {field}: {reason}" if field else f"remote config: {reason}")


class RemoteConfig(BaseModel):
    """What the server may set; None = not sent (the local file's value stays)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str | None = None
    patient_id: str | None = Field(default=None, min_length=1)
    devices: tuple[DeviceConfig, ...] | None = None
    timezone: str | None = None
    bundle_size: int | None = Field(default=None, ge=1, le=MAX_BUNDLE_ENTRIES)
    max_connections: int | None = Field(default=None, ge=1, le=32)
    status_interval_s: float | None = Field(default=None, ge=1.0)
    # The measurement plan (fhir_contract.plan's JSON form); an empty list: no plan.
    plan: tuple[dict[str, Any], ...] | None = None
    # Everyone the hub measures, and the care team's messages to them (newest last).
    residents: tuple[ResidentConfig, ...] | None = None
    messages: tuple[NurseMessage, ...] | None = None

    @field_validator("plan", mode="after")
    @classmethod
    def _a_plan_both_sides_read(
        cls, plan: tuple[dict[str, Any], ...] | None
    ) -> tuple[dict[str, Any], ...] | None:
        if plan is not None:
            try:
                parse_plan(list(plan))
            except PlanError as exc:
                raise ValueError(str(exc)) from None
        return plan


_SETTINGS = (
    "patient_id",
    "devices",
    "timezone",
    "bundle_size",
    "max_connections",
    "status_interval_s",
    "plan",
    "residents",
    "messages",
)


def parse_remote(payload: bytes) -> RemoteConfig:
    """Parse a config message; :class:`RemoteConfigError` when it is not one the hub accepts."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise RemoteConfigError(None, f"not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise RemoteConfigError(None, "not a JSON object")
    nulls = sorted(key for key, value in data.items() if value is None)
    if nulls:
        raise RemoteConfigError(nulls[0], "null is not allowed (leave the key out to keep the local value)")
    try:
        return RemoteConfig.model_validate(data)
    except ValidationError as exc:
        field, reason = first_error(exc)
        raise RemoteConfigError(field, reason) from exc


def merge(local: HubConfig, remote: RemoteConfig | None) -> HubConfig:
    """The configuration the hub runs: the server's values where it sent them, the local file's elsewhere."""
    if remote is None:
        return local
    changes = {name: getattr(remote, name) for name in _SETTINGS if getattr(remote, name) is not None}
    data = local.model_dump()
    data.update(changes)
    try:
        return HubConfig.from_mapping(data, source="remote config")
    except HubConfigError as exc:
        raise RemoteConfigError(exc.field, exc.reason) from exc


def save_cache(path: Path, payload: bytes) -> None:
    """Keep an accepted payload (atomically: a crash leaves the old or the new file, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as file:
        file.write(payload)
        file.flush()
        os.fsync(file.fileno())
    tmp.replace(path)


def load_cache(path: Path) -> tuple[RemoteConfig, bytes] | None:
    """The cached remote configuration and its bytes, or None when there is none or it is unusable."""
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return parse_remote(payload), payload
    except RemoteConfigError:
        return None


def describe(remote: RemoteConfig) -> dict[str, Any]:
    """The keys a remote configuration set (for a log line)."""
    return {
        name: getattr(remote, name) for name in ("version", *_SETTINGS) if getattr(remote, name) is not None
    }
