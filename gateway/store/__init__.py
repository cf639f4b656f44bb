"""PostgreSQL: the schema, its migrations and every SQL query of the gateway.

``migrate`` and ``migrations/`` (versioned schema), ``partitions`` and ``timescale`` (the time-partitioned
``observations`` table), ``embedded`` (a real PostgreSQL for the demo and tests), ``errors`` (the layer's
root ``StoreError``, and which failures a retry may mend); then one module per question the rest of the
gateway asks: ``repository`` (enrolment, observations, quarantine), ``patient_history``,
``evaluation_reads`` (what the scorer reads for a batch), ``scoring``, ``worklist``, ``patient_views``,
``fhir_reads``/``fhir_query``, ``users``, ``logins``, ``audit``, ``ingest_metrics``, ``new_data``,
``synthetic``; the alerts' ``alerts`` (the lifecycle's rows and events), ``alert_actions``, ``alert_inbox``,
``alert_feed`` (the live stream), ``alert_deliveries`` and ``alert_jobs`` (delivery, escalation, snooze),
``alert_admin``, ``alert_fhir_reads``, ``missing_reads``, ``risk_history``. Callers pass values and
get values; no SQL lives anywhere else in ``gateway`` (a test checks it).
"""
