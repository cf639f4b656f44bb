"""The hub's retained configuration, from the gateway: built from what is enrolled, published retained on
``homewatch/v1/{municipality}/{hub}/config`` with the gateway's own MQTT account.

The payload (:func:`config_payload`, pure) has exactly the keys the hub accepts
(``edge_agent.remote_config.RemoteConfig``; the gateway imports nothing of the hub, a test parses the
payload with the hub's own parser): ``version`` (``str(config_version)``, which the hub echoes as
``configVersion`` in its status), ``patient_id``, ``devices`` (every device in use: ``id``, ``address``,
``kind``, and ``users`` (User Index -> patient id) for a device the residents share, or ``patient_id`` for
a personal device of a resident other than the hub's enrolled patient; the hub replaces its list with this
one as a whole), ``residents`` (everyone the hub measures, ``{"patient_id", "name"}`` with the first name
only, and ``questionnaire``, the daily symptom check of the resident's condition when it has one
(``fhir_contract.questionnaire.for_conditions``), and, for each resident other than the enrolled
patient, ``plan``: their measurement plan in force (an empty list when none; left out, so the hub has
none for them, only when their stored plan cannot be read); the enrolled patient first; always sent, so
a resident who moved out is dropped on the hub too: migration 0022), ``plan`` (the enrolled patient's
measurement plan in force, ``fhir_contract.plan.plan_json``, set by a nurse:
``gateway.administration.plans``) and the hub's
settings that an administrator set (``timezone``, ``bundle_size``, ``max_connections``,
``status_interval_s``). A device without a Bluetooth address is left out (the hub could not find it, and
one bad entry would make the hub refuse the whole message); any other settings key is left out too. Keys
are sorted, so the same configuration is always the same bytes (the hub ignores a payload it has applied
already).

``messages`` are the care team's recent messages to the residents (``{"id", "patient_id", "sent_at",
"text"}``, newest last: ``gateway.store.patient_messages.hub_messages``), an empty list when there are
none, never left out, so the hub drops what it no longer gets. ``plan`` is an empty list when the patient
has no plan, never left out: the hub replaces a key it is sent and keeps its own file's value for a key it
is not (``edge_agent.remote_config.merge``), so a plan the nurse removed would go on reminding the patient
if the key were only absent. It is left out only when the stored plan cannot be read
(``gateway.store.plans.PlanUnreadable``): then the hub keeps the plan it runs rather than being told to
drop it.

:func:`publish_hub_config` reads the hub with its row locked (``gateway.store.hub_config``), publishes,
and marks the version published, all in one transaction: two publishers of one hub take turns, so an older
configuration is never retained over a newer one. It returns False, raising nothing, when there is no
publisher or the broker is away: ``gateway.config_job`` publishes every lagging hub later. A revoked hub
gets no configuration (revocation clears it: ``ConfigPublisher.clear``).

``MqttConfigPublisher`` (``config_publisher(settings)``) publishes retained at QoS 1 and returns once the
broker's PUBACK came (one short connection per message: ``gateway.broker_session``); a broker that refuses
or does not answer raises ``ConfigPublishError``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import psycopg

from fhir_contract.plan import plan_json
from gateway.broker_rules import HUB_ID_PATTERN, MUNICIPALITY_PATTERN
from gateway.broker_session import DEFAULT_TIMEOUT_S, BrokerAddress, BrokerSession, BrokerUnavailable
from gateway.errors import GatewayFailure
from gateway.settings import GatewaySettings
from gateway.store.hub_config import HubConfigRecord, lock_hub_config, mark_published

log = logging.getLogger(__name__)

# The hub's remote settings besides its patient and devices (edge_agent.remote_config.RemoteConfig).
SETTINGS_KEYS = ("timezone", "bundle_size", "max_connections", "status_interval_s")


class ConfigPublishError(BrokerUnavailable):
    """The broker did not take the retained configuration (unreachable, refused, no PUBACK in time)."""


class UnknownHub(LookupError, GatewayFailure):
    """No hub of that id in that municipality."""


class ConfigPublisher(Protocol):
    """Where a hub's retained configuration goes."""

    def publish(self, municipality_id: str, hub_id: str, payload: bytes) -> None:
        """Retain ``payload`` on the hub's config topic (QoS 1); raises when the broker did not take it."""
        ...

    def clear(self, municipality_id: str, hub_id: str) -> None:
        """Remove the hub's retained configuration (the hub falls back to its local file)."""
        ...


def config_topic(municipality_id: str, hub_id: str) -> str:
    """The hub's config topic; ConfigPublishError for ids that would not name exactly one hub's topic."""
    if MUNICIPALITY_PATTERN.fullmatch(municipality_id) is None or HUB_ID_PATTERN.fullmatch(hub_id) is None:
        raise ConfigPublishError(f"no config topic for municipality {municipality_id!r}, hub {hub_id!r}")
    return f"homewatch/v1/{municipality_id}/{hub_id}/config"


