"""The web UI's "now": the moment a page measures ages from ("12 min ago", a stale reading).

Whoever serves the app may give it a clock (``app.state.clock``, a callable returning an aware
``datetime``); without one it is the wall clock. ``gateway serve`` gives none. The demo gives the
clock its simulated homes and its scorer run on (``homewatch.demo.clock.SimClock``, never ahead of the
wall clock), so a page shown mid-demo measures a reading taken "a few minutes ago" in simulated time as
a few minutes old, not as the days it lies behind the wall clock. The same clock stamps scores and alerts
(``gateway.service``), so "raised 5 min ago" and "data as of 5 min ago" agree with each other.

Left to others: the wording of ages (``presenters``), and times written by the database itself (an
acknowledgement's, the audit log's), which are the wall clock's: they record what people did.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from starlette.requests import Request

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    """The real time, in UTC."""
    return datetime.now(UTC)


def ui_now(request: Request) -> datetime:
    """The app's clock (``app.state.clock``) when it was given one, else the wall clock."""
    clock: Clock = getattr(request.app.state, "clock", None) or wall_clock
    return clock()
