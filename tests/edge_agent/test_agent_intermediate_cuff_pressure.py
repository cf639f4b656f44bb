"""Intermediate cuff pressure (0x2A36) through the agent: a hub that opts in subscribes to it and sends
each value as a preliminary Observation of its own, beside an untouched final reading; a hub that does
not (the default) never subscribes, so the cuff sends nothing while inflating. Emulated cuffs, the
agent's real outbox and publisher, a real broker."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import Any

from agent_helpers import PATIENT, ObservationSink, StartAgent, blood_pressure, correct_clock, stamp

from edge_agent.agent import HubAgent
from edge_agent.emulation.peripheral import EmulatedPeripheral, create_peripheral
from edge_agent.emulation.profiles import PROFILES
from edge_agent.emulation.radio import HomeRadio
from edge_agent.gatt.blood_pressure import encode_intermediate_cuff_pressure
from fhir_contract.observation import observation_identifier
from fhir_contract.status import is_preliminary
from fhir_contract.terminology import DEVICE_TIME_EXTENSION
from fhir_contract.validate import validate_observation

CUFF_PRESSURES = (60, 110, 150)  # mmHg, while inflating
INFLATING = [encode_intermediate_cuff_pressure(Decimal(mmhg)) for mmhg in CUFF_PRESSURES]
BP_PANEL = "85354-9"


def _of_cuff(sink: ObservationSink) -> list[dict[str, Any]]:
    """The cuff's Observations in arrival order, once each (delivery is at least once)."""
    cuff = [r for r in sink.resources if r["device"]["reference"] == "Device/cuff"]
    return list({r["identifier"][0]["value"]: r for r in reversed(cuff)}.values())[::-1]


async def _inflate_and_measure(
    cuff: EmulatedPeripheral, start_agent: StartAgent, *, opt_in: bool
) -> HubAgent:
    agent = await start_agent([("cuff", cuff, "blood-pressure-cuff")], send_intermediate_cuff_pressure=opt_in)
    async with asyncio.timeout(5):
        await agent.wait_connected()  # subscribed: the cuff's values now go to this hub
    assert await cuff.measure(blood_pressure(128, 82, 70, stamp(cuff)), intermediate=INFLATING)
    return agent


async def test_an_opted_in_hub_sends_each_cuff_pressure_as_a_valid_preliminary_observation(
    radio: HomeRadio, sink: ObservationSink, start_agent: StartAgent
) -> None:
    cuff = await create_peripheral(radio, "blood-pressure-cuff", clock=correct_clock())
    agent = await _inflate_and_measure(cuff, start_agent, opt_in=True)
    await sink.wait_for(lambda s: len(_of_cuff(s)) >= len(CUFF_PRESSURES) + 2)  # + the panel and pulse

    preliminary = [validate_observation(r) for r in _of_cuff(sink) if is_preliminary(r)]
    assert [(v.kind, v.components) for v in preliminary] == [
        ("blood-pressure", {"systolic": float(mmhg), "diastolic": None, "mean": None})
        for mmhg in CUFF_PRESSURES
    ]
    identifiers = {v.identifier for v in preliminary}
    assert len(identifiers) == len(CUFF_PRESSURES)
    assert all(i.startswith(f"cuff-{PATIENT}-blood-pressure-preliminary-") for i in identifiers)
    assert agent.stats.values_received == len(CUFF_PRESSURES) + 1

    # The final reading is what it is without the option: final, keyed on the cuff's own time stamp.
    (final,) = [
        r for r in _of_cuff(sink) if r["code"]["coding"][0]["code"] == BP_PANEL and not is_preliminary(r)
    ]
    device_time = next(e["valueString"] for e in final["extension"] if e["url"] == DEVICE_TIME_EXTENSION)
    expected = observation_identifier("cuff", PATIENT, "blood-pressure", datetime.fromisoformat(device_time))
    assert (final["status"], final["identifier"][0]["value"]) == ("final", expected)
    assert validate_observation(final).components["systolic"] == 128.0


async def test_a_hub_that_does_not_opt_in_never_subscribes_so_nothing_preliminary_is_sent(
    radio: HomeRadio, sink: ObservationSink, start_agent: StartAgent
) -> None:
    cuff = await create_peripheral(radio, "blood-pressure-cuff", clock=correct_clock())
    agent = await _inflate_and_measure(cuff, start_agent, opt_in=False)
    await sink.wait_for(lambda s: len(_of_cuff(s)) >= 2)
    await asyncio.sleep(0.2)  # room for anything that should not come

    assert [r["status"] for r in _of_cuff(sink)] == ["final", "final"]  # the panel and the pulse
    assert agent.stats.values_received == 1  # the cuff sent no 0x2A36: nobody had subscribed


async def test_an_opted_in_hub_still_serves_a_cuff_without_intermediate_cuff_pressure(
    radio: HomeRadio, sink: ObservationSink, start_agent: StartAgent
) -> None:
    # 0x2A36 is optional in the Blood Pressure Service: a cuff without it connects all the same.
    profile = dataclasses.replace(PROFILES["blood-pressure-cuff"], intermediate_uuid=None).device_profile()
    cuff = await EmulatedPeripheral(radio, name="Plain-Cuff", profile=profile, clock=correct_clock()).start()
    agent = await start_agent([("cuff", cuff, "blood-pressure-cuff")], send_intermediate_cuff_pressure=True)
    async with asyncio.timeout(5):
        await agent.wait_connected()
    assert await cuff.measure(blood_pressure(128, 82, 70, stamp(cuff)))
    await sink.wait_for(lambda s: len(_of_cuff(s)) >= 2)
    assert [r["status"] for r in _of_cuff(sink)] == ["final", "final"]
