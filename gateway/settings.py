"""The gateway's settings, read once from the environment (prefix ``HOMEWATCH_``).

One class for the whole server process. The safe thing is the default: ``environment`` is
``production`` unless ``HOMEWATCH_ENVIRONMENT=development`` says otherwise, and production refuses to
start without a session secret of real length (``HOMEWATCH_SECRET_KEY``, 32 random bytes or more), so no
deployment can sign tokens with a key that anyone else knows.

Development (a laptop, the demo, the tests) may leave the secret out: tokens are then signed with a
random key made with the settings object, never with a key written down anywhere, and they end with the
process. Development also leaves ``/metrics`` open when no metrics token is set, and its cookies are not
``Secure`` (plain http on localhost).

The gateway's own tokens are JWTs (HS256) with ``token_issuer`` as ``iss`` and ``token_audience`` as
``aud``. In production the FHIR API may also accept the tokens of the region's OpenID Connect provider:
``oidc_issuer``, ``oidc_audience`` and ``oidc_jwks_url`` together switch it on (docs/security.md, "OpenID
Connect"); the provider's ``oidc_username_claim`` names a user of ``users``, and ``oidc_role_claim`` with
``oidc_role_map``, when set, must also grant that user's role.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

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
# The roles ``oidc_role_map`` may map to (``gateway.store.access.ROLES``; settings import no store).
_PERSON_ROLES = frozenset({"nurse", "gp", "municipality_admin", "system_admin"})


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOMEWATCH_", frozen=True)

    environment: Environment = "production"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/homewatch"
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_v5: bool = True
    mqtt_tls: bool = False  # mqtts://: TLS, verified against mqtt_ca_file or the system's CA certificates
    # The CA certificate that signed the broker's (a private CA, as `homewatch admin broker init` makes);
    # None: the system's CA certificates.
    mqtt_ca_file: Path | None = None
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
    # ``iss`` and ``aud`` of the gateway's own tokens (sessions, /login/access-token, `gateway token`).
    token_issuer: str = "urn:homewatch:gateway"
    token_audience: str = "urn:homewatch:api"
    # The region's OpenID Connect provider (all three or none): bearer tokens whose ``iss`` is
    # ``oidc_issuer`` are checked against the keys published at ``oidc_jwks_url`` (RS256 or ES256 only)
    # and must name ``oidc_audience`` in ``aud``.
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    # The claim whose value is a username of ``users`` (role and municipality come from ``users``).
    oidc_username_claim: str = "preferred_username"
    # Optional: a claim (a string or a list of strings) that must also grant the user's role, its values
    # translated by ``oidc_role_map`` (JSON in the environment, e.g. {"sygeplejerske": "nurse"}); a value
    # the map lacks is taken as it is.
    oidc_role_claim: str | None = None
    oidc_role_map: dict[str, str] = Field(default_factory=dict)
    # The staff's pages: the language of a browser that chose none (gateway.api.language) and the zone
    # every time is shown in (an IANA name; the machine-readable <time datetime> keeps its offset).
    default_language: Literal["da", "en"] = "da"
    time_zone: str = "Europe/Copenhagen"
    # How often `gateway serve` scores every patient's 30-day admission risk (also once at start).
    risk_interval_hours: float = Field(default=24.0, gt=0)
    # Largest MQTT payload ingest accepts; larger ones are quarantined unread.
    max_payload_bytes: int = 1_000_000
    # /healthz turns unhealthy when an ingest worker has held messages this long without committing any.
    ingest_stall_after_s: float = Field(default=60.0, gt=0)

    # Alerts told by e-mail (gateway.alerts.email): an SMTP server the gateway hands messages to. Without
    # ``smtp_host`` no e-mail is sent; deliveries by e-mail then fail and the administrator sees why.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "homewatch@localhost"
    # The address staff open the web UI at: the base of the links in e-mails and webhook calls (they carry
    # a link and as little patient data as possible). None: http://{http_host}:{http_port}.
    public_url: str | None = None
    # How often the alert jobs look for due deliveries, escalations and ended snoozes (seconds).
    alert_jobs_interval_s: float = Field(default=1.0, gt=0)
    # How often the gateway looks for expected measurements that did not come, in minutes of its clock
    # (gateway.alerts.missing_job). A measurement is missing only 36 h after the last, so a few minutes
    # late is nothing; more often would only read the same readings again.
    missing_check_minutes: float = Field(default=5.0, gt=0)

    # Where the embedded PostgreSQL keeps its data when no database URL is given to `homewatch admin`
    # (and to `homewatch gateway serve --data-dir`): a folder that outlives the process.
    # None: ~/.local/share/homewatch.
    data_dir: Path | None = None
    # The broker's dynamic-security administrator (deploy/mosquitto): with it, enrolling a hub creates its
    # broker account and revoking deletes it (gateway.broker_accounts). None: the broker keeps no accounts
    # (the embedded, anonymous broker of the demo and the tests), and enrolment says so.
    broker_admin_username: str | None = None
    broker_admin_password: SecretStr | None = None
    # What an enrolled hub is told in its hub.toml: the broker address as the homes reach it (None: the
    # gateway's mqtt_host / mqtt_port) and the CA certificate that signed the broker's (copied into the
    # hub's folder; set means the hubs use TLS).
    hub_mqtt_host: str | None = None
    hub_mqtt_port: int | None = Field(default=None, ge=1, le=65535)
    hub_ca_file: Path | None = None
    # How often the gateway publishes the retained configuration of hubs whose published version lags
    # (an assignment made while the broker was away), in seconds.
    config_publish_interval_s: float = Field(default=30.0, gt=0)

    # Development without a secret: a random key of this settings object (copies and pickles keep it).
    _development_key: str = PrivateAttr(default_factory=lambda: secrets.token_urlsafe(MIN_SECRET_BYTES))

    @model_validator(mode="after")
    def _a_whole_oidc_provider(self) -> GatewaySettings:
        given = {
            "HOMEWATCH_OIDC_ISSUER": self.oidc_issuer,
            "HOMEWATCH_OIDC_AUDIENCE": self.oidc_audience,
            "HOMEWATCH_OIDC_JWKS_URL": self.oidc_jwks_url,
        }
        missing = [name for name, value in given.items() if not value]
        if len(missing) not in (0, len(given)):
            raise ValueError(f"an OpenID Connect provider needs all of {sorted(given)}; missing {missing}")
        if self.oidc_issuer is not None and self.oidc_issuer == self.token_issuer:
            raise ValueError("HOMEWATCH_OIDC_ISSUER must differ from HOMEWATCH_TOKEN_ISSUER")
        jwks_scheme = urlsplit(self.oidc_jwks_url).scheme if self.oidc_jwks_url else None
        if jwks_scheme not in (None, "https") and not self.development:
            raise ValueError("HOMEWATCH_OIDC_JWKS_URL must be an https:// URL outside development")
        unknown = sorted(set(self.oidc_role_map.values()) - _PERSON_ROLES)
        if unknown:
            raise ValueError(f"HOMEWATCH_OIDC_ROLE_MAP maps to unknown roles {unknown}")
        return self

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
    def secure_cookies(self) -> bool:
        """Whether cookies are ``Secure`` (and ``__Host-`` named): everywhere but development."""
        return not self.development

    @property
    def web_base_url(self) -> str:
        """The base of links to the web UI in messages sent outside it (no trailing slash)."""
        return (self.public_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")

    @property
    def embedded_data_dir(self) -> Path:
        """The embedded PostgreSQL's folder when no database URL is given (``data_dir`` or its default)."""
        return self.data_dir if self.data_dir is not None else Path.home() / ".local" / "share" / "homewatch"

    @property
    def oidc_enabled(self) -> bool:
        """Whether bearer tokens of a regional OpenID Connect provider are accepted."""
        return self.oidc_issuer is not None

    @property
    def signing_key(self) -> bytes:
        """The key that signs tokens: ``secret_key``, or in development without one a random key."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        return self._development_key.encode()
