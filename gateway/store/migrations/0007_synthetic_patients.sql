-- homewatch schema, version 7: patients enrolled as SYNTHETIC (issue 16).
--
-- The demo enrols made-up patients (models.cohort.synthetic), and so may a test or a training set-up.
-- Enrolment records it here (gateway.store.repository.enroll_patient, Patient.synthetic), and whatever
-- the gateway serves for such a patient says so: the web UI shows its banner and tag, and every FHIR
-- resource served about them (Patient, Observation, RiskAssessment, their Devices) carries the test-data
-- label meta.security v3-ActReason#HTEST (gateway.api.fhir_model.label_test_data).
ALTER TABLE patients ADD COLUMN synthetic boolean NOT NULL DEFAULT false;

-- Before this version the web UI recognised the synthetic cohort by its names ("Synthetic patient N"):
-- the patients enrolled so far under such a name are marked once here; from now on enrolment decides.
UPDATE patients SET synthetic = true WHERE starts_with(name, 'Synthetic patient');
