"""Each resident's measurement plan in the hub's retained config (issue 21): a resident other than the
enrolled patient carries their plan in force in ``residents`` (an empty list when none), the enrolled
patient's stays the top-level ``plan``, and the hub's own parser gives each their own
(``HubConfig.plan_of``). A nurse's plan for a resident counts one change of the hub they live with and is
published to it at once (real PostgreSQL, real Mosquitto or amqtt); a resident who moved out no longer
takes the hub's config with their plan."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from retained_config import retained_config

from edge_agent.config import HubConfig, MqttConfig
from edge_agent.remote_config import merge, parse_remote
from fhir_contract.plan import MEASUREMENTS, PlanItem, parse_plan, plan_json
from gateway.administration.homes import add_municipality, add_patient, enroll_hub
from gateway.administration.household import add_resident, remove_resident
from gateway.administration.plans import set_plan
from gateway.broker import BrokerEndpoint
from gateway.hub_config import config_payload, config_publisher
from gateway.settings import GatewaySettings
from gateway.store.hub_config import ConfigDevice, HubConfigRecord, lock_hub_config

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
TOPIC = "homewatch/v1/0101/hub-1/config"
ANE_PLAN = parse_plan([{"measurement": "blood-pressure", "times": ["08:00"], "grace_minutes": 120}])
BENT_PLAN = parse_plan([{"measurement": "spo2", "times": ["09:00", "21:00"], "grace_minutes": 60}])


def _record(**changes: Any) -> HubConfigRecord:
    values: dict[str, Any] = {
        "municipality_id": "0101",
        "hub_id": "hub-1",
        "patient_id": "p-1",
        "devices": (ConfigDevice("cuff-1", "blood-pressure-cuff", "C4:7C:8D:6A:12:0F"),),
        "settings": {},
        "config_version": 3,
        "config_published": 2,
        "revoked": False,
        "plan": ANE_PLAN,
        "residents": (("p-1", "Ane"), ("p-2", "Bent")),
    }
    return HubConfigRecord(**(values | changes))


def _hub_runs(payload: bytes) -> HubConfig:
    """What the hub runs after this payload: its own parser and merge over a local file."""
    local = HubConfig(
        municipality="0101",
        hub_id="hub-1",
        patient_id="p-1",
        devices=(),
        mqtt=MqttConfig(host="127.0.0.1"),
        outbox_path=Path("outbox.sqlite3"),  # never opened
    )
    return merge(local, parse_remote(payload))


# -- the payload (pure) ------------------------------------------------------------------------------


def test_each_other_resident_carries_their_plan_and_the_enrolled_patients_stays_on_top() -> None:
    payload = config_payload(_record(resident_plans=(("p-2", BENT_PLAN),)))
    body = orjson.loads(payload)
    assert body["plan"] == plan_json(ANE_PLAN)
    assert body["residents"] == [
        {"patient_id": "p-1", "name": "Ane"},
        {"patient_id": "p-2", "name": "Bent", "plan": plan_json(BENT_PLAN)},
    ]
    hub = _hub_runs(payload)
    assert hub.plan_of("p-1") == ANE_PLAN and hub.plan_of("p-2") == BENT_PLAN


def test_a_resident_without_a_plan_is_sent_an_empty_one_so_a_removed_plan_stops_on_the_hub() -> None:
    before = _hub_runs(config_payload(_record(resident_plans=(("p-2", BENT_PLAN),))))
    assert before.plan_of("p-2") == BENT_PLAN
    payload = config_payload(_record(resident_plans=(("p-2", ()),)))
    assert orjson.loads(payload)["residents"][1]["plan"] == []
    assert _hub_runs(payload).plan_of("p-2") == ()
    # A record that knows nothing of the resident's plan sends none either, never someone else's.
    assert orjson.loads(config_payload(_record()))["residents"][1]["plan"] == []


def test_an_unreadable_plan_of_a_resident_is_left_out_of_their_entry_only() -> None:
    payload = config_payload(_record(resident_plans=(("p-2", None),)))
    body = orjson.loads(payload)
    assert body["residents"][1] == {"patient_id": "p-2", "name": "Bent"} and body["plan"] == plan_json(
        ANE_PLAN
    )
    assert _hub_runs(payload).plan_of("p-2") == ()


_PLANS = st.lists(
    st.builds(
        PlanItem,
        st.sampled_from(MEASUREMENTS),
        st.lists(
            st.times().map(lambda t: t.replace(second=0, microsecond=0)), min_size=1, max_size=3, unique=True
        )
        .map(sorted)
        .map(tuple),
        st.frozensets(st.integers(1, 7), min_size=1),
        st.integers(15, 1440).map(lambda minutes: timedelta(minutes=minutes)),
    ),
    max_size=len(MEASUREMENTS),
    unique_by=lambda item: item.measurement,
)


@given(_PLANS, _PLANS)
def test_whatever_plans_are_stored_the_hub_gives_each_resident_their_own(
    ane: list[PlanItem], bent: list[PlanItem]
) -> None:
    payload = config_payload(_record(plan=tuple(ane), resident_plans=(("p-2", tuple(bent)),)))
    hub = _hub_runs(payload)
    assert hub.plan_of("p-1") == parse_plan(plan_json(ane)) and hub.plan_of("p-2") == parse_plan(
        plan_json(bent)
    )


# -- set_plan and the hub a resident lives with (PostgreSQL, broker) -----------------------------------


@pytest.fixture
def home(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """Hub hub-1 enrolled for Ane (p-1), Bent (p-2) living with it as a resident."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        add_municipality(conn, "0101", "København", by="ops")
        for patient, name in (("p-1", "Ane Hansen"), ("p-2", "Bent Hansen")):
            add_patient(
                conn, "0101", patient, name=name, care_team=None, phone=None, conditions=[],
                birth_date=date(1941, 5, 1), by="ops",
            )  # fmt: skip
        enroll_hub(
            conn, GatewaySettings(environment="development"), "0101", "hub-1", "p-1", by="ops", accounts=None
        )
        add_resident(conn, "hub-1", "p-2", by="ops", publisher=None)
        yield conn


