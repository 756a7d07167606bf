-- How many of the attempts that ended in each second failed (no 2xx answer): the console's
-- failures in the last minute.
ALTER TABLE attempt_seconds ADD COLUMN failed INTEGER NOT NULL DEFAULT 0;
