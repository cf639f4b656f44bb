-- Patient-reported outcomes (issue 21): the answers to the daily symptom checks of fhir/questionnaires/,
-- sent by the hub as FHIR QuestionnaireResponses in the same MQTT Bundles as its Observations.
--
-- One row per response. identifier is the response's urn:homewatch:questionnaire-response identifier
-- (hub-questionnaire-seconds, chosen by the hub): a response sent again is a no-op. It is unique within
-- the hub that sent it (and its municipality), as an Observation's is within its device (migration 0004),
-- so no hub can claim another hub's identifiers first. questionnaire and version are the Questionnaire's
-- canonical url and version; answers maps each item's linkId to the answer's code
-- ({"breathlessness": "worse", ...}); resource is the QuestionnaireResponse as received.
CREATE TABLE questionnaire_responses (
    id              bigserial PRIMARY KEY,
    municipality_id text NOT NULL REFERENCES municipalities(id),
    patient_id      text NOT NULL REFERENCES patients(id),
    hub_id          text NOT NULL REFERENCES hubs(id),
    questionnaire   text NOT NULL,
    version         text NOT NULL,
    identifier      text NOT NULL,
    authored        timestamptz NOT NULL,
    answers         jsonb NOT NULL,
    resource        jsonb NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (municipality_id, hub_id, identifier)
);
-- The patient page's "latest answers per questionnaire" and, later, the models' features.
CREATE INDEX questionnaire_responses_patient
    ON questionnaire_responses (municipality_id, patient_id, questionnaire, authored DESC);