def _settings(broker: BrokerEndpoint) -> GatewaySettings:
    return GatewaySettings(
        environment="development", mqtt_host=broker.host, mqtt_port=broker.port, mqtt_v5=broker.mqtt5
    )


def _version(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    row = conn.execute("SELECT config_version, config_published FROM hubs WHERE id = 'hub-1'").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_a_residents_plan_reaches_the_hub_they_live_with_at_once(
    home: psycopg.Connection[Any], any_broker: BrokerEndpoint
) -> None:
    publisher = config_publisher(_settings(any_broker))
    set_plan(home, "p-1", ANE_PLAN, by="ops", at=AT, publisher=None)
    version, _ = _version(home)
    change = set_plan(home, "p-2", BENT_PLAN, by="ops", at=AT + timedelta(minutes=1), publisher=publisher)
    assert change.changed and change.hubs == ("hub-1",) and change.published
    assert _version(home) == (version + 1, version + 1)
    hub = _hub_runs(retained_config(any_broker, TOPIC))  # the hub takes it whole
    assert hub.plan_of("p-2") == BENT_PLAN and hub.plan_of("p-1") == ANE_PLAN
    # Removed by the nurse: the hub is told, with an empty plan for him.
    set_plan(home, "p-2", (), by="ops", at=AT + timedelta(minutes=2), publisher=publisher)
    hub = _hub_runs(retained_config(any_broker, TOPIC))
    assert hub.plan_of("p-2") == () and hub.plan_of("p-1") == ANE_PLAN


def test_the_stored_record_holds_each_residents_plan_and_a_resident_who_left_takes_none(
    home: psycopg.Connection[Any],
) -> None:
    set_plan(home, "p-2", BENT_PLAN, by="ops", at=AT, publisher=None)
    with home.transaction():
        record = lock_hub_config(home, "0101", "hub-1")
    assert record is not None and record.plan == () and record.resident_plans == (("p-2", BENT_PLAN),)
    remove_resident(home, "hub-1", "p-2", by="ops", publisher=None)
    version = _version(home)
    change = set_plan(home, "p-2", (), by="ops", at=AT + timedelta(hours=1), publisher=None)
    assert change.changed and change.hubs == () and _version(home) == version  # not his hub any more
    with home.transaction():
        after = lock_hub_config(home, "0101", "hub-1")
    assert after is not None and after.resident_plans == ()
    assert "p-2" not in {r["patient_id"] for r in orjson.loads(config_payload(after))["residents"]}


def test_the_missing_alert_reads_a_residents_plan_on_their_homes_clock(home: psycopg.Connection[Any]) -> None:
    """The hub's time zone is the home's, for every resident: a plan's 08:00 is 08:00 in that home."""
    from gateway.store.plans import plans_in_force

    home.execute("UPDATE hubs SET settings = '{\"timezone\": \"America/Nuuk\"}'::jsonb WHERE id = 'hub-1'")
    set_plan(home, "p-1", ANE_PLAN, by="ops", at=AT, publisher=None)
    set_plan(home, "p-2", BENT_PLAN, by="ops", at=AT, publisher=None)
    zones = {plan.patient_id: plan.time_zone for plan in plans_in_force(home)}
    assert zones == {"p-1": "America/Nuuk", "p-2": "America/Nuuk"}
    remove_resident(home, "hub-1", "p-2", by="ops", publisher=None)
    moved_out = {plan.patient_id: plan.time_zone for plan in plans_in_force(home)}
    assert moved_out == {"p-1": "America/Nuuk", "p-2": None}  # no home: the gateway's own zone
