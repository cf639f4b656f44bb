"""The broker's rules and configuration live in two forms, the shipped files (deploy/mosquitto, read by
the shell script and by hand) and the Python package (gateway.broker_rules, gateway.broker_setup, which
deploy/ is not installed with): these tests prove the two say exactly the same.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import NEEDS_MOSQUITTO
from shipped_mosquitto import ADMIN, DEPLOY, GATEWAY, HUBS, password

from gateway.broker_rules import (
    GATEWAY_ROLE,
    GATEWAY_RULES,
    GATEWAY_USERNAME,
    HUB_RULES,
    Rule,
    gateway_acls,
    hub_acls,
    hub_role,
    same_acls,
)
from gateway.broker_setup import BrokerPlan, dynsec_password, mosquitto_conf


def _acl_file_rules(role: str) -> list[Rule]:
    rules = []
    for line in (DEPLOY / "acl").read_text().splitlines():
        fields = line.split()
        if fields and not line.startswith("#") and fields[0] == role:
            assert len(fields) == 4 and fields[3] in ("allow", "deny"), line
            rules.append(Rule(fields[1], fields[2], fields[3] == "allow"))  # type: ignore[arg-type]
    return rules


def test_the_shipped_acl_file_and_the_gateways_rules_are_the_same_lines_in_the_same_order() -> None:
    assert _acl_file_rules("hub") == list(HUB_RULES)
    assert _acl_file_rules("gateway") == list(GATEWAY_RULES)
    roles = {
        line.split()[0]
        for line in (DEPLOY / "acl").read_text().splitlines()
        if line.strip() and line[0] != "#"
    }
    assert roles == {"hub", "gateway"}
    assert GATEWAY_USERNAME == GATEWAY == GATEWAY_ROLE  # the script's account and role names


@NEEDS_MOSQUITTO
def test_the_roles_the_shell_script_made_are_the_roles_the_gateway_makes(shipped_accounts: Path) -> None:
    accounts = json.loads(shipped_accounts.read_text())
    roles = {role["rolename"]: role["acls"] for role in accounts["roles"]}
    for hub in HUBS:
        assert same_acls(roles[hub_role(hub)], hub_acls(hub)), hub
    assert same_acls(roles[GATEWAY_ROLE], gateway_acls())


@NEEDS_MOSQUITTO
def test_our_password_hash_is_the_one_mosquitto_wrote_for_the_same_password_and_salt(
    shipped_accounts: Path,
) -> None:
    import base64

    accounts = json.loads(shipped_accounts.read_text())
    checked = 0
    for client in accounts["clients"]:
        user = client["username"]
        assert user in (ADMIN, GATEWAY, *HUBS)
        ours = dynsec_password(
            password(user), salt=base64.b64decode(client["salt"]), iterations=client["iterations"]
        )
        assert ours == {k: client[k] for k in ("password", "salt", "iterations")}, user
        checked += 1
    assert checked == 2 + len(HUBS)


def _settings(text: str) -> dict[str, str]:
    """Each setting line (no comment, no blank) as name -> value."""
    lines = (line.split(None, 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return {fields[0]: fields[1] if len(fields) > 1 else "" for fields in lines}


# Where the generated configuration differs from the shipped one on purpose: its own folder's paths,
# and its listeners (written from the options).
PATHS = {"plugin_opt_config_file", "persistence_location", "cafile", "certfile", "keyfile", "listener"}


@pytest.mark.parametrize("tls", [True, False])
def test_the_generated_configuration_keeps_every_setting_of_the_shipped_one(
    tmp_path: Path, tls: bool
) -> None:
    from datetime import UTC, datetime

    shipped = _settings((DEPLOY / "homewatch.conf").read_text())
    plugin = Path(shipped["plugin"])
    plan = BrokerPlan(out_dir=tmp_path, hosts=("broker.example",), tls=tls, plugin=plugin)
    generated = _settings(mosquitto_conf(plan, tmp_path, datetime.now(UTC)))
    for name, value in shipped.items():
        if name in PATHS or (not tls and name in ("tls_version",)):
            continue
        assert generated.get(name) == value, name
    assert generated["plugin_opt_config_file"] == f"{tmp_path}/dynamic-security.json"
    assert generated["persistence_location"] == f"{tmp_path}/"
    assert ("certfile" in generated) is tls
    listeners = re.findall(
        r"^listener (.*)$", mosquitto_conf(plan, tmp_path, datetime.now(UTC)), re.MULTILINE
    )
    assert listeners == ["8883", "1883 127.0.0.1"]
