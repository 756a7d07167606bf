-- tasksd on PostgreSQL: the SQLite schema's tables, with PostgreSQL's types. Times are
-- microseconds since the epoch (BIGINT), configurations and payloads encoded bytes.
CREATE TABLE queues (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project TEXT NOT NULL,
    location TEXT NOT NULL,
    queue_id TEXT NOT NULL,
    task_ttl_us BIGINT NOT NULL,
    tombstone_ttl_us BIGINT NOT NULL,
    config BYTEA NOT NULL,
    policy BYTEA,
    UNIQUE (project, location, queue_id)
);

CREATE TABLE queue_tombstones (
    project TEXT NOT NULL,
    location TEXT NOT NULL,
    queue_id TEXT NOT NULL,
    expire_us BIGINT NOT NULL,
    PRIMARY KEY (project, location, queue_id)
);

CREATE TABLE tasks (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue BIGINT NOT NULL,
    task_id TEXT NOT NULL,
    kind SMALLINT NOT NULL,
    schedule_us BIGINT NOT NULL,
    create_us BIGINT NOT NULL,
    expire_us BIGINT NOT NULL,
    tag TEXT,
    dispatch_count INTEGER NOT NULL DEFAULT 0,
    response_count INTEGER NOT NULL DEFAULT 0,
    payload BYTEA NOT NULL,
    attempts BYTEA,
    options BYTEA,
    attempt_us BIGINT,
    UNIQUE (queue, task_id)
);
CREATE INDEX tasks_due ON tasks (queue, schedule_us);
CREATE INDEX tasks_tag_due ON tasks (queue, tag, schedule_us) WHERE tag IS NOT NULL;
CREATE INDEX tasks_expire ON tasks (expire_us);
CREATE INDEX tasks_in_flight ON tasks (attempt_us) WHERE attempt_us IS NOT NULL;

CREATE TABLE task_tombstones (
    queue BIGINT NOT NULL,
    task_id TEXT NOT NULL,
    expire_us BIGINT NOT NULL,
    PRIMARY KEY (queue, task_id)
);
CREATE INDEX task_tombstones_expire ON task_tombstones (expire_us);

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
