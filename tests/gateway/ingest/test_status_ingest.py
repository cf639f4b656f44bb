"""Status ingest against a real PostgreSQL: stored for an enrolled hub, only its own devices; a refused
status quarantined with its reason; a retained copy never moves the hub's last contact forward. Issue 20:
the fleet's figures stored (a wrong one left out and counted), and the status history written only when
something that matters changed, trimmed to its window and its rows per hub."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
import psycopg
from observation_factory import BASE_TIME, Home

from gateway.ingest.status_ingest import store_statuses
from gateway.store.hub_status import HISTORY_RETENTION, HISTORY_ROWS_PER_HUB

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


# --- issue 20: the fleet's figures and the status history -------------------------------------------


def _fleet_status(
    *,
    state: str = "online",
    battery: int | None = 80,
    connected: bool = True,
    errors: int = 0,
    error_type: str | None = None,
    evicted: dict[str, int] | None = None,
    **extra: Any,
) -> bytes:
    device = {
        "id": HOME.oximeter_id,
        "connected": connected,
        "battery": battery,
        "clock": "in-sync",
        "clockOffsetS": 0.0,
        "errors": errors,
        "lastError": None if error_type is None else {"type": error_type, "message": "it failed"},
    }
    body: dict[str, Any] = {
        "state": state,
        "agentVersion": "0.1.0",
        "queueDepth": 4,
        "awaitingReceipt": 2,
        "evicted": evicted or {},
        "outboxFull": False,
        "heldInMemory": 0,
        "configVersion": "3",
        "devices": [device],
    }
    return orjson.dumps(body | extra)


def _history(conn: psycopg.Connection[Any]) -> list[tuple[bool, list[str]]]:
    return [
        (online, changes)
        for online, changes in conn.execute(
            "SELECT online, changes FROM hub_status_history ORDER BY received_at, id"
        ).fetchall()
    ]


def test_the_fleet_figures_are_stored_and_the_last_will_keeps_them(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        HOME.enroll(conn)
        payload = _fleet_status(evicted={"spo2": 2, "body-weight": 5}, error_type="GattError", errors=6)
        store_statuses(conn, [Message(TOPIC, payload)], received_at=BASE_TIME)
        hub = (
            "agent_version, queue_depth, awaiting_receipt, evicted, evicted_total, outbox_full,"
            " held_in_memory"
        )
        stored = conn.execute(f"SELECT {hub}, config_applied FROM hub_status").fetchone()
        assert stored == ("0.1.0", 4, 2, {"spo2": 2, "body-weight": 5}, 7, False, 0, "3")
        device = conn.execute(
            "SELECT clock, clock_offset_s, errors, last_error_type, last_error FROM hub_status_devices"
        ).fetchone()
        assert device == ("in-sync", 0.0, 6, "GattError", "GattError: it failed")
        will = b'{"state": "offline", "agentVersion": "0.1.1", "queueDepth": null}'
        store_statuses(conn, [Message(TOPIC, will)], received_at=BASE_TIME + timedelta(minutes=5))
        after = conn.execute(f"SELECT {hub}, config_applied, online FROM hub_status").fetchone()
        assert after == ("0.1.1", 4, 2, {"spo2": 2, "body-weight": 5}, 7, False, 0, "3", False)


def test_a_wrong_fleet_field_is_left_out_counted_and_the_status_stored(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        HOME.enroll(conn)
        store_statuses(
            conn, [Message(TOPIC, _fleet_status(queueDepth=-4, outboxFull="no"))], received_at=BASE_TIME
        )
        row = conn.execute(
            "SELECT online, queue_depth, outbox_full, fields_ignored, ignored_reason FROM hub_status"
        )
        assert row.fetchone() == (True, None, None, 2, "queueDepth -4 is not 0..2147483647")
        assert conn.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)


def test_history_gets_a_row_only_when_something_that_matters_changed(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        HOME.enroll(conn)
        statuses = [
            _fleet_status(),  # first
            _fleet_status(queueDepth=90, awaitingReceipt=40),  # outbox figures move: no row
            _fleet_status(errors=5000, error_type="ConnectError"),  # a sleeping device's routine: no row
            _fleet_status(battery=20),  # low
            _fleet_status(battery=15),  # still low: no row
            _fleet_status(battery=15, connected=False),
            _fleet_status(battery=15, connected=False, error_type="GattError"),
            _fleet_status(battery=15, connected=False, error_type="GattError", evicted={"spo2": 3}),
            _fleet_status(
                battery=15, connected=False, error_type="GattError", evicted={"spo2": 9}
            ),  # same order
            _fleet_status(battery=15, connected=False, error_type="GattError", evicted={"spo2": 12}),
            _fleet_status(
                battery=15, connected=False, error_type="GattError", evicted={"spo2": 12}, configVersion="4"
            ),
            b'{"state": "offline", "agentVersion": "0.1.0", "queueDepth": null}',
            b'{"state": "offline", "agentVersion": "0.1.0", "queueDepth": null}',  # again: no row
        ]
        for minute, payload in enumerate(statuses):
            at = BASE_TIME + timedelta(minutes=minute)
            store_statuses(conn, [Message(TOPIC, payload)], received_at=at)
        assert _history(conn) == [
            (True, ["first"]),
            (True, ["battery"]),
            (True, ["connected"]),
            (True, ["error"]),
            (True, ["evictions"]),
            (True, ["evictions"]),
            (True, ["config"]),
            (False, ["offline"]),
        ]
        context = conn.execute(
            "SELECT queue_depth, awaiting_receipt, live FROM hub_status_history ORDER BY id LIMIT 1"
        ).fetchone()
        assert context == (4, 2, True)


def test_a_retained_copy_on_subscribing_adds_no_row_when_nothing_changed(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        HOME.enroll(conn)
        store_statuses(conn, [Message(TOPIC, _fleet_status())], received_at=BASE_TIME)
        later = BASE_TIME + timedelta(hours=1)
        store_statuses(conn, [Message(TOPIC, _fleet_status(), retained=True)], received_at=later)
        assert _history(conn) == [(True, ["first"])]


def _old_rows(conn: psycopg.Connection[Any], times: list[Any]) -> None:
    conn.execute(
        "INSERT INTO hub_status_history"
        " (municipality_id, hub_id, received_at, live, online, changes, state)"
        " SELECT municipality_id, hub_id, t, true, true, '{old}', '{}'"
        " FROM hub_status, unnest(%s::timestamptz[]) t",
        (times,),
    )


def test_history_older_than_its_window_goes_when_the_hub_writes_a_row(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        HOME.enroll(conn)
        store_statuses(conn, [Message(TOPIC, _fleet_status())], received_at=BASE_TIME)
        _old_rows(conn, [BASE_TIME - HISTORY_RETENTION - timedelta(days=1), BASE_TIME - timedelta(days=80)])
        store_statuses(conn, [Message(TOPIC, _fleet_status())], received_at=BASE_TIME + timedelta(minutes=1))
        assert len(_history(conn)) == 3  # nothing changed: no row written, nothing trimmed
        later = BASE_TIME + timedelta(minutes=2)
        store_statuses(conn, [Message(TOPIC, _fleet_status(battery=10))], received_at=later)
        kept = conn.execute("SELECT received_at FROM hub_status_history ORDER BY received_at").fetchall()
        assert [t for (t,) in kept] == [BASE_TIME - timedelta(days=80), BASE_TIME, later]


def test_history_keeps_at_most_its_rows_per_hub(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        HOME.enroll(conn)
        store_statuses(conn, [Message(TOPIC, _fleet_status())], received_at=BASE_TIME)
        _old_rows(conn, [BASE_TIME - timedelta(seconds=s) for s in range(1, HISTORY_ROWS_PER_HUB + 50)])
        later = BASE_TIME + timedelta(minutes=1)
        store_statuses(conn, [Message(TOPIC, _fleet_status(battery=10))], received_at=later)
        found = conn.execute("SELECT count(*), max(received_at) FROM hub_status_history").fetchone()
        assert found == (HISTORY_ROWS_PER_HUB, later)
        newest = conn.execute(
            "SELECT changes FROM hub_status_history ORDER BY received_at DESC, id DESC LIMIT 1"
        ).fetchone()
        assert newest == (["battery"],)
