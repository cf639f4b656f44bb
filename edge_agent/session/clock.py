"""The clock step of a connection: read the device's Current Time, judge it, set it when that is allowed.

``measure_clock`` reads 0x2A2B between two readings of the hub's clock (their midpoint is the hub's time
of the read, so the read's latency does not count as offset) and hands both to
:func:`edge_agent.clock_sync.assess_clock`. ``set_clock`` writes ``current_time_for(hub local now)`` to a
clock that accepts writes. When to set a clock, and which correction dates which value, is the
session's decision (:mod:`edge_agent.session.device`).

Judging and correcting are pure (``edge_agent.clock_sync``, ``edge_agent.timing``); the GATT calls go
through :class:`~edge_agent.ble.link_session.LinkConnection`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from edge_agent.ble.errors import GattError
from edge_agent.ble.link_session import LinkConnection
from edge_agent.clock_sync import ClockCorrection, assess_clock
from edge_agent.gatt import ParseError
from edge_agent.gatt.current_time import current_time_for, encode_current_time, parse_current_time
from edge_agent.gatt.registry import CURRENT_TIME_UUID

logger = logging.getLogger(__name__)


async def measure_clock(
    connection: LinkConnection, hub_now: Callable[[], datetime], zone: ZoneInfo
) -> ClockCorrection | None:
    """The device clock against the hub's; None when the device has no Current Time or sends garbage."""
    if not connection.has(CURRENT_TIME_UUID):
        return None
    before = hub_now()
    data = await connection.read(CURRENT_TIME_UUID)
    after = hub_now()
    try:
        value = parse_current_time(data)
    except ParseError as exc:
        logger.warning("%s: unreadable Current Time, stamps taken as they are: %s", connection.address, exc)
        return None
    return assess_clock(value.exact, before + (after - before) / 2, zone)


async def set_clock(connection: LinkConnection, hub_now: Callable[[], datetime], zone: ZoneInfo) -> bool:
    """Write the hub's local time to Current Time when the device accepts writes; True once written.

    A refused write (a device that sets its clock only from its own buttons answers with an ATT error) is
    logged and recorded on the device's state; the measured offset keeps correcting its stamps.
    """
    if not connection.writable(CURRENT_TIME_UUID):
        return False
    local = hub_now().astimezone(zone)
    try:
        await connection.write(CURRENT_TIME_UUID, encode_current_time(current_time_for(local)))
    except GattError as exc:
        logger.info("%s: the device refused the time: %s", connection.address, exc)
        connection.report_error(exc)
        return False
    logger.info("%s: clock set to %s", connection.address, local)
    return True
