"""Fixtures of the web API tests: a migrated database with a small world in it, a pool, the app, a client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from seed import World, seed_world

from gateway.api.app import create_app
from gateway.settings import GatewaySettings


@pytest.fixture
def settings(database_url: str) -> GatewaySettings:
    # The API tests read the pages in the source language (English); the Danish default is proven by
    # test_i18n.py and the browser tests.
    return GatewaySettings(
        database_url=database_url, secret_key="test-secret-of-the-api-tests", default_language="en"
    )


@pytest.fixture
def world(database_url: str) -> World:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return seed_world(conn, datetime.now(UTC))


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool[Any]]:
    with ConnectionPool(database_url, min_size=1, max_size=4, open=True) as opened:
        yield opened


@pytest.fixture
def app(settings: GatewaySettings, pool: ConnectionPool[Any]) -> FastAPI:
    return create_app(settings, pool)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A separate connection to look at what the app wrote."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn
