-- Push dispatch: the dispatch time of the attempt in flight (NULL when none), recorded before
-- the attempt is sent, so that a restart can send every unfinished attempt again.
ALTER TABLE tasks ADD COLUMN attempt_us INTEGER;
CREATE INDEX tasks_in_flight ON tasks (attempt_us) WHERE attempt_us IS NOT NULL;

-- Server-wide values kept across restarts (the token signing key).
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
