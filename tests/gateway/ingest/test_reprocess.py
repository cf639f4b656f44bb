"""Issue 20: readings of a device assigned to nobody are held in the quarantine, never attributed, and
stored once an enrolment fix assigns the device and an administrator re-processes them.

Real PostgreSQL throughout. The first test goes the whole live way: a hub publishes over a real
Mosquitto, the ingest worker decides and stores, the hub gets its error report and its receipt. The
others feed the worker's own database side (``BatchStore``: the same decide-and-store transaction) to
put rows in the quarantine, then re-process them with ``gateway.ingest.reprocess``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from observation_factory import BASE_TIME, Home, bundle, identifier
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from fhir_contract.limits import MAX_CLOCK_AHEAD
from gateway.broker import BrokerEndpoint
from gateway.ingest.batch_store import BatchStore
from gateway.ingest.mqtt_ingest import IngestWorker
from gateway.ingest.reprocess import Reprocessed, reprocess, reprocess_matching
from gateway.settings import GatewaySettings
from gateway.store import quarantine as q
from gateway.store.audit import Attempt
from gateway.store.repository import Device, Hub, enroll_device, enroll_hub, quarantine

HOME = Home()
# Another municipality's home (its rows must stay invisible to 0101's scope).
ELSEWHERE = Home(
    municipality_id="0147", patient_id="p47", hub_id="hub47", oximeter_id="OXI47", cuff_id="BPC47"
)
NEW_DEVICE = "OXI-NEW"
ADMIN = Attempt("admin-kbh", "0101", "municipality_admin")
MAX_BYTES = 1_000_000
OWN = q.Scope("0101")


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@dataclass
class Inbound:
    topic: str
    payload: bytes
    arrived: float = field(default_factory=time.monotonic)


@pytest.fixture
def enrolled(database_url: str) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        HOME.enroll(conn)
        ELSEWHERE.enroll(conn)
    return database_url


@pytest.fixture
def db(enrolled: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(enrolled, autocommit=True) as conn:
        yield conn


def ingest(database_url: str, *messages: tuple[str, bytes]) -> None:
    """Decide and store ``messages`` as an ingest worker does (one batch, one transaction)."""
    store = BatchStore(GatewaySettings(database_url=database_url), "test-ingest")
    try:
        store.handle([Inbound(topic, payload) for topic, payload in messages])
    finally:
        store.close()


def stored(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str, str]]:
    rows = conn.execute("SELECT identifier, patient_id, device_id, hub_id FROM observations ORDER BY 1")
    return [tuple(row) for row in rows.fetchall()]


def open_rows(
    conn: psycopg.Connection[Any], scope: q.Scope, code: str | None = None
) -> list[q.QuarantineRow]:
    return list(q.quarantine_page(conn, scope, q.QuarantineFilter(code=code)).rows)


def run(conn: psycopg.Connection[Any], row_id: int, scope: q.Scope = OWN) -> Reprocessed:
    return reprocess(
        conn, row_id, scope=scope, actor=ADMIN, client="test", max_bytes=MAX_BYTES, notify_channel=None
    )


def assign_new_device(conn: psycopg.Connection[Any]) -> None:
    enroll_device(
        conn, Device(HOME.municipality_id, NEW_DEVICE, HOME.hub_id, HOME.patient_id, "pulse-oximeter")
    )


class TestHub:
    """A hub on the broker: publishes at QoS 1, collects its errors and receipts."""

    __test__ = False

    def __init__(self, endpoint: BrokerEndpoint) -> None:
        protocol = MQTTProtocolVersion.MQTTv5 if endpoint.mqtt5 else MQTTProtocolVersion.MQTTv311
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"hub-{uuid.uuid4().hex[:8]}", protocol=protocol
        )
        self.errors: list[dict[str, Any]] = []
        self.receipts: list[dict[str, Any]] = []
        subscribed = threading.Event()

        def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
            kept = self.errors if message.topic.endswith("/errors") else self.receipts
            kept.append(orjson.loads(message.payload))

        self.client.on_message = on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()
        root = HOME.errors_topic.removesuffix("/errors")
        self.client.subscribe([(f"{root}/errors", 1), (f"{root}/receipts", 1)])
        assert subscribed.wait(10)

    def publish(self, payload: bytes) -> None:
        info = self.client.publish(HOME.topic, payload, qos=1)
        info.wait_for_publish(timeout=20)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_reading_of_an_unassigned_device_is_held_then_stored_for_the_hubs_patient_after_the_fix(
    enrolled: str, db: psycopg.Connection[Any], broker: BrokerEndpoint
) -> None:
    unassigned, neighbour = HOME.spo2(91, device_id=NEW_DEVICE), HOME.spo2(96, BASE_TIME.replace(minute=5))
    message = orjson.loads(bundle([unassigned, neighbour]))
    message["id"] = "batch-1"
    settings = GatewaySettings(
        database_url=enrolled, mqtt_host=broker.host, mqtt_port=broker.port, mqtt_v5=broker.mqtt5
    )
    worker = IngestWorker(settings, endpoint=broker, client_id=f"ingest-{broker.port}")
    worker.start()
    hub = TestHub(broker)
    try:
        assert worker.wait_until_subscribed(10)
        hub.publish(orjson.dumps(message))
        assert wait_for(lambda: len(hub.errors) == 1 and len(hub.receipts) == 1)
    finally:
        hub.close()
        worker.stop()
    # The hub is told, under the new code, and the Bundle is receipted: the gateway holds the reading.
    [issue] = hub.errors[0]["issue"]
    assert issue["details"]["coding"][0]["code"] == "unassigned-device"
    assert issue["expression"] == ["Bundle.entry[0].resource"]
    assert hub.receipts == [{"bundle": "batch-1", "accepted": 1, "rejected": 1}]
    # Held, not attributed: only the neighbour is stored.
    assert [row[0] for row in stored(db)] == [identifier(neighbour)]
    [held] = open_rows(db, q.Scope("0101"))
    assert (held.code, held.hub_id, held.hub_state) == ("unassigned-device", HOME.hub_id, "enrolled")
    assert identifier(unassigned) in q.quarantine_row(db, held.id, q.Scope("0101")).payload  # type: ignore[union-attr]

    assign_new_device(db)
    done = run(db, held.id)

    assert (done.resolution, done.stored, done.already_stored, done.refused) == (
        "reprocessed-stored",
        1,
        0,
        (),
    )
    assert (identifier(unassigned), HOME.patient_id, NEW_DEVICE, HOME.hub_id) in stored(db)
    row = q.quarantine_row(db, held.id, q.Scope("0101"))
    assert row is not None and (row.resolution, row.resolved_by) == ("reprocessed-stored", "admin-kbh")
    assert open_rows(db, q.Scope("0101")) == []
    audited = db.execute(
        "SELECT username, action, patient_id, patient_municipality_id, detail FROM audit_log"
    ).fetchall()
    assert [(a[0], a[1], a[2], a[3]) for a in audited] == [
        ("admin-kbh", "reprocess-quarantine", "p1", "0101")
    ]
    assert f"quarantine row {held.id}" in audited[0][4]


def test_a_row_refused_again_stays_held_with_todays_reason_and_names_its_predecessor(
    enrolled: str, db: psycopg.Connection[Any]
) -> None:
    ingest(enrolled, (HOME.topic, bundle([HOME.spo2(91, device_id=NEW_DEVICE)])))
    [held] = open_rows(db, q.Scope("0101"))

    again = run(db, held.id)  # nobody assigned the device yet

    assert again.resolution == "still-refused" and again.stored == 0
    assert [code for code, _ in again.refused] == ["unassigned-device"]
    assert stored(db) == []
    [successor] = open_rows(db, q.Scope("0101"))
    assert successor.id != held.id and successor.reprocessed_from == held.id
    assert successor.code == "unassigned-device" and "not assigned to hub hub1" in successor.reason
    assert [r.id for r in q.successors(db, held.id)] == [successor.id]
    first = q.quarantine_row(db, held.id, q.Scope("0101"))
    assert first is not None and first.resolution == "still-refused"
    assert first.resolution_note is not None and "unassigned-device" in first.resolution_note

    assign_new_device(db)
    assert run(db, successor.id).resolution == "reprocessed-stored"
    assert [row[2] for row in stored(db)] == [NEW_DEVICE]


def test_reprocessing_twice_stores_once(enrolled: str, db: psycopg.Connection[Any]) -> None:
    reading = HOME.spo2(91, device_id=NEW_DEVICE)
    # The hub sent the same reading twice before the fix: two rows hold it.
    ingest(enrolled, (HOME.topic, bundle([reading])))
    ingest(enrolled, (HOME.topic, bundle([reading])))
    first, second = sorted(r.id for r in open_rows(db, q.Scope("0101")))
    assign_new_device(db)

    assert (run(db, first).stored, run(db, second).already_stored) == (1, 1)
    with pytest.raises(q.QuarantineRefused) as refused:
        run(db, first)
    assert refused.value.kind == "resolved"
    assert [row[0] for row in stored(db)] == [identifier(reading)]
    assert q.quarantine_row(db, second, q.Scope("0101")).resolution == "reprocessed-stored"  # type: ignore[union-attr]


def test_a_removed_device_is_unassigned_and_its_readings_wait_for_it_to_be_assigned_again(
    enrolled: str, db: psycopg.Connection[Any]
) -> None:
    db.execute("UPDATE devices SET removed_at = now() WHERE id = %s", (HOME.oximeter_id,))
    reading = HOME.spo2(94)
    ingest(enrolled, (HOME.topic, bundle([reading])))
    [held] = open_rows(db, q.Scope("0101"), code="unassigned-device")
    assert stored(db) == []
    enroll_device(
        db, Device(HOME.municipality_id, HOME.oximeter_id, HOME.hub_id, HOME.patient_id, "pulse-oximeter")
    )
    assert run(db, held.id).resolution == "reprocessed-stored"
    assert stored(db) == [(identifier(reading), HOME.patient_id, HOME.oximeter_id, HOME.hub_id)]


def test_a_device_moved_to_another_patients_hub_stores_nothing_for_either(
    enrolled: str, db: psycopg.Connection[Any]
) -> None:
    ingest(enrolled, (HOME.topic, bundle([HOME.spo2(91, device_id=NEW_DEVICE)])))
    [held] = open_rows(db, q.Scope("0101"))
    # The "fix" assigns the device to another patient's hub: the reading names p1, so it stays held.
    neighbour = Home(patient_id="p2", hub_id="hub2", oximeter_id="OXI2", cuff_id="BPC2")
    neighbour.enroll(db)
    enroll_device(db, Device("0101", NEW_DEVICE, "hub2", "p2", "pulse-oximeter"))
    done = run(db, held.id)
    assert done.resolution == "still-refused" and [c for c, _ in done.refused] == ["unassigned-device"]
    assert stored(db) == []


def test_a_whole_message_of_a_hub_not_enrolled_yet_is_stored_once_it_is(
    enrolled: str, db: psycopg.Connection[Any]
) -> None:
    later = Home(patient_id="p1", hub_id="hub-later", oximeter_id="OXI-L", cuff_id="BPC-L")
    readings = [
        later.spo2(93),
        later.spo2(92, BASE_TIME.replace(minute=9)),
        later.spo2(90, BASE_TIME.replace(minute=19)),
    ]
    ingest(enrolled, (later.topic, bundle(readings)))
    [held] = open_rows(db, q.Scope("0101"))
    assert (held.code, held.hub_state) == ("unknown-hub", "unknown")
    enroll_hub(db, Hub("0101", "hub-later", "p1"))
    enroll_device(db, Device("0101", "OXI-L", "hub-later", "p1", "pulse-oximeter"))
    db.execute("UPDATE devices SET removed_at = now() WHERE id = 'OXI-L'")  # removed again before the fix
    partly = run(db, held.id)
    assert (partly.resolution, partly.stored) == ("still-refused", 0)
    # Refused entry by entry now (the hub is known): three rows, each held under the device's code.
    successors = q.successors(db, held.id)
    assert [r.code for r in successors] == ["unassigned-device"] * 3
    enroll_device(db, Device("0101", "OXI-L", "hub-later", "p1", "pulse-oximeter"))
    result = reprocess_matching(
        db,
        q.Scope("0101"),
        q.QuarantineFilter(code="unassigned-device", hub_id="hub-later"),
        actor=ADMIN,
        client="test",
        max_bytes=MAX_BYTES,
        notify_channel=None,
    )
    assert [d.resolution for d in result.done] == ["reprocessed-stored"] * 3 and result.refused == ()
    assert sorted(r[0] for r in stored(db)) == sorted(identifier(r) for r in readings)


def test_a_revoked_hubs_row_shows_the_hub_revoked_and_is_not_stored(
    enrolled: str, db: psycopg.Connection[Any]
) -> None:
    db.execute("UPDATE hubs SET revoked_at = now(), revoked_by = 'ops' WHERE id = %s", (HOME.hub_id,))
    ingest(enrolled, (HOME.topic, bundle([HOME.spo2(95)])))
    [held] = open_rows(db, q.Scope("0101"))
    assert (held.code, held.hub_state) == ("unknown-hub", "revoked")
    assert run(db, held.id).resolution == "still-refused"
    assert stored(db) == []


def test_another_municipalitys_rows_are_unknown_in_a_municipalitys_scope(
    enrolled: str, db: psycopg.Connection[Any]
) -> None:
    ingest(enrolled, (ELSEWHERE.topic, bundle([ELSEWHERE.spo2(91, device_id="OXI47-NEW")])))
    [theirs] = open_rows(db, q.Scope("0147"))
    assert open_rows(db, q.Scope("0101")) == [] and q.quarantine_row(db, theirs.id, q.Scope("0101")) is None
    with pytest.raises(q.QuarantineRefused) as refused:
        run(db, theirs.id, q.Scope("0101"))
    assert refused.value.kind == "unknown"
    assert q.quarantine_row(db, theirs.id, q.Scope("0147")).is_open  # type: ignore[union-attr]
    assert db.execute("SELECT count(*) FROM audit_log").fetchone() == (0,)


def test_rows_of_no_known_municipality_are_seen_only_when_asked_for(
    enrolled: str, db: psycopg.Connection[Any]
) -> None:
    ingest(
        enrolled,
        ("homewatch/v1/0101/hub 1/observations", b"{}"),  # a bad topic: no municipality
        ("homewatch/v1/9999/hub9/observations", bundle([HOME.spo2(90)])),  # a municipality nobody enrolled
        (HOME.topic, bundle([HOME.spo2(91, device_id=NEW_DEVICE)])),
    )
    assert [r.code for r in open_rows(db, q.Scope("0101"))] == ["unassigned-device"]
    unowned = open_rows(db, q.Scope("0101", owned=False, unowned=True))
    assert sorted((r.code, r.municipality_id) for r in unowned) == [
        ("bad-topic", None),
        ("unknown-hub", "9999"),
    ]
    assert not any(r.municipality_known for r in unowned)
    assert len(open_rows(db, q.Scope.everything())) == 3
    assert q.open_counts(db, q.Scope("0101", unowned=True)) == [
        ("bad-topic", 1),
        ("unassigned-device", 1),
        ("unknown-hub", 1),
    ]


def test_the_window_of_effective_times_ends_at_the_rows_arrival_not_now(
    enrolled: str, db: psycopg.Connection[Any]
) -> None:
    # A reading dated two hours after it arrived (a device clock ahead): implausible then, and re-processing
    # it two days later must not make it plausible by waiting.
    arrived = datetime.now(UTC) - timedelta(days=2)
    ahead = HOME.spo2(92, arrived + MAX_CLOCK_AHEAD + timedelta(hours=2))
    quarantine(db, HOME.topic, "0101", HOME.hub_id, "implausible-time: ... (entry 0)", orjson.dumps(ahead))
    db.execute("UPDATE quarantine SET received_at = %s", (arrived,))
    [held] = open_rows(db, q.Scope("0101"))
    done = run(db, held.id)
    assert done.resolution == "still-refused" and [c for c, _ in done.refused] == ["implausible-time"]
    assert stored(db) == []


def test_a_hubs_status_is_not_reprocessed_but_can_be_dismissed(
    enrolled: str, db: psycopg.Connection[Any]
) -> None:
    topic = HOME.topic.removesuffix("observations") + "status"
    quarantine(db, topic, "0101", HOME.hub_id, "not-a-status: payload is not JSON", b"garbage")
    [held] = open_rows(db, q.Scope("0101"))
    with pytest.raises(q.QuarantineRefused) as refused:
        run(db, held.id)
    assert refused.value.kind == "not-a-reading"
    with db.transaction():
        taken = q.take_open(db, held.id, q.Scope("0101"))
        q.resolve(db, taken, q.DISMISSED, "hub restarted; newer status arrived", actor=ADMIN, client="test")
    row = q.quarantine_row(db, held.id, q.Scope("0101"))
    assert row is not None and (row.resolution, row.resolution_note) == (
        "dismissed",
        "hub restarted; newer status arrived",
    )
