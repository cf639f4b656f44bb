-- Web security, version 5: the state of logging in that every gateway process shares (several worker
-- processes and hosts answer logins, so none of it may live in one process's memory), and ids of
-- RiskAssessments that say nothing about other municipalities.

-- Failed logins per account and per client address: a counter that grows with each failure and the
-- time until which further attempts are refused (gateway.api.login_throttle decides both).
CREATE TABLE login_throttle (
    scope         text NOT NULL CHECK (scope IN ('account', 'address')),
    key           text NOT NULL,          -- the username as typed, or the client address (IPv6: its /64)
    failures      integer NOT NULL DEFAULT 0,
    blocked_until timestamptz,            -- attempts before this are refused (429) unchecked
    last_failure  timestamptz,
    PRIMARY KEY (scope, key)
);
-- Rows that have been quiet for a while are deleted on the way (gateway.store.logins).
CREATE INDEX login_throttle_last_failure ON login_throttle (last_failure);

-- Sessions ended by logout before their expiry; a row is needed only until the token would expire.
CREATE TABLE revoked_sessions (
    session_id  text PRIMARY KEY,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX revoked_sessions_expires_at ON revoked_sessions (expires_at);

-- A RiskAssessment's FHIR id: random, so its value and the gaps between ids reveal nothing (scores.id
-- is one sequence for all municipalities). A volatile default gives every existing row its own value,
-- and every insert (the scorer, the admission-risk job) gets one without naming the column.
ALTER TABLE scores ADD COLUMN public_id uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX scores_public_id ON scores (public_id);
