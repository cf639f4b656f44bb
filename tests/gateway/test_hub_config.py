"""The hub's retained configuration from the gateway (gateway/hub_config.py, gateway/store/hub_config.py,
gateway/config_job.py): a payload the hub's own parser accepts, published retained with a real broker
and a real PostgreSQL, marked published, and published later by the config job when the broker was away.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge_agent.config import DeviceKind, HubConfig, MqttConfig
from edge_agent.remote_config import RemoteConfig, merge, parse_remote
from fhir_contract.plan import MAX_TIMES, MEASUREMENTS, PlanItem, parse_plan, plan_json
from gateway.broker import BrokerEndpoint, EmbeddedBroker, free_port
from gateway.broker_session import BrokerAddress
from gateway.config_job import ConfigJob
from gateway.hub_config import (
    SETTINGS_KEYS,
    ConfigPublishError,
    MqttConfigPublisher,
    UnknownHub,
    config_payload,
    config_publisher,
    config_topic,
    publish_hub_config,
)
from gateway.settings import GatewaySettings
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.hub_config import ConfigDevice, HubConfigRecord, lagging_hubs, lock_hub_config
from gateway.store.repository import Municipality, Patient

MUNICIPALITY, PATIENT, HUB, OTHER_HUB = "0101", "p-cfg", "hub-cfg", "hub-other"
TOPIC = f"homewatch/v1/{MUNICIPALITY}/{HUB}/config"
KINDS: tuple[str, ...] = get_args(DeviceKind)
PLAN = parse_plan(
    [
        {"measurement": "blood-pressure", "times": ["08:00", "20:00"], "grace_minutes": 120},
        {"measurement": "weight", "times": ["07:30"], "days": [1, 3, 5], "grace_minutes": 240},
    ]
)


def _record(**changes: Any) -> HubConfigRecord:
    values: dict[str, Any] = {
        "municipality_id": MUNICIPALITY,
        "hub_id": HUB,
        "patient_id": PATIENT,
        "devices": (ConfigDevice("cuff-1", "blood-pressure-cuff", "C4:7C:8D:6A:12:0F"),),
        "settings": {},
        "config_version": 3,
        "config_published": 2,
        "revoked": False,
    }
    return HubConfigRecord(**(values | changes))


# -- the payload (pure) ------------------------------------------------------------------------------


def test_the_payload_has_exactly_the_keys_the_hub_accepts() -> None:
    assert set(RemoteConfig.model_fields) == {
        "version", "patient_id", "devices", "plan", "residents", "messages", *SETTINGS_KEYS
    }  # fmt: skip
    settings_ = {
        "timezone": "Europe/Copenhagen",
        "bundle_size": 20,
        "max_connections": 3,
        "status_interval_s": 60,
    }
    payload = config_payload(_record(settings=settings_, plan=PLAN, residents=((PATIENT, "Ane"),)))
    assert set(orjson.loads(payload)) == set(RemoteConfig.model_fields)
    remote = parse_remote(payload)
    assert remote.version == "3" and remote.patient_id == PATIENT
    assert remote.plan is not None and parse_plan(list(remote.plan)) == PLAN
    assert [(d.id, d.kind, d.address) for d in remote.devices or ()] == [
        ("cuff-1", "blood-pressure-cuff", "C4:7C:8D:6A:12:0F")
    ]
    assert (remote.timezone, remote.bundle_size, remote.max_connections, remote.status_interval_s) == (
        "Europe/Copenhagen",
        20,
        3,
        60,
    )


def test_a_device_without_an_address_and_a_key_the_hub_refuses_are_left_out_not_sent() -> None:
    record = _record(
        devices=(ConfigDevice("oxi-1", "pulse-oximeter", None), ConfigDevice("scale-1", "scale", "AA:BB")),
        settings={"hub_id": "someone-else", "mqtt": {"host": "evil.example"}, "timezone": None},
    )
    payload = config_payload(record)
    remote = parse_remote(payload)  # the hub would refuse the whole message for any of those
    assert [d.id for d in remote.devices or ()] == ["scale-1"]
    assert set(orjson.loads(payload)) == {"version", "patient_id", "devices", "plan", "messages"}


def test_no_devices_is_an_empty_list_so_the_hub_drops_its_local_ones() -> None:
    assert parse_remote(config_payload(_record(devices=()))).devices == ()


def test_no_plan_is_an_empty_list_so_a_removed_plan_reaches_the_hub() -> None:
    local = HubConfig(
        municipality=MUNICIPALITY,
        hub_id=HUB,
        patient_id=PATIENT,
        devices=(),
        mqtt=MqttConfig(host="127.0.0.1"),
        outbox_path=Path("outbox.sqlite3"),  # never opened
        plan=tuple(plan_json(PLAN)),
    )
    assert local.plan_items == PLAN  # the plan the hub runs, from its file or an earlier config
    remote = parse_remote(config_payload(_record(plan=())))
    assert remote.plan == ()
    assert merge(local, remote).plan_items == ()  # the hub stops reminding


def test_an_unreadable_stored_plan_is_left_out_so_the_hub_keeps_its_own() -> None:
    payload = config_payload(_record(plan=None))
    assert "plan" not in orjson.loads(payload) and parse_remote(payload).plan is None


def test_the_same_configuration_is_always_the_same_bytes() -> None:
    a = _record(settings={"timezone": "Europe/Copenhagen", "bundle_size": 5})
    b = _record(settings={"bundle_size": 5, "timezone": "Europe/Copenhagen"})
    assert config_payload(a) == config_payload(b)


_IDS = st.from_regex(r"[A-Za-z0-9\-.]{1,40}", fullmatch=True)
_PLAN_ITEMS = st.builds(
    PlanItem,
    st.sampled_from(MEASUREMENTS),
    st.lists(
        st.times().map(lambda t: t.replace(second=0, microsecond=0)),
        min_size=1,
        max_size=MAX_TIMES,
        unique=True,
    )
    .map(sorted)
    .map(tuple),
    st.frozensets(st.integers(1, 7), min_size=1),
    st.integers(15, 1440).map(lambda minutes: timedelta(minutes=minutes)),
)
_PLANS = st.lists(_PLAN_ITEMS, max_size=len(MEASUREMENTS), unique_by=lambda item: item.measurement).map(tuple)
_SETTINGS = st.fixed_dictionaries(
    {},
    optional={
        "timezone": st.sampled_from(["Europe/Copenhagen", "UTC", "America/Nuuk"]),
        "bundle_size": st.integers(1, 50),
        "max_connections": st.integers(1, 32),
        "status_interval_s": st.floats(1.0, 86_400.0),
        "hub_id": _IDS,
        "outbox_path": st.text(max_size=20),
        "emulation": st.none(),
    },
)


@settings(max_examples=200, deadline=None)
@given(
    devices=st.lists(
        st.builds(
            ConfigDevice,
            _IDS,
            st.sampled_from(KINDS),
            st.none() | st.from_regex(r"[0-9A-F:]{1,17}", fullmatch=True),
        ),
        max_size=8,
        unique_by=lambda d: d.id,
    ),
    hub_settings=_SETTINGS,
    version=st.integers(1, 2**31 - 1),
    patient=_IDS,
    plan=_PLANS,
)
def test_whatever_is_stored_the_payload_is_one_the_hub_accepts(
    devices: list[ConfigDevice],
    hub_settings: dict[str, Any],
    version: int,
    patient: str,
    plan: tuple[PlanItem, ...],
) -> None:
    record = _record(
        devices=tuple(devices), settings=hub_settings, config_version=version, patient_id=patient, plan=plan
    )
    remote = parse_remote(config_payload(record))
    assert remote.version == str(version) and remote.patient_id == patient
    assert remote.plan is not None and parse_plan(list(remote.plan)) == plan
    assert [d.id for d in remote.devices or ()] == [d.id for d in devices if d.address]
    sent = {key for key in SETTINGS_KEYS if getattr(remote, key) is not None}
    assert sent == {key for key in SETTINGS_KEYS if hub_settings.get(key) is not None}


@pytest.mark.parametrize(
    ("municipality", "hub"), [("0101", "hub/x"), ("0101", "+"), ("01#", "hub"), ("0101", "")]
)
def test_ids_that_do_not_name_one_hubs_topic_are_refused(municipality: str, hub: str) -> None:
    with pytest.raises(ConfigPublishError):
        config_topic(municipality, hub)


# -- publishing with a real broker and PostgreSQL ------------------------------------------------------


class Subscriber:
    """Reads what the broker holds retained on the hub's config topic (as a hub subscribing does)."""

    def __init__(self, endpoint: BrokerEndpoint) -> None:
        self.payloads: list[bytes] = []
        self._got = threading.Condition()
        protocol = MQTTProtocolVersion.MQTTv5 if endpoint.mqtt5 else MQTTProtocolVersion.MQTTv311
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
        self.client.on_connect = lambda client, *_: client.subscribe(TOPIC, qos=1)
        self.client.on_message = self._on_message
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._got:
            self.payloads.append(bytes(message.payload))
            self._got.notify_all()

    def wait(self, count: int, timeout: float = 5.0) -> list[bytes]:
        with self._got:
            self._got.wait_for(lambda: len(self.payloads) >= count, timeout=timeout)
            return list(self.payloads)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(endpoint: BrokerEndpoint, count: int = 1) -> list[bytes]:
    """What a new subscriber gets on the config topic: the retained message, if any."""
    subscriber = Subscriber(endpoint)
    try:
        return subscriber.wait(count, timeout=2.0 if count else 0.5)
    finally:
        subscriber.close()


