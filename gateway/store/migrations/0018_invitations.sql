-- Issue 20: users by invitation (gateway.administration.users, gateway.api.invitation_pages).
--
-- An administrator invites a person (`homewatch admin user add`, or her web page): the user row is made
-- at once, with no password that matches, and the person sets her password once through the link's
-- page. The link carries a random token; only its SHA-256 is stored here, so whoever reads this table
-- (a backup, a replica) cannot use a link. An invitation is open until it is used or expires; a user has
-- at most one open invitation (inviting her again gives a new token to the same row: the old link stops
-- working). Used and expired rows stay as the record of how the user got her password.
CREATE TABLE invitations (
    id           bigserial PRIMARY KEY,
    username     text NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    token_sha256 bytea NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    CHECK (expires_at > created_at),
    CHECK (used_at IS NULL OR used_at >= created_at)
);
CREATE UNIQUE INDEX invitations_one_open ON invitations (username) WHERE used_at IS NULL;
