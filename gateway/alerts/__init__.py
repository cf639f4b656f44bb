"""Scores and alerts from stored readings: NEWS2, the disease rules and the patient's own limits at
every stored reading (``scorer``, judging by ``evaluation``), the learned 30-day admission risk on a
schedule (``admission_risk``), each stored as a FHIR RiskAssessment, and the alerts they open. Reads
the canonical values stored at ingest; the SQL is ``gateway.store``'s, the maths ``models``'."""
