-- Queue statistics from what push dispatch really did, shared by every node on the database:
-- the number of attempts that received their response (or ended without one) in each second,
-- per queue, kept a few minutes (executedLastMinuteCount), and the dispatch-rate factor the
-- owner's congestion control applies (effectiveExecutionRate), renewed with its ownership.
CREATE TABLE attempt_seconds (
    queue BIGINT NOT NULL,
    second BIGINT NOT NULL,
    answered INTEGER NOT NULL,
    PRIMARY KEY (queue, second)
);
ALTER TABLE queue_owners ADD COLUMN throttle DOUBLE PRECISION NOT NULL DEFAULT 1.0;
