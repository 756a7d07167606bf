-- get_queue --
-- One queue's row by name.
SELECT id, config, policy FROM queues WHERE project = ? AND location = ? AND queue_id = ?

-- list_queues --
-- A page of a location's queues in id order.
SELECT config FROM queues
WHERE project = ? AND location = ? AND queue_id > ?
ORDER BY queue_id LIMIT ?

-- insert_queue --
-- A new queue.
INSERT INTO queues (project, location, queue_id, task_ttl_us, tombstone_ttl_us, config)
VALUES (?, ?, ?, ?, ?, ?)

-- update_queue --
-- Replace a queue's configuration.
UPDATE queues SET task_ttl_us = ?, tombstone_ttl_us = ?, config = ? WHERE id = ?

-- retime_tasks --
-- Recompute task expiry after the queue's task TTL changed.
UPDATE tasks SET expire_us = create_us + ? WHERE queue = ?

-- delete_queue --
-- Remove a queue row.
DELETE FROM queues WHERE id = ?

-- get_queue_tombstone --
-- When a deleted queue's name becomes free again.
SELECT expire_us FROM queue_tombstones WHERE project = ? AND location = ? AND queue_id = ?

-- put_queue_tombstone --
-- Reserve a deleted queue's name.
INSERT OR REPLACE INTO queue_tombstones (project, location, queue_id, expire_us)
VALUES (?, ?, ?, ?)

-- set_policy --
-- Store a queue's IAM policy.
UPDATE queues SET policy = ? WHERE id = ?

-- locations_in_use --
-- Locations with at least one queue of a project.
SELECT DISTINCT location FROM queues WHERE project = ? ORDER BY location

-- insert_new_task --
-- A new task, unless the queue has a task of that id or still holds the id (a tombstone that
-- ends after the last parameter, the time now).
INSERT INTO tasks (queue, task_id, kind, schedule_us, create_us, expire_us, tag,
                   dispatch_count, response_count, payload, attempts, options)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12
WHERE NOT EXISTS (SELECT 1 FROM task_tombstones WHERE queue = ?1 AND task_id = ?2 AND expire_us > ?13)
ON CONFLICT (queue, task_id) DO NOTHING

-- insert_new_task_rows --
-- insert_new_task for several rows in one statement ({rows}: a (?, ...) of its 13 parameters for
-- each); its row count says how many it inserted.
INSERT INTO tasks (queue, task_id, kind, schedule_us, create_us, expire_us, tag,
                   dispatch_count, response_count, payload, attempts, options)
SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8,
       v.column9, v.column10, v.column11, v.column12
FROM (VALUES {rows}) AS v
WHERE NOT EXISTS (SELECT 1 FROM task_tombstones t
                  WHERE t.queue = v.column1 AND t.task_id = v.column2 AND t.expire_us > v.column13)
ON CONFLICT (queue, task_id) DO NOTHING

-- get_task --
-- One live task.
SELECT task_id, kind, schedule_us, create_us, dispatch_count, response_count, payload,
       attempts, options
FROM tasks WHERE queue = ? AND task_id = ? AND expire_us > ?

-- list_tasks --
-- A page of a queue's live tasks in id order.
SELECT task_id, kind, schedule_us, create_us, dispatch_count, response_count, payload,
       attempts, options
FROM tasks WHERE queue = ? AND task_id > ? AND expire_us > ?
ORDER BY task_id LIMIT ?

-- delete_task --
-- Remove one live task.
DELETE FROM tasks WHERE queue = ? AND task_id = ? AND expire_us > ?

-- get_tombstone --
-- When a task id becomes free again.
SELECT expire_us FROM task_tombstones WHERE queue = ? AND task_id = ?

-- put_tombstone --
-- Remember a deleted or completed task id.
INSERT OR REPLACE INTO task_tombstones (queue, task_id, expire_us) VALUES (?, ?, ?)

-- put_tombstone_rows --
-- put_tombstone for several rows in one statement ({rows}: a (?, ?, ?) for each).
INSERT OR REPLACE INTO task_tombstones (queue, task_id, expire_us) VALUES {rows}

-- tombstone_all_tasks --
-- Tombstones for every task of a queue (purge).
INSERT OR REPLACE INTO task_tombstones (queue, task_id, expire_us)
SELECT queue, task_id, ? FROM tasks WHERE queue = ?

-- delete_all_tasks --
-- Remove every task of a queue.
DELETE FROM tasks WHERE queue = ?