def config_payload(record: HubConfigRecord) -> bytes:
    """The retained config message for the hub (module docstring)."""
    devices = []
    for device in record.devices:
        if not device.address:
            log.warning(
                "hub %s: device %s has no address and is left out of its config", record.hub_id, device.id
            )
            continue
        entry: dict[str, Any] = {"id": device.id, "address": device.address, "kind": device.kind}
        if device.users:
            entry["users"] = {str(index): patient for index, patient in sorted(device.users.items())}
        elif device.patient_id is not None and device.patient_id != record.patient_id:
            entry["patient_id"] = device.patient_id
        devices.append(entry)
    body: dict[str, Any] = {
        "version": str(record.config_version),
        "patient_id": record.patient_id,
        "devices": devices,
    }
    if record.residents:
        body["residents"] = [_resident(record, p, name) for p, name in record.residents]
    # Always sent (empty too): the hub replaces its messages with these (gateway.store.patient_messages).
    body["messages"] = [
        {"id": m.id, "patient_id": m.patient_id, "sent_at": m.sent_at.isoformat(), "text": m.text}
        for m in record.messages
    ]
    if record.plan is not None:
        body["plan"] = plan_json(record.plan)
    else:
        log.warning("hub %s: its stored plan is unreadable and left out of its config", record.hub_id)
    for key, value in record.settings.items():
        if key in SETTINGS_KEYS and value is not None:
            body[key] = value
        else:
            log.warning(
                "hub %s: settings key %r is not one a hub takes; left out of its config", record.hub_id, key
            )
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def _resident(record: HubConfigRecord, patient_id: str, name: str) -> dict[str, Any]:
    """One entry of ``residents``: a resident other than the enrolled patient carries their own plan
    (the enrolled patient's is the top-level ``plan``)."""
    entry: dict[str, Any] = {"patient_id": patient_id, "name": name}
    check = dict(record.questionnaires).get(patient_id)
    if check is not None:
        entry["questionnaire"] = check
    if patient_id != record.patient_id:
        plan = dict(record.resident_plans).get(patient_id, ())
        if plan is not None:
            entry["plan"] = plan_json(plan)
        else:
            log.warning("hub %s: the stored plan of %s is unreadable and left out", record.hub_id, patient_id)
    return entry


class MqttConfigPublisher:
    """Publishes retained configuration with the gateway's account, one short connection per message."""

    def __init__(
        self,
        address: BrokerAddress,
        username: str | None,
        password: str | None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.address = address
        self._username = username
        self._password = password
        self._timeout = timeout

    def publish(self, municipality_id: str, hub_id: str, payload: bytes) -> None:
        self._retain(config_topic(municipality_id, hub_id), payload)

    def clear(self, municipality_id: str, hub_id: str) -> None:
        self._retain(config_topic(municipality_id, hub_id), b"")  # an empty retained message removes it

    def _retain(self, topic: str, payload: bytes) -> None:
        session = BrokerSession(
            self.address, self._username, self._password, purpose="config", timeout=self._timeout
        )
        try:
            with session:
                session.publish(topic, payload, retain=True)
        except BrokerUnavailable as exc:
            raise ConfigPublishError(f"retained config: {exc}") from exc


def config_publisher(settings: GatewaySettings, *, timeout: float = DEFAULT_TIMEOUT_S) -> MqttConfigPublisher:
    """The publisher of the gateway's own account at the gateway's broker."""
    return MqttConfigPublisher(
        BrokerAddress.of_gateway(settings), settings.mqtt_username, settings.mqtt_password, timeout=timeout
    )


def publish_hub_config(
    conn: psycopg.Connection[Any], publisher: ConfigPublisher | None, municipality_id: str, hub_id: str
) -> bool:
    """Publish the hub's configuration as it is now and mark it published; False when it could not be
    (no publisher, the broker away, a revoked hub). UnknownHub for a hub the municipality lacks."""
    if publisher is None:
        return False
    return publish_outcome(conn, publisher, municipality_id, hub_id).published


@dataclass(frozen=True, slots=True)
class PublishOutcome:
    """Whether the hub's configuration is retained on the broker now, and if not because the broker did
    not take it, why (``failure``); a revoked hub is neither published nor a failure."""

    published: bool
    failure: str | None = None


def publish_outcome(
    conn: psycopg.Connection[Any], publisher: ConfigPublisher, municipality_id: str, hub_id: str
) -> PublishOutcome:
    """``publish_hub_config``'s work, saying why when the broker did not take it."""
    with conn.transaction():
        record = lock_hub_config(conn, municipality_id, hub_id)
        if record is None:
            raise UnknownHub(f"there is no hub {hub_id} in municipality {municipality_id}")
        if record.revoked:
            return PublishOutcome(False)
        if record.config_published >= record.config_version:
            return PublishOutcome(True)  # published already (by the other of two publishers that took turns)
        try:
            publisher.publish(municipality_id, hub_id, config_payload(record))
        except (BrokerUnavailable, OSError) as exc:
            log.info("hub %s: config %d not published yet: %s", hub_id, record.config_version, exc)
            return PublishOutcome(False, str(exc))
        mark_published(conn, municipality_id, hub_id, record.config_version)
    log.info("hub %s: config %d published", hub_id, record.config_version)
    return PublishOutcome(True)
