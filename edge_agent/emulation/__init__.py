"""Emulated homes for tests and the demo: one radio space per home, SIG health devices on it.

``radio`` (:class:`~edge_agent.emulation.radio.HomeRadio`, and the controller that can stop answering),
``peripheral`` (:class:`~edge_agent.emulation.peripheral.EmulatedPeripheral` and ``create_peripheral``),
``profiles`` (the table of device kinds), ``gatt_database`` (table rows to Bumble attributes), ``link``
(one central's connection and sending over it), ``clock`` (device clocks and Current Time bytes),
``racp`` (Record Access Control Point), ``records`` (a meter's records and control points) and ``cgm``
(CGM Specific Ops Control Point). The agent reaches the devices only through bleak with the backend
classes of ``HomeRadio.backend``.
"""