-- delete_all_tombstones --
-- Remove every task tombstone of a queue.
DELETE FROM task_tombstones WHERE queue = ?

-- queue_stats --
-- A queue's statistics in one statement: over its live tasks (one range of the queue's index)
-- the count, earliest schedule time, attempts in flight and those of them dispatched since a
-- time; the attempts that ended since a second, and those of them that failed (attempt_seconds);
-- and the rate factor of its
-- owner's congestion control while that ownership is live (NULL when no node owns it).
SELECT count(*), min(schedule_us), count(attempt_us),
       coalesce(sum(CASE WHEN attempt_us > ? THEN 1 ELSE 0 END), 0),
       (SELECT coalesce(sum(answered), 0) FROM attempt_seconds WHERE queue = ? AND second > ?),
       (SELECT coalesce(sum(failed), 0) FROM attempt_seconds WHERE queue = ? AND second > ?),
       (SELECT throttle FROM queue_owners WHERE queue = ? AND expire_us > ?)
FROM tasks WHERE queue = ? AND expire_us > ?

-- count_answered --
-- Attempts of a queue that ended (answered, or failed without an answer) in one second, and
-- how many of them failed.
INSERT INTO attempt_seconds (queue, second, answered, failed) VALUES (?, ?, ?, ?)
ON CONFLICT (queue, second) DO UPDATE SET answered = attempt_seconds.answered + excluded.answered,
    failed = attempt_seconds.failed + excluded.failed

-- sweep_attempt_seconds --
-- Forget per-second attempt counts too old for any statistic.
DELETE FROM attempt_seconds WHERE second < ?

-- delete_attempt_seconds --
-- Forget a deleted queue's attempt counts.
DELETE FROM attempt_seconds WHERE queue = ?

-- sweep_tasks --
-- Delete tasks past their TTL, a bounded batch at a time.
DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE expire_us <= ? LIMIT ?)

-- sweep_tombstones --
-- Delete expired task tombstones, a bounded batch at a time.
DELETE FROM task_tombstones WHERE (queue, task_id) IN (
    SELECT queue, task_id FROM task_tombstones WHERE expire_us <= ? LIMIT ?)

-- sweep_queue_tombstones --
-- Free queue names whose reservation ended.
DELETE FROM queue_tombstones WHERE expire_us <= ?

-- due_tasks --
-- The queue's due live tasks, oldest schedule first.
SELECT id, task_id, kind, schedule_us, create_us, dispatch_count, response_count, payload,
       attempts, options
FROM tasks WHERE queue = ? AND schedule_us <= ? AND expire_us > ?
ORDER BY schedule_us LIMIT ?

-- due_tasks_with_tag --
-- The queue's due live tasks with one tag, oldest schedule first.
SELECT id, task_id, kind, schedule_us, create_us, dispatch_count, response_count, payload,
       attempts, options
FROM tasks WHERE queue = ? AND tag = ? AND schedule_us <= ? AND expire_us > ?
ORDER BY schedule_us LIMIT ?

-- oldest_due_tag --
-- The tag of the due task with the oldest schedule time.
SELECT tag FROM tasks WHERE queue = ? AND schedule_us <= ? AND expire_us > ?
ORDER BY schedule_us LIMIT 1

-- lease_task --
-- Lease one task until a time: one more dispatch.
UPDATE tasks SET schedule_us = ?, dispatch_count = dispatch_count + 1 WHERE id = ?

-- held_task --
-- A live task with its schedule time, to check a worker's claim on its lease.
SELECT id, task_id, kind, schedule_us, create_us, dispatch_count, response_count, payload,
       attempts, options
FROM tasks WHERE queue = ? AND task_id = ? AND expire_us > ?

-- reschedule_task --
-- Move one task to a new schedule time.
UPDATE tasks SET schedule_us = ? WHERE id = ?

-- acknowledge_task --
-- Remove a live pull task whose lease the caller holds (its schedule time is the one given).
DELETE FROM tasks WHERE queue = ? AND task_id = ? AND expire_us > ? AND kind = ? AND schedule_us = ?

-- acknowledge_task_rows --
-- acknowledge_task for several rows in one statement ({rows}: a (?, ...) of its 5 parameters
-- for each); its row count says how many tasks it removed.
DELETE FROM tasks WHERE id IN (
    SELECT t.id FROM (VALUES {rows}) AS v
    JOIN tasks t ON t.queue = v.column1 AND t.task_id = v.column2
    WHERE t.expire_us > v.column3 AND t.kind = v.column4 AND t.schedule_us = v.column5)

