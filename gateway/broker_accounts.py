"""Broker accounts that follow enrolment: each hub's account and role at Mosquitto's dynamic-security
plugin, made and removed by the gateway while the broker runs (no restart, no reload).

``DynsecAccounts`` speaks the plugin's own protocol over MQTT, as ``mosquitto_ctrl dynsec`` does: JSON
commands published to ``$CONTROL/dynamic-security/v1`` with a ``correlationData`` of ours, answers read
from ``$CONTROL/dynamic-security/v1/response`` (which every admin connection hears: ours are picked out
by their correlation), all on one connection per errand with the broker's administrator account
(``broker_admin_username`` / ``broker_admin_password``) at the gateway's broker address. An answer that
does not come within the timeout is a ``BrokerAccountsError`` of one line; so is any error the plugin
reports (unlike mosquitto_ctrl 2.0.11, which prints it and exits 0).

Per hub (username = hub id, the shipped access rules' convention): a role ``hub:{hub id}`` with the hub
rules of ``gateway.broker_rules`` (those of ``deploy/mosquitto/acl``), and a client holding that role
and only that one. ``ensure_hub`` makes what is missing and corrects what is not as it should be: a role
whose rules differ is rewritten, an existing client gets the new password (the plugin disconnects it at
once, so a hub connected with the old password is cut off and must come back with the new one) and its
roles are set right. ``remove_hub`` deletes the client (the plugin disconnects a connected hub at once)
and its role. The same names as the shell script's, so either tool can manage an account the other made.

Left to others: when to call these (``gateway.administration``), the database's record of a hub's
credentials (``gateway.store``), the broker's first accounts (``gateway.broker_setup``).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Protocol

import orjson

from gateway.broker_rules import hub_acls, hub_role, same_acls, valid_hub_id
from gateway.broker_session import DEFAULT_TIMEOUT_S, BrokerAddress, BrokerSession, BrokerUnavailable
from gateway.errors import GatewayFailure
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

COMMAND_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = "$CONTROL/dynamic-security/v1/response"
# The plugin's words for "there is no such thing" (plugins/dynamic-security/*.c, 2.0.x).
CLIENT_NOT_FOUND = "Client not found"
ROLE_NOT_FOUND = "Role not found"


class BrokerAccountsError(RuntimeError, GatewayFailure):
    """The broker's accounts could not be changed: one line saying why (no answer, refused, a bad id)."""


class BrokerAccounts(Protocol):
    """What enrolment and revocation need of the broker."""

    def ensure_hub(self, hub_id: str, password: str) -> None:
        """Make the hub's account with its rules, or give an existing one ``password`` (and its rules)."""
        ...

    def remove_hub(self, hub_id: str) -> bool:
        """Delete the hub's account and role; a connected hub is disconnected at once. True when there
        was something to delete."""
        ...


