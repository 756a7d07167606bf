-- Long-running operations (batches of task creations or deletions): the google.longrunning
-- Operation as answered, kept until expire_us so that clients can fetch it again.
CREATE TABLE operations (
    name TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    expire_us INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX operations_expire ON operations (expire_us)