def enroll(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        patient = Patient(MUNICIPALITY, PATIENT, "Config test patient")
        devices = (
            HomeDevice("cuff-1", "blood-pressure-cuff", "C4:7C:8D:6A:12:0F"),
            HomeDevice("oxi-1", "pulse-oximeter"),
        )
        other = Patient(MUNICIPALITY, "p-other", "Other patient")
        enroll_homes(
            conn,
            [Municipality(MUNICIPALITY, "Test municipality")],
            [Home(patient, HUB, devices), Home(other, OTHER_HUB, ())],
        )


def change(database_url: str, hub: str = HUB, **columns: Any) -> None:
    """What an administrator's change does to the hub's row (gateway.administration): one more version."""
    sets = "".join(f", {name} = %({name})s" for name in columns)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            f"UPDATE hubs SET config_version = config_version + 1{sets} WHERE id = %(hub)s",
            {"hub": hub, **columns},
        )


def versions(database_url: str, hub: str = HUB) -> tuple[int, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT config_version, config_published FROM hubs WHERE id = %s", (hub,)
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def gateway_settings(endpoint: BrokerEndpoint, database_url: str) -> GatewaySettings:
    return GatewaySettings(
        environment="development",
        database_url=database_url,
        mqtt_host=endpoint.host,
        mqtt_port=endpoint.port,
        mqtt_v5=endpoint.mqtt5,
    )


@pytest.fixture
def enrolled(database_url: str) -> str:
    enroll(database_url)
    return database_url


def test_the_job_publishes_a_lagging_config_retained_and_marks_it(
    enrolled: str, any_broker: BrokerEndpoint
) -> None:
    broker = any_broker  # Mosquitto (MQTT 5) and amqtt (3.1.1), the demo's fallback
    change(enrolled, settings=orjson.dumps({"bundle_size": 7}).decode())
    with psycopg.connect(enrolled, autocommit=True) as conn:
        assert lagging_hubs(conn) == [(MUNICIPALITY, HUB)]
    job = ConfigJob(enrolled, config_publisher(gateway_settings(broker, enrolled)), interval_s=30)
    run = job.run_once()
    assert (run.lagging, run.published, run.failure) == (1, 1, None)
    assert versions(enrolled) == (1, 1)
    (payload,) = retained(broker)  # a hub that connects now gets it
    remote = parse_remote(payload)
    assert remote.version == "1" and remote.patient_id == PATIENT and remote.bundle_size == 7
    assert [d.id for d in remote.devices or ()] == ["cuff-1"]  # oxi-1 has no address
    assert job.run_once() == type(run)(0, 0, None)  # nothing lags any more


def test_a_broker_that_is_down_leaves_the_config_lagging_and_the_next_run_publishes_it(enrolled: str) -> None:
    broker = EmbeddedBroker()
    endpoint = broker.start()
    try:
        publisher = config_publisher(gateway_settings(endpoint, enrolled), timeout=2.0)
        job = ConfigJob(enrolled, publisher, interval_s=30)
        broker.kill()
        change(enrolled)
        run = job.run_once()
        assert run.published == 0 and run.failure is not None and "cannot reach" in run.failure
        assert versions(enrolled) == (1, 0)
        endpoint = broker.start()  # back on the same port
        assert job.run_once().published == 1
        assert versions(enrolled) == (1, 1)
        assert parse_remote(retained(endpoint)[0]).version == "1"
    finally:
        broker.stop()


def test_publish_hub_config_at_once_and_false_without_publisher_or_broker(
    enrolled: str, broker: BrokerEndpoint
) -> None:
    change(enrolled)
    away = MqttConfigPublisher(BrokerAddress("127.0.0.1", free_port()), None, None, timeout=2.0)
    with psycopg.connect(enrolled, autocommit=True) as conn:
        assert publish_hub_config(conn, None, MUNICIPALITY, HUB) is False
        assert publish_hub_config(conn, away, MUNICIPALITY, HUB) is False
        assert versions(enrolled) == (1, 0)
        assert publish_hub_config(
            conn, config_publisher(gateway_settings(broker, enrolled)), MUNICIPALITY, HUB
        )
    assert versions(enrolled) == (1, 1)
    assert parse_remote(retained(broker)[0]).version == "1"


def test_a_version_published_already_is_not_published_again(enrolled: str, broker: BrokerEndpoint) -> None:
    change(enrolled)
    publisher = config_publisher(gateway_settings(broker, enrolled))
    subscriber = Subscriber(broker)
    try:
        with psycopg.connect(enrolled, autocommit=True) as conn:
            assert publish_hub_config(conn, publisher, MUNICIPALITY, HUB)
            assert subscriber.wait(1) and publish_hub_config(conn, publisher, MUNICIPALITY, HUB)
        assert len(subscriber.wait(2, timeout=0.5)) == 1
    finally:
        subscriber.close()


def test_a_removed_device_leaves_the_config(enrolled: str) -> None:
    with psycopg.connect(enrolled, autocommit=True) as conn:
        conn.execute("UPDATE devices SET removed_at = now() WHERE id = 'cuff-1'")
        with conn.transaction():
            record = lock_hub_config(conn, MUNICIPALITY, HUB)
    assert record is not None and [d.id for d in record.devices] == ["oxi-1"]
    assert parse_remote(config_payload(record)).devices == ()


def test_a_revoked_hub_gets_no_config_and_does_not_lag(enrolled: str, broker: BrokerEndpoint) -> None:
    change(enrolled)
    with psycopg.connect(enrolled, autocommit=True) as conn:
        conn.execute("UPDATE hubs SET revoked_at = now(), revoked_by = 'admin' WHERE id = %s", (HUB,))
        assert lagging_hubs(conn) == []
        assert not publish_hub_config(
            conn, config_publisher(gateway_settings(broker, enrolled)), MUNICIPALITY, HUB
        )
    assert versions(enrolled) == (1, 0)
    assert retained(broker, 0) == []


def test_a_hub_of_another_municipality_is_unknown(enrolled: str, broker: BrokerEndpoint) -> None:
    with psycopg.connect(enrolled, autocommit=True) as conn, pytest.raises(UnknownHub):
        publish_hub_config(conn, config_publisher(gateway_settings(broker, enrolled)), "0147", HUB)


def test_clear_removes_the_retained_config(enrolled: str, broker: BrokerEndpoint) -> None:
    change(enrolled)
    publisher = config_publisher(gateway_settings(broker, enrolled))
    with psycopg.connect(enrolled, autocommit=True) as conn:
        assert publish_hub_config(conn, publisher, MUNICIPALITY, HUB)
    assert len(retained(broker)) == 1
    publisher.clear(MUNICIPALITY, HUB)
    assert retained(broker, 0) == []


def test_the_longest_waiting_hub_is_published_first(enrolled: str) -> None:
    change(enrolled, hub=OTHER_HUB)
    change(enrolled)
    with psycopg.connect(enrolled, autocommit=True) as conn:
        conn.execute("UPDATE hubs SET config_published_at = now() WHERE id = %s", (HUB,))
        assert lagging_hubs(conn) == [(MUNICIPALITY, OTHER_HUB), (MUNICIPALITY, HUB)]


@pytest.fixture
def started_job(enrolled: str, broker: BrokerEndpoint) -> Iterator[ConfigJob]:
    job = ConfigJob(enrolled, config_publisher(gateway_settings(broker, enrolled)), interval_s=0.2)
    job.start()
    yield job
    job.stop()


def test_the_running_job_publishes_a_change_within_its_interval(
    started_job: ConfigJob, enrolled: str, broker: BrokerEndpoint
) -> None:
    subscriber = Subscriber(broker)
    try:
        change(enrolled)
        (payload,) = subscriber.wait(1)
        assert parse_remote(payload).version == "1"
        change(enrolled)
        assert parse_remote(subscriber.wait(2)[-1]).version == "2"
    finally:
        subscriber.close()
    assert started_job.runs >= 2


def test_each_resident_is_offered_the_daily_check_of_their_condition(enrolled: str) -> None:
    """The patient view asks what the patient's condition calls for (heart failure first for a patient
    with both), and nothing of a patient whose conditions have no check; the hub accepts it."""
    with psycopg.connect(enrolled, autocommit=True) as conn:
        both = ["heart-failure", "copd"]
        conn.execute("UPDATE patients SET conditions = %s WHERE id = %s", (both, PATIENT))
        with conn.transaction():
            record = lock_hub_config(conn, MUNICIPALITY, HUB)
        assert record is not None
        conn.execute("UPDATE patients SET conditions = %s WHERE id = %s", (["diabetes"], PATIENT))
        with conn.transaction():
            without = lock_hub_config(conn, MUNICIPALITY, HUB)
        assert without is not None
    residents = orjson.loads(config_payload(record))["residents"]
    assert residents == [{"patient_id": PATIENT, "name": "Config", "questionnaire": "heart-failure-daily"}]
    remote = parse_remote(config_payload(record))
    assert remote.residents is not None and remote.residents[0].questionnaire == "heart-failure-daily"
    assert orjson.loads(config_payload(without))["residents"] == [{"patient_id": PATIENT, "name": "Config"}]
