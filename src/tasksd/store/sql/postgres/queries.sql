-- PostgreSQL forms of the queries in ../sqlite/queries.sql, block for block: %s placeholders,
-- ON CONFLICT upserts, and FOR UPDATE SKIP LOCKED where tasks are claimed or leased, so that
-- several tasksd processes on one database never take the same task. A block NAME_many is
-- NAME for many rows in one statement, as if NAME ran for each row in turn: it takes one
-- array (%b: binary) per parameter of NAME, in the same order (Db.run_many).

-- get_queue --
-- One queue's row by name.
SELECT id, config, policy FROM queues WHERE project = %s AND location = %s AND queue_id = %s

-- lock_queue --
-- Lock a queue's row before writing it, to check it is still the row read (store/writer.py).
SELECT config, policy FROM queues WHERE id = %s FOR UPDATE

-- list_queues --
-- A page of a location's queues in id order.
SELECT config FROM queues
WHERE project = %s AND location = %s AND queue_id > %s
ORDER BY queue_id LIMIT %s

-- insert_queue --
-- A new queue.
INSERT INTO queues (project, location, queue_id, task_ttl_us, tombstone_ttl_us, config)
VALUES (%s, %s, %s, %s, %s, %s)

-- update_queue --
-- Replace a queue's configuration.
UPDATE queues SET task_ttl_us = %s, tombstone_ttl_us = %s, config = %s WHERE id = %s

-- retime_tasks --
-- Recompute task expiry after the queue's task TTL changed.
UPDATE tasks SET expire_us = create_us + %s WHERE queue = %s

-- delete_queue --
-- Remove a queue row.
DELETE FROM queues WHERE id = %s

-- get_queue_tombstone --
-- When a deleted queue's name becomes free again.
SELECT expire_us FROM queue_tombstones WHERE project = %s AND location = %s AND queue_id = %s

-- put_queue_tombstone --
-- Reserve a deleted queue's name.
INSERT INTO queue_tombstones (project, location, queue_id, expire_us)
VALUES (%s, %s, %s, %s)
ON CONFLICT (project, location, queue_id) DO UPDATE SET expire_us = EXCLUDED.expire_us

-- set_policy --
-- Store a queue's IAM policy.
UPDATE queues SET policy = %s WHERE id = %s

-- locations_in_use --
-- Locations with at least one queue of a project.
SELECT DISTINCT location FROM queues WHERE project = %s ORDER BY location

-- insert_new_task --
-- A new task, unless the queue has a task of that id or still holds the id (a tombstone that
-- ends after the last parameter, the time now).
WITH v AS (
    SELECT %s::bigint AS queue, %s::text AS task_id, %s::smallint AS kind, %s::bigint AS schedule_us,
           %s::bigint AS create_us, %s::bigint AS expire_us, %s::text AS tag,
           %s::integer AS dispatch_count, %s::integer AS response_count, %s::bytea AS payload,
           %s::bytea AS attempts, %s::bytea AS options, %s::bigint AS now_us
)
INSERT INTO tasks (queue, task_id, kind, schedule_us, create_us, expire_us, tag,
                   dispatch_count, response_count, payload, attempts, options)
SELECT queue, task_id, kind, schedule_us, create_us, expire_us, tag,
       dispatch_count, response_count, payload, attempts, options
FROM v
WHERE NOT EXISTS (SELECT 1 FROM task_tombstones t
                  WHERE t.queue = v.queue AND t.task_id = v.task_id AND t.expire_us > v.now_us)
ON CONFLICT (queue, task_id) DO NOTHING

-- insert_new_task_many --
-- insert_new_task for many rows: the positions (from 1) of those inserted; of rows with the
-- same id the first one is.
WITH u AS (
    SELECT * FROM unnest(%b::bigint[], %b::text[], %b::smallint[], %b::bigint[], %b::bigint[],
                         %b::bigint[], %b::text[], %b::integer[], %b::integer[], %b::bytea[],
                         %b::bytea[], %b::bytea[], %b::bigint[])
        WITH ORDINALITY AS u(queue, task_id, kind, schedule_us, create_us, expire_us, tag,
                             dispatch_count, response_count, payload, attempts, options, now_us,
                             position)
), inserted AS (
    INSERT INTO tasks (queue, task_id, kind, schedule_us, create_us, expire_us, tag,
                       dispatch_count, response_count, payload, attempts, options)
    SELECT queue, task_id, kind, schedule_us, create_us, expire_us, tag,
           dispatch_count, response_count, payload, attempts, options
    FROM u
    WHERE NOT EXISTS (SELECT 1 FROM task_tombstones t
                      WHERE t.queue = u.queue AND t.task_id = u.task_id AND t.expire_us > u.now_us)
    ORDER BY position
    ON CONFLICT (queue, task_id) DO NOTHING
    RETURNING queue, task_id
)
SELECT min(u.position) FROM inserted JOIN u USING (queue, task_id) GROUP BY queue, task_id

