"""Two patients on one hub never get each other's readings.

Real parts only: PostgreSQL, a broker process, the gateway as ``gateway serve`` runs it (ingest and the
config job), and the hub's own ``HubService`` with Bumble-emulated devices. The household is set up as
``homewatch admin`` sets it up (``gateway.administration.household``): Ane's hub, Bent living with it,
a blood-pressure cuff they share with User Indexes 1 (Ane) and 2 (Bent), and a personal oximeter each.
The emulated cuff measures users 1, 2 and 3 in turn, each at a level of its own (systolic 120-124,
128-132, 136-140), so a stored reading shows whose it was. The hub starts from a kit that still names a
third person for index 3 (Carl, a patient of the municipality who does not live there): until the
gateway's retained config reaches the hub, those readings go out as Carl's and the gateway refuses
them; after, index 3 names no resident and the hub holds its readings, sending nothing, until Bent
claims them as the patient view does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import psycopg
import pytest

from edge_agent.ble.connection import LinkPolicy
from edge_agent.config import DeviceConfig, EmulationConfig, HubConfig, MqttConfig, ResidentConfig
from edge_agent.service import HubService
from edge_agent.unattributed import NOBODY
from gateway.administration.homes import add_municipality, add_patient, assign_device, enroll_hub
from gateway.administration.household import add_resident, share_device
from gateway.broker import BrokerEndpoint, free_port
from gateway.service import Gateway, GatewayOptions
from gateway.settings import GatewaySettings

pytestmark = pytest.mark.e2e

MUNICIPALITY, HUB = "0101", "hub-household"
ANE, BENT, CARL = "p-ane", "p-bent", "p-carl"
CUFF_ADDRESS, ANE_OXI_ADDRESS, BENT_OXI_ADDRESS = (
    "C4:7C:8D:6A:12:01",
    "C4:7C:8D:6A:12:02",
    "C4:7C:8D:6A:12:03",
)
CUFF, ANE_OXI, BENT_OXI = "cuff-shared", "oxi-ane", "oxi-bent"
SETTINGS = GatewaySettings(environment="development", config_publish_interval_s=0.5)
FAST = LinkPolicy(scan_timeout=0.5, connect_timeout=1.0, max_attempts=3)


async def _until(condition: Callable[[], bool], within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


def _enrol(database_url: str) -> None:
    """The household as the administration layer makes it."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        add_municipality(conn, MUNICIPALITY, "København", by="ops")
        for patient, name in ((ANE, "Ane Hansen"), (BENT, "Bent Hansen"), (CARL, "Carl Berg")):
            add_patient(
                conn, MUNICIPALITY, patient, name=name, care_team=None, phone=None, conditions=[],
                birth_date=date(1941, 2, 3), by="ops",
            )  # fmt: skip
        enroll_hub(conn, SETTINGS, MUNICIPALITY, HUB, ANE, by="ops", accounts=None)
        add_resident(conn, HUB, BENT, by="ops", publisher=None)
        for user, patient in ((1, ANE), (2, BENT)):
            share_device(
                conn, SETTINGS, HUB, patient, "blood-pressure", CUFF_ADDRESS, user, by="ops",
                device_id=CUFF, publisher=None,
            )  # fmt: skip
        for patient, address, device in ((ANE, ANE_OXI_ADDRESS, ANE_OXI), (BENT, BENT_OXI_ADDRESS, BENT_OXI)):
            assign_device(
                conn, SETTINGS, HUB, patient, "pulse-oximeter", address, by="ops", device_id=device,
                publisher=None,
            )  # fmt: skip


