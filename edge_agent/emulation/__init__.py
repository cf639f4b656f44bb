"""Emulated homes for tests and the demo: one radio space per home, SIG health devices on it.

``radio`` (:class:`~edge_agent.emulation.radio.HomeRadio`) and ``peripheral``
(:class:`~edge_agent.emulation.peripheral.EmulatedPeripheral` and ``create_peripheral``).
The agent reaches them only through bleak with the backend classes of ``HomeRadio.backend``.
"""
