-- Trawl's queries, SQLite dialect (see queries.py for the format, store/core.py for the
-- algorithm that runs them). Parameters are numbered (?1...) in the same order as the
-- PostgreSQL file's; a list parameter arrives as JSON text (read with json_each), a
-- time as RFC 3339 text. Lease and retry times are epoch seconds on the database clock
-- ((julianday('now') - 2440587.5) * 86400.0, millisecond resolution, fixed for the
-- statement). "Many" statements run once per row (executemany). One writer connection
-- holds the file's write lock for every transaction, so no row locks are needed.

-- name: create_migrations
CREATE TABLE IF NOT EXISTS schema_migrations
    (version TEXT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT (datetime('now')))

-- name: migration_columns
SELECT name FROM pragma_table_info('schema_migrations')

-- name: add_migration_checksum
ALTER TABLE schema_migrations ADD COLUMN checksum TEXT

-- name: applied_migrations
SELECT version, checksum FROM schema_migrations

-- name: mark_applied
-- applied_at is given: tables made before 0.2 have no default for it.
INSERT INTO schema_migrations (version, name, checksum, applied_at)
VALUES (?1, ?2, ?3, datetime('now'))

-- name: set_checksum
-- Migrations applied before checksums were recorded are trusted as they are now.
UPDATE schema_migrations SET checksum = ?2 WHERE version = ?1 AND checksum IS NULL

-- name: job
SELECT seq, id, owner, status, created_at, started_at, finished_at, request, webhook,
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error
FROM jobs WHERE id = ?1

-- name: job_of_owner
SELECT seq, id, owner, status, created_at, started_at, finished_at, request, webhook,
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error
FROM jobs WHERE id = ?1 AND coalesce(owner, '') = ?2

-- name: lock_job_of_owner
SELECT status FROM jobs WHERE id = ?1 AND coalesce(owner, '') = ?2

-- name: job_by_key
SELECT seq, id, owner, status, created_at, started_at, finished_at, request, webhook,
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error, request_hash
FROM jobs WHERE coalesce(owner, '') = ?1 AND idempotency_key = ?2

-- name: insert_job
INSERT INTO jobs (id, owner, status, created_at, request, max_pages, per_host_limit, webhook,
                  idempotency_key, request_hash)
VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6, ?7, ?8, ?9)
ON CONFLICT (coalesce(owner, ''), idempotency_key) WHERE idempotency_key IS NOT NULL
DO NOTHING
RETURNING seq

-- name: set_discovered
UPDATE jobs SET pages_discovered = ?2 WHERE id = ?1

-- name: list_jobs
SELECT seq, id, owner, status, created_at, started_at, finished_at, request, webhook,
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error
FROM jobs
WHERE coalesce(owner, '') = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR seq < ?3)
ORDER BY seq DESC LIMIT ?4

-- name: start_job
UPDATE jobs SET status = 'running', started_at = ?2
WHERE id = ?1 AND status = 'queued' RETURNING webhook

-- name: complete_job
UPDATE jobs SET status = 'completed', finished_at = ?2
WHERE id = ?1 AND status = 'running'
  AND pages_discovered = pages_fetched + pages_failed + pages_skipped
RETURNING webhook

-- name: cancel_job
UPDATE jobs SET status = 'cancelled', finished_at = ?2
WHERE id = ?1 AND status IN ('queued', 'running') RETURNING webhook

-- name: fail_job
UPDATE jobs SET status = 'failed', finished_at = ?2, error = ?3
WHERE id = ?1 AND status IN ('queued', 'running') RETURNING webhook

-- name: complete_job_directly
-- A job whose work ran outside the frontier (a map) completes with its own counts.
UPDATE jobs SET status = 'completed', started_at = coalesce(started_at, ?2),
    finished_at = ?3, pages_discovered = ?4, pages_fetched = ?5, pages_failed = ?6,
    pages_skipped = ?7
WHERE id = ?1 AND status IN ('queued', 'running') RETURNING webhook

-- name: close_frontier
-- Nothing more is claimed for a finished job; unfetched URLs stay unfetched.
UPDATE frontier SET state = 'done' WHERE job_id = ?1 AND state = 'pending'

-- name: job_requests
SELECT id, status, request FROM jobs WHERE id IN (SELECT value FROM json_each(?1))

-- name: jobs_by_id
SELECT seq, id, owner, status, created_at, started_at, finished_at, request, webhook,
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error
FROM jobs WHERE id IN (SELECT value FROM json_each(?1))

-- name: jobs_by_status
SELECT status, count(*) FROM jobs GROUP BY status

-- name: pending_count
SELECT count(*) FROM frontier WHERE state = 'pending'

-- name: recover
-- One process owns the file, so at start-up every claim is an earlier process's.
UPDATE frontier SET state = 'pending', claimed_until = NULL, claimed_by = NULL
WHERE state = 'claimed'

