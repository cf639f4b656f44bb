"""``set_plan`` (issue 21): a nurse's measurement plan is stored, audited and reaches the patient's hub in
its retained config, which the hub's own parser accepts (real Mosquitto or amqtt, real PostgreSQL); the
same plan again changes nothing; a removed plan is sent as an empty one; a broker that is away leaves it
to the config job; only a nurse of the patient's care team may set it; the table only grows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from retained_config import retained_config

from edge_agent.remote_config import parse_remote
from fhir_contract.plan import MEASUREMENTS, PlanItem, parse_plan, plan_json
from gateway.administration.errors import AdministrationError
from gateway.administration.homes import add_care_team, add_municipality, add_patient, enroll_hub
from gateway.administration.plans import plan_from_json, set_plan
from gateway.api.auth import User, create_user
from gateway.broker import BrokerEndpoint, free_port
from gateway.broker_session import BrokerAddress
from gateway.config_job import ConfigJob
from gateway.hub_config import MqttConfigPublisher, config_payload, config_publisher
from gateway.settings import GatewaySettings
from gateway.store.hub_config import lock_hub_config
from gateway.store.plans import current_plan, plan_history

TOPIC = "homewatch/v1/0101/hub-1/config"
AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
NURSE = User("anna", "0101", "nurse")  # team Nord: p-1's
OTHER_NURSE = User("bo", "0101", "nurse")  # the municipality's default team
GP = User("dr-lund", "0101", "gp")
PLAN = parse_plan(
    [
        {"measurement": "weight", "times": ["07:30"], "days": [1, 3, 5], "grace_minutes": 240},
        {"measurement": "blood-pressure", "times": ["20:00", "08:00"], "grace_minutes": 120},
    ]
)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        add_municipality(connection, "0101", "København", by="ops")
        add_municipality(connection, "0147", "Frederiksberg", by="ops")
        add_care_team(connection, "0101", "0101-nord", "Team Nord", by="ops")
        create_user(connection, NURSE.username, "0101", "nurse", "a password of the test", ("0101-nord",))
        create_user(connection, OTHER_NURSE.username, "0101", "nurse", "a password of the test")
        create_user(connection, GP.username, "0101", "gp", "a password of the test")
        add_patient(
            connection, "0101", "p-1", name="Ane Hansen", care_team="0101-nord", phone=None, conditions=[],
            birth_date=None, by="ops",
        )  # fmt: skip
        connection.execute("UPDATE patients SET gp_username = %s WHERE id = 'p-1'", (GP.username,))
        enroll_hub(
            connection, GatewaySettings(environment="development"), "0101", "hub-1", "p-1", by="ops",
            accounts=None,
        )  # fmt: skip
        yield connection


def _settings(broker: BrokerEndpoint) -> GatewaySettings:
    return GatewaySettings(
        environment="development", mqtt_host=broker.host, mqtt_port=broker.port, mqtt_v5=broker.mqtt5
    )


def _versions(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    row = conn.execute("SELECT config_version, config_published FROM hubs WHERE id = 'hub-1'").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _plans(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM measurement_plans").fetchone()
    assert row is not None
    return int(row[0])


def test_a_nurses_plan_is_stored_audited_and_reaches_the_hub_retained(
    conn: psycopg.Connection[Any], any_broker: BrokerEndpoint
) -> None:
    publisher = config_publisher(_settings(any_broker))
    change = set_plan(conn, "p-1", PLAN, by=NURSE.username, at=AT, publisher=publisher, viewer=NURSE)
    assert change.changed and change.hubs == ("hub-1",) and change.published
    assert _versions(conn) == (1, 1)
    remote = parse_remote(retained_config(any_broker, TOPIC))  # the hub takes it whole
    assert remote.version == "1" and remote.plan is not None
    stored = current_plan(conn, "0101", "p-1")
    assert stored is not None and (stored.set_by, stored.set_at) == ("anna", AT)
    # Stored in the contract's order and form, so the same plan is always the same bytes.
    assert [item.measurement for item in stored.items] == ["blood-pressure", "weight"]
    assert parse_plan(list(remote.plan)) == stored.items
    assert list(remote.plan) == plan_json(stored.items)
    audit = conn.execute(
        "SELECT username, role, municipality_id, patient_id, detail FROM audit_log WHERE action = 'set-plan'"
    ).fetchall()
    assert audit == [("anna", "nurse", "0101", "p-1", orjson.dumps(plan_json(stored.items)).decode())]


def test_the_same_plan_again_changes_nothing_and_tells_nobody(conn: psycopg.Connection[Any]) -> None:
    assert not set_plan(conn, "p-1", (), by="ops", at=AT, publisher=None).changed  # none, and none asked
    set_plan(conn, "p-1", PLAN, by=NURSE.username, at=AT, publisher=None, viewer=NURSE)
    again = set_plan(
        conn, "p-1", tuple(reversed(PLAN)), by=NURSE.username, at=AT + timedelta(hours=1), publisher=None,
        viewer=NURSE,
    )  # fmt: skip
    assert not again.changed and again.hubs == () and _plans(conn) == 1 and _versions(conn) == (1, 0)


def test_a_removed_plan_is_sent_as_an_empty_one_and_kept_in_the_history(
    conn: psycopg.Connection[Any], broker: BrokerEndpoint
) -> None:
    publisher = config_publisher(_settings(broker))
    set_plan(conn, "p-1", PLAN, by=NURSE.username, at=AT, publisher=publisher, viewer=NURSE)
    removed = set_plan(
        conn, "p-1", (), by=NURSE.username, at=AT + timedelta(days=1), publisher=publisher, viewer=NURSE
    )
    assert removed.changed and removed.plan is not None and removed.plan.items == ()
    assert parse_remote(retained_config(broker, TOPIC)).plan == ()  # the hub replaces its plan with none
    history = plan_history(conn, NURSE, "p-1")
    assert [(len(v.items), v.set_at) for v in history] == [(0, AT + timedelta(days=1)), (2, AT)]
    assert _versions(conn) == (2, 2)


def test_with_the_broker_away_the_config_job_sends_the_plan_later(
    conn: psycopg.Connection[Any], database_url: str, broker: BrokerEndpoint
) -> None:
    away = MqttConfigPublisher(BrokerAddress("127.0.0.1", free_port()), None, None, timeout=2.0)
    change = set_plan(conn, "p-1", PLAN, by=NURSE.username, at=AT, publisher=away, viewer=NURSE)
    assert change.changed and not change.published and _versions(conn) == (1, 0)
    run = ConfigJob(database_url, config_publisher(_settings(broker)), interval_s=30).run_once()
    assert (run.published, run.failure) == (1, None)
    remote = parse_remote(retained_config(broker, TOPIC))
    assert remote.plan is not None and parse_plan(list(remote.plan)) == change.plan.items  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("viewer", "within", "words"),
    [
        (OTHER_NURSE, None, "no such patient among yours"),  # another team's nurse
        (User("carl", "0147", "nurse"), None, "no such patient among yours"),  # another municipality's
        (GP, None, "Only a nurse"),  # the patient's GP sees the plan, does not set it
        (None, "0147", "There is no patient p-1"),  # a command line acting for another municipality
    ],
)
def test_only_a_nurse_of_the_care_team_sets_the_plan(
    conn: psycopg.Connection[Any], viewer: User | None, within: str | None, words: str
) -> None:
    with pytest.raises(AdministrationError, match=words) as refused:
        set_plan(conn, "p-1", PLAN, by="someone", at=AT, publisher=None, viewer=viewer, within=within)
    assert "\n" not in str(refused.value)
    assert _plans(conn) == 0 and _versions(conn) == (0, 0)


def test_the_command_lines_form_is_checked_by_the_contract() -> None:
    assert plan_from_json(plan_json(PLAN)) == tuple(
        sorted(PLAN, key=lambda i: MEASUREMENTS.index(i.measurement))
    )
    with pytest.raises(AdministrationError, match=r"0\.times\.0"):
        plan_from_json([{"measurement": "weight", "times": ["25:00"]}])
    with pytest.raises(AdministrationError, match="times"):  # a PlanItem the contract would not read back
        set_plan(None, "p-1", (PlanItem("weight", ()),), by="ops", at=AT, publisher=None)  # type: ignore[arg-type]


def test_the_table_only_grows(conn: psycopg.Connection[Any]) -> None:
    set_plan(conn, "p-1", PLAN, by=NURSE.username, at=AT, publisher=None, viewer=NURSE)
    for statement in ("UPDATE measurement_plans SET set_by = 'x'", "DELETE FROM measurement_plans"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO measurement_plans (municipality_id, patient_id, plan, set_by, set_at)"
            " VALUES ('0101', 'p-1', '{\"not\": \"a list\"}', 'x', now())"
        )


def test_a_stored_plan_the_contract_refuses_is_left_out_of_the_config(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "INSERT INTO measurement_plans (municipality_id, patient_id, plan, set_by, set_at)"
        """ VALUES ('0101', 'p-1', '[{"measurement": "pulse", "times": ["08:00"]}]', 'x', now())"""
    )
    with conn.transaction():
        record = lock_hub_config(conn, "0101", "hub-1")
    assert record is not None and record.plan is None
    payload = config_payload(record)
    assert "plan" not in orjson.loads(payload) and parse_remote(payload).plan is None  # the hub keeps its own


_ITEM = st.builds(
    PlanItem,
    st.sampled_from(MEASUREMENTS),
    st.lists(st.times().map(lambda t: t.replace(second=0, microsecond=0)), max_size=8).map(tuple),
    st.frozensets(st.integers(0, 8), max_size=8),
    st.integers(0, 2000).map(lambda minutes: timedelta(minutes=minutes)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(_ITEM, max_size=6).map(tuple))
def test_whatever_is_accepted_is_stored_as_given_and_a_config_the_hub_takes(
    conn: psycopg.Connection[Any], items: tuple[PlanItem, ...]
) -> None:
    try:
        change = set_plan(conn, "p-1", items, by="ops", at=AT, publisher=None)
    except AdministrationError:
        return
    with conn.transaction():
        record = lock_hub_config(conn, "0101", "hub-1")
    assert record is not None
    assert record.plan == (() if change.plan is None else change.plan.items)
    assert {item.measurement for item in record.plan} == {item.measurement for item in items}
    remote = parse_remote(config_payload(record))
    assert remote.plan is not None and parse_plan(list(remote.plan)) == record.plan
