-- Who may see which patient: roles, care teams and the patient's GP (issue 17).
--
-- A nurse belongs to care teams of her own municipality; a patient is assigned to one care team and may
-- have a GP; a GP's patients may live in several municipalities. Every municipality has a default care
-- team (id = the municipality's id), so a small municipality with one home-care team needs no set-up and
-- the patients and nurses enrolled before this migration keep seeing each other.
--
-- Roles: 'nurse', 'gp' (was 'clinician'), 'municipality_admin' (was 'admin'), 'system_admin'.

CREATE TABLE care_teams (
    municipality_id text NOT NULL REFERENCES municipalities(id),
    id          text PRIMARY KEY,
    name        text NOT NULL,
    UNIQUE (municipality_id, id)             -- target of the composite keys below
);

INSERT INTO care_teams (municipality_id, id, name)
SELECT id, id, 'Hjemmesygeplejen' FROM municipalities;

-- The default team comes with the municipality, whoever inserts it.
CREATE FUNCTION municipality_default_care_team() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO care_teams (municipality_id, id, name) VALUES (NEW.id, NEW.id, 'Hjemmesygeplejen')
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;
CREATE TRIGGER municipalities_default_care_team AFTER INSERT ON municipalities
    FOR EACH ROW EXECUTE FUNCTION municipality_default_care_team();

UPDATE users SET role = 'gp' WHERE role = 'clinician';
UPDATE users SET role = 'municipality_admin' WHERE role = 'admin';
ALTER TABLE users ADD CONSTRAINT users_role
    CHECK (role IN ('nurse', 'gp', 'municipality_admin', 'system_admin'));
ALTER TABLE users ADD COLUMN full_name text;
ALTER TABLE users ADD CONSTRAINT users_municipality_username UNIQUE (municipality_id, username);

-- A nurse's teams; the composite keys keep every team in the nurse's own municipality.
CREATE TABLE care_team_members (
    municipality_id text NOT NULL,
    care_team_id text NOT NULL,
    username    text NOT NULL,
    PRIMARY KEY (care_team_id, username),
    FOREIGN KEY (municipality_id, care_team_id) REFERENCES care_teams (municipality_id, id),
    FOREIGN KEY (municipality_id, username) REFERENCES users (municipality_id, username) ON DELETE CASCADE
);
CREATE INDEX care_team_members_username ON care_team_members (username);

INSERT INTO care_team_members (municipality_id, care_team_id, username)
SELECT municipality_id, municipality_id, username FROM users WHERE role = 'nurse';

ALTER TABLE patients ADD COLUMN care_team_id text;
UPDATE patients SET care_team_id = municipality_id;
-- A patient enrolled without a team is in the municipality's default team.
CREATE FUNCTION patient_default_care_team() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.care_team_id := coalesce(NEW.care_team_id, NEW.municipality_id);
    RETURN NEW;
END $$;
CREATE TRIGGER patients_default_care_team BEFORE INSERT OR UPDATE ON patients
    FOR EACH ROW EXECUTE FUNCTION patient_default_care_team();
ALTER TABLE patients ALTER COLUMN care_team_id SET NOT NULL;
ALTER TABLE patients ADD CONSTRAINT patients_care_team
    FOREIGN KEY (municipality_id, care_team_id) REFERENCES care_teams (municipality_id, id);
CREATE INDEX patients_care_team ON patients (care_team_id);

-- The patient's GP: a user with role 'gp' (checked where it is set), of any municipality.
ALTER TABLE patients ADD COLUMN gp_username text REFERENCES users (username) ON DELETE SET NULL;
CREATE INDEX patients_gp ON patients (gp_username);

-- The number a nurse calls when the data lag ("data lagging, call the patient").
ALTER TABLE patients ADD COLUMN phone text;
