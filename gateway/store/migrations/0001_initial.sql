-- homewatch schema, version 1.
-- Every row that holds patient data carries its municipality, and every query filters on it: one
-- database serves many municipalities and nothing may leak between them.

CREATE TABLE municipalities (
    id          text PRIMARY KEY,              -- Danish municipality code, e.g. '0101'
    name        text NOT NULL
);

CREATE TABLE patients (
    municipality_id text NOT NULL REFERENCES municipalities(id),
    id          text PRIMARY KEY,              -- FHIR Patient.id
    name        text NOT NULL,
    birth_date  date,
    conditions  text[] NOT NULL DEFAULT '{}',  -- e.g. {'heart-failure','copd'}
    spo2_scale2 boolean NOT NULL DEFAULT false -- NEWS2 SpO2 scale 2 (hypercapnic respiratory failure)
);
CREATE INDEX patients_municipality ON patients (municipality_id);

CREATE TABLE hubs (
    municipality_id text NOT NULL REFERENCES municipalities(id),
    id          text PRIMARY KEY,
    patient_id  text NOT NULL REFERENCES patients(id),
    enrolled_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    municipality_id text NOT NULL REFERENCES municipalities(id),
    id          text PRIMARY KEY,              -- FHIR Device.id, as the hub names it in Observation.device
    hub_id      text NOT NULL REFERENCES hubs(id),
    patient_id  text NOT NULL REFERENCES patients(id),
    kind        text NOT NULL,                 -- 'blood-pressure-cuff', 'pulse-oximeter', 'scale', 'thermometer', ...
    address     text                           -- Bluetooth address
);

-- Observations, partitioned by effective time (TimescaleDB hypertable where available, see store code).
-- The identifier (device + type + measurement time) makes a redelivered reading a no-op.
CREATE TABLE observations (
    municipality_id text NOT NULL,
    identifier  text NOT NULL,
    patient_id  text NOT NULL,
    hub_id      text NOT NULL,
    device_id   text NOT NULL,
    kind        text NOT NULL,                 -- terminology key, e.g. 'spo2'
    loinc       text NOT NULL,
    effective   timestamptz NOT NULL,
    value       double precision,              -- NULL for panels and absent values
    unit        text,
    components  jsonb,                         -- {"systolic": 120, "diastolic": 80} for panels
    resource    jsonb NOT NULL,                -- the Observation exactly as received
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (identifier, effective)
) PARTITION BY RANGE (effective);
CREATE TABLE observations_default PARTITION OF observations DEFAULT;
CREATE INDEX observations_patient_time ON observations (municipality_id, patient_id, kind, effective DESC);

-- Rejected input, kept with its raw payload so nothing is lost and every rejection can be explained.
CREATE TABLE quarantine (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    municipality_id text,                      -- from the topic; may be unknown
    hub_id      text,
    topic       text NOT NULL,
    reason      text NOT NULL,
    payload     text NOT NULL
);

-- Every score computed, as a FHIR RiskAssessment with its basis.
CREATE TABLE scores (
    id          bigserial PRIMARY KEY,
    municipality_id text NOT NULL,
    patient_id  text NOT NULL REFERENCES patients(id),
    computed_at timestamptz NOT NULL DEFAULT now(),
    as_of       timestamptz NOT NULL,          -- time of the newest reading used
    method      text NOT NULL,                 -- 'news2'
    score       double precision NOT NULL,
    band        text NOT NULL,                 -- 'low', 'low-medium', 'medium', 'high'
    detail      jsonb NOT NULL,                -- per-parameter points, values, ages, missing parameters
    resource    jsonb NOT NULL                 -- FHIR RiskAssessment
);
CREATE INDEX scores_patient_latest ON scores (municipality_id, patient_id, computed_at DESC);

CREATE TABLE alerts (
    id          bigserial PRIMARY KEY,
    municipality_id text NOT NULL,
    patient_id  text NOT NULL REFERENCES patients(id),
    score_id    bigint NOT NULL REFERENCES scores(id),
    raised_at   timestamptz NOT NULL DEFAULT now(),
    as_of       timestamptz NOT NULL,
    severity    text NOT NULL,                 -- 'medium', 'high'
    reason      text NOT NULL,                 -- human-readable: why this alert
    status      text NOT NULL DEFAULT 'open',  -- 'open', 'acknowledged'
    acknowledged_by text,
    acknowledged_at timestamptz
);
-- At most one open alert per patient: a flapping score does not page anyone twice.
CREATE UNIQUE INDEX alerts_one_open_per_patient ON alerts (patient_id) WHERE status = 'open';

CREATE TABLE users (
    username    text PRIMARY KEY,
    municipality_id text NOT NULL REFERENCES municipalities(id),
    role        text NOT NULL,                 -- 'nurse', 'clinician', 'admin'
    password_hash text NOT NULL                -- scrypt, see gateway.api.auth
);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    username    text NOT NULL,
    municipality_id text NOT NULL,
    action      text NOT NULL,                 -- 'view-worklist', 'view-patient', 'acknowledge-alert', 'fhir-read'
    patient_id  text,
    detail      text
);
