-- The patient and the care team talk (issue 21): "contact my nurse" pressed on the hub's patient view,
-- and the nurse's messages back to the patient.
--
-- contact_requests: one row per contact-request Task (fhir_contract.contact) a hub sent in its MQTT
-- Bundles. identifier is the Task's urn:homewatch:contact-request identifier (hub-contact-seconds,
-- chosen by the hub): a request sent again is a no-op. It is unique within the hub that sent it (and its
-- municipality), as a questionnaire response's is (migration 0020). public_id is the Task's FHIR id on
-- the API: random, so it says nothing about other municipalities' requests (as alerts.public_id).
-- The care team works it: open -> in-progress (taken: taken_by, taken_at) -> done (done_by, done_at);
-- a request may be marked done without being taken first. Every change is audited by the caller.
CREATE TABLE contact_requests (
    id              bigserial PRIMARY KEY,
    public_id       uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    municipality_id text NOT NULL REFERENCES municipalities(id),
    patient_id      text NOT NULL REFERENCES patients(id),
    hub_id          text NOT NULL REFERENCES hubs(id),
    identifier      text NOT NULL,
    authored        timestamptz NOT NULL,
    reason          text CHECK (reason IN ('feeling-worse', 'question', 'equipment')),
    urgent          boolean NOT NULL,
    resource        jsonb NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in-progress', 'done')),
    taken_by        text,
    taken_at        timestamptz,
    done_by         text,
    done_at         timestamptz,
    UNIQUE (municipality_id, hub_id, identifier),
    CHECK (status <> 'open' OR (taken_at IS NULL AND done_at IS NULL)),
    CHECK (status <> 'in-progress' OR (taken_at IS NOT NULL AND done_at IS NULL)),
    CHECK ((status = 'done') = (done_at IS NOT NULL)),
    CHECK ((taken_at IS NULL) = (taken_by IS NULL) AND (done_at IS NULL) = (done_by IS NULL))
);
-- The worklist's open requests (few: a partial index), and a patient's history, newest first.
CREATE INDEX contact_requests_open
    ON contact_requests (municipality_id, patient_id, authored) WHERE status <> 'done';
CREATE INDEX contact_requests_patient
    ON contact_requests (municipality_id, patient_id, authored DESC, id DESC);

-- patient_messages: a nurse's message to a patient, shown on the hub's patient view. The hub gets the
-- recent ones in its retained config (gateway.hub_config: messages), so writing one bumps the config
-- version of the patient's hubs in the same transaction. public_id is the message's id on the hub.
-- Append-only by use (a message sent cannot be taken back from a screen that showed it).
CREATE TABLE patient_messages (
    id              bigserial PRIMARY KEY,
    public_id       uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    municipality_id text NOT NULL REFERENCES municipalities(id),
    patient_id      text NOT NULL REFERENCES patients(id),
    author          text NOT NULL,
    text            text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 1000),
    sent_at         timestamptz NOT NULL
);
CREATE INDEX patient_messages_patient ON patient_messages (municipality_id, patient_id, sent_at DESC, id DESC);

-- The FHIR API serves the patients' answers (QuestionnaireResponse read and search): public_id is a
-- stored response's FHIR id, random as contact_requests.public_id is.
ALTER TABLE questionnaire_responses ADD COLUMN public_id uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX questionnaire_responses_public_id ON questionnaire_responses (public_id);
