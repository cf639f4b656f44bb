"""The hub's Bluetooth layer: keeps health devices connected through bleak's public API.

``connection`` (:class:`~edge_agent.ble.connection.DeviceLink`, one per device), ``errors`` (one root,
:class:`~edge_agent.ble.errors.BleError`), ``backend`` (the bleak backend pair passed in) and
``bumble_backend`` (a bleak backend on Bumble for emulated homes; imported only where emulation is used).
Parsing measurement bytes is left to :mod:`edge_agent.gatt`.
"""
