-- The audit log says from where and in which role (issue 17), and the application cannot change it.
--
-- Every row now records the client's address and the actor's role, and the municipality of the patient
-- whose data was seen (a GP's patients live in several municipalities: each municipality's administrator
-- reads the rows about her own citizens as well as those of her own users). A failed login of a name
-- that is nobody's has no municipality.

ALTER TABLE audit_log ADD COLUMN client text;
ALTER TABLE audit_log ADD COLUMN role text;
ALTER TABLE audit_log ADD COLUMN patient_municipality_id text;
ALTER TABLE audit_log ALTER COLUMN municipality_id DROP NOT NULL;

UPDATE audit_log a SET patient_municipality_id = p.municipality_id
FROM patients p WHERE p.id = a.patient_id;
UPDATE audit_log a SET role = u.role FROM users u WHERE u.username = a.username;

-- The administrator's page filters by municipality and reads newest first; by user, patient, action.
CREATE INDEX audit_log_municipality ON audit_log (municipality_id, id DESC);
CREATE INDEX audit_log_patient_municipality ON audit_log (patient_municipality_id, id DESC);
CREATE INDEX audit_log_username ON audit_log (username, id DESC);
CREATE INDEX audit_log_patient ON audit_log (patient_id, id DESC);

-- Append only: an UPDATE, DELETE or TRUNCATE of audit_log fails, whoever runs it. (A role that owns the
-- table could still drop the trigger; production runs the gateway as a role that does not own it:
-- docs/security.md, "Audit".)
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
