"""One simulated home: a SYNTHETIC patient, their emulated devices on the home's own radio, and the
real hub agent reading them.

The patient's measurement plan (``models.cohort.schedule``) drives the devices in simulated time: at
each planned moment the device takes a reading from the patient's physiology, stamps it with its own
clock and sends it over GATT. Everything after the radio is the product's own code, the patient view the
hub serves on the home network included (``homewatch.demo.patient_view``: the resident's page, with the
daily symptom check of their condition).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from edge_agent.agent import HubAgent
from edge_agent.ble.connection import LinkPolicy
from edge_agent.config import DeviceConfig, DeviceKind, HubConfig, MqttConfig, ResidentConfig
from edge_agent.emulation.peripheral import EmulatedPeripheral, create_peripheral
from edge_agent.emulation.radio import HomeRadio
from edge_agent.service import device_status
from fhir_contract.questionnaire import for_conditions
from gateway.broker import BrokerEndpoint
from gateway.service import Gateway
from homewatch.demo.clock import SimClock
from homewatch.demo.firmware import DEVICE_FOR, measurement_bytes
from homewatch.demo.patient_view import DemoPatientView
from models.cohort.synthetic import Reading, ScheduledMeasurement, SyntheticPatient

log = logging.getLogger(__name__)

DEVICE_KINDS: tuple[DeviceKind, ...] = ("blood-pressure-cuff", "pulse-oximeter", "scale", "thermometer")
# Share of oximeter readings that come out as a glitch (SpO2 127 %), so the demo shows the hub's rule:
# an impossible number leaves the hub as a reading without a value (fhir_contract.observation).
ARTEFACT_RATE = 0.01
# The demo's links retry quickly: simulated days pass in seconds.
DEMO_LINK_POLICY = LinkPolicy(scan_timeout=3.0, connect_timeout=5.0, idle_retry=1.0, drain_timeout=2.0)
# A home sends its retained status (each device's battery and connection, as a hub's service does) at
# most this often while it plays: often enough for the patient page, a handful of messages per home.
STATUS_EVERY_S = 5.0


def battery_level(number: int, index: int) -> int:
    """The emulated battery of a home's ``index``-th device: spread over 11-100 %, a few of them low."""
    return 100 - (number * 37 + index * 23) % 90


@dataclass(frozen=True, slots=True)
class TakenMeasurement:
    """What a device measured and sent (kept so the demo and its tests can check what arrived)."""

    reading: Reading
    device_time: datetime
    artefact: bool


@dataclass(slots=True)
class HomeStats:
    measurements_taken: int = 0
    artefacts: int = 0
    taken: list[TakenMeasurement] = field(default_factory=list)


