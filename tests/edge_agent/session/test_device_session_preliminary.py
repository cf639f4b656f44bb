"""A cuff session's values, straight into a real outbox (no radio): intermediate cuff pressure (0x2A36)
becomes preliminary Observations only on the hub's opt-in, each with its own receipt-time identifier,
and never takes the identifier of a final reading received in the same second."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from edge_agent.ble.profiles import profile_for
from edge_agent.config import DeviceConfig, HubConfig, MqttConfig
from edge_agent.gatt.blood_pressure import BloodPressureMeasurement, encode_blood_pressure_measurement
from edge_agent.gatt.blood_pressure import encode_intermediate_cuff_pressure as cuff_pressure
from edge_agent.gatt.registry import BLOOD_PRESSURE_MEASUREMENT_UUID, INTERMEDIATE_CUFF_PRESSURE_UUID
from edge_agent.outbox import Outbox
from edge_agent.session import AgentStats, DeviceSession

T0 = datetime(2026, 11, 27, 7, 30, tzinfo=UTC)
# A final reading without a time stamp: the hub's receipt time dates it (and makes its identifier).
FINAL_WITHOUT_STAMP = encode_blood_pressure_measurement(
    BloodPressureMeasurement(Decimal(128), Decimal(82), Decimal(97))
)


def _ticking() -> Callable[[], datetime]:
    """A hub clock that moves 0.1 s per reading: every value of one inflation falls in one second."""
    ticks: Iterator[int] = iter(range(1_000))
    return lambda: T0 + timedelta(milliseconds=100 * next(ticks))


def _session(tmp_path: Path, stats: AgentStats, *, opt_in: bool) -> tuple[DeviceSession, Outbox]:
    device = DeviceConfig(id="cuff", address="C4:7C:8D:6A:12:0F", kind="blood-pressure-cuff")
    hub = HubConfig(
        municipality="0101",
        hub_id="hub1",
        patient_id="p1",
        devices=(device,),
        mqtt=MqttConfig(host="localhost"),
        outbox_path=tmp_path / "outbox.sqlite3",
        send_intermediate_cuff_pressure=opt_in,
    )
    outbox = Outbox(hub.outbox_path)
    session = DeviceSession(
        device, profile_for(device.kind), hub=hub, outbox=outbox, stats=stats, clock=_ticking()
    )
    return session, outbox


def _stored(outbox: Outbox) -> list[dict[str, Any]]:
    return [orjson.loads(row.resource) for row in outbox.after(0, 100)]


async def test_opted_in_cuff_pressures_are_preliminary_and_apart_from_the_final(tmp_path: Path) -> None:
    session, outbox = _session(tmp_path, AgentStats(), opt_in=True)
    for mmhg in (60, 110, 150):
        await session.on_value(INTERMEDIATE_CUFF_PRESSURE_UUID, cuff_pressure(Decimal(mmhg)))
    await session.on_value(BLOOD_PRESSURE_MEASUREMENT_UUID, FINAL_WITHOUT_STAMP)
    stored = _stored(outbox)
    outbox.close()

    assert [o["status"] for o in stored] == ["preliminary"] * 3 + ["final"]
    assert [o["component"][0]["valueQuantity"]["value"] for o in stored] == [60, 110, 150, 128]
    identifiers = [o["identifier"][0]["value"] for o in stored]
    assert len(set(identifiers)) == 4  # one second, four Observations
    assert (
        identifiers[3]
        == f"cuff-p1-blood-pressure-{int((T0 - datetime(2000, 1, 1, tzinfo=UTC)).total_seconds())}"
    )


async def test_without_the_opt_in_a_cuff_pressure_never_reaches_the_outbox(tmp_path: Path) -> None:
    session, outbox = _session(tmp_path, AgentStats(), opt_in=False)
    # Not subscribed, so a cuff does not send it; should one arrive all the same, should_send drops it.
    await session.on_value(INTERMEDIATE_CUFF_PRESSURE_UUID, cuff_pressure(Decimal(60)))
    await session.on_value(BLOOD_PRESSURE_MEASUREMENT_UUID, FINAL_WITHOUT_STAMP)
    stored = _stored(outbox)
    outbox.close()
    assert [o["status"] for o in stored] == ["final"]


@pytest.mark.parametrize("opt_in", [True, False])
async def test_a_truncated_cuff_pressure_is_a_counted_parse_error(tmp_path: Path, opt_in: bool) -> None:
    stats = AgentStats()
    session, outbox = _session(tmp_path, stats, opt_in=opt_in)
    await session.on_value(INTERMEDIATE_CUFF_PRESSURE_UUID, cuff_pressure(Decimal(60))[:3])
    assert (stats.parse_errors, outbox.depth()) == (1, 0)
    outbox.close()
