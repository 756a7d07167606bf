-- Attempt counts are added as rows of their own, no longer into one row per queue and second:
-- two writers counting the same seconds of their queues in different orders deadlocked.
ALTER TABLE attempt_seconds DROP CONSTRAINT attempt_seconds_pkey;
CREATE INDEX attempt_seconds_queue_second ON attempt_seconds (queue, second);
