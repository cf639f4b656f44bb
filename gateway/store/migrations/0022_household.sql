-- Issue 21: two patients on one hub (a couple at home), never getting each other's readings.
--
-- hubs.patient_id stays the patient the hub was enrolled for. hub_residents lists the other patients the
-- hub measures (gateway.administration.household): the hub's residents are hubs.patient_id plus the rows
-- here that are not removed. A personal device is its patient's (devices.patient_id, which must be a
-- resident); a device the residents share (a cuff or a scale with user slots) maps the User Index it
-- sends with each measurement to a resident in device_users, and carries those residents' readings only.
-- Ingest reads both (gateway.store.repository.hub_assignments); the hub is sent both in its retained
-- config (residents; each device's patient_id or users: gateway.hub_config).
--
-- Rows are never deleted, only marked removed, so who lived with a hub and whose slot was whose stays on
-- record beside the readings (the audit log says who changed it).

CREATE TABLE hub_residents (
    municipality_id text NOT NULL REFERENCES municipalities(id),
    hub_id          text NOT NULL REFERENCES hubs(id),
    patient_id      text NOT NULL REFERENCES patients(id),
    added_at        timestamptz NOT NULL DEFAULT now(),
    added_by        text NOT NULL,
    removed_at      timestamptz,
    removed_by      text,
    CHECK ((removed_at IS NULL) = (removed_by IS NULL))
);
-- A patient lives in one home at a time, and once in it.
CREATE UNIQUE INDEX hub_residents_one_home ON hub_residents (patient_id) WHERE removed_at IS NULL;
CREATE INDEX hub_residents_hub ON hub_residents (hub_id) WHERE removed_at IS NULL;

-- A shared device's user slots: User Index (1-254 as the Bluetooth SIG services number a device's users;
-- 255 means "unknown user") -> the resident. One resident per slot, one slot per resident.
CREATE TABLE device_users (
    municipality_id text NOT NULL REFERENCES municipalities(id),
    device_id       text NOT NULL REFERENCES devices(id),
    user_index      smallint NOT NULL CHECK (user_index BETWEEN 1 AND 254),
    patient_id      text NOT NULL REFERENCES patients(id),
    assigned_at     timestamptz NOT NULL DEFAULT now(),
    assigned_by     text NOT NULL,
    removed_at      timestamptz,
    removed_by      text,
    CHECK ((removed_at IS NULL) = (removed_by IS NULL))
);
CREATE UNIQUE INDEX device_users_slot ON device_users (device_id, user_index) WHERE removed_at IS NULL;
CREATE UNIQUE INDEX device_users_patient ON device_users (device_id, patient_id) WHERE removed_at IS NULL;
