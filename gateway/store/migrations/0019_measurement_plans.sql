-- Issue 21: a patient's measurement plan (fhir_contract.plan), set by a nurse of the patient's care team
-- (gateway.administration.plans; the page gateway.api.plan_pages), sent to the patient's hub in its
-- retained config (key "plan", gateway.hub_config) and read by the missing-measurement job
-- (gateway.alerts.missing_job).
--
-- One row per change, holding the whole plan in fhir_contract.plan's JSON form (a list, one object per
-- measurement: measurement, times, days, grace_minutes). A jsonb column rather than a row per
-- measurement because the plan is saved, sent and read as one whole: the nurse saves the whole form, the
-- hub replaces its plan with the one it is sent, and a change of one time is a new version of the whole.
-- Its rules live in one place that the hub and the gateway both run (fhir_contract.plan.parse_plan, which
-- the writer calls before inserting and every reader after selecting); the CHECK below only keeps out what
-- is no plan at all.
--
-- The newest row (highest id) of a patient is the plan in force; an empty list is "no plan" (the nurse
-- removed it: the hub is sent an empty plan and stops reminding, the missing alert falls back to its
-- defaults). set_at is the gateway's clock when the nurse saved (the demo's simulated time; occurrences
-- due before it are not expected), recorded_at the database's. The table only grows (the older rows are
-- the plan's history, shown under the form): 0011's trigger refuses UPDATE, DELETE and TRUNCATE.
CREATE TABLE measurement_plans (
    id              bigserial PRIMARY KEY,
    municipality_id text NOT NULL REFERENCES municipalities(id),   -- the patient's municipality
    patient_id      text NOT NULL REFERENCES patients(id),
    plan            jsonb NOT NULL
        CHECK (jsonb_typeof(plan) = 'array' AND jsonb_array_length(plan) <= 5),
    set_by          text NOT NULL,        -- username, or the operating-system account at the command line
    set_at          timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX measurement_plans_current ON measurement_plans (municipality_id, patient_id, id DESC);

CREATE TRIGGER measurement_plans_no_change BEFORE UPDATE OR DELETE ON measurement_plans
    FOR EACH ROW EXECUTE FUNCTION patient_records_append_only();
CREATE TRIGGER measurement_plans_no_truncate BEFORE TRUNCATE ON measurement_plans
    FOR EACH STATEMENT EXECUTE FUNCTION patient_records_append_only();
