"""The gateway's settings, read once from the environment (prefix ``HOMEWATCH_``).

One class for the whole server process. The safe thing is the default: ``environment`` is
``production`` unless ``HOMEWATCH_ENVIRONMENT=development`` says otherwise, and production refuses to
start without a session secret of real length (``HOMEWATCH_SECRET_KEY``, 32 random bytes or more), so no
deployment can sign tokens with a key that anyone else knows.

Development (a laptop, the demo, the tests) may leave the secret out: tokens are then signed with a
random key made with the settings object, never with a key written down anywhere, and they end with the
process. Development also leaves ``/metrics`` open when no metrics token is set, and its session cookie
is not ``Secure`` (plain http on localhost).
"""

from __future__ import annotations

import secrets
from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# secrets.token_urlsafe(32) is 43 characters; 32 bytes is the HMAC-SHA256 key size (RFC 2104: a key
# shorter than the hash output weakens it).
MIN_SECRET_BYTES = 32
# A random secret of 32+ characters has far more distinct characters than this (hex: 16, base64: ~30);
# "changemechangeme..." has 7. It catches a phrase typed by hand, not every weak key.
MIN_SECRET_DISTINCT = 10
# Secrets that have been published (this repository once shipped the first as the default).
PUBLISHED_SECRETS = frozenset({"development-only-secret-change-me"})
SECRET_ADVICE = "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"

Environment = Literal["development", "production"]


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOMEWATCH_", frozen=True)

    environment: Environment = "production"
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
    # Bearer token /metrics asks for. Without one, /metrics is open in development and closed otherwise.
    metrics_token: SecretStr | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # Signs session and bearer tokens (HMAC-SHA256). Required outside development.
    secret_key: SecretStr | None = None
    session_hours: int = 12
    # How often `gateway serve` scores every patient's 30-day admission risk (also once at start).
    risk_interval_hours: float = Field(default=24.0, gt=0)
    # Largest MQTT payload ingest accepts; larger ones are quarantined unread.
    max_payload_bytes: int = 1_000_000
    # /healthz turns unhealthy when an ingest worker has held messages this long without committing any.
    ingest_stall_after_s: float = Field(default=60.0, gt=0)

    # Development without a secret: a random key of this settings object (copies and pickles keep it).
    _development_key: str = PrivateAttr(default_factory=lambda: secrets.token_urlsafe(MIN_SECRET_BYTES))

    @model_validator(mode="after")
    def _a_real_secret_outside_development(self) -> GatewaySettings:
        if self.environment == "development":
            return self
        if self.secret_key is None:
            raise ValueError(
                "HOMEWATCH_SECRET_KEY is not set: a server needs its own secret of 32+ random bytes "
                f"({SECRET_ADVICE}), or HOMEWATCH_ENVIRONMENT=development for a local trial"
            )
        secret = self.secret_key.get_secret_value()
        if secret in PUBLISHED_SECRETS:
            raise ValueError(f"HOMEWATCH_SECRET_KEY is a published value; {SECRET_ADVICE}")
        if len(secret.encode()) < MIN_SECRET_BYTES or len(set(secret)) < MIN_SECRET_DISTINCT:
            raise ValueError(
                f"HOMEWATCH_SECRET_KEY is too short or not random ({MIN_SECRET_BYTES}+ random bytes "
                f"needed); {SECRET_ADVICE}"
            )
        return self

    @property
    def development(self) -> bool:
        """Whether this is an explicit development (or demo) run."""
        return self.environment == "development"

    @property
    def signing_key(self) -> bytes:
        """The key that signs tokens: ``secret_key``, or in development without one a random key."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        return self._development_key.encode()
