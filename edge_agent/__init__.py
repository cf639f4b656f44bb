"""The hub: reads the patient's Bluetooth health devices and delivers FHIR Observations over MQTT.

Data path inside the hub: ``ble`` (connections) -> ``gatt`` (pure parsers) -> ``readings`` ->
``observations`` (FHIR) -> ``outbox`` (SQLite) -> ``publish`` (MQTT).
"""