-- delete_task_by_id --
-- Remove one task.
DELETE FROM tasks WHERE id = ?

-- due_push_tasks --
-- Due live tasks of a queue that have no attempt in flight, oldest schedule first.
SELECT id, task_id, kind, schedule_us, create_us, dispatch_count, response_count, payload,
       attempts, options
FROM tasks WHERE queue = ? AND schedule_us <= ? AND expire_us > ? AND attempt_us IS NULL
ORDER BY schedule_us LIMIT ?

-- next_due_us --
-- The earliest schedule time of a queue's tasks without an attempt in flight, of those
-- scheduled no earlier than a time: one the claim before it shows no such task is earlier
-- than (the index is read from there, not through the attempts in flight before it).
SELECT min(schedule_us) FROM tasks
WHERE queue = ? AND schedule_us >= ? AND expire_us > ? AND attempt_us IS NULL

-- start_attempt --
-- Record an attempt as sent: its dispatch time, one more dispatch, the attempt history.
UPDATE tasks SET attempt_us = ?, dispatch_count = dispatch_count + 1, attempts = ? WHERE id = ?

-- attempt_row --
-- A task whose attempt started at a given time.
SELECT id, task_id, kind, schedule_us, create_us, dispatch_count, response_count, payload,
       attempts, options
FROM tasks WHERE queue = ? AND task_id = ? AND attempt_us = ?

-- retry_task --
-- A failed attempt: the next schedule time, counts and history; no attempt in flight.
UPDATE tasks SET schedule_us = ?, attempt_us = NULL, response_count = ?, attempts = ? WHERE id = ?

-- queue_configs --
-- Every queue's configuration.
SELECT config FROM queues

-- get_meta --
-- A server-wide value.
SELECT value FROM meta WHERE key = ?

-- add_meta --
-- A server-wide value, unless one is there already.
INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)

-- tombstone_attempted --
-- The tombstone of a task whose attempt started at a given time (before delete_attempted).
INSERT OR REPLACE INTO task_tombstones (queue, task_id, expire_us)
SELECT queue, task_id, ? FROM tasks WHERE queue = ? AND task_id = ? AND attempt_us = ?

-- delete_attempted --
-- Remove a task whose attempt started at a given time (it succeeded or ran out of retries).
DELETE FROM tasks WHERE queue = ? AND task_id = ? AND attempt_us = ?

-- get_owner --
-- Who owns a queue's dispatch, and until when.
SELECT node, expire_us FROM queue_owners WHERE queue = ?

-- put_owner --
-- Take or renew a queue's dispatch ownership, with the owner's congestion rate factor.
INSERT OR REPLACE INTO queue_owners (queue, node, expire_us, throttle) VALUES (?, ?, ?, ?)

-- release_owner --
-- Give a queue's dispatch up (a node stopping cleanly).
DELETE FROM queue_owners WHERE queue = ? AND node = ?

-- recover_queue_attempts --
-- A new owner sends again every attempt the previous owner left in flight.
UPDATE tasks SET attempt_us = NULL WHERE queue = ? AND attempt_us IS NOT NULL

-- get_lease_bucket --
-- A queue's LeaseTasks token bucket.
SELECT tokens, updated_us FROM lease_buckets WHERE queue = ?

-- put_lease_bucket --
-- Store a queue's LeaseTasks token bucket.
INSERT OR REPLACE INTO lease_buckets (queue, tokens, updated_us) VALUES (?, ?, ?)

-- put_meta --
-- Set a server-wide value.
INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)

-- begin_operation --
-- A started operation, unless a live one of that name is kept (one past its keeping time but
-- not swept yet is replaced).
INSERT INTO operations (name, body, expire_us) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET body = excluded.body, expire_us = excluded.expire_us
WHERE operations.expire_us <= ?

-- end_operation --
-- The finished form of a started operation.
UPDATE operations SET body = ?, expire_us = ? WHERE name = ?

-- forget_operation --
-- An operation that failed as a whole.
DELETE FROM operations WHERE name = ?

-- get_operation --
-- A kept operation.
SELECT body FROM operations WHERE name = ? AND expire_us > ?

-- sweep_operations --
-- Forget operations past their keeping time.
DELETE FROM operations WHERE expire_us <= ?
