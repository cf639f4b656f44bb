-- homewatch schema, version 2: one key per reading, whatever its effective time.
-- Runs after gateway.store.timescale.prepare_observation_storage (same transaction), which has made
-- `observations` a TimescaleDB hypertable where it could, and created `observation_daily`.
--
-- `observations` is partitioned by effective time, so its primary key (identifier, effective) cannot
-- stop a reading re-sent with another corrected effective time (the hub's clock correction changed) from
-- being stored twice. `observation_keys` is not partitioned: its unique identifier stores each reading
-- once, and its id (the FHIR Observation.id the API shows, gateway.api.fhir_model.observation_id) finds a
-- reading by one index probe, then a partition-pruned probe of `observations` by (identifier, effective).
-- gateway.store.repository inserts the keys first and moves only the rows whose key was new.

CREATE TABLE observation_keys (
    id              text PRIMARY KEY,          -- sha256(identifier) in hex: the FHIR Observation.id
    identifier      text NOT NULL UNIQUE,
    municipality_id text NOT NULL,
    patient_id      text NOT NULL,
    effective       timestamptz NOT NULL       -- the effective time of the one stored row
);

-- Back-fill: the first received copy of each reading keeps its key.
INSERT INTO observation_keys (id, identifier, municipality_id, patient_id, effective)
SELECT DISTINCT ON (identifier)
       encode(sha256(convert_to(identifier, 'UTF8')), 'hex'), identifier, municipality_id, patient_id, effective
FROM observations
ORDER BY identifier, received_at, effective;

-- Copies already stored twice (same identifier, another effective time) leave `observations` for the
-- quarantine, with their payload and the reason, so nothing is lost and the rule holds from now on.
WITH extra AS (
    DELETE FROM observations o USING observation_keys k
    WHERE o.identifier = k.identifier AND o.effective <> k.effective
    RETURNING o.municipality_id, o.hub_id, o.identifier, o.effective, o.received_at, o.resource,
              k.effective AS kept
)
INSERT INTO quarantine (received_at, municipality_id, hub_id, topic, reason, payload)
SELECT received_at, municipality_id, hub_id,
       format('homewatch/v1/%s/%s/observations', municipality_id, hub_id),
       format('duplicate: reading %s (effective %s) is already stored with effective %s (migration 0002)',
              identifier, effective, kept),
       resource::text
FROM extra;

-- A safety net for writers other than the repository (imports, seeds, SQL by hand): a row inserted into
-- `observations` gets its key, and a second effective time for a stored reading is refused. The
-- repository writes the keys itself and marks its transaction, so its rows skip the trigger entirely
-- (a WHEN condition is checked before any trigger call is queued).
CREATE FUNCTION observation_key_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO observation_keys (id, identifier, municipality_id, patient_id, effective)
    VALUES (encode(sha256(convert_to(NEW.identifier, 'UTF8')), 'hex'), NEW.identifier,
            NEW.municipality_id, NEW.patient_id, NEW.effective)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND AND NOT EXISTS (
        SELECT 1 FROM observation_keys WHERE identifier = NEW.identifier AND effective = NEW.effective
    ) THEN
        RAISE EXCEPTION 'observation % is already stored with another effective time', NEW.identifier
            USING ERRCODE = 'unique_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER observations_key_guard AFTER INSERT ON observations FOR EACH ROW
    WHEN (current_setting('homewatch.observation_keys_written', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION observation_key_guard();
