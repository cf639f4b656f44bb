-- Issue 20: the fleet view (gateway.fleet, gateway.store.fleet, /admin/fleet). The gateway keeps more of
-- each hub's retained status (gateway.ingest.hub_status) and a bounded history of the changes that matter.
--
-- hub_status gets what the hub's publisher and service report (edge_agent.publish.mqtt_publisher._status,
-- edge_agent.service._refresh_status_fields). A field the hub sent with a wrong type is not stored (NULL)
-- and counted in fields_ignored with the first reason; the rest of the status is kept. An offline status
-- (the Last Will) carries only the agent version: the outbox figures stay as last known.

ALTER TABLE hub_status ADD COLUMN agent_version text;                 -- "agentVersion"
ALTER TABLE hub_status ADD COLUMN queue_depth integer CHECK (queue_depth >= 0);    -- readings in the outbox
ALTER TABLE hub_status ADD COLUMN awaiting_receipt integer CHECK (awaiting_receipt >= 0);  -- sent, unconfirmed
-- Readings the hub dropped because its outbox was full, by reading kind, over the outbox file's life.
ALTER TABLE hub_status ADD COLUMN evicted jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(evicted) = 'object');
ALTER TABLE hub_status ADD COLUMN evicted_total bigint NOT NULL DEFAULT 0 CHECK (evicted_total >= 0);
ALTER TABLE hub_status ADD COLUMN outbox_full boolean;               -- the hub's disk refused a write
ALTER TABLE hub_status ADD COLUMN held_in_memory integer CHECK (held_in_memory >= 0);  -- waiting in memory
-- The configuration the hub runs: the "version" of the retained config it applied ("configVersion"; the
-- gateway publishes str(hubs.config_version)), NULL when it runs its local file only; and why it refused
-- the newest one ("configError": "field: reason"), NULL when it did not.
ALTER TABLE hub_status ADD COLUMN config_applied text;
ALTER TABLE hub_status ADD COLUMN config_error text;
ALTER TABLE hub_status ADD COLUMN fields_ignored integer NOT NULL DEFAULT 0 CHECK (fields_ignored >= 0);
ALTER TABLE hub_status ADD COLUMN ignored_reason text;

-- Per device: its clock as the hub measured it at the last connection (edge_agent.clock_sync: NULL when
-- the device has no clock the hub reads), the offset in seconds (hub local time minus device time), the
-- errors the hub recorded for it since the agent started, and the last one: its type (the hub's error
-- class, e.g. 'GattError') and "Type: message" to read.
ALTER TABLE hub_status_devices ADD COLUMN clock text CHECK (clock IN ('in-sync', 'wrong', 'unset', 'unknown'));
ALTER TABLE hub_status_devices ADD COLUMN clock_offset_s double precision;
ALTER TABLE hub_status_devices ADD COLUMN errors integer CHECK (errors >= 0);
ALTER TABLE hub_status_devices ADD COLUMN last_error_type text;
ALTER TABLE hub_status_devices ADD COLUMN last_error text;

-- The history of statuses. 500 hubs publishing every 60 s are 720,000 statuses a day: a row per status
-- would grow by some 250 MB a day and say nothing new in almost all of them. So a row is written only
-- when something an operator acts on changed since the hub's previous row (gateway.store.hub_status
-- compares the new `state` with the newest row's):
--   the hub online or offline, its agent version, the config version it applied, its evictions (by
--   order of magnitude: 0, 1+, 10+, 100+, ...), the outbox full or not; per device: connected or not,
--   battery band (low at <= 20 %, gateway.fleet.LOW_BATTERY_PERCENT; ok; unknown), clock status, and
--   the type of its last error when that is a failure (gateway.fleet.device_failure).
-- Evictions by order of magnitude because they are a counter that may grow at every status while the
-- gateway sends no receipts. The error count is not compared at all: the hub counts a sleeping device's
-- every failed connection round and every link a device drops after measuring, some thousands a day.
-- Queue depth, receipts awaited and readings held in memory move with every reading; they are kept in
-- the row as the moment's context, never compared.
-- Retention (gateway.store.hub_status.HISTORY_RETENTION, HISTORY_ROWS_PER_HUB): writing a hub's row
-- deletes its rows older than 90 days and beyond its newest 2,000, by the index below, so the table is
-- bounded per hub without a job. A spot-check device connects and disconnects at each measurement, so a
-- typical home writes some 6-12 rows a day: 500 hubs keep some 0.3-0.5 million rows (a few hundred
-- bytes each: about 100-200 MB), and at most 1 million however much a hub flaps.
CREATE TABLE hub_status_history (
    id               bigserial PRIMARY KEY,
    municipality_id  text NOT NULL REFERENCES municipalities(id),
    hub_id           text NOT NULL REFERENCES hubs(id) ON DELETE CASCADE,
    received_at      timestamptz NOT NULL,           -- when the gateway took the status
    live             boolean NOT NULL,               -- false: a retained copy handed over on subscribing
    online           boolean NOT NULL,
    -- What changed since the hub's previous row: 'first', 'online', 'offline', 'agent-version', 'config',
    -- 'evictions', 'outbox-full', 'device-added', 'device-gone', 'connected', 'battery', 'clock', 'errors'.
    changes          text[] NOT NULL,
    state            jsonb NOT NULL,                 -- what is compared (above)
    queue_depth      integer,
    awaiting_receipt integer,
    held_in_memory   integer
);
CREATE INDEX hub_status_history_hub ON hub_status_history (hub_id, received_at DESC, id DESC);
