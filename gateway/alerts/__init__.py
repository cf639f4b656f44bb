"""Scores and alerts from stored readings: NEWS2 and the disease rules on every new reading
(``scorer``), the learned 30-day admission risk on a schedule (``admission_risk``), each stored as a
FHIR RiskAssessment, and the alerts they open. Reads the canonical values stored at ingest; the SQL is
``gateway.store``'s, the maths ``models``'."""
