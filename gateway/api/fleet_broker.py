"""The broker the web pages tell of a change: hub accounts and the publisher of retained configs, made
once per app from its settings on the first request that needs them (``app.state.fleet_broker``).

Neither holds a connection (each errand opens and closes its own, ``gateway.broker_session``), so nothing
is closed at shutdown. Used by the administrator's homes pages and the nurse's plan form.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from gateway.broker_accounts import BrokerAccounts, broker_accounts
from gateway.hub_config import ConfigPublisher, config_publisher
from gateway.settings import GatewaySettings


@dataclass(frozen=True, slots=True)
class FleetBroker:
    """What the pages tell the broker through: hub accounts (None: the broker keeps none) and the
    publisher of retained configs."""

    accounts: BrokerAccounts | None
    publisher: ConfigPublisher | None


def fleet_broker(request: Request) -> FleetBroker:
    """The app's ``FleetBroker``, made from its settings on first use."""
    found: FleetBroker | None = getattr(request.app.state, "fleet_broker", None)
    if found is None:
        settings: GatewaySettings = request.app.state.settings
        found = FleetBroker(broker_accounts(settings), config_publisher(settings))
        request.app.state.fleet_broker = found
    return found
