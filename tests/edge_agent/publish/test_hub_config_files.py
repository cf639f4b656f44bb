"""A hub's TOML file and the server's remote configuration: good files load, bad ones name the field,
and the merge rule (server's keys win, the local file fills in the rest; identity stays local)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import DeviceConfig, HubConfig, HubConfigError
from edge_agent.remote_config import RemoteConfigError, load_cache, merge, parse_remote, save_cache

EXAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "hub.example.toml"

GOOD = """
municipality = "0101"
hub_id = "hub-1"
patient_id = "p-1"
outbox_path = "state/outbox.sqlite3"
devices = [{ id = "cuff", address = "AA:BB:CC:DD:EE:01", kind = "blood-pressure-cuff" }]

[mqtt]
host = "broker.local"
port = 8883
tls = true
ca_file = "ca.crt"
username = "hub-1"
password_file = "secret"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(text)
    return path


def test_toml_loads_with_relative_paths_taken_from_the_file(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cret\n")
    config = HubConfig.from_toml(_write(tmp_path, GOOD))
    assert config.outbox_path == tmp_path / "state" / "outbox.sqlite3"
    assert config.mqtt.ca_file == tmp_path / "ca.crt" and config.mqtt.tls
    assert config.mqtt.secret() == "s3cret"
    assert config.devices == (
        DeviceConfig(id="cuff", address="AA:BB:CC:DD:EE:01", kind="blood-pressure-cuff"),
    )
    assert config.remote_cache_path.parent == config.outbox_path.parent


def test_shipped_example_file_loads() -> None:
    config = HubConfig.from_toml(EXAMPLE)
    assert config.mqtt.tls and config.mqtt.password_file is not None and config.mqtt.password is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (('kind = "blood-pressure-cuff"', 'kind = "toaster"'), "devices.0.kind"),
        (("port = 8883", "port = 0"), "mqtt.port"),
        (('hub_id = "hub-1"', 'hub_id = "hub 1"'), "hub_id"),
        (('patient_id = "p-1"\n', 'patient_id = "p-1"\npatient = "typo"\n'), "patient"),
        (('patient_id = "p-1"\n', ""), "patient_id"),
        (("tls = true\n", ""), "mqtt"),  # ca_file without tls
    ],
)
def test_bad_toml_value_names_the_field(tmp_path: Path, change: tuple[str, str], field: str) -> None:
    with pytest.raises(HubConfigError) as caught:
        HubConfig.from_toml(_write(tmp_path, GOOD.replace(*change)))
    assert caught.value.field == field
    assert str(tmp_path / "hub.toml") in str(caught.value)


def test_not_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(HubConfigError, match="not valid TOML"):
        HubConfig.from_toml(_write(tmp_path, "municipality = "))
    with pytest.raises(HubConfigError, match="No such file"):
        HubConfig.from_toml(tmp_path / "absent.toml")


def test_password_and_password_file_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(HubConfigError, match="not both"):
        HubConfig.from_toml(_write(tmp_path, GOOD.replace('username = "hub-1"', 'password = "x"')))


def test_unreadable_password_file_names_the_field(tmp_path: Path) -> None:
    config = HubConfig.from_toml(_write(tmp_path, GOOD))
    with pytest.raises(HubConfigError) as caught:
        config.mqtt.secret()
    assert caught.value.field == "mqtt.password_file"


# -- remote configuration: the merge rule ----------------------------------------------------------


def _local(tmp_path: Path) -> HubConfig:
    return HubConfig.from_toml(_write(tmp_path, GOOD))


def test_remote_keys_win_and_local_fills_in_the_rest(tmp_path: Path) -> None:
    local = _local(tmp_path)
    merged = merge(local, parse_remote(b'{"patient_id": "p-2", "bundle_size": 10}'))
    assert merged.patient_id == "p-2" and merged.bundle_size == 10
    assert merged.devices == local.devices and merged.timezone == local.timezone
    assert merged.mqtt == local.mqtt and merged.outbox_path == local.outbox_path


def test_remote_device_list_replaces_the_local_one_whole(tmp_path: Path) -> None:
    local = _local(tmp_path)
    remote = parse_remote(b'{"devices": [{"id": "scale", "address": "AA:00:00:00:00:09", "kind": "scale"}]}')
    assert [d.id for d in merge(local, remote).devices] == ["scale"]
    assert merge(local, parse_remote(b'{"devices": []}')).devices == ()


def test_empty_remote_and_none_change_nothing(tmp_path: Path) -> None:
    local = _local(tmp_path)
    assert merge(local, parse_remote(b"{}")) == local
    assert merge(local, None) == local


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"not json", None),
        (b"[1, 2]", None),
        (b'{"hub_id": "other"}', "hub_id"),  # identity is local only
        (b'{"mqtt": {"host": "evil"}}', "mqtt"),
        (b'{"outbox_path": "/tmp/x"}', "outbox_path"),
        (b'{"patient_id": null}', "patient_id"),
        (b'{"patient_id": ""}', "patient_id"),
        (b'{"bundle_size": 0}', "bundle_size"),
        (b'{"devices": [{"id": "x", "address": "A", "kind": "toaster"}]}', "devices.0.kind"),
    ],
)
def test_bad_remote_config_is_rejected_naming_the_key(payload: bytes, field: str | None) -> None:
    with pytest.raises(RemoteConfigError) as caught:
        parse_remote(payload)
    assert caught.value.field == field


def test_cache_round_trips_and_ignores_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "outbox.remote-config.json"
    assert load_cache(path) is None
    save_cache(path, b'{"patient_id": "p-9", "version": "7"}')
    cached = load_cache(path)
    assert cached is not None and cached[0].patient_id == "p-9" and cached[0].version == "7"
    path.write_bytes(b"{broken")
    assert load_cache(path) is None


def test_the_examples_commented_plan_and_voice_make_a_valid_configuration(tmp_path: Path) -> None:
    # What an operator gets by uncommenting them: the example must not teach a configuration the hub refuses.
    text = EXAMPLE.read_text()
    lines = text.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("# plan = ["))
    end = next(n for n, line in enumerate(lines) if line.startswith("# engine = "))
    for n in range(start, end + 1):
        if lines[n].startswith("# ") and not lines[n].startswith(("# The ", "# What ")):
            lines[n] = lines[n][2:]
    uncommented = "\n".join(lines).replace('password_file = "/etc/homewatch/mqtt-password"', "")
    config = HubConfig.from_toml(_write(tmp_path, uncommented))
    assert [item.measurement for item in config.plan_items] == ["blood-pressure"]
    assert config.voice.language == "da" and config.voice.engine == "espeak"
