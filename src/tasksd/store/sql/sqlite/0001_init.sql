-- Queues: the configuration is the encoded model; the columns hold what queries filter on.
CREATE TABLE queues (
    id INTEGER PRIMARY KEY,
    project TEXT NOT NULL,
    location TEXT NOT NULL,
    queue_id TEXT NOT NULL,
    task_ttl_us INTEGER NOT NULL,
    tombstone_ttl_us INTEGER NOT NULL,
    config BLOB NOT NULL,
    policy BLOB,
    UNIQUE (project, location, queue_id)
);

-- Names of deleted queues that may not be reused before expire_us.
CREATE TABLE queue_tombstones (
    project TEXT NOT NULL,
    location TEXT NOT NULL,
    queue_id TEXT NOT NULL,
    expire_us INTEGER NOT NULL,
    PRIMARY KEY (project, location, queue_id)
) WITHOUT ROWID;

-- Tasks stay here, not in memory; kind is 0 pull, 1 App Engine, 2 HTTP.
CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    queue INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    kind INTEGER NOT NULL,
    schedule_us INTEGER NOT NULL,
    create_us INTEGER NOT NULL,
    expire_us INTEGER NOT NULL,
    tag TEXT,
    dispatch_count INTEGER NOT NULL DEFAULT 0,
    response_count INTEGER NOT NULL DEFAULT 0,
    payload BLOB NOT NULL,
    attempts BLOB,
    options BLOB,
    UNIQUE (queue, task_id)
);
CREATE INDEX tasks_due ON tasks (queue, schedule_us);
CREATE INDEX tasks_tag_due ON tasks (queue, tag, schedule_us) WHERE tag IS NOT NULL;
CREATE INDEX tasks_expire ON tasks (expire_us);

-- Names of deleted or completed tasks, kept for the queue's tombstone TTL (de-duplication).
CREATE TABLE task_tombstones (
    queue INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    expire_us INTEGER NOT NULL,
    PRIMARY KEY (queue, task_id)
) WITHOUT ROWID;
CREATE INDEX task_tombstones_expire ON task_tombstones (expire_us);
