"""The hub: reads the patient's Bluetooth health devices and delivers FHIR Observations over MQTT.

Data path inside the hub: ``ble`` (scanner, connections, device profiles) -> ``session`` (clock, record
histories, per connection) -> ``gatt`` (pure parsers) -> ``readings`` -> FHIR (``fhir_contract``) ->
``outbox`` (SQLite) -> ``publish`` (MQTT); ``agent`` wires them for one hub.
"""
