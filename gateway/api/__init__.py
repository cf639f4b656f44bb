"""The gateway's HTTP face: the nurses' web UI, the FHIR R4 API, login and tokens, /healthz and /metrics.

Routes parse requests, check who asks, and shape answers (HTML pages, FHIR resources and Bundles,
OperationOutcomes); every read and write of the database goes through ``gateway.store``. ``app.create_app``
builds the application; serving it is left to ``gateway.service`` (the one composition root).
"""
