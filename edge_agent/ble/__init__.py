"""The hub's Bluetooth layer: keeps health devices connected through bleak's public API.

``manager`` (:class:`~edge_agent.ble.manager.ConnectionManager`: the hub's links on one scanner and a
limit of connection slots), ``connection`` (:class:`~edge_agent.ble.connection.DeviceLink`, one per
device: retries, bonding, subscriptions), ``link_state`` (its timing policy and state snapshots),
``link_session`` (what a per-connection session sees of a link), ``scanner``, ``slots``, ``profiles``
(what each device kind subscribes to, bonds and fetches), ``errors`` (one root,
:class:`~edge_agent.ble.errors.BleError`), ``backend`` (the bleak backend pair passed in) and
``bumble_backend`` (a bleak backend on Bumble for emulated homes; imported only where emulation is used).
Parsing measurement bytes is left to :mod:`edge_agent.gatt`, the sessions to :mod:`edge_agent.session`.
"""
