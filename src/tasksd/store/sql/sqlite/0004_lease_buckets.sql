-- The LeaseTasks token bucket of each queue, shared by every node on the database.
CREATE TABLE lease_buckets (
    queue INTEGER PRIMARY KEY,
    tokens REAL NOT NULL,
    updated_us INTEGER NOT NULL
)
