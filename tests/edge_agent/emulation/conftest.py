"""Fixtures for the emulated devices' tests: one home radio per test, a value inbox, an ATT snooper.

Everything runs through bleak on the Bumble backend over a LocalLink: real ATT/GATT, no mocks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from emulation_helpers import AttSnooper, Inbox, ManualClock, other_tasks

from edge_agent.emulation.radio import HomeRadio


@pytest.fixture
async def radio() -> AsyncIterator[HomeRadio]:
    async with HomeRadio("emulation-test") as radio:
        yield radio
    assert other_tasks() == set()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def att_snooper(radio: HomeRadio) -> AttSnooper:
    snooper = AttSnooper()
    radio.central.device.host.snooper = snooper
    return snooper


@pytest.fixture
def reference() -> ManualClock:
    return ManualClock()
