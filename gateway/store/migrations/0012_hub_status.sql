-- The newest status each hub published (issue 17: battery and last contact on the patient's page).
--
-- One row per hub, replaced by each status the gateway accepts (gateway.ingest.status_ingest): only for
-- a hub enrolled in the municipality its topic names, and device rows only for devices enrolled on that
-- hub (entries of other devices are dropped and counted in devices_dropped). Statuses are state, not
-- history: nothing here is kept when a newer status arrives.
--
-- received_at: when the gateway took the newest status (online or offline).
-- online_at:   when it took the newest LIVE online status: the hub's last contact by status. A retained
--              copy that the broker hands over on subscribing is as old as the hub's last publish, so it
--              never moves this time forward (NULL until a live one arrives).

CREATE TABLE hub_status (
    municipality_id text NOT NULL REFERENCES municipalities(id),
    hub_id          text PRIMARY KEY REFERENCES hubs(id) ON DELETE CASCADE,
    received_at     timestamptz NOT NULL,
    online          boolean NOT NULL,
    online_at       timestamptz,
    devices_dropped integer NOT NULL DEFAULT 0 CHECK (devices_dropped >= 0),
    dropped_reason  text                           -- the first dropped entry's reason, for the operator
);

CREATE TABLE hub_status_devices (
    hub_id     text NOT NULL REFERENCES hub_status(hub_id) ON DELETE CASCADE,
    device_id  text NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    connected  boolean NOT NULL,
    battery    smallint CHECK (battery BETWEEN 0 AND 100),   -- % from the Battery Service; NULL: not read
    last_seen  timestamptz,                                  -- when the hub last heard from the device
    PRIMARY KEY (hub_id, device_id)
);
