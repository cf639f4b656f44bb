-- A patient's own alert limits and the care staff's notes (issue 17: the nurse's weekly risk review).
--
-- Both tables only grow: a change of limits is a new row (the newest row per patient and vital sign is
-- in force, the older ones are its history) and a note is never edited nor deleted, so what a nurse
-- read when she decided stays readable. Triggers refuse UPDATE, DELETE and TRUNCATE.
--
-- patient_thresholds: limits in the vital sign's canonical unit (models.triage: green from yellow_low
-- to yellow_high, red below red_low or above red_high; NULL: no limit on that side). A vital sign
-- without a row uses the NEWS2 defaults. The CHECK keeps every pair of set limits in order.

CREATE TABLE patient_thresholds (
    id          bigserial PRIMARY KEY,
    municipality_id text NOT NULL REFERENCES municipalities(id),   -- the patient's municipality
    patient_id  text NOT NULL REFERENCES patients(id),
    vital       text NOT NULL,                 -- models.triage.VITALS: 'spo2', 'pulse', 'systolic', ...
    red_low     double precision,
    yellow_low  double precision,
    yellow_high double precision,
    red_high    double precision,
    set_by      text NOT NULL,                 -- username (kept when the user is removed, like audit_log)
    set_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT patient_thresholds_in_order CHECK (
        (red_low IS NULL OR yellow_low IS NULL OR red_low <= yellow_low)
        AND (red_low IS NULL OR yellow_high IS NULL OR red_low <= yellow_high)
        AND (red_low IS NULL OR red_high IS NULL OR red_low <= red_high)
        AND (yellow_low IS NULL OR yellow_high IS NULL OR yellow_low <= yellow_high)
        AND (yellow_low IS NULL OR red_high IS NULL OR yellow_low <= red_high)
        AND (yellow_high IS NULL OR red_high IS NULL OR yellow_high <= red_high)
    )
);
CREATE INDEX patient_thresholds_current ON patient_thresholds (patient_id, vital, set_at DESC, id DESC);

CREATE TABLE patient_notes (
    id          bigserial PRIMARY KEY,
    municipality_id text NOT NULL REFERENCES municipalities(id),
    patient_id  text NOT NULL REFERENCES patients(id),
    author      text NOT NULL,                 -- username
    written_at  timestamptz NOT NULL DEFAULT now(),
    text        text NOT NULL CHECK (length(btrim(text)) > 0 AND length(text) <= 4000)
);
CREATE INDEX patient_notes_newest ON patient_notes (patient_id, written_at DESC, id DESC);

CREATE FUNCTION patient_records_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused (add a new row instead)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER patient_thresholds_no_change BEFORE UPDATE OR DELETE ON patient_thresholds
    FOR EACH ROW EXECUTE FUNCTION patient_records_append_only();
CREATE TRIGGER patient_thresholds_no_truncate BEFORE TRUNCATE ON patient_thresholds
    FOR EACH STATEMENT EXECUTE FUNCTION patient_records_append_only();
CREATE TRIGGER patient_notes_no_change BEFORE UPDATE OR DELETE ON patient_notes
    FOR EACH ROW EXECUTE FUNCTION patient_records_append_only();
CREATE TRIGGER patient_notes_no_truncate BEFORE TRUNCATE ON patient_notes
    FOR EACH STATEMENT EXECUTE FUNCTION patient_records_append_only();
