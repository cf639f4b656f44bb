-- Alerts with a lifecycle, their history, and their delivery to people outside the page (issue 18).
--
-- An alert has a kind and, within it, a key: 'news2' (key ''), 'disease-rule' (the rule's name),
-- 'threshold' (the vital sign whose own limits a reading crossed), 'risk-rise' (key '', the learned 30-day
-- risk rising) and 'missing' (the measurement not received in time). At most one alert per patient, kind
-- and key is active (not resolved): a value flapping round a threshold adds triggers to that alert
-- (trigger_count, last_trigger_as_of) instead of raising twenty. States: open -> acknowledged (with a
-- note) -> resolved (with an outcome); snoozed (with a reason, until a time) is active too, and wakes up
-- as open. A worse severity re-opens an acknowledged or snoozed alert. Escalation raises escalation_level
-- when nobody acknowledged it by escalate_at.

-- Before this migration an acknowledgement ended an alert; it is resolved in the new states.
ALTER TABLE alerts ADD COLUMN resolved_at timestamptz;
ALTER TABLE alerts ADD COLUMN resolved_by text;
ALTER TABLE alerts ADD COLUMN outcome text;
ALTER TABLE alerts ADD COLUMN resolution_note text;
UPDATE alerts SET status = 'resolved', resolved_at = acknowledged_at, resolved_by = acknowledged_by,
    outcome = 'acknowledged-before-lifecycle'
WHERE status = 'acknowledged';

DROP INDEX alerts_one_open_per_patient;
ALTER TABLE alerts ADD COLUMN kind text NOT NULL DEFAULT 'news2';
-- Alerts of a disease rule were told apart by the method of the score they were raised on.
UPDATE alerts a SET kind = 'disease-rule' FROM scores s WHERE s.id = a.score_id AND s.method <> 'news2';
ALTER TABLE alerts ADD COLUMN key text NOT NULL DEFAULT '';
UPDATE alerts a SET key = s.method FROM scores s WHERE s.id = a.score_id AND a.kind = 'disease-rule';
ALTER TABLE alerts ADD CONSTRAINT alerts_kind
    CHECK (kind IN ('news2', 'disease-rule', 'threshold', 'risk-rise', 'missing'));
ALTER TABLE alerts ADD CONSTRAINT alerts_status
    CHECK (status IN ('open', 'acknowledged', 'snoozed', 'resolved'));
-- Threshold and missing-measurement alerts stand on a reading (or its absence), not on a score.
ALTER TABLE alerts ALTER COLUMN score_id DROP NOT NULL;
ALTER TABLE alerts ADD COLUMN observation_identifier text;
ALTER TABLE alerts ADD COLUMN public_id uuid NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE alerts ADD COLUMN acknowledgement_note text;
ALTER TABLE alerts ADD COLUMN assigned_to text;
ALTER TABLE alerts ADD COLUMN assigned_at timestamptz;
ALTER TABLE alerts ADD COLUMN snoozed_until timestamptz;
ALTER TABLE alerts ADD COLUMN snooze_reason text;
ALTER TABLE alerts ADD COLUMN escalation_level integer NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN escalate_at timestamptz;
ALTER TABLE alerts ADD COLUMN trigger_count integer NOT NULL DEFAULT 1;
ALTER TABLE alerts ADD COLUMN last_trigger_as_of timestamptz;
UPDATE alerts SET last_trigger_as_of = as_of;
ALTER TABLE alerts ALTER COLUMN last_trigger_as_of SET NOT NULL;
ALTER TABLE alerts ADD COLUMN updated_at timestamptz;
UPDATE alerts SET updated_at = coalesce(resolved_at, raised_at);
ALTER TABLE alerts ALTER COLUMN updated_at SET NOT NULL;
-- A row inserted without them (older code, tests that seed alerts) stands on its own as_of and raised_at.
CREATE FUNCTION alerts_fill_trigger_times() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.last_trigger_as_of := coalesce(NEW.last_trigger_as_of, NEW.as_of);
    NEW.updated_at := coalesce(NEW.updated_at, NEW.raised_at);
    RETURN NEW;
END $$;
CREATE TRIGGER alerts_fill_trigger_times BEFORE INSERT ON alerts
    FOR EACH ROW EXECUTE FUNCTION alerts_fill_trigger_times();
ALTER TABLE alerts ADD CONSTRAINT alerts_resolved_with_outcome
    CHECK (status <> 'resolved' OR (resolved_at IS NOT NULL AND outcome IS NOT NULL));
ALTER TABLE alerts ADD CONSTRAINT alerts_snoozed_until
    CHECK (status <> 'snoozed' OR (snoozed_until IS NOT NULL AND snooze_reason IS NOT NULL));

CREATE UNIQUE INDEX alerts_one_active_per_kind ON alerts (municipality_id, patient_id, kind, key)
    WHERE status <> 'resolved';
CREATE UNIQUE INDEX alerts_public_id ON alerts (public_id);
-- The inbox reads a patient's (or many patients') alerts newest first; the jobs read what is due.
CREATE INDEX alerts_patient_raised ON alerts (municipality_id, patient_id, raised_at DESC);
CREATE INDEX alerts_escalate_at ON alerts (escalate_at) WHERE status = 'open';
CREATE INDEX alerts_snoozed_until ON alerts (snoozed_until) WHERE status = 'snoozed';

