"""One hub: keeps the patient's devices connected and turns every value they send into a stored
FHIR Observation, then lets the publisher deliver it.

``device -> DeviceLink (ble) -> decode (gatt) -> readings -> build_observation (fhir_contract) ->
Outbox (durable) -> MqttPublisher``. The agent only wires these together; each stage is its own module.
Bad bytes from a device are logged and counted and never stop the other devices or later readings.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from edge_agent.ble.backend import BleBackend
from edge_agent.ble.connection import DeviceLink, DeviceState, LinkPolicy
from edge_agent.config import DeviceConfig, DeviceKind, HubConfig
from edge_agent.gatt import ParseError, decode
from edge_agent.gatt.registry import (
    BLOOD_PRESSURE_MEASUREMENT_UUID,
    PLX_SPOT_CHECK_MEASUREMENT_UUID,
    TEMPERATURE_MEASUREMENT_UUID,
    WEIGHT_MEASUREMENT_UUID,
)
from edge_agent.outbox import Outbox
from edge_agent.publish import MqttPublisher
from edge_agent.timing import effective_time
from fhir_contract.observation import build_observation

log = logging.getLogger(__name__)

#: The measurement characteristic the hub subscribes to for each kind of device.
MEASUREMENT_CHARACTERISTIC: dict[DeviceKind, str] = {
    "blood-pressure-cuff": BLOOD_PRESSURE_MEASUREMENT_UUID,
    "pulse-oximeter": PLX_SPOT_CHECK_MEASUREMENT_UUID,
    "scale": WEIGHT_MEASUREMENT_UUID,
    "thermometer": TEMPERATURE_MEASUREMENT_UUID,
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class AgentStats:
    values_received: int = 0
    observations_stored: int = 0  # new rows in the outbox
    parse_errors: int = 0
    receipt_time_used: int = 0  # readings dated by the hub because the device's stamp was missing or wrong


class HubAgent:
    """Runs one hub until ``stop()``. ``backend`` None means bleak's platform backend (BlueZ on a hub)."""

    def __init__(
        self,
        config: HubConfig,
        *,
        backend: BleBackend | None = None,
        clock: Callable[[], datetime] = _utc_now,
        link_policy: LinkPolicy | None = None,
    ) -> None:
        self.config = config
        self.stats = AgentStats()
        self._backend = backend
        self._clock = clock
        self._zone = ZoneInfo(config.timezone)
        self._policy = link_policy
        self.outbox = Outbox(config.outbox_path)
        self.publisher = MqttPublisher(config, self.outbox)
        self._links: list[DeviceLink] = []

    async def start(self) -> None:
        self.publisher.start()
        for device in self.config.devices:
            link = DeviceLink(
                device.address,
                MEASUREMENT_CHARACTERISTIC[device.kind],
                functools.partial(self.handle_value, device),
                backend=self._backend,
                policy=self._policy,
                clock=self._clock,
            )
            link.start()
            self._links.append(link)

    async def wait_connected(self) -> None:
        """Return once every device is connected and subscribed (bound it with ``asyncio.timeout``)."""
        await asyncio.gather(*(link.wait_connected() for link in self._links))

    def device_states(self) -> list[DeviceState]:
        return [link.state for link in self._links]

    async def stop(self) -> None:
        """Disconnect every device (storing values already received), then stop publishing."""
        await asyncio.gather(*(link.close() for link in self._links))
        await asyncio.to_thread(self.publisher.stop)
        self.outbox.close()

    async def handle_value(self, device: DeviceConfig, uuid: str, data: bytes) -> None:
        """Decode one characteristic value and store its Observations durably."""
        self.stats.values_received += 1
        received = self._clock()
        try:
            readings = decode(uuid, data)
        except ParseError as exc:
            self.stats.parse_errors += 1
            log.warning("hub %s, device %s: %s (bytes %s)", self.config.hub_id, device.id, exc, data.hex())
            return
        observations = []
        for reading in readings:
            when = effective_time(reading.device_time, received, self._zone)
            if when.source != "device":
                self.stats.receipt_time_used += 1
            observations.append(
                build_observation(
                    reading,
                    patient_id=self.config.patient_id,
                    device_id=device.id,
                    hub_id=self.config.hub_id,
                    effective=when.at,
                )
            )
        if observations:
            # SQLite with synchronous=FULL waits for the disk: off the event loop.
            self.stats.observations_stored += await asyncio.to_thread(self.outbox.put, observations)
