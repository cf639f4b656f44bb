-- Models a municipality can trust (issue 19): a registry of model versions with their activation history,
-- and the inputs HUGIN FiNDR learns from that staff and the hospital already record (staff change
-- observations, inpatient Encounters).

-- Every version of the 30-day admission-risk model the gateway may score with. municipality_id NULL is the
-- shipped day-one default (one row, registered at start from models/admission_risk.joblib), usable by
-- every municipality; a local version belongs to the municipality whose history trained it and is never
-- shown to or used by another. The model itself (the joblib bytes) is kept here, so every gateway host
-- scores with the same bytes and a backup holds the models with the data they were trained on.
CREATE TABLE model_versions (
    version         text PRIMARY KEY,                  -- e.g. 'admission-risk-0101-20261207T0930'
    municipality_id text REFERENCES municipalities(id),
    kind            text NOT NULL CHECK (kind IN ('default', 'local')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL,                     -- username, or 'homewatch' for the shipped default
    source          text NOT NULL,                     -- 'shipped', 'database', 'ndjson'
    sha256          text NOT NULL,                     -- of model_bytes
    model_bytes     bytea NOT NULL,                    -- joblib (pickle): written only by the gateway's own code
    metadata        jsonb NOT NULL,                    -- the model's sidecar (features, threshold, training cohort)
    card            text NOT NULL,                     -- the model card, Markdown
    metrics         jsonb NOT NULL DEFAULT '{}',       -- the held-out report (models.validation): AUROC, CI, ...
    CHECK ((kind = 'default') = (municipality_id IS NULL))
);
CREATE INDEX model_versions_municipality ON model_versions (municipality_id, created_at DESC);

-- Append-only: who made which version active for a municipality, when, and why. The active version of a
-- municipality is the newest row's; none (or a row with version NULL) means the shipped default.
-- override_reason is required when the version did not beat NEWS2 by the stated margin on its held-out data.
CREATE TABLE model_activations (
    id              bigserial PRIMARY KEY,
    municipality_id text NOT NULL REFERENCES municipalities(id),
    version         text REFERENCES model_versions(version),
    action          text NOT NULL CHECK (action IN ('activate', 'rollback', 'default')),
    actor           text NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    override_reason text CHECK (override_reason IS NULL OR length(btrim(override_reason)) > 0)
);
CREATE INDEX model_activations_municipality ON model_activations (municipality_id, id DESC);

-- Systems that send FiNDR's inputs over POST /fhir: a home-care record system (staff change
-- observations) and a hospital system (inpatient Encounters). They are users of one municipality with a
-- role of their own, token only (no password login).
ALTER TABLE users DROP CONSTRAINT users_role;
ALTER TABLE users ADD CONSTRAINT users_role
    CHECK (role IN ('nurse', 'gp', 'municipality_admin', 'system_admin', 'homecare_system', 'hospital_system'));

-- One filled-in early-detection change form (models.codes.CHANGE_OBSERVATIONS), or a single item of it.
-- items: {"breathing": true, "mobility": false, ...}: true = a change was seen, false = checked, none seen;
-- an item absent was not checked. identifier (system|value) makes a form sent again a no-op.
CREATE TABLE staff_observations (
    id              bigserial PRIMARY KEY,
    municipality_id text NOT NULL REFERENCES municipalities(id),
    patient_id      text NOT NULL REFERENCES patients(id),
    identifier      text NOT NULL,
    effective       timestamptz NOT NULL,
    items           jsonb NOT NULL,
    recorded_by     text NOT NULL,                     -- the user or system account that sent it
    source          text NOT NULL CHECK (source IN ('fhir', 'web')),
    resource        jsonb NOT NULL,                    -- the Observation as received (web: as built)
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (municipality_id, identifier)
);
CREATE INDEX staff_observations_patient ON staff_observations (municipality_id, patient_id, effective DESC);

-- A hospital stay (Encounter class IMP, ACUTE or NONAC). period_end NULL: still in hospital.
-- identifier (system|value) makes an Encounter sent again an update (a discharge fills period_end).
CREATE TABLE encounters (
    id              bigserial PRIMARY KEY,
    municipality_id text NOT NULL REFERENCES municipalities(id),
    patient_id      text NOT NULL REFERENCES patients(id),
    identifier      text NOT NULL,
    status          text NOT NULL,                     -- FHIR Encounter.status
    class_code      text NOT NULL,
    period_start    timestamptz NOT NULL,
    period_end      timestamptz CHECK (period_end IS NULL OR period_end >= period_start),
    recorded_by     text NOT NULL,
    source          text NOT NULL CHECK (source IN ('fhir', 'web')),
    resource        jsonb NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (municipality_id, identifier)
);
CREATE INDEX encounters_patient ON encounters (municipality_id, patient_id, period_start DESC);

-- Which model version scored a stored 30-day risk is in scores.detail->>'model' (since issue 16); the
-- worklist and the monitoring page read it from there.
