"""Emulated homes for TESTS AND THE DEMO ONLY: one radio space per home, SIG health devices on it.

Never part of a hub in a home: ``edge_agent.service`` imports it only inside the branch that emulates
(``[emulation]`` in the hub's file, or ``homewatch edge run --emulate``), so a hub that does not emulate
never loads it or Bumble (``tests/test_package_boundaries.py`` checks it).

``radio`` (:class:`~edge_agent.emulation.radio.HomeRadio`, and the controller that can stop answering),
``peripheral`` (:class:`~edge_agent.emulation.peripheral.EmulatedPeripheral` and ``create_peripheral``),
``profiles`` (the table of device kinds), ``gatt_database`` (table rows to Bumble attributes), ``link``
(one central's connection and sending over it), ``clock`` (device clocks and Current Time bytes),
``racp`` (Record Access Control Point), ``records`` (a meter's records and control points) and ``cgm``
(CGM Specific Ops Control Point). The agent reaches the devices only through bleak with the backend
classes of ``HomeRadio.backend``, so tests and the demo run the same agent code a hub runs on BlueZ.
"""