-- Everything that happened to an alert, in order: raised, severity raised, acknowledged, snoozed, woke,
-- assigned, escalated, resolved, and what delivery did. Append-only, like audit_log. Each insert is
-- announced on the channel 'homewatch_alert_events' (the browsers' live stream reads the rows by id).
CREATE TABLE alert_events (
    id          bigserial PRIMARY KEY,
    municipality_id text NOT NULL,             -- the patient's municipality
    patient_id  text NOT NULL REFERENCES patients(id),
    alert_id    bigint NOT NULL REFERENCES alerts(id),
    at          timestamptz NOT NULL,
    action      text NOT NULL CHECK (action IN (
        'raised', 'severity-raised', 'acknowledged', 'snoozed', 'woke', 'assigned', 'escalated',
        'resolved', 'delivered', 'delivery-failed', 'undeliverable'
    )),
    actor       text,                          -- username; NULL: homewatch itself
    note        text CHECK (note IS NULL OR length(note) <= 4000),
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, id);
CREATE INDEX alert_events_municipality ON alert_events (municipality_id, id);

CREATE FUNCTION alert_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'alert_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER alert_events_no_update_or_delete BEFORE UPDATE OR DELETE ON alert_events
    FOR EACH ROW EXECUTE FUNCTION alert_events_append_only();
CREATE TRIGGER alert_events_no_truncate BEFORE TRUNCATE ON alert_events
    FOR EACH STATEMENT EXECUTE FUNCTION alert_events_append_only();

-- Announced when the inserting transaction commits: the id, municipality and patient only (the
-- listener reads the row through the viewer's access rule).
CREATE FUNCTION alert_events_announce() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('homewatch_alert_events', json_build_object(
        'id', NEW.id, 'm', NEW.municipality_id, 'p', NEW.patient_id)::text);
    RETURN NULL;
END $$;
CREATE TRIGGER alert_events_announce AFTER INSERT ON alert_events
    FOR EACH ROW EXECUTE FUNCTION alert_events_announce();

-- The people an alert is delivered to need an address.
ALTER TABLE users ADD COLUMN email text CHECK (email IS NULL OR email ~ '^[^@\s]+@[^@\s]+$');

-- Per municipality: where alerts go besides the care team and the GP, how much a message says, and when
-- an unacknowledged alert escalates. A municipality without a row uses the defaults (no webhook, no
-- on-call address, initials in messages, high after 15 minutes, medium after 60).
CREATE TABLE alert_settings (
    municipality_id text PRIMARY KEY REFERENCES municipalities(id),
    webhook_url text CHECK (webhook_url IS NULL OR webhook_url ~ '^https?://'),
    webhook_secret text,
    on_call_email text CHECK (on_call_email IS NULL OR on_call_email ~ '^[^@\s]+@[^@\s]+$'),
    message_detail text NOT NULL DEFAULT 'initials' CHECK (message_detail IN ('none', 'initials')),
    escalate_high_minutes integer NOT NULL DEFAULT 15 CHECK (escalate_high_minutes > 0),
    escalate_medium_minutes integer NOT NULL DEFAULT 60 CHECK (escalate_medium_minutes > 0),
    updated_by  text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((webhook_url IS NULL) = (webhook_secret IS NULL))
);

-- The outbox of deliveries: written in the transaction of the event it tells (raised, severity raised,
-- escalated), sent by the dispatcher, retried with back-off, and failed for the administrator to see.
CREATE TABLE alert_deliveries (
    id          bigserial PRIMARY KEY,
    municipality_id text NOT NULL,
    alert_id    bigint NOT NULL REFERENCES alerts(id),
    event_id    bigint NOT NULL REFERENCES alert_events(id),
    channel     text NOT NULL CHECK (channel IN ('email', 'webhook')),
    recipient   text NOT NULL,                 -- an e-mail address or the webhook's URL
    username    text,                          -- the person behind an e-mail address, when one is
    audience    text NOT NULL CHECK (audience IN ('care-team', 'gp', 'on-call', 'municipality')),
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts    integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    created_at  timestamptz NOT NULL,
    sent_at     timestamptz,
    last_error  text,
    UNIQUE (event_id, channel, recipient)
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_deliveries_failed ON alert_deliveries (municipality_id, id DESC) WHERE status = 'failed';
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id);
