"""One hub: keeps the patient's devices connected and turns every value they send into a stored
FHIR Observation, then lets the publisher deliver it.

``devices -> ConnectionManager (ble: one scanner, bounded links) -> DeviceSession per device (clock,
history, decode, FHIR) -> Outbox (durable) -> MqttPublisher``. The agent only wires these together from
the hub's configuration and the profile table (:mod:`edge_agent.ble.profiles`); each stage is its own
module. Bad bytes from a device are logged and counted and never stop the other devices or later
readings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from edge_agent.ble.backend import BleBackend
from edge_agent.ble.connection import DeviceState, LinkPolicy
from edge_agent.ble.manager import ConnectionManager
from edge_agent.ble.profiles import PROFILES
from edge_agent.config import HubConfig
from edge_agent.outbox import Outbox
from edge_agent.publish import MqttPublisher
from edge_agent.session import AgentStats, DeviceSession
from edge_agent.unattributed import UnattributedReadings

__all__ = ["AgentStats", "HubAgent"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class HubAgent:
    """Runs one hub until ``stop()``. ``backend`` None means bleak's platform backend (BlueZ on a hub).

    ``correct_device_clocks=False`` takes device stamps as they are (local time in the hub's zone) and
    never reads or sets a device clock: for simulations whose hub clock runs thousands of times faster
    than the radio, where a clock read that takes a millisecond would look like minutes of offset.
    """

    def __init__(
        self,
        config: HubConfig,
        *,
        backend: BleBackend | None = None,
        clock: Callable[[], datetime] = _utc_now,
        link_policy: LinkPolicy | None = None,
        correct_device_clocks: bool = True,
    ) -> None:
        self.config = config
        self.stats = AgentStats()
        self.outbox = Outbox(
            config.outbox_path, max_rows=config.outbox_max_rows, max_bytes=config.outbox_max_bytes
        )
        self.publisher = MqttPublisher(config, self.outbox)
        # A shared device's measurements that no resident's User Index names wait here to be claimed.
        self.unattributed = UnattributedReadings(UnattributedReadings.path_next_to(config.outbox_path))
        self.manager = ConnectionManager(
            backend, max_connections=config.max_connections, policy=link_policy, clock=clock
        )
        self.sessions: dict[str, DeviceSession] = {}
        self._stopped = False
        settle = (link_policy or LinkPolicy()).settle
        for device in config.devices:
            profile = PROFILES[device.kind]
            session = DeviceSession(
                device,
                profile,
                hub=config,
                outbox=self.outbox,
                stats=self.stats,
                clock=clock,
                correct_clock=correct_device_clocks,
                settle=settle,
                unattributed=self.unattributed,
            )
            self.sessions[device.id] = session
            # Off (the default), 0x2A36 is not even subscribed: the cuff sends nothing while inflating.
            intermediate = profile.intermediate if config.send_intermediate_cuff_pressure else None
            self.manager.add(
                device.id,
                device.address,
                profile.subscribe,
                session.on_value,
                pair=profile.bonding,
                session=session,
                optional=() if intermediate is None else (intermediate,),
            )

    async def start(self) -> None:
        """Start publishing, the hub's scan and every device's link."""
        self.publisher.start()
        await self.manager.start()

    async def wait_connected(self) -> None:
        """Return once every live device is connected and every other one has been connected once
        (bound it with ``asyncio.timeout``)."""

        async def ready(device_id: str) -> None:
            live = self.sessions[device_id].profile.live
            link = self.manager.links[device_id]
            await link.wait_until(lambda state: state.connected if live else state.connections >= 1)

        await asyncio.gather(*(ready(device_id) for device_id in self.manager.links))

    def device_states(self) -> dict[str, DeviceState]:
        """Each device's state (last seen, battery, identity, clock, errors, connections), by device id."""
        return self.manager.states()

    async def stop(self) -> None:
        """Disconnect every device (storing values already received), then stop publishing. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        await self.manager.close()
        await asyncio.to_thread(self.publisher.stop)
        self.outbox.close()
        self.unattributed.close()
