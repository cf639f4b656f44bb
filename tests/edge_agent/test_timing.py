"""Which time a reading gets: the device's stamp when believable, else the hub's receipt time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from edge_agent.timing import MAX_AGE, effective_time

CPH = ZoneInfo("Europe/Copenhagen")
RECEIVED = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_device_stamp_is_read_in_the_hub_zone() -> None:
    when = effective_time(datetime(2026, 11, 27, 9, 55), RECEIVED, CPH)  # 08:55 UTC in winter
    assert when.source == "device"
    assert when.at == datetime(2026, 11, 27, 8, 55, tzinfo=UTC)


def test_no_device_stamp_uses_receipt_time() -> None:
    assert effective_time(None, RECEIVED, CPH).at == RECEIVED


@pytest.mark.parametrize(
    "stamp",
    [
        datetime(2026, 11, 27, 10, 30),  # 20 minutes in the future
        datetime(2000, 1, 1, 0, 0),  # an unset clock
        (RECEIVED - MAX_AGE - timedelta(days=1)).replace(tzinfo=None),
    ],
)
def test_implausible_device_stamp_falls_back_to_receipt_time(stamp: datetime) -> None:
    when = effective_time(stamp, RECEIVED, CPH)
    assert when.source == "receipt-device-time-implausible"
    assert when.at == RECEIVED


def test_receipt_time_must_be_aware() -> None:
    with pytest.raises(ValueError, match="time zone"):
        effective_time(None, datetime(2026, 11, 27), CPH)
