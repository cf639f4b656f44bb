-- Issue 20: the quarantine is reviewed. An administrator browses the rows of her municipality (a system
-- administrator also those of no known municipality), re-processes a reading after an enrolment fix
-- (gateway.ingest.reprocess: the live ingest's rules with the current enrolment) or dismisses a row with a
-- reason (gateway.store.quarantine). A row is never deleted: its review is recorded on it.

-- The refusal code, the first word of every reason the writers put there ('unassigned-device: device ...',
-- storing.quarantine_entries, status_ingest, migration 0002's 'duplicate: ...'), for the filters and the
-- counts per code. Generated, so no writer changes; computing it rewrites the table once (a short lock
-- while this migration runs: the quarantine holds refused input, not every reading).
ALTER TABLE quarantine ADD COLUMN code text NOT NULL GENERATED ALWAYS AS (
    CASE WHEN reason ~ '^[a-z0-9][a-z0-9-]{0,39}:' THEN split_part(reason, ':', 1) ELSE 'other' END
) STORED;

-- The review: when, by whom, and what became of the row (NULL: open, waiting for an administrator).
--   reprocessed-stored   re-processed: every reading in it is stored now (or was already)
--   reprocessed-partly   re-processed: some of it stored, the rest refused again (new rows hold those)
--   still-refused        re-processed: refused again; a new row holds it with today's reason
--   dismissed            an administrator set it aside, with a reason (resolution_note)
ALTER TABLE quarantine ADD COLUMN resolved_at timestamptz;
ALTER TABLE quarantine ADD COLUMN resolved_by text;
ALTER TABLE quarantine ADD COLUMN resolution text
    CHECK (resolution IN ('reprocessed-stored', 'reprocessed-partly', 'still-refused', 'dismissed'));
ALTER TABLE quarantine ADD COLUMN resolution_note text;
ALTER TABLE quarantine ADD CONSTRAINT quarantine_resolved_whole
    CHECK ((resolved_at IS NULL) = (resolution IS NULL) AND (resolved_at IS NULL) = (resolved_by IS NULL));

-- The row whose re-processing wrote this one (refused again). Filled by the DEFAULT from the setting
-- homewatch.reprocessing, which only the re-processing transaction sets (SET LOCAL): the writers of live
-- ingest (repository.quarantine_many) are the same and leave it NULL.
ALTER TABLE quarantine ADD COLUMN reprocessed_from bigint
    DEFAULT nullif(current_setting('homewatch.reprocessing', true), '')::bigint
    REFERENCES quarantine (id) ON DELETE SET NULL;

-- Listing a municipality's rows newest first (paged by id): all of them, its open ones (the page's
-- default; open rows are few once reviewed, so the partial indexes stay small), and its open ones by code
-- (the page's counts and the filter "held: device assigned to nobody").
CREATE INDEX quarantine_municipality ON quarantine (municipality_id, id DESC);
CREATE INDEX quarantine_open ON quarantine (municipality_id, id DESC) WHERE resolved_at IS NULL;
CREATE INDEX quarantine_open_code ON quarantine (municipality_id, code, id DESC) WHERE resolved_at IS NULL;
CREATE INDEX quarantine_reprocessed_from ON quarantine (reprocessed_from) WHERE reprocessed_from IS NOT NULL;
