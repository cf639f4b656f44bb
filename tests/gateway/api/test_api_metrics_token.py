"""Issue 15, item 4: ``/metrics`` asks for ``HOMEWATCH_METRICS_TOKEN`` outside development, and without a
configured token it refuses everyone rather than answering anyone.

Before the fix a gateway without a metrics token answered ``/metrics`` to anybody, production or not.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from gateway.api.app import create_app
from gateway.settings import GatewaySettings

SECRET = secrets.token_urlsafe(32)


def _metrics(settings: GatewaySettings, pool: ConnectionPool[Any], token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    with TestClient(create_app(settings, pool)) as client:
        return client.get("/metrics", headers=headers).status_code


def test_production_without_a_metrics_token_refuses_everyone(
    database_url: str, pool: ConnectionPool[Any]
) -> None:
    settings = GatewaySettings(environment="production", secret_key=SECRET, database_url=database_url)
    assert _metrics(settings, pool) == 401
    assert _metrics(settings, pool, "") == 401
    assert _metrics(settings, pool, "anything") == 401


def test_production_with_a_metrics_token_asks_for_exactly_it(
    database_url: str, pool: ConnectionPool[Any]
) -> None:
    token = secrets.token_urlsafe(24)
    settings = GatewaySettings(
        environment="production", secret_key=SECRET, metrics_token=token, database_url=database_url
    )
    assert _metrics(settings, pool) == 401
    assert _metrics(settings, pool, token[:-1]) == 401
    assert _metrics(settings, pool, token) == 200


def test_development_without_a_metrics_token_is_open(database_url: str, pool: ConnectionPool[Any]) -> None:
    assert _metrics(GatewaySettings(environment="development", database_url=database_url), pool) == 200
