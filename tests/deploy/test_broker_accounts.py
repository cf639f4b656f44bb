"""deploy/mosquitto/homewatch-broker-accounts.sh against a real Mosquitto running the shipped files: the
accounts it makes work, and it stops loudly where mosquitto_ctrl 2.0.11 would carry on silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import NEEDS_MOSQUITTO
from shipped_mosquitto import (
    ACCOUNTS_FILE,
    ADMIN,
    GRANTED,
    HUBS,
    NOT_AUTHORIZED,
    Client,
    ShippedBroker,
    accounts,
    admin_options,
    topic,
)

pytestmark = NEEDS_MOSQUITTO

NEW_HUB = "hub-0100"


def test_init_writes_an_accounts_file_that_denies_all_but_unsubscribing_by_default(tmp_path: Path) -> None:
    done = accounts(tmp_path, "init", str(tmp_path / ACCOUNTS_FILE), ADMIN, secret="pw-admin")
    assert done.returncode == 0, done.stderr
    defaults = json.loads((tmp_path / ACCOUNTS_FILE).read_text())["defaultACLAccess"]
    assert defaults == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }


def test_init_refuses_to_overwrite_an_accounts_file(tmp_path: Path) -> None:
    (tmp_path / ACCOUNTS_FILE).write_text("{}")
    done = accounts(tmp_path, "init", str(tmp_path / ACCOUNTS_FILE), ADMIN, secret="pw-admin")
    assert done.returncode != 0 and "exists already" in done.stderr
    assert (tmp_path / ACCOUNTS_FILE).read_text() == "{}"


def test_an_added_hub_connects_and_reads_its_config_and_a_removed_one_cannot_connect(
    shipped: ShippedBroker,
) -> None:
    admin_options(shipped)
    added = accounts(shipped.folder, "add-hub", NEW_HUB, secret=f"pw-{NEW_HUB}")
    assert added.returncode == 0, added.stderr
    hub = Client(shipped.port, NEW_HUB)
    try:
        assert hub.refused is None
        assert hub.subscribe(topic(NEW_HUB, "config")) == GRANTED
        assert hub.subscribe(topic(HUBS[0], "config")) == NOT_AUTHORIZED
    finally:
        hub.close()
    removed = accounts(shipped.folder, "remove-hub", NEW_HUB, secret="")
    assert removed.returncode == 0, removed.stderr
    again = Client(shipped.port, NEW_HUB)
    again.close()
    assert again.refused is not None


def test_adding_a_hub_twice_stops_with_the_brokers_error(shipped: ShippedBroker) -> None:
    admin_options(shipped)
    done = accounts(shipped.folder, "add-hub", HUBS[0], secret="another-password")
    assert done.returncode != 0
    assert "Role already exists" in done.stderr


def test_a_hub_half_made_by_a_failing_rule_is_reported_undone_and_made_again(shipped: ShippedBroker) -> None:
    admin_options(shipped)
    broken = shipped.folder / "broken-acl"
    broken.write_text("hub publishClientSend homewatch/v1/+/%u/status allow\nhub subscribeBogus x/%u allow\n")
    failed = accounts(shipped.folder, "add-hub", NEW_HUB, secret="pw", rules=broken)
    assert failed.returncode != 0
    assert "addRoleACL" in failed.stderr and f"remove-hub {NEW_HUB}" in failed.stderr
    attempt = Client(shipped.port, NEW_HUB, password_override="pw")
    attempt.close()
    assert attempt.refused is not None  # no account was made
    undone = accounts(shipped.folder, "remove-hub", NEW_HUB, secret="")
    assert undone.returncode == 0, undone.stderr
    made = accounts(shipped.folder, "add-hub", NEW_HUB, secret=f"pw-{NEW_HUB}")
    assert made.returncode == 0, made.stderr


@pytest.mark.parametrize("hub_id", ["hub/0001", "+", "#", "hub-+", "", "homewatch-gateway"])
def test_a_hub_id_that_could_widen_a_rule_is_refused_before_the_broker_is_asked(
    tmp_path: Path, hub_id: str
) -> None:
    done = accounts(tmp_path, "add-hub", hub_id, secret="pw")  # no broker, no options file: never reached
    assert done.returncode != 0
    assert "hub" in done.stderr


def test_an_unreachable_broker_fails_the_script(shipped: ShippedBroker) -> None:
    admin_options(shipped)
    (shipped.folder / "mosquitto_ctrl").write_text(f"-h 127.0.0.1\n-p 1\n-u {ADMIN}\n-P pw-{ADMIN}\n")
    done = accounts(shipped.folder, "add-hub", NEW_HUB, secret="pw")
    assert done.returncode != 0
