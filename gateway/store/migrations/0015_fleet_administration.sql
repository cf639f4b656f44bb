-- Issue 20: a municipality enrols and runs its hubs without SQL (gateway.administration).
--
-- Hubs and devices are never deleted: a revoked hub and a removed device keep their rows, so every stored
-- reading stays explained. Ingest accepts readings and statuses only from a hub that is not revoked and
-- only from devices that are not removed (gateway.store.repository.hub_assignments).

-- A hub taken out of service: refused at the gateway from revoked_at on; its broker account is deleted.
ALTER TABLE hubs ADD COLUMN revoked_at timestamptz;
ALTER TABLE hubs ADD COLUMN revoked_by text;
-- The hub's broker account (its username is the hub id on the shipped access rules) and when its
-- credentials were last issued (enrolling again issues new ones; the old password stops working).
ALTER TABLE hubs ADD COLUMN broker_username text;
ALTER TABLE hubs ADD COLUMN credentials_issued_at timestamptz;
-- The retained configuration (topic homewatch/v1/{m}/{hub}/config). config_version counts the changes to
-- what the hub should run (its devices, settings); config_published is the version last published
-- retained on the broker: a hub whose config_published lags is published again by the gateway's job. The
-- hub echoes the version it applied in its status.
ALTER TABLE hubs ADD COLUMN config_version integer NOT NULL DEFAULT 0 CHECK (config_version >= 0);
ALTER TABLE hubs ADD COLUMN config_published integer NOT NULL DEFAULT 0 CHECK (config_published >= 0);
ALTER TABLE hubs ADD COLUMN config_published_at timestamptz;
-- The settings an administrator set for this hub, a JSON object of the hub's remote settings
-- (timezone, bundle_size, max_connections, status_interval_s): sent with the devices in the config.
ALTER TABLE hubs ADD COLUMN settings jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object');

-- A device's assignment: when it was assigned (again), when it was removed (NULL: in use), and how often
-- it should deliver a reading (NULL: its kind's default), after which the fleet view flags it silent.
ALTER TABLE devices ADD COLUMN assigned_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE devices ADD COLUMN removed_at timestamptz;
ALTER TABLE devices ADD COLUMN expected_interval interval CHECK (expected_interval > interval '0');
CREATE INDEX devices_hub ON devices (hub_id) WHERE removed_at IS NULL;
