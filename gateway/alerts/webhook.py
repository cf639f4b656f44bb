"""Alerts by webhook: a signed JSON POST to the municipality's URL (its own systems, a pager service).

Signed as the Standard Webhooks specification (https://www.standardwebhooks.com) says, so a receiver can
use any of its libraries (docs/alerts.md, "Webhooks", has a verification example):

- ``webhook-id``: the same for every attempt of one delivery (a receiver drops repeats by it);
- ``webhook-timestamp``: when this attempt was signed, integer Unix seconds of the wall clock (it
  protects against replay, so it is real time even when the demo simulates the alert's time);
- ``webhook-signature``: ``v1,<base64 of HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>``.

The key is the municipality's ``alert_settings.webhook_secret``: a secret in the specification's form
``whsec_<base64>`` is the base64-decoded bytes; any other secret is its UTF-8 bytes.

The body (``webhook_body``) is ``{"type": "alert.<action>", "timestamp": ..., "data": {...}}`` with as
little as the e-mail: the alert's ids, kind, severity, escalation level, the link, and the patient's
initials only when the municipality allows them. ``post_webhook`` sends it with httpx and a timeout; any
answer but 2xx, a redirect included, is :class:`WebhookFailed`. ``sign`` and ``verify`` are pure.
When to try again is the dispatcher's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC

import httpx
import orjson

from gateway.alerts.email import alert_link
from gateway.errors import GatewayFailure
from gateway.store.alert_deliveries import MessageFacts

# Standard Webhooks asks receivers to answer quickly and work afterwards; a receiver that takes longer
# than this is treated as down, and the call is tried again on the dispatcher's back-off.
WEBHOOK_TIMEOUT_S = 10.0
# How far a receiver lets webhook-timestamp stray from its own clock (the specification's suggestion).
DEFAULT_TOLERANCE_S = 5 * 60
SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"


class WebhookFailed(GatewayFailure):
    """The receiver did not take the call (no answer in time, or not 2xx); ``status`` when it answered."""

    def __init__(self, reason: str, *, status: int | None = None, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.permanent = permanent


def signing_key(secret: str) -> bytes:
    """The HMAC key of ``secret``: ``whsec_<base64>`` decoded, any other secret as UTF-8 bytes."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except binascii.Error:
            pass  # not base64 after all: the whole text is the key
    return secret.encode()


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header's value for ``body`` sent as ``webhook_id`` at ``timestamp``."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """Whether ``body`` with ``headers`` (names in any case) was signed with ``secret`` no more than
    ``tolerance_s`` from ``now`` (Unix seconds): what a receiver checks before it trusts a call."""
    lowered = {name.lower(): value for name, value in headers.items()}
    webhook_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not webhook_id or not stamp or not signatures:
        return False
    try:
        timestamp = int(stamp)
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, webhook_id, timestamp, body)
    # The header may hold several space-separated signatures (a receiver rotating its secret).
    return any(hmac.compare_digest(expected, given) for given in signatures.split())


def webhook_id(facts: MessageFacts, event_id: int) -> str:
    """The id of the call that tells of ``event_id`` (the same on every attempt)."""
    return f"hw_{facts.public_id}_{event_id}"


def webhook_body(facts: MessageFacts, event_id: int, base_url: str) -> bytes:
    """The JSON body of the call that tells of event ``event_id`` (module docstring)."""
    data: dict[str, object] = {
        "alert_id": facts.alert_id,
        "alert_public_id": facts.public_id,
        "event_id": event_id,
        "municipality_id": facts.municipality_id,
        "kind": facts.kind,
        "severity": facts.severity,
        "escalation_level": facts.escalation_level,
        "url": alert_link(base_url, facts.alert_id),
    }
    if facts.initials is not None:
        data["patient_initials"] = facts.initials
    payload = {
        "type": f"alert.{facts.event_action}",
        "timestamp": facts.event_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    return orjson.dumps(payload)


def signed_headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header of a call: content type, the three Standard Webhooks headers."""
    return {
        "content-type": "application/json",
        "user-agent": "homewatch-gateway",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
    }


def post_webhook(client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str]) -> None:
    """POST ``body`` to ``url``; :class:`WebhookFailed` unless the receiver answered 2xx in time."""
    try:
        response = client.post(
            url, content=body, headers=dict(headers), timeout=WEBHOOK_TIMEOUT_S, follow_redirects=False
        )
    except httpx.HTTPError as exc:
        raise WebhookFailed(f"{url}: {type(exc).__name__}: {exc}") from exc
    if not response.is_success:
        raise WebhookFailed(f"{url} answered {response.status_code}", status=response.status_code)
