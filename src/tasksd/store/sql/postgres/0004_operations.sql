-- Long-running operations (batches of task creations or deletions): the google.longrunning
-- Operation as answered, kept until expire_us so that clients can fetch it again.
CREATE TABLE operations (
    name TEXT PRIMARY KEY,
    body BYTEA NOT NULL,
    expire_us BIGINT NOT NULL
);
CREATE INDEX operations_expire ON operations (expire_us);