-- get_task --
-- One live task.
SELECT task_id, kind, schedule_us, create_us, dispatch_count, response_count, payload,
       attempts, options
FROM tasks WHERE queue = %s AND task_id = %s AND expire_us > %s

-- list_tasks --
-- A page of a queue's live tasks in id order.
SELECT task_id, kind, schedule_us, create_us, dispatch_count, response_count, payload,
       attempts, options
FROM tasks WHERE queue = %s AND task_id > %s AND expire_us > %s
ORDER BY task_id LIMIT %s

-- delete_task --
-- Remove one live task.
DELETE FROM tasks WHERE queue = %s AND task_id = %s AND expire_us > %s

-- get_tombstone --
-- When a task id becomes free again.
SELECT expire_us FROM task_tombstones WHERE queue = %s AND task_id = %s

-- put_tombstone --
-- Remember a deleted or completed task id.
INSERT INTO task_tombstones (queue, task_id, expire_us) VALUES (%s, %s, %s)
ON CONFLICT (queue, task_id) DO UPDATE SET expire_us = EXCLUDED.expire_us

-- put_tombstone_many --
-- put_tombstone for many rows; of rows with the same id the last one counts.
INSERT INTO task_tombstones (queue, task_id, expire_us)
SELECT DISTINCT ON (queue, task_id) queue, task_id, expire_us
FROM unnest(%b::bigint[], %b::text[], %b::bigint[]) WITH ORDINALITY AS u(queue, task_id, expire_us, position)
ORDER BY queue, task_id, position DESC
ON CONFLICT (queue, task_id) DO UPDATE SET expire_us = EXCLUDED.expire_us

-- tombstone_all_tasks --
-- Tombstones for every task of a queue (purge).
INSERT INTO task_tombstones (queue, task_id, expire_us)
SELECT queue, task_id, %s FROM tasks WHERE queue = %s
ON CONFLICT (queue, task_id) DO UPDATE SET expire_us = EXCLUDED.expire_us

-- delete_all_tasks --
-- Remove every task of a queue.
DELETE FROM tasks WHERE queue = %s

-- delete_all_tombstones --
-- Remove every task tombstone of a queue.
DELETE FROM task_tombstones WHERE queue = %s

-- queue_stats --
-- A queue's statistics in one statement: over its live tasks (one range of the queue's index)
-- the count, earliest schedule time, attempts in flight and those of them dispatched since a
-- time; the attempts that ended since a second, and those of them that failed (attempt_seconds);
-- and the rate factor of its
-- owner's congestion control while that ownership is live (NULL when no node owns it).
SELECT count(*), min(schedule_us), count(attempt_us),
       coalesce(sum(CASE WHEN attempt_us > %s THEN 1 ELSE 0 END), 0),
       (SELECT coalesce(sum(answered), 0) FROM attempt_seconds WHERE queue = %s AND second > %s),
       (SELECT coalesce(sum(failed), 0) FROM attempt_seconds WHERE queue = %s AND second > %s),
       (SELECT throttle FROM queue_owners WHERE queue = %s AND expire_us > %s)
FROM tasks WHERE queue = %s AND expire_us > %s

-- count_answered --
-- Attempts of a queue that ended (answered, or failed without an answer) in one second, and
-- how many of them failed: a row of their own (statistics add up the rows of a second), so
-- that transactions counting the same seconds never wait for each other.
INSERT INTO attempt_seconds (queue, second, answered, failed) VALUES (%s, %s, %s, %s)

-- count_answered_many --
-- count_answered for many rows.
INSERT INTO attempt_seconds (queue, second, answered, failed)
SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::integer[], %b::integer[])

-- sweep_attempt_seconds --
-- Forget per-second attempt counts too old for any statistic.
DELETE FROM attempt_seconds WHERE second < %s

-- delete_attempt_seconds --
-- Forget a deleted queue's attempt counts.
DELETE FROM attempt_seconds WHERE queue = %s

-- sweep_tasks --
-- Delete tasks past their TTL, a bounded batch at a time.
DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE expire_us <= %s LIMIT %s)

-- sweep_tombstones --
-- Delete expired task tombstones, a bounded batch at a time.
DELETE FROM task_tombstones WHERE (queue, task_id) IN (
    SELECT queue, task_id FROM task_tombstones WHERE expire_us <= %s LIMIT %s)