def _kit(tmp_path: Path, broker: BrokerEndpoint) -> HubConfig:
    """The hub's local file: the household, but index 3 of the cuff still given to Carl."""
    return HubConfig(
        municipality=MUNICIPALITY,
        hub_id=HUB,
        patient_id=ANE,
        residents=(
            ResidentConfig(patient_id=ANE),
            ResidentConfig(patient_id=BENT),
            ResidentConfig(patient_id=CARL),
        ),
        devices=(
            DeviceConfig(
                id=CUFF, address=CUFF_ADDRESS, kind="blood-pressure-cuff", users={1: ANE, 2: BENT, 3: CARL}
            ),
            DeviceConfig(id=ANE_OXI, address=ANE_OXI_ADDRESS, kind="pulse-oximeter"),
            DeviceConfig(id=BENT_OXI, address=BENT_OXI_ADDRESS, kind="pulse-oximeter", patient_id=BENT),
        ),
        mqtt=MqttConfig(host=broker.host, port=broker.port, mqtt5=broker.mqtt5),
        outbox_path=tmp_path / "outbox.sqlite3",
        # A second apart at least: a device's readings are told apart by their stamp's second.
        emulation=EmulationConfig(interval_s=1.0),
        status_interval_s=1.0,
    )


def _stored(database_url: str) -> list[tuple[str, str, str, str, float | None]]:
    """(identifier, patient, device, kind, systolic) of every stored Observation."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT identifier, patient_id, device_id, kind, (components->>'systolic')::float"
            " FROM observations ORDER BY effective"
        ).fetchall()
    return [(str(i), str(p), str(d), str(k), s) for i, p, d, k, s in rows]


def _applied(service: HubService) -> bool:
    """Whether the hub runs the gateway's config: Carl is no longer a resident there."""
    return CARL not in service.config.resident_ids and service.agent is not None


async def test_two_residents_on_one_hub_never_get_each_others_readings(
    tmp_path: Path, database_url: str, broker: BrokerEndpoint
) -> None:
    _enrol(database_url)
    gateway = Gateway(
        GatewayOptions(database_url=database_url, broker=broker, workers=0, port=free_port()), SETTINGS
    )
    gateway.start()
    service = HubService(_kit(tmp_path, broker), link_policy=FAST)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await _until(lambda: _applied(service))
        agent = service.agent
        assert agent is not None
        assert dict(service.config.devices[0].users or {}) == {1: ANE, 2: BENT}

        def both_measured() -> bool:
            seen = {(patient, device) for _, patient, device, _, _ in _stored(database_url)}
            return {(ANE, CUFF), (BENT, CUFF), (ANE, ANE_OXI), (BENT, BENT_OXI)} <= seen

        await _until(lambda: both_measured() and len(agent.unattributed.pending()) >= 2)
        held = agent.unattributed.pending()
        assert {p.device_id for p in held} == {CUFF}
        assert all(p.kind == "blood-pressure" for p in held)

        # Held readings are not sent: none at the gateway at Carl's level since the config applied.
        await asyncio.sleep(1.0)
        before_claim = _stored(database_url)
        assert not [row for row in before_claim if row[4] is not None and row[4] >= 136]

        # Bent says on the patient view that they were his; the page puts them into the outbox.
        claimed = [obs for p in held for obs in agent.unattributed.claim(p.id, BENT)]
        await asyncio.to_thread(agent.outbox.put, claimed)
        claimed_ids = {obs["identifier"][0]["value"] for obs in claimed}
        await _until(lambda: claimed_ids <= {row[0] for row in _stored(database_url)})
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        gateway.stop()

    stored = _stored(database_url)
    for identifier, patient, device, kind, systolic in stored:
        assert patient in (ANE, BENT), f"{identifier} stored for {patient}"
        assert NOBODY not in identifier
        if device == ANE_OXI:
            assert patient == ANE
        elif device == BENT_OXI:
            assert patient == BENT
        elif kind == "blood-pressure":
            assert systolic is not None
            if identifier in claimed_ids:
                assert patient == BENT and 136 <= systolic <= 140
            elif patient == ANE:
                assert 120 <= systolic <= 124, f"Ane got {systolic}"
            else:
                assert 128 <= systolic <= 132, f"Bent got {systolic}"
    # What went out as Carl's before the config arrived was refused, not stored: he does not live there.
    with psycopg.connect(database_url) as conn:
        carl = conn.execute("SELECT count(*) FROM observations WHERE patient_id = %s", (CARL,)).fetchone()
    assert carl == (0,)
