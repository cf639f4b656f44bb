"""Running a municipality's fleet: one service layer under the ``homewatch admin`` commands and the
administrators' web pages (docs/municipality.md).

Each function here is one thing an administrator does: add a municipality, a patient or a user, enrol a
hub (its identity, broker account and the folder it is configured from), assign or remove a device
(which publishes the hub's retained configuration), revoke a hub. They check the input, change the
database (``gateway.store``) and the broker (``gateway.broker_accounts``, ``gateway.hub_config``) and
raise ``AdministrationError`` with one line a person can act on when something is wrong.
"""