-- sweep_queue_tombstones --
-- Free queue names whose reservation ended.
DELETE FROM queue_tombstones WHERE expire_us <= %s

-- due_tasks --
-- The queue's due live tasks, oldest schedule first.
SELECT id, task_id, kind, schedule_us, create_us, dispatch_count, response_count, payload,
       attempts, options
FROM tasks WHERE queue = %s AND schedule_us <= %s AND expire_us > %s
ORDER BY schedule_us LIMIT %s
FOR UPDATE SKIP LOCKED

-- due_tasks_with_tag --
-- The queue's due live tasks with one tag, oldest schedule first.
SELECT id, task_id, kind, schedule_us, create_us, dispatch_count, response_count, payload,
       attempts, options
FROM tasks WHERE queue = %s AND tag = %s AND schedule_us <= %s AND expire_us > %s
ORDER BY schedule_us LIMIT %s
FOR UPDATE SKIP LOCKED

-- oldest_due_tag --
-- The tag of the due task with the oldest schedule time.
SELECT tag FROM tasks WHERE queue = %s AND schedule_us <= %s AND expire_us > %s
ORDER BY schedule_us LIMIT 1

-- lease_task --
-- Lease one task until a time: one more dispatch.
UPDATE tasks SET schedule_us = %s, dispatch_count = dispatch_count + 1 WHERE id = %s

-- lease_task_many --
-- lease_task for many rows (of distinct tasks).
UPDATE tasks SET schedule_us = u.schedule_us, dispatch_count = dispatch_count + 1
FROM unnest(%b::bigint[], %b::bigint[]) AS u(schedule_us, id)
WHERE tasks.id = u.id

-- held_task --
-- A live task with its schedule time, to check a worker's claim on its lease.
SELECT id, task_id, kind, schedule_us, create_us, dispatch_count, response_count, payload,
       attempts, options
FROM tasks WHERE queue = %s AND task_id = %s AND expire_us > %s

-- reschedule_task --
-- Move one task to a new schedule time.
UPDATE tasks SET schedule_us = %s WHERE id = %s

-- acknowledge_task --
-- Remove a live pull task whose lease the caller holds (its schedule time is the one given).
DELETE FROM tasks WHERE queue = %s AND task_id = %s AND expire_us > %s AND kind = %s AND schedule_us = %s

-- acknowledge_task_many --
-- acknowledge_task for many rows: the positions (from 1) of those that removed their task.
-- Each row is found by its id (the unique index): the tasks of one lease share their schedule
-- time, so looking them up by it (tasks_due) would read every task of the lease for each.
DELETE FROM tasks t
USING unnest(%b::bigint[], %b::text[], %b::bigint[], %b::smallint[], %b::bigint[])
      WITH ORDINALITY AS u(queue, task_id, now_us, kind, schedule_us, position)
WHERE t.queue = u.queue AND t.task_id = u.task_id AND t.expire_us > u.now_us AND t.kind = u.kind
  AND t.schedule_us - u.schedule_us = 0
RETURNING u.position

-- delete_task_by_id --
-- Remove one task.
DELETE FROM tasks WHERE id = %s

-- due_push_tasks --
-- Due live tasks of a queue that have no attempt in flight, oldest schedule first.
SELECT id, task_id, kind, schedule_us, create_us, dispatch_count, response_count, payload,
       attempts, options
FROM tasks WHERE queue = %s AND schedule_us <= %s AND expire_us > %s AND attempt_us IS NULL
ORDER BY schedule_us LIMIT %s
FOR UPDATE SKIP LOCKED

-- next_due_us --
-- The earliest schedule time of a queue's tasks without an attempt in flight, of those
-- scheduled no earlier than a time: one the claim before it shows no such task is earlier
-- than (the index is read from there, not through the attempts in flight before it).
SELECT min(schedule_us) FROM tasks
WHERE queue = %s AND schedule_us >= %s AND expire_us > %s AND attempt_us IS NULL

-- start_attempt --
-- Record an attempt as sent: its dispatch time, one more dispatch, the attempt history.
UPDATE tasks SET attempt_us = %s, dispatch_count = dispatch_count + 1, attempts = %s WHERE id = %s

-- start_attempt_many --
-- start_attempt for many rows (of distinct tasks).
UPDATE tasks SET attempt_us = u.attempt_us, dispatch_count = dispatch_count + 1, attempts = u.attempts
FROM unnest(%b::bigint[], %b::bytea[], %b::bigint[]) AS u(attempt_us, attempts, id)
WHERE tasks.id = u.id

