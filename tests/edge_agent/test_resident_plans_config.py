"""Each resident's own measurement plan in the hub's configuration (issue 21): ``ResidentConfig.plan`` is
read by the contract's rule as ``HubConfig.plan`` is, ``HubConfig.plan_of`` gives each resident theirs, the
retained config carries it through ``merge``, and the reminders' settings of a household name the resident
their prompts are for."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.config import HubConfig, HubConfigError
from edge_agent.reminders import ReminderSettings, addressed
from edge_agent.remote_config import RemoteConfigError, merge, parse_remote
from edge_agent.voice import prompt
from fhir_contract.plan import parse_plan

BP = [{"measurement": "blood-pressure", "times": ["08:00"], "grace_minutes": 120}]
WEIGHT = [{"measurement": "weight", "times": ["07:30"], "days": [1, 4], "grace_minutes": 240}]


def _config(**changes: Any) -> HubConfig:
    data: dict[str, Any] = {
        "municipality": "0101",
        "hub_id": "hub-1",
        "patient_id": "anna",
        "devices": [],
        "outbox_path": "outbox.sqlite3",
        "plan": BP,
        "residents": [
            {"patient_id": "anna", "name": "Anna"},
            {"patient_id": "bent", "name": "Bent", "plan": WEIGHT},
        ],
    }
    return HubConfig.from_mapping(data | changes, source="test", base=Path("/hub"))


def test_each_resident_has_their_own_plan_and_a_stranger_none() -> None:
    config = _config()
    assert config.plan_of("anna") == parse_plan(BP) == config.plan_items
    assert config.plan_of("bent") == parse_plan(WEIGHT)
    assert config.plan_of("someone-else") == ()
    assert config.speaks and config.speaks_for("bent")
    without = _config(residents=[{"patient_id": "anna"}, {"patient_id": "bent"}])
    assert without.plan_of("bent") == () and not without.speaks_for("bent") and without.speaks_for("anna")
    # Only the second resident has a plan: the hub still speaks (for him), the voice switch still rules.
    only_bent = _config(plan=[])
    assert only_bent.speaks and not only_bent.speaks_for("anna")
    off = only_bent.model_copy(update={"voice": only_bent.voice.model_copy(update={"enabled": False})})
    assert not off.speaks and not off.speaks_for("bent")


@pytest.mark.parametrize(
    ("plan", "reason"),
    [
        ([{"measurement": "heart-rate", "times": ["08:00"]}], "measurement"),
        ([{"measurement": "weight", "times": ["25:00"]}], "time"),
        ([{"measurement": "weight", "times": ["08:00"], "grace_minutes": 0}], "grace"),
        ({"measurement": "weight"}, "residents.1.plan"),
    ],
)
def test_a_residents_plan_the_contract_refuses_refuses_the_configuration(plan: object, reason: str) -> None:
    residents = [{"patient_id": "anna"}, {"patient_id": "bent", "plan": plan}]
    with pytest.raises(HubConfigError) as refused:
        _config(residents=residents)
    assert refused.value.field is not None and refused.value.field.startswith("residents.1")
    assert reason in str(refused.value)


def test_the_enrolled_patients_plan_is_the_top_level_one_never_a_second_copy() -> None:
    with pytest.raises(HubConfigError) as refused:
        _config(residents=[{"patient_id": "anna", "plan": WEIGHT}, {"patient_id": "bent"}])
    assert "top-level plan" in str(refused.value)


def test_a_residents_plan_arrives_in_the_retained_config_and_a_bad_one_changes_nothing() -> None:
    local = _config(residents=[], plan=[])
    assert local.plan_of("bent") == ()
    residents = [
        {"patient_id": "anna", "name": "Anna"},
        {"patient_id": "bent", "name": "Bent", "plan": WEIGHT},
    ]
    merged = merge(local, parse_remote(orjson.dumps({"residents": residents, "plan": BP})))
    assert merged.plan_of("bent") == parse_plan(WEIGHT) and merged.plan_of("anna") == parse_plan(BP)
    bad = [
        {"patient_id": "anna"},
        {"patient_id": "bent", "plan": [{"measurement": "weight", "times": ["x"]}]},
    ]
    with pytest.raises(RemoteConfigError) as refused:
        parse_remote(orjson.dumps({"residents": bad}))
    assert refused.value.field == "residents.1.plan"


def test_a_households_reminders_name_their_resident_and_a_hub_of_one_names_nobody() -> None:
    config = _config()
    bent = ReminderSettings.from_config(config, "bent")
    assert (bent.patient_id, bent.name, bent.items) == ("bent", "Bent", parse_plan(WEIGHT))
    assert bent.zone == ZoneInfo("Europe/Copenhagen")
    anna = ReminderSettings.from_config(config)
    assert (anna.patient_id, anna.name, anna.items) == ("anna", "Anna", parse_plan(BP))
    alone = ReminderSettings.from_config(_config(residents=[{"patient_id": "anna", "name": "Anna"}]))
    assert alone.name == ""
    assert (
        addressed(prompt("due", "blood-pressure", "da"), "Bent") == "Bent, det er tid til at måle blodtryk."
    )
    assert addressed(prompt("due", "blood-pressure", "en"), "Bent") == (
        "Bent, it is time to measure your blood pressure."
    )
    assert addressed("Vægt modtaget, tak.", "") == "Vægt modtaget, tak."


@given(st.text(max_size=60), st.text(min_size=1, max_size=200))
def test_a_name_only_ever_goes_before_the_prompt(name: str, text: str) -> None:
    said = addressed(text, name)
    if not name:
        assert said == text
    else:
        # The name and a comma, then the prompt with only its first letter made small.
        assert said.startswith(f"{name}, ") and said.endswith(text[1:])
        assert said[len(name) + 2 : len(said) - len(text) + 1] == text[:1].lower()
