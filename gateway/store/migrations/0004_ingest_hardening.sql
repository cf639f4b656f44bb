-- homewatch schema, version 4: ingest that no sender can stop or use against another (issue 15).
--
-- 1. A reading's identifier is scoped by the device that measured it (and its municipality). Until now
--    identifiers were unique across the whole database and predictable, so one hub could claim another
--    municipality's identifier first and make that hub's real reading vanish as a "duplicate". A hub may
--    only report its own enrolled devices (gateway.ingest.processing), so with the device in the key no
--    sender can reach another's readings. A device that moves to another hub keeps its readings' keys,
--    so history it hands over again is still recognised as already stored.
-- 2. `dead_letters` keeps the bytes of a message that could be neither stored nor quarantined, so even
--    then it is acknowledged without being lost.
-- 3. `ingest_workers` is each worker's heartbeat, from which /healthz tells a stalled worker.

-- The FHIR id of a stored Observation (gateway.api.fhir_model.observation_id computes the same).
CREATE FUNCTION observation_key_id(municipality_id text, device_id text, identifier text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(municipality_id || '/' || device_id || '/' || identifier, 'UTF8')), 'hex')
$$;

ALTER TABLE observation_keys ADD COLUMN device_id text;
UPDATE observation_keys k SET device_id = o.device_id
FROM observations o WHERE o.identifier = k.identifier AND o.effective = k.effective;
-- A key without its row cannot be (they are written together); drop any rather than fail the migration.
DELETE FROM observation_keys WHERE device_id IS NULL;
ALTER TABLE observation_keys ALTER COLUMN device_id SET NOT NULL;
-- The id, a hash of the scoped reading, is the key's one unique constraint (its primary key): the
-- repository and the trigger claim keys by it, one narrow index probe per reading.
ALTER TABLE observation_keys DROP CONSTRAINT observation_keys_identifier_key;
-- Observation ids change with the scope: ids handed out before this migration no longer resolve.
UPDATE observation_keys SET id = observation_key_id(municipality_id, device_id, identifier);

-- The primary key of `observations` gets the same scope (a new TimescaleDB table has it already:
-- gateway.store.timescale.OBSERVATIONS_TABLE).
DO $$
DECLARE
    current_key text;
BEGIN
    SELECT string_agg(a.attname, ',' ORDER BY k.ord) INTO current_key
    FROM pg_constraint c
    CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
    WHERE c.conrelid = 'observations'::regclass AND c.contype = 'p';
    IF current_key IS DISTINCT FROM 'municipality_id,device_id,identifier,effective' THEN
        ALTER TABLE observations DROP CONSTRAINT observations_pkey;
        ALTER TABLE observations ADD PRIMARY KEY (municipality_id, device_id, identifier, effective);
    END IF;
END
$$;

-- The safety net of migration 0002 for writers other than the repository, with the scoped key.
CREATE OR REPLACE FUNCTION observation_key_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO observation_keys (id, identifier, municipality_id, device_id, patient_id, effective)
    VALUES (observation_key_id(NEW.municipality_id, NEW.device_id, NEW.identifier), NEW.identifier,
            NEW.municipality_id, NEW.device_id, NEW.patient_id, NEW.effective)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND AND NOT EXISTS (
        SELECT 1 FROM observation_keys
        WHERE id = observation_key_id(NEW.municipality_id, NEW.device_id, NEW.identifier)
          AND effective = NEW.effective
    ) THEN
        RAISE EXCEPTION 'observation % of device % is already stored with another effective time',
            NEW.identifier, NEW.device_id
            USING ERRCODE = 'unique_violation';
    END IF;
    RETURN NULL;
END
$$;

-- Messages that could not even be quarantined, kept as bytes (no text or JSON rule can refuse them).
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    worker      text NOT NULL,
    topic       bytea NOT NULL,
    reason      text NOT NULL,
    payload     bytea NOT NULL
);

-- One row per ingest worker (its MQTT client id), written by the worker itself: how many messages it
-- holds, since when it has held one without finishing, and when it last committed or looked in.
CREATE TABLE ingest_workers (
    worker          text PRIMARY KEY,
    in_hand         integer NOT NULL DEFAULT 0,
    waiting_since   timestamptz,                -- the oldest message in hand arrived then (NULL: none)
    last_progress   timestamptz NOT NULL DEFAULT now(),  -- the last committed batch
    heartbeat       timestamptz NOT NULL DEFAULT now()
);
