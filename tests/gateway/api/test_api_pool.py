"""The web app's pool (``gateway.api.pool.open_pool``) survives PostgreSQL ending its sessions.

Real PostgreSQL: every pooled connection is filled, then killed with ``pg_terminate_backend`` from an
admin connection, as a database restart or failover would; every request after that must succeed.
"""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict
from seed import World

from gateway.api.app import create_app
from gateway.api.auth import mint_token
from gateway.api.pool import MAX_CONNECTIONS, open_pool
from gateway.settings import GatewaySettings


def _terminate_sessions(admin_url: str, database_url: str) -> int:
    """End every session of ``database_url``'s database, waiting until each is gone; how many there were."""
    database = conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_every_request_after_postgresql_ends_the_pools_sessions_succeeds(
    database_url: str, pg_admin_url: str, settings: GatewaySettings, world: World
) -> None:
    token = mint_token(settings, role="nurse", municipality_id=world.own, subject=world.nurse)
    nurse = {"Authorization": f"Bearer {token}"}
    with open_pool(database_url) as pool:
        held = [pool.getconn() for _ in range(MAX_CONNECTIONS)]  # the pool now has all its connections
        for conn in held:
            pool.putconn(conn)
        assert _terminate_sessions(pg_admin_url, database_url) == MAX_CONNECTIONS
        with TestClient(create_app(settings, pool), raise_server_exceptions=False) as client:
            requests = 2 * MAX_CONNECTIONS
            statuses = [client.get("/fhir/Patient/p-high", headers=nurse) for _ in range(requests)]
    assert [response.status_code for response in statuses] == [200] * requests
