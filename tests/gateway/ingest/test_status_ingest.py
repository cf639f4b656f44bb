"""Status ingest against a real PostgreSQL: stored for an enrolled hub, only its own devices; a refused
status quarantined with its reason; a retained copy never moves the hub's last contact forward."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
import psycopg
from observation_factory import BASE_TIME, Home

from gateway.ingest.status_ingest import store_statuses

HOME = Home()
OTHER = Home(municipality_id="0147", patient_id="p2", hub_id="hub2", oximeter_id="OXI2", cuff_id="BPC2")
TOPIC = f"homewatch/v1/{HOME.municipality_id}/{HOME.hub_id}/status"


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retained: bool = False


def _status(*devices: tuple[str, int | None]) -> bytes:
    return orjson.dumps(
        {"state": "online", "devices": [{"id": d, "connected": True, "battery": b} for d, b in devices]}
    )


def _rows(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT s.hub_id, d.device_id, d.battery FROM hub_status s"
        " LEFT JOIN hub_status_devices d USING (hub_id) ORDER BY 1, 2"
    ).fetchall()


def test_status_stores_only_the_hubs_own_enrolled_devices(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        HOME.enroll(conn)
        OTHER.enroll(conn)
        payload = _status((HOME.oximeter_id, 55), (OTHER.oximeter_id, 1), ("NOBODY", 2))
        decisions = store_statuses(conn, [Message(TOPIC, payload)], received_at=BASE_TIME)
        assert [d.device_id for d in decisions[0].dropped] == [OTHER.oximeter_id, "NOBODY"]
        assert _rows(conn) == [(HOME.hub_id, HOME.oximeter_id, 55)]
        dropped = conn.execute("SELECT devices_dropped, online_at FROM hub_status").fetchone()
        assert dropped == (2, BASE_TIME)


def test_refused_statuses_are_quarantined_and_do_not_stop_the_good_one(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        HOME.enroll(conn)
        OTHER.enroll(conn)
        messages = [
            Message(TOPIC, b"{not json"),
            Message(TOPIC, _status((HOME.oximeter_id, 101))),
            Message(
                f"homewatch/v1/{OTHER.municipality_id}/{HOME.hub_id}/status", _status((HOME.oximeter_id, 9))
            ),
            Message("homewatch/v1/0101/hub 1/status", b"{}"),
            Message(TOPIC, _status((HOME.oximeter_id, 40))),
        ]
        store_statuses(conn, messages, received_at=BASE_TIME)
        reasons = [r[0].split(":")[0] for r in conn.execute("SELECT reason FROM quarantine ORDER BY id")]
        assert reasons == ["not-json", "battery-out-of-range", "unknown-hub", "bad-topic"]
        assert _rows(conn) == [(HOME.hub_id, HOME.oximeter_id, 40)]


def test_a_retained_copy_never_moves_last_contact_forward(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        HOME.enroll(conn)
        live = Message(TOPIC, _status((HOME.oximeter_id, 50)))
        store_statuses(conn, [live], received_at=BASE_TIME)
        later = BASE_TIME + timedelta(hours=3)
        store_statuses(
            conn, [Message(TOPIC, _status((HOME.oximeter_id, 48)), retained=True)], received_at=later
        )
        assert conn.execute("SELECT online_at, received_at FROM hub_status").fetchone() == (BASE_TIME, later)
        store_statuses(conn, [Message(TOPIC, b'{"state": "offline"}')], received_at=later)
        device = conn.execute("SELECT battery, connected FROM hub_status_devices").fetchone()
        assert device == (48, False)  # the Last Will keeps the battery, marks the device not connected
