-- Ingest metrics, version 3: counters each ingest worker adds to in the transaction that stores its
-- batch, so /metrics counts exactly what was committed, survives worker restarts, and works for
-- workers on several hosts. One row per worker (its MQTT client id): workers never wait on each
-- other's row lock. No patient data here: worker names and rejection codes only.

CREATE TABLE ingest_metrics (
    worker              text PRIMARY KEY,
    messages_received   bigint NOT NULL DEFAULT 0,  -- messages in committed batches (redeliveries too)
    observations_stored bigint NOT NULL DEFAULT 0,  -- new rows
    duplicates          bigint NOT NULL DEFAULT 0,  -- Observations already stored (redelivery, resend)
    batches             bigint NOT NULL DEFAULT 0,
    -- Lag: seconds from a message's arrival at the worker to its batch's store, per message.
    lag_seconds_sum     double precision NOT NULL DEFAULT 0,
    lag_seconds_count   bigint NOT NULL DEFAULT 0,
    lag_seconds_last_max double precision NOT NULL DEFAULT 0,  -- the largest lag of the last batch
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ingest_rejections (
    worker  text NOT NULL,
    reason  text NOT NULL,                          -- the rejection code, e.g. 'impossible-value'
    count   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (worker, reason)
);
