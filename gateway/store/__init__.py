"""PostgreSQL: the schema, its migrations and every SQL query of the gateway.

``migrate`` and ``migrations/`` (versioned schema), ``partitions`` and ``timescale`` (the time-partitioned
``observations`` table), ``embedded`` (a real PostgreSQL for the demo and tests), ``errors`` (the layer's
root ``StoreError``, and which failures a retry may mend); then one module per question the rest of the
gateway asks: ``repository`` (enrolment, observations, quarantine), ``patient_history``, ``scoring``,
``worklist``, ``patient_views``, ``fhir_reads``/``fhir_query``, ``users``, ``logins``, ``audit``,
``acknowledgements``, ``ingest_metrics``, ``new_data``/``notify``, ``synthetic``. Callers pass values and
get values; no SQL lives anywhere else in ``gateway`` (a test checks it).
"""