@dataclass(slots=True)
class SimulatedHome:
    municipality: str
    hub_id: str
    patient: SyntheticPatient
    radio: HomeRadio
    devices: dict[DeviceKind, EmulatedPeripheral]
    device_ids: dict[DeviceKind, str]
    agent: HubAgent
    zone: ZoneInfo
    view: DemoPatientView
    stats: HomeStats = field(default_factory=HomeStats)
    artefact_rate: float = ARTEFACT_RATE
    _last_status: float = float("-inf")

    @classmethod
    async def create(
        cls,
        *,
        municipality: str,
        patient: SyntheticPatient,
        endpoint: BrokerEndpoint,
        outbox_dir: Path,
        clock: SimClock,
        timezone: str = "Europe/Copenhagen",
    ) -> SimulatedHome:
        number = patient.id.removeprefix("p-")
        hub_id = f"hub-{number}"
        check = for_conditions(patient.conditions)
        key = check.key if check is not None else None
        radio = await HomeRadio(hub_id).start()
        devices = {
            kind: await create_peripheral(radio, kind, battery=battery_level(int(number), index))
            for index, kind in enumerate(DEVICE_KINDS)
        }
        device_ids = {kind: f"dev-{number}-{kind}" for kind in DEVICE_KINDS}
        config = HubConfig(
            municipality=municipality,
            hub_id=hub_id,
            patient_id=patient.id,
            devices=tuple(
                DeviceConfig(id=device_ids[kind], address=devices[kind].address, kind=kind)
                for kind in DEVICE_KINDS
            ),
            mqtt=MqttConfig(host=endpoint.host, port=endpoint.port, mqtt5=endpoint.mqtt5),
            outbox_path=outbox_dir / f"{hub_id}.sqlite3",
            timezone=timezone,
            residents=(ResidentConfig(patient_id=patient.id, name=patient.name, questionnaire=key),),
        )
        # Simulated time runs ~10^5 times faster than the radio: a clock read taking a millisecond would
        # look like minutes of offset, so the demo's hubs take the stamps it writes as they are.
        agent = HubAgent(
            config,
            backend=radio.backend,
            clock=clock.now,
            link_policy=DEMO_LINK_POLICY,
            correct_device_clocks=False,
        )
        # The status carries the devices, as the hub's service sends it (edge_agent.service.device_status).
        agent.publisher.status_extra = lambda: {
            "patientId": patient.id,
            "devices": [device_status(d, agent.device_states().get(d.id)) for d in config.devices],
        }
        view = DemoPatientView(config, agent, clock.now)
        return cls(municipality, hub_id, patient, radio, devices, device_ids, agent, ZoneInfo(timezone), view)

    async def play(self, plan: list[ScheduledMeasurement], clock: SimClock, seed: int) -> None:
        """Take every planned measurement at its simulated time; returns when the plan is done."""
        rng = np.random.default_rng([seed, self.patient.number, 7])
        for planned in plan:
            await clock.sleep_until(planned.at)
            reading = self.patient.read(planned.kind, planned.at, rng)
            artefact = planned.kind == "spo2" and rng.random() < self.artefact_rate
            # Device clocks keep local wall time with no zone, as real ones do.
            device_time = planned.at.astimezone(self.zone).replace(tzinfo=None)
            data = measurement_bytes(reading, device_time, artefact=artefact)
            await self.devices[DEVICE_FOR[planned.kind]].measure(data)
            self.stats.measurements_taken += 1
            self.stats.artefacts += int(artefact)
            self.stats.taken.append(TakenMeasurement(reading, device_time, artefact))
            self._send_status_when_due()

    def _send_status_when_due(self) -> None:
        """Send the home's status (its devices' battery and connection) when the last is old enough."""
        now = time.monotonic()
        if now - self._last_status >= STATUS_EVERY_S and self.agent.publisher.publish_status():
            self._last_status = now

    async def start(self) -> None:
        """Start the hub agent, then the patient view it serves."""
        await self.agent.start()
        await self.view.start()

    async def close(self) -> None:
        await self.view.stop()
        await self.agent.stop()
        await self.radio.close()


async def create_homes(
    patients: list[SyntheticPatient],
    municipalities: list[str],
    endpoint: BrokerEndpoint,
    outbox_dir: Path,
    clock: SimClock,
) -> list[SimulatedHome]:
    """Homes for ``patients``: the i-th in ``municipalities[i % len(municipalities)]`` (one municipality
    per patient, or a few taken in turn)."""
    return list(
        await asyncio.gather(
            *(
                SimulatedHome.create(
                    municipality=municipalities[i % len(municipalities)],
                    patient=patient,
                    endpoint=endpoint,
                    outbox_dir=outbox_dir,
                    clock=clock,
                )
                for i, patient in enumerate(patients)
            )
        )
    )


async def wait_until_delivered(homes: list[SimulatedHome], gateway: Gateway) -> None:
    """Return once every reading the hubs hold has been sent and receipted, the gateway's ingest has
    committed (stored, found duplicate or rejected) as many Observations as the hubs count as sent, and
    the scorer has scored every batch committed by then. Bound it with ``asyncio.timeout``."""
    while True:
        depth = sum(await asyncio.gather(*(asyncio.to_thread(h.agent.outbox.depth) for h in homes)))
        sent = sum(h.agent.publisher.stats.observations_sent for h in homes)
        # A hub deletes a reading on the gateway's receipt, sent after the commit: an empty outbox is a
        # committed one. The counters, written by the workers in their batches, say the same from the
        # gateway's side.
        c = await asyncio.to_thread(gateway.ingest_counts)
        if depth == 0 and c.observations_stored + c.duplicates + c.rejected >= sent:
            break
        await asyncio.sleep(0.1)
    while not await asyncio.to_thread(gateway.wait_scored, 5.0):
        pass