-- name: claim
-- CROSS JOIN pins the frontier as the outer loop, so SQLite walks the pending index in
-- (depth, id) order and stops at LIMIT; left to itself it starts from the jobs and sorts
-- every pending row (300 ms per claim at 200,000 pending URLs, 1 ms this way).
UPDATE frontier SET state = 'claimed', claimed_by = ?3,
    claimed_until = (julianday('now') - 2440587.5) * 86400.0 + ?2
WHERE id IN (
    SELECT f.id FROM frontier f CROSS JOIN jobs j ON j.id = f.job_id
    WHERE f.state = 'pending' AND f.not_before <= (julianday('now') - 2440587.5) * 86400.0
      AND j.status IN ('queued', 'running')
    ORDER BY f.depth, f.id LIMIT ?1
) RETURNING id, job_id, url, host, depth, attempts

-- name: claim_per_host
-- Per-host politeness in the claim itself: a host's claimed URLs (of active jobs; a
-- cancelled job's leftovers do not count) plus the ones handed out now stay within the
-- job's per_host_limit, else ?1. Full hosts are filtered out before the LIMIT so they
-- cannot starve other hosts; the window function ranks the rest per host.
WITH active AS (
    SELECT id, coalesce(per_host_limit, ?1) AS host_limit
    FROM jobs WHERE status IN ('queued', 'running')
),
busy AS (
    SELECT f.host, count(*) AS n FROM frontier f JOIN active a ON a.id = f.job_id
    WHERE f.state = 'claimed' GROUP BY f.host
),
candidates AS (
    SELECT f.id, f.host, f.depth, a.host_limit, coalesce(b.n, 0) AS n
    FROM frontier f JOIN active a ON a.id = f.job_id LEFT JOIN busy b ON b.host = f.host
    WHERE f.state = 'pending' AND f.not_before <= (julianday('now') - 2440587.5) * 86400.0
      AND coalesce(b.n, 0) < a.host_limit
    ORDER BY f.depth, f.id LIMIT ?2
),
ranked AS (
    SELECT id, host_limit, n + row_number() OVER (PARTITION BY host ORDER BY depth, id) AS slot
    FROM candidates
)
UPDATE frontier SET state = 'claimed', claimed_by = ?4,
    claimed_until = (julianday('now') - 2440587.5) * 86400.0 + ?3
WHERE id IN (SELECT id FROM ranked WHERE slot <= host_limit)
RETURNING id, job_id, url, host, depth, attempts

-- name: release
-- Many: (id, delay, attempts, worker). A retry's delay is fixed on the database clock;
-- a worker's release returns only its own claims.
UPDATE frontier SET state = 'pending', claimed_until = NULL, claimed_by = NULL,
    not_before = CASE WHEN ?2 > 0 THEN (julianday('now') - 2440587.5) * 86400.0 + ?2 ELSE 0 END,
    attempts = coalesce(?3, attempts)
WHERE id = ?1 AND state = 'claimed' AND (?4 IS NULL OR claimed_by = ?4)

-- name: extend_leases
UPDATE frontier SET claimed_until = (julianday('now') - 2440587.5) * 86400.0 + ?3
WHERE id IN (SELECT value FROM json_each(?1)) AND state = 'claimed' AND claimed_by = ?2

-- name: lock_jobs
-- The writer connection's transaction already holds the file's write lock.
SELECT id, status, max_pages - pages_discovered AS room FROM jobs
WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id

-- name: insert_frontier
-- Many: (job_id, url, host, depth).
INSERT OR IGNORE INTO frontier (job_id, url, host, depth) VALUES (?1, ?2, ?3, ?4)

-- name: settle
-- Many: (id, attempts).
UPDATE frontier SET state = 'done', attempts = ?2, claimed_until = NULL WHERE id = ?1

-- name: count_pages
UPDATE jobs SET pages_discovered = pages_discovered + ?2, pages_fetched = pages_fetched + ?3,
    pages_failed = pages_failed + ?4, pages_skipped = pages_skipped + ?5
WHERE id = ?1

-- name: existing_results
SELECT url FROM results WHERE job_id = ?1 AND url IN (SELECT value FROM json_each(?2))

-- name: insert_results
-- Many: (job_id, url, outcome, page).
INSERT OR IGNORE INTO results (job_id, url, outcome, page) VALUES (?1, ?2, ?3, ?4)

-- name: results
SELECT id, page FROM results WHERE job_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3

-- name: results_of
SELECT id, page FROM results WHERE job_id = ?1 AND id > ?2 AND outcome = ?4
ORDER BY id LIMIT ?3

-- name: insert_event
INSERT INTO outbox (event_id, job_id, event_type, url, payload, created_at, next_attempt)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)

-- name: due_events
SELECT id, event_id, job_id, event_type, url, payload, attempts FROM outbox
WHERE delivered_at IS NULL AND next_attempt <= ?1 ORDER BY next_attempt, id LIMIT ?2

-- name: event_delivered
UPDATE outbox SET delivered_at = ?2, attempts = attempts + 1 WHERE id = ?1

-- name: event_failed
UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt = ?3 WHERE id = ?1
