"""The broker's access rules for homewatch, in the one form every tool uses: Mosquitto dynamic-security
ACLs for a hub's role (one per hub) and the gateway's role.

The rules are those of ``deploy/mosquitto/acl``, which the shell script
(``deploy/mosquitto/homewatch-broker-accounts.sh``) reads; ``deploy/`` is not installed with the Python
package, so the gateway holds the same lines here and a test (``tests/deploy/test_broker_rules.py``)
proves that the file and this module say exactly the same thing. Change both together.

Why the rules look the way they do (no wildcards for hubs, the literal-deny / pattern-allow pairs, the
gateway's ``$share`` and probe topics) is said in the acl file and deploy/README.md. Dynamic security has
no ``%u`` pattern, so each hub gets a role of its own (``hub:{hub id}``) with the hub id written into
its topics; a hub id is therefore checked to be topic-safe before it is used (:func:`check_hub_id`).
Left to others: talking to the broker (``gateway.broker_accounts``), writing a new broker's files
(``gateway.broker_setup``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

AclType = Literal[
    "publishClientSend", "publishClientReceive", "subscribeLiteral", "subscribePattern", "unsubscribePattern"
]

GATEWAY_USERNAME = "homewatch-gateway"
GATEWAY_ROLE = "homewatch-gateway"
ADMIN_ROLE = "dynsec-admin"
HUB_ROLE_PREFIX = "hub:"
# What a hub id may hold, as the hub's own configuration allows it (edge_agent.config.HubConfig): no
# topic separator or wildcard ('/', '+', '#'), no '$', no space or control character, so the id written
# into a rule can never widen it. Capped so that a topic stays far from any limit.
HUB_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# The same for a municipality id (edge_agent.config.HubConfig.municipality), which names topics too.
MUNICIPALITY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of the acl file: ``<role> <acltype> <topic> allow|deny`` (``%u`` = the hub id)."""

    acltype: AclType
    topic: str
    allow: bool

    def for_hub(self, hub_id: str) -> Rule:
        return Rule(self.acltype, self.topic.replace("%u", hub_id), self.allow)

    def dynsec(self) -> dict[str, Any]:
        """The ACL as the plugin's commands and its accounts file write it (priority 0, as
        ``mosquitto_ctrl dynsec addRoleACL`` gives one)."""
        return {"acltype": self.acltype, "topic": self.topic, "priority": 0, "allow": self.allow}


def _hub(acltype: AclType, leaf: str, allow: bool = True) -> Rule:
    return Rule(acltype, f"homewatch/v1/+/%u/{leaf}", allow)


HUB_RULES: tuple[Rule, ...] = (
    _hub("publishClientSend", "observations"),
    _hub("publishClientSend", "status"),
    _hub("publishClientReceive", "errors"),
    _hub("publishClientReceive", "receipts"),
    _hub("publishClientReceive", "config"),
    _hub("subscribeLiteral", "errors", allow=False),
    _hub("subscribeLiteral", "receipts", allow=False),
    _hub("subscribeLiteral", "config", allow=False),
    _hub("subscribePattern", "errors"),
    _hub("subscribePattern", "receipts"),
    _hub("subscribePattern", "config"),
)

GATEWAY_RULES: tuple[Rule, ...] = (
    Rule("subscribePattern", "$share/+/homewatch/v1/+/+/observations", True),
    Rule("subscribePattern", "homewatch/v1/+/+/observations", True),
    Rule("subscribePattern", "homewatch/v1/+/+/status", True),
    Rule("publishClientReceive", "homewatch/v1/+/+/observations", True),
    Rule("publishClientReceive", "homewatch/v1/+/+/status", True),
    Rule("publishClientSend", "homewatch/v1/+/+/errors", True),
    Rule("publishClientSend", "homewatch/v1/+/+/receipts", True),
    Rule("publishClientSend", "homewatch/v1/+/+/config", True),
    Rule("subscribeLiteral", "$SYS/broker/version", True),
    Rule("publishClientReceive", "$SYS/broker/version", True),
    Rule("subscribePattern", "homewatch/probe/+", True),
    Rule("publishClientReceive", "homewatch/probe/+", True),
    Rule("publishClientSend", "homewatch/probe/+", True),
)

# The broker's administrator: the dynamic-security control topics and nothing else. (mosquitto_ctrl's
# `dynsec init` also lets its admin read every topic; ours cannot read a single reading, although an
# account that makes accounts could always make itself one that does.)
ADMIN_RULES: tuple[Rule, ...] = (
    Rule("publishClientSend", "$CONTROL/dynamic-security/#", True),
    Rule("publishClientReceive", "$CONTROL/dynamic-security/#", True),
    Rule("subscribePattern", "$CONTROL/dynamic-security/#", True),
)


def valid_hub_id(hub_id: str) -> bool:
    """Whether ``hub_id`` can name a hub's account, role and topics (see HUB_ID_PATTERN)."""
    return HUB_ID_PATTERN.fullmatch(hub_id) is not None and hub_id != GATEWAY_USERNAME


def hub_role(hub_id: str) -> str:
    """The name of a hub's role (the shell script's name, so both manage the same accounts)."""
    return f"{HUB_ROLE_PREFIX}{hub_id}"


def hub_acls(hub_id: str) -> list[dict[str, Any]]:
    """The ACLs of ``hub_id``'s role, in the plugin's JSON form. The caller checked the id."""
    return [rule.for_hub(hub_id).dynsec() for rule in HUB_RULES]


def gateway_acls() -> list[dict[str, Any]]:
    return [rule.dynsec() for rule in GATEWAY_RULES]


def admin_acls() -> list[dict[str, Any]]:
    return [rule.dynsec() for rule in ADMIN_RULES]


def same_acls(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Whether two ACL lists grant the same (the broker keeps them sorted by type, not as sent)."""

    def key(acl: dict[str, Any]) -> tuple[str, str, int, bool]:
        return (str(acl["acltype"]), str(acl["topic"]), int(acl.get("priority", 0)), bool(acl["allow"]))

    return sorted(map(key, a)) == sorted(map(key, b))
