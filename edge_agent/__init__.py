"""The hub: reads the patient's Bluetooth health devices and delivers FHIR Observations over MQTT.

Data path inside the hub: ``ble`` (scanner, connections, device profiles) -> ``session`` (clock, record
histories, per connection) -> ``gatt`` (pure parsers, bytes to ``fhir_contract.readings``) -> FHIR
Observations (``fhir_contract.observation``) -> ``outbox`` (SQLite) -> ``publish`` (MQTT). ``agent``
wires them for one hub; ``service`` runs the agent as the long-lived process with ``config`` (the hub's
TOML file), ``remote_config`` (what the server pushes), ``clock_sync`` and ``timing``. ``emulation`` is
for tests and the demo only. What an Observation looks like is the contract's; the hub never imports
``gateway`` or ``models``.
"""
