"""The hub's configuration of a household: who lives with the hub, whose each device is, the care team's
messages, and the patient view's PIN; locally and from the server's retained config.

Proves: a device may only measure residents; a shared device maps distinct User Indexes (1-254) to
distinct residents and is never personal at the same time; the patient view is never served without a
PIN; messages carry an aware time; the server's ``residents`` and ``messages`` replace the local values
whole and are checked like the file's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from edge_agent.config import HubConfig, HubConfigError, PatientViewConfig
from edge_agent.remote_config import RemoteConfigError, merge, parse_remote


def _config(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "municipality": "0101",
        "hub_id": "hub-1",
        "patient_id": "anna",
        "outbox_path": str(tmp_path / "outbox.sqlite3"),
        "residents": [{"patient_id": "anna", "name": "Anna"}, {"patient_id": "bent", "name": "Bent"}],
        "devices": [
            {
                "id": "cuff",
                "address": "AA:00",
                "kind": "blood-pressure-cuff",
                "users": {"1": "anna", "2": "bent"},
            },
            {"id": "ox-b", "address": "AA:01", "kind": "pulse-oximeter", "patient_id": "bent"},
            {"id": "ox-a", "address": "AA:02", "kind": "pulse-oximeter"},
        ],
    }
    data.update(changes)
    return data


def test_a_household_of_two_with_a_shared_cuff_and_personal_oximeters(tmp_path: Path) -> None:
    config = HubConfig.from_mapping(_config(tmp_path), source="test")
    assert config.resident_ids == ("anna", "bent")
    cuff, ox_b, ox_a = config.devices
    assert cuff.shared and cuff.users == {1: "anna", 2: "bent"}
    assert (ox_b.patient_id, ox_a.patient_id, ox_a.shared) == ("bent", None, False)


def test_one_resident_when_none_are_listed(tmp_path: Path) -> None:
    config = HubConfig.from_mapping(_config(tmp_path, residents=[], devices=[]), source="test")
    assert config.resident_ids == ("anna",)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"residents": [{"patient_id": "bent"}]}, "must include the hub's patient_id"),
        ({"residents": [{"patient_id": "anna"}, {"patient_id": "anna"}]}, "each patient once"),
        ({"residents": [{"patient_id": f"p{i}"} for i in range(5)]}, "at most 4"),
        ({"devices": [{"id": "c", "address": "A", "kind": "scale", "patient_id": "carl"}]}, "not a resident"),
        (
            {"devices": [{"id": "c", "address": "A", "kind": "scale", "users": {"1": "carl"}}]},
            "not a resident",
        ),
        ({"devices": [{"id": "c", "address": "A", "kind": "scale", "users": {"0": "anna"}}]}, "1-254"),
        ({"devices": [{"id": "c", "address": "A", "kind": "scale", "users": {"255": "anna"}}]}, "1-254"),
        ({"devices": [{"id": "c", "address": "A", "kind": "scale", "users": {}}]}, "at least one"),
        (
            {"devices": [{"id": "c", "address": "A", "kind": "scale", "users": {"1": "anna", "2": "anna"}}]},
            "one User Index",
        ),
        (
            {
                "devices": [
                    {"id": "c", "address": "A", "kind": "scale", "users": {"1": "anna"}, "patient_id": "anna"}
                ]
            },
            "not both",
        ),
    ],
)
def test_a_household_that_cannot_be_is_refused_naming_why(
    tmp_path: Path, changes: dict[str, Any], words: str
) -> None:
    with pytest.raises(HubConfigError) as refused:
        HubConfig.from_mapping(_config(tmp_path, **changes), source="test")
    assert words in str(refused.value)


def test_the_patient_view_is_never_served_without_a_pin(tmp_path: Path) -> None:
    with pytest.raises(HubConfigError, match="pin"):
        HubConfig.from_mapping(_config(tmp_path, patient_view={"enabled": True}), source="test")
    for bad in ("123", "12a4", "1234567890123"):
        with pytest.raises(HubConfigError, match=r"patient_view\.pin"):
            HubConfig.from_mapping(_config(tmp_path, patient_view={"enabled": True, "pin": bad}), source="t")
    assert PatientViewConfig(enabled=True, pin="2468").secret() == "2468"


def test_the_pin_file_is_taken_from_the_files_folder_and_checked(tmp_path: Path) -> None:
    (tmp_path / "pin").write_text("975310\n")
    text = (
        'municipality = "0101"\nhub_id = "hub-1"\npatient_id = "anna"\noutbox_path = "o.sqlite3"\n'
        'devices = []\n[patient_view]\nenabled = true\npin_file = "pin"\n'
    )
    (tmp_path / "hub.toml").write_text(text)
    config = HubConfig.from_toml(tmp_path / "hub.toml")
    assert config.patient_view.pin_file == tmp_path / "pin"
    assert config.patient_view.secret() == "975310"
    (tmp_path / "pin").write_text("12\n")
    with pytest.raises(HubConfigError, match="4-12 digits"):
        config.patient_view.secret()
    (tmp_path / "pin").unlink()
    with pytest.raises(HubConfigError, match="pin_file"):
        config.patient_view.secret()


def test_the_servers_residents_and_messages_replace_the_local_ones_whole(tmp_path: Path) -> None:
    local = HubConfig.from_mapping(_config(tmp_path), source="test")
    message = {
        "id": "m1",
        "patient_id": "bent",
        "sent_at": "2026-12-07T09:00:00+01:00",
        "text": "Husk vægten",
    }
    remote = parse_remote(
        orjson.dumps(
            {
                "residents": [{"patient_id": "anna", "name": "Anna"}],
                "devices": [{"id": "cuff", "address": "AA:00", "kind": "blood-pressure-cuff"}],
                "messages": [message],
            }
        )
    )
    merged = merge(local, remote)
    assert merged.resident_ids == ("anna",)
    assert [m.text for m in merged.messages] == ["Husk vægten"]
    assert merged.messages[0].sent_at.utcoffset() is not None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (
            {"messages": [{"id": "m", "patient_id": "a", "sent_at": "2026-12-07T09:00:00", "text": "x"}]},
            "messages",
        ),
        (
            {"messages": [{"id": "m", "patient_id": "a", "sent_at": "2026-12-07T09:00:00Z", "text": ""}]},
            "messages",
        ),
        ({"residents": [{"patient_id": "a", "pin": "1234"}]}, "residents"),
        ({"residents": [{"patient_id": "x", "name": "n" * 61}]}, "residents"),
    ],
)
def test_a_bad_household_from_the_server_is_refused_naming_the_key(
    payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(RemoteConfigError) as refused:
        parse_remote(orjson.dumps(payload))
    assert refused.value.field is not None and refused.value.field.startswith(field)


def test_residents_the_devices_do_not_fit_are_refused_at_merge(tmp_path: Path) -> None:
    """The server drops Bent but keeps his oximeter: the merged configuration cannot be, the hub keeps
    running the one it has."""
    local = HubConfig.from_mapping(_config(tmp_path), source="test")
    remote = parse_remote(orjson.dumps({"residents": [{"patient_id": "anna"}]}))
    with pytest.raises(RemoteConfigError, match="not a resident"):
        merge(local, remote)
