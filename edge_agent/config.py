"""A hub's configuration: who it reports for, which devices belong to the patient, where to send.

Pydantic models so a bad configuration file fails at start-up with a message naming the field. What each
device kind subscribes to, whether it bonds or keeps a history, is data in :mod:`edge_agent.ble.profiles`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DeviceKind = Literal[
    "blood-pressure-cuff",
    "pulse-oximeter",
    "scale",
    "thermometer",
    "heart-rate-monitor",
    "continuous-oximeter",
    "body-composition-scale",
    "glucose-meter",
    "cgm",
]


class DeviceConfig(BaseModel):
    """One paired device: its FHIR Device id, Bluetooth address and kind."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    address: str = Field(min_length=1)
    kind: DeviceKind


class MqttConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str = "127.0.0.1"
    port: int = 1883
    mqtt5: bool = True
    username: str | None = None
    password: str | None = None


class HubConfig(BaseModel):
    """Everything one hub needs to run."""

    model_config = ConfigDict(frozen=True)

    municipality: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    hub_id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    patient_id: str = Field(min_length=1)
    devices: tuple[DeviceConfig, ...]
    mqtt: MqttConfig = MqttConfig()
    outbox_path: Path
    # Device clocks carry local time without a zone; this is the zone the hub reads them in.
    timezone: str = "Europe/Copenhagen"
    # Observations per MQTT message (one FHIR batch Bundle).
    bundle_size: int = Field(default=50, ge=1, le=500)
    # Bluetooth links open at once. A BlueZ adapter holds about 7 LE connections in practice; devices
    # beyond that take turns (an idle connection gives way to a device that waits).
    max_connections: int = Field(default=7, ge=1, le=32)

    def topic(self, leaf: str) -> str:
        """``homewatch/v1/{municipality}/{hub}/{leaf}``: leaf is observations, status, errors or config."""
        return f"homewatch/v1/{self.municipality}/{self.hub_id}/{leaf}"