-- attempt_row --
-- A task whose attempt started at a given time.
SELECT id, task_id, kind, schedule_us, create_us, dispatch_count, response_count, payload,
       attempts, options
FROM tasks WHERE queue = %s AND task_id = %s AND attempt_us = %s

-- retry_task --
-- A failed attempt: the next schedule time, counts and history; no attempt in flight.
UPDATE tasks SET schedule_us = %s, attempt_us = NULL, response_count = %s, attempts = %s WHERE id = %s


-- queue_configs --
-- Every queue's configuration.
SELECT config FROM queues

-- get_meta --
-- A server-wide value.
SELECT value FROM meta WHERE key = %s

-- add_meta --
-- A server-wide value, unless one is there already.
INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING

-- end_attempted --
-- A task whose attempt started at a given time ends (it succeeded or ran out of retries): it is
-- removed and its tombstone kept, in one statement (only a task still in that attempt).
WITH ended AS (
    DELETE FROM tasks WHERE queue = %s AND task_id = %s AND attempt_us = %s RETURNING queue, task_id
)
INSERT INTO task_tombstones (queue, task_id, expire_us) SELECT queue, task_id, %s FROM ended
ON CONFLICT (queue, task_id) DO UPDATE SET expire_us = EXCLUDED.expire_us

-- end_attempted_many --
-- end_attempted for many rows; of equal rows the first counts. Rows are found by id, as in
-- acknowledge_task_many (the tasks of one claim share their attempt time).
WITH u AS (
    SELECT DISTINCT ON (queue, task_id, attempt_us) *
    FROM unnest(%b::bigint[], %b::text[], %b::bigint[], %b::bigint[])
         WITH ORDINALITY AS u(queue, task_id, attempt_us, expire_us, position)
    ORDER BY queue, task_id, attempt_us, position
), ended AS (
    DELETE FROM tasks t USING u
    WHERE t.queue = u.queue AND t.task_id = u.task_id AND t.attempt_us - u.attempt_us = 0
    RETURNING t.queue, t.task_id, u.expire_us
)
INSERT INTO task_tombstones (queue, task_id, expire_us) SELECT queue, task_id, expire_us FROM ended
ON CONFLICT (queue, task_id) DO UPDATE SET expire_us = EXCLUDED.expire_us

-- get_owner --
-- Who owns a queue's dispatch, and until when (locked while it is decided).
SELECT node, expire_us FROM queue_owners WHERE queue = %s FOR UPDATE

-- put_owner --
-- Take or renew a queue's dispatch ownership, with the owner's congestion rate factor.
INSERT INTO queue_owners (queue, node, expire_us, throttle) VALUES (%s, %s, %s, %s)
ON CONFLICT (queue) DO UPDATE SET node = EXCLUDED.node, expire_us = EXCLUDED.expire_us,
                                  throttle = EXCLUDED.throttle

-- release_owner --
-- Give a queue's dispatch up (a node stopping cleanly).
DELETE FROM queue_owners WHERE queue = %s AND node = %s

-- recover_queue_attempts --
-- A new owner sends again every attempt the previous owner left in flight.
UPDATE tasks SET attempt_us = NULL WHERE queue = %s AND attempt_us IS NOT NULL

-- get_lease_bucket --
-- A queue's LeaseTasks token bucket.
SELECT tokens, updated_us FROM lease_buckets WHERE queue = %s FOR UPDATE

-- put_lease_bucket --
-- Store a queue's LeaseTasks token bucket.
INSERT INTO lease_buckets (queue, tokens, updated_us) VALUES (%s, %s, %s)
ON CONFLICT (queue) DO UPDATE SET tokens = EXCLUDED.tokens, updated_us = EXCLUDED.updated_us

-- put_meta --
-- Set a server-wide value.
INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value

-- begin_operation --
-- A started operation, unless a live one of that name is kept (one past its keeping time but
-- not swept yet is replaced).
INSERT INTO operations (name, body, expire_us) VALUES (%s, %s, %s)
ON CONFLICT (name) DO UPDATE SET body = excluded.body, expire_us = excluded.expire_us
WHERE operations.expire_us <= %s

-- end_operation --
-- The finished form of a started operation.
UPDATE operations SET body = %s, expire_us = %s WHERE name = %s

-- forget_operation --
-- An operation that failed as a whole.
DELETE FROM operations WHERE name = %s

-- get_operation --
-- A kept operation.
SELECT body FROM operations WHERE name = %s AND expire_us > %s

-- sweep_operations --
-- Forget operations past their keeping time.
DELETE FROM operations WHERE expire_us <= %s
