"""The clinical scores and models, as pure functions of values: no database, no MQTT, no FHIR server.

``news2`` (the Royal College of Physicians' NEWS2, scale 2 included), ``baselines`` (each patient's own
normal), ``rules`` (heart-failure weight gain, COPD desaturation), ``features`` and ``admission_risk``
(the learned 30-day admission risk: training, the shipped model file, scores and their reasons),
``evaluate`` (against admissions on a held-out cohort), ``cohort`` (SYNTHETIC patients) with
``cohort_reader`` and ``codes`` (cohorts as FHIR Bulk Data NDJSON), and ``errors`` (the package's one
error root, ``ModelsError``). Running them on stored readings and storing the results is
``gateway.alerts``'; ``models`` never imports ``gateway`` or ``edge_agent``.
"""
