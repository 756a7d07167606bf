-- Push dispatch of each queue is owned by one tasksd process (node) at a time: the owner
-- renews expire_us while it lives; another node may take the queue over once it passes.
CREATE TABLE queue_owners (
    queue BIGINT PRIMARY KEY,
    node TEXT NOT NULL,
    expire_us BIGINT NOT NULL
);
