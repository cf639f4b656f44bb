-- The nurse's weekly risk review (issue 17): who looked at which patient, when, and what they decided.
--
-- A review is a clinical record: once written it is never changed or removed by the application (a
-- trigger refuses UPDATE, DELETE and TRUNCATE); a correction is a new review. It keeps what the reviewer
-- saw (the 30-day risk, its model version and the RiskAssessment's FHIR id), so a later model or score
-- cannot rewrite why a decision was taken. `public_id` is the FHIR id of its ClinicalImpression: random,
-- so it says nothing about other municipalities' reviews (as scores.public_id, migration 0005).
--
-- `reviewer` is the username as text, not a foreign key: users come and go (the demo re-provisions its
-- nurses), the record of who reviewed stays, as in audit_log.

CREATE TABLE reviews (
    id              bigserial PRIMARY KEY,
    public_id       uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    municipality_id text NOT NULL REFERENCES municipalities(id),   -- the patient's municipality
    patient_id      text NOT NULL REFERENCES patients(id),
    reviewer        text NOT NULL,
    reviewed_at     timestamptz NOT NULL DEFAULT now(),
    outcome         text NOT NULL
        CHECK (outcome IN ('no-action', 'phone-call', 'home-visit', 'gp-contacted', 'other')),
    note            text NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    triage          text NOT NULL CHECK (triage IN ('red', 'yellow', 'green')),
    risk            double precision CHECK (risk >= 0 AND risk <= 1),   -- the 30-day risk shown, if any
    model_version   text,                                               -- the model that computed it
    risk_assessment uuid,                                               -- its scores.public_id
    -- "Other" says nothing by itself: it needs a note (the form says so first; this is the last word).
    CONSTRAINT reviews_other_has_note CHECK (outcome <> 'other' OR btrim(note) <> '')
);
-- A patient's reviews newest first (history, the worklist's "last review", the reviewed-this-week filter).
CREATE INDEX reviews_patient_latest ON reviews (patient_id, reviewed_at DESC, id DESC);
-- The FHIR search across a viewer's patients, newest first.
CREATE INDEX reviews_time ON reviews (reviewed_at DESC, public_id DESC);

CREATE FUNCTION reviews_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'reviews are append-only: % refused (record a new review instead)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER reviews_no_change BEFORE UPDATE OR DELETE ON reviews
    FOR EACH ROW EXECUTE FUNCTION reviews_append_only();
CREATE TRIGGER reviews_no_truncate BEFORE TRUNCATE ON reviews
    FOR EACH STATEMENT EXECUTE FUNCTION reviews_append_only();

-- The worklist reads each patient's newest score of one method (NEWS2, the 30-day risk) and the 30-day
-- risk of a week before: one index probe each, instead of walking past the many NEWS2 rows a patient
-- collects between two daily risk scores.
CREATE INDEX scores_patient_method_latest ON scores (municipality_id, patient_id, method, computed_at DESC, id DESC);
-- A card's expected measurements follow from the patient's devices: one probe, not a scan of devices.
CREATE INDEX devices_patient ON devices (municipality_id, patient_id);
