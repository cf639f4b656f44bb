"""The gateway's settings, read once from the environment (prefix ``HOMEWATCH_``).

One class for the whole server process. Outside development it refuses to start with the default
session secret, so a real deployment cannot run on a key that is published in this repository.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET = "development-only-secret-change-me"


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOMEWATCH_", frozen=True)

    environment: Literal["development", "production"] = "development"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/homewatch"
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_v5: bool = True
    mqtt_tls: bool = False  # mqtts://: TLS with the system's CA certificates
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    # MQTT 5 shared-subscription group: workers in one group share the stream (ingest scales out).
    mqtt_share_group: str = "homewatch-ingest"
    # Ingest workers are named {prefix}-1 .. {prefix}-N: a fixed name per slot is the broker session a
    # restarted worker gets back. Give each gateway host its own prefix.
    ingest_client_prefix: str = "homewatch-ingest"
    # PostgreSQL channel on which ingest announces patients with new data (LISTEN/NOTIFY to the scorer).
    scorer_channel: str = "homewatch_new_data"
    # Bearer token /metrics asks for; None leaves it open (it holds counts, never patient data).
    metrics_token: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    secret_key: str = DEVELOPMENT_SECRET
    session_hours: int = 12
    # How often `gateway serve` scores every patient's 30-day admission risk (also once at start).
    risk_interval_hours: float = Field(default=24.0, gt=0)
    # Largest MQTT payload ingest accepts; larger ones are quarantined unread.
    max_payload_bytes: int = 1_000_000

    @model_validator(mode="after")
    def _no_default_secret_in_production(self) -> GatewaySettings:
        if self.environment != "development" and self.secret_key == DEVELOPMENT_SECRET:
            raise ValueError("set HOMEWATCH_SECRET_KEY: the default secret is for development only")
        return self
