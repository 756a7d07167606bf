-- The LeaseTasks token bucket of each queue, shared by every node on the database.
CREATE TABLE lease_buckets (
    queue BIGINT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    updated_us BIGINT NOT NULL
);
