"""The server: takes the hubs' FHIR Observations off MQTT, stores them, scores them and serves them.

``ingest`` (MQTT in, contract check, idempotent store, acknowledgement after the commit) -> ``store``
(PostgreSQL: schema, migrations and every SQL query) -> ``alerts`` (NEWS2, disease rules and the 30-day
risk as RiskAssessments, and the alerts they open) -> ``api`` (the nurses' web UI and the FHIR R4 API).
``service`` is the one composition root (``homewatch gateway serve`` and the demo), with ``settings``
(one settings class from the environment), ``workers`` (ingest processes), ``http_server``, ``broker``
(the embedded broker of the demo and tests), ``broker_check`` and ``errors`` (the package's one error
root, ``GatewayFailure``). What an Observation must look like is ``fhir_contract``'s; the maths of the
scores is ``models``'; the gateway knows nothing of the hub's code.
"""