class DynsecAccounts:
    """Hub accounts at Mosquitto's dynamic-security plugin, through its MQTT control topic."""

    def __init__(
        self,
        address: BrokerAddress,
        admin_username: str,
        admin_password: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.address = address
        self._admin = admin_username
        self._password = admin_password
        self._timeout = timeout

    def ensure_hub(self, hub_id: str, password: str) -> None:
        _check_hub_id(hub_id)
        if not password:
            raise BrokerAccountsError(f"hub {hub_id}: an empty password is not allowed")
        role = hub_role(hub_id)
        acls = hub_acls(hub_id)
        with self._session() as session:
            found_role, found_client = session.run(
                [{"command": "getRole", "rolename": role}, {"command": "getClient", "username": hub_id}],
                missing_ok=True,
            )
            changes: list[dict[str, Any]] = []
            if found_role.get("error") == ROLE_NOT_FOUND:
                changes.append({"command": "createRole", "rolename": role, "acls": acls})
            elif not same_acls(found_role["data"]["role"].get("acls", []), acls):
                log.warning("broker account of hub %s: its role's rules differed; rewritten", hub_id)
                changes.append({"command": "modifyRole", "rolename": role, "acls": acls})
            if found_client.get("error") == CLIENT_NOT_FOUND:
                changes.append(
                    {
                        "command": "createClient",
                        "username": hub_id,
                        "password": password,
                        "roles": [{"rolename": role}],
                    }
                )
            else:
                client = found_client["data"]["client"]
                held = {str(r["rolename"]) for r in client.get("roles", [])}
                changes.append({"command": "setClientPassword", "username": hub_id, "password": password})
                changes += [
                    {"command": "removeClientRole", "username": hub_id, "rolename": other}
                    for other in sorted(held - {role})
                ]
                if role not in held:
                    changes.append({"command": "addClientRole", "username": hub_id, "rolename": role})
                if client.get("disabled"):
                    changes.append({"command": "enableClient", "username": hub_id})
            session.run(changes)
        log.info("broker account of hub %s made or renewed at %s", hub_id, self.address)

    def remove_hub(self, hub_id: str) -> bool:
        _check_hub_id(hub_id)
        with self._session() as session:
            client, role = session.run(
                [
                    {"command": "deleteClient", "username": hub_id},
                    {"command": "deleteRole", "rolename": hub_role(hub_id)},
                ],
                missing_ok=True,
            )
        removed = "error" not in client or "error" not in role
        log.info(
            "broker account of hub %s %s at %s",
            hub_id,
            "removed" if removed else "was not there",
            self.address,
        )
        return removed

    def _session(self) -> _DynsecSession:
        return _DynsecSession(self.address, self._admin, self._password, self._timeout)


class _DynsecSession:
    """One admin connection subscribed to the plugin's answers; ``run`` sends commands and waits for
    their answers."""

    def __init__(self, address: BrokerAddress, admin: str, password: str, timeout: float) -> None:
        self._mqtt = BrokerSession(address, admin, password, purpose="accounts", timeout=timeout)

    def __enter__(self) -> _DynsecSession:
        try:
            self._mqtt.__enter__()
            self._mqtt.subscribe(RESPONSE_TOPIC)
        except BrokerUnavailable as exc:
            self._mqtt.__exit__(None, None, None)
            raise BrokerAccountsError(f"broker accounts: {exc}") from exc
        return self

    def __exit__(self, *exc: object) -> None:
        self._mqtt.__exit__(None, None, None)

    def run(self, commands: list[dict[str, Any]], *, missing_ok: bool = False) -> list[dict[str, Any]]:
        """Send ``commands`` in one message and return the plugin's answer to each, in order.

        An answer with an ``error`` raises BrokerAccountsError, except "not found" with ``missing_ok``
        (the caller looks at it)."""
        if not commands:
            return []
        batch = uuid.uuid4().hex
        tagged = [{**command, "correlationData": f"{batch}-{n}"} for n, command in enumerate(commands)]
        try:
            self._mqtt.publish(COMMAND_TOPIC, orjson.dumps({"commands": tagged}))
            answers = self._answers({c["correlationData"] for c in tagged})
        except BrokerUnavailable as exc:
            raise BrokerAccountsError(f"broker accounts: {exc}") from exc
        ordered = [answers[c["correlationData"]] for c in tagged]
        for command, answer in zip(commands, ordered, strict=True):
            error = answer.get("error")
            if error is None or (missing_ok and error in (CLIENT_NOT_FOUND, ROLE_NOT_FOUND)):
                continue
            subject = command.get("username") or command.get("rolename") or ""
            raise BrokerAccountsError(
                f"broker accounts: {command['command']} {subject} refused by the broker at "
                f"{self._mqtt.address}: {error}"
            )
        return ordered

    def _answers(self, wanted: set[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        while len(found) < len(wanted):
            message = self._mqtt.next_message()
            if message is None:
                names = ", ".join(sorted({w.rsplit("-", 1)[0][:8] for w in wanted - found.keys()}))
                raise BrokerAccountsError(
                    f"broker accounts: the broker at {self._mqtt.address} did not answer the "
                    f"dynamic-security commands (batch {names}) within {self._mqtt.timeout:.0f} s; is the "
                    "plugin loaded and the admin account allowed $CONTROL/dynamic-security/#?"
                )
            _, payload = message
            try:
                responses = orjson.loads(payload).get("responses", [])
            except (orjson.JSONDecodeError, AttributeError):
                continue  # not the plugin's (nothing else may publish there): not ours either
            for response in responses:
                if isinstance(response, dict) and response.get("correlationData") in wanted:
                    found[response["correlationData"]] = response
        return found


def _check_hub_id(hub_id: str) -> None:
    if not valid_hub_id(hub_id):
        raise BrokerAccountsError(
            f"a hub id is 1-64 letters, digits, '_', '.' and '-' (and not the gateway's account), "
            f"not {hub_id!r}: it is written into the hub's topics"
        )


def broker_accounts(
    settings: GatewaySettings, *, timeout: float = DEFAULT_TIMEOUT_S
) -> BrokerAccounts | None:
    """The broker's accounts as the settings reach them; None when no broker administrator is set (the
    embedded, anonymous broker of the demo and the tests keeps no accounts)."""
    if settings.broker_admin_username is None:
        return None
    password = settings.broker_admin_password
    return DynsecAccounts(
        BrokerAddress.of_gateway(settings),
        settings.broker_admin_username,
        password.get_secret_value() if password is not None else "",
        timeout=timeout,
    )
