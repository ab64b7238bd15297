-- Trawl's queries, PostgreSQL dialect (see queries.py for the format, store/core.py for
-- the algorithm that runs them). Parameters are positional ($1...) in the same order as
-- the SQLite file's. Times of leases and retries are epoch seconds on the database
-- clock, fixed for the statement: one clock for every process, usable in index
-- conditions. "Many" statements (run with execute_many) take one array per column.

-- name: create_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: migration_columns
SELECT column_name FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = 'schema_migrations'

-- name: add_migration_checksum
ALTER TABLE schema_migrations ADD COLUMN checksum text

-- name: applied_migrations
SELECT version, checksum FROM schema_migrations

-- name: mark_applied
INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)

-- name: set_checksum
-- Migrations applied before checksums were recorded are trusted as they are now.
UPDATE schema_migrations SET checksum = $2 WHERE version = $1 AND checksum IS NULL

-- name: job
SELECT seq, id, owner, status, created_at, started_at, finished_at, request, webhook,
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error
FROM jobs WHERE id = $1

-- name: job_of_owner
SELECT seq, id, owner, status, created_at, started_at, finished_at, request, webhook,
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error
FROM jobs WHERE id = $1 AND coalesce(owner, '') = $2

-- name: lock_job_of_owner
SELECT status FROM jobs WHERE id = $1 AND coalesce(owner, '') = $2 FOR UPDATE

-- name: job_by_key
SELECT seq, id, owner, status, created_at, started_at, finished_at, request, webhook,
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error, request_hash
FROM jobs WHERE coalesce(owner, '') = $1 AND idempotency_key = $2

-- name: insert_job
-- Two processes may insert the same idempotency key at once: the loser inserts nothing
-- (no row returned) and replays the winner's job.
INSERT INTO jobs (id, owner, status, created_at, request, max_pages, per_host_limit, webhook,
                  idempotency_key, request_hash)
VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT ((coalesce(owner, '')), idempotency_key) WHERE idempotency_key IS NOT NULL
DO NOTHING
RETURNING seq

-- name: set_discovered
UPDATE jobs SET pages_discovered = $2 WHERE id = $1

-- name: list_jobs
SELECT seq, id, owner, status, created_at, started_at, finished_at, request, webhook,
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error
FROM jobs
WHERE coalesce(owner, '') = $1 AND ($2::text IS NULL OR status = $2)
  AND ($3::bigint IS NULL OR seq < $3)
ORDER BY seq DESC LIMIT $4

-- name: start_job
UPDATE jobs SET status = 'running', started_at = $2
WHERE id = $1 AND status = 'queued' RETURNING webhook

-- name: complete_job
UPDATE jobs SET status = 'completed', finished_at = $2
WHERE id = $1 AND status = 'running'
  AND pages_discovered = pages_fetched + pages_failed + pages_skipped
RETURNING webhook

-- name: cancel_job
UPDATE jobs SET status = 'cancelled', finished_at = $2
WHERE id = $1 AND status IN ('queued', 'running') RETURNING webhook

-- name: fail_job
UPDATE jobs SET status = 'failed', finished_at = $2, error = $3
WHERE id = $1 AND status IN ('queued', 'running') RETURNING webhook

-- name: complete_job_directly
-- A job whose work ran outside the frontier (a map) completes with its own counts.
UPDATE jobs SET status = 'completed', started_at = coalesce(started_at, $2),
    finished_at = $3, pages_discovered = $4, pages_fetched = $5, pages_failed = $6,
    pages_skipped = $7
WHERE id = $1 AND status IN ('queued', 'running') RETURNING webhook

-- name: close_frontier
-- Nothing more is claimed for a finished job; rows a claim holds right now are skipped
-- (never waited for: the claim may be waiting for this job's row), and claim ignores
-- rows of finished jobs anyway.
UPDATE frontier SET state = 'done'
WHERE id IN (SELECT id FROM frontier WHERE job_id = $1 AND state = 'pending'
             FOR UPDATE SKIP LOCKED)

-- name: job_requests
SELECT id, status, request FROM jobs WHERE id = ANY($1::text[])

-- name: jobs_by_id
SELECT seq, id, owner, status, created_at, started_at, finished_at, request, webhook,
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error
FROM jobs WHERE id = ANY($1::text[])

-- name: jobs_by_status
SELECT status, count(*) FROM jobs GROUP BY status

-- name: pending_count
SELECT count(*) FROM frontier WHERE state = 'pending'

-- name: recover
-- Claims whose lease ran out (their worker died or stalled) go back to pending; live
-- claims belong to running workers. Rows a slow worker is recording right now are
-- skipped, not waited for.
UPDATE frontier SET state = 'pending', claimed_until = NULL, claimed_by = NULL
WHERE id IN (SELECT id FROM frontier
             WHERE state = 'claimed'
               AND claimed_until < extract(epoch FROM statement_timestamp())::double precision
             FOR UPDATE SKIP LOCKED)

-- name: claim
WITH picked AS (
    SELECT f.id FROM frontier f JOIN jobs j ON j.id = f.job_id
    WHERE f.state = 'pending'
      AND f.not_before <= extract(epoch FROM statement_timestamp())::double precision
      AND j.status IN ('queued', 'running')
    ORDER BY f.depth, f.id LIMIT $1
    FOR UPDATE OF f SKIP LOCKED
)
UPDATE frontier f SET state = 'claimed', claimed_by = $3,
    claimed_until = extract(epoch FROM statement_timestamp())::double precision + $2
FROM picked WHERE f.id = picked.id
RETURNING f.id, f.job_id, f.url, f.host, f.depth, f.attempts

-- name: claim_per_host
-- As claim, within per-host limits: live claims of active jobs per host, from every
-- worker, plus this batch's rank within its host, stay at or under the job's
-- per_host_limit (else $1). Run under the claim lock: claimers must see each other's
-- claims. The frontier is walked host by host (distinct pending hosts by a loose index
-- scan, then each host's first rows by frontier_pending_host) so a full host with a huge
-- backlog costs nothing; the winners are then taken in global (depth, id) order. Only
-- the chosen rows are locked, so the rest stay claimable.
WITH RECURSIVE hosts (host) AS (
    (SELECT host FROM frontier WHERE state = 'pending' ORDER BY host LIMIT 1)
    UNION ALL
    SELECT (SELECT f.host FROM frontier f WHERE f.state = 'pending' AND f.host > h.host
            ORDER BY f.host LIMIT 1)
    FROM hosts h WHERE h.host IS NOT NULL
),
active AS (
    SELECT id, coalesce(per_host_limit, $1) AS host_limit
    FROM jobs WHERE status IN ('queued', 'running')
),
busy AS (
    SELECT f.host, count(*) AS n FROM frontier f JOIN active a ON a.id = f.job_id
    WHERE f.state = 'claimed'
      AND f.claimed_until > extract(epoch FROM statement_timestamp())::double precision
    GROUP BY f.host
),
room AS (
    SELECT h.host, coalesce(b.n, 0) AS n,
           (SELECT max(host_limit) FROM active) - coalesce(b.n, 0) AS free
    FROM hosts h LEFT JOIN busy b ON b.host = h.host
    WHERE h.host IS NOT NULL
),
candidates AS (
    SELECT c.id, c.host, c.depth, c.host_limit, r.n
    FROM (SELECT * FROM room WHERE free > 0) r
    CROSS JOIN LATERAL (
        SELECT f.id, f.host, f.depth, a.host_limit
        FROM frontier f JOIN active a ON a.id = f.job_id
        WHERE f.host = r.host AND f.state = 'pending'
          AND f.not_before <= extract(epoch FROM statement_timestamp())::double precision
        ORDER BY f.depth, f.id LIMIT least(r.free, $2)
    ) c
),
ranked AS (
    SELECT id, depth, host_limit,
           n + row_number() OVER (PARTITION BY host ORDER BY depth, id) AS slot
    FROM candidates
),
chosen AS (
    SELECT id FROM ranked WHERE slot <= host_limit ORDER BY depth, id LIMIT $2
),
picked AS (
    SELECT f.id FROM frontier f JOIN chosen c ON c.id = f.id
    WHERE f.state = 'pending'
    FOR UPDATE OF f SKIP LOCKED
)
UPDATE frontier f SET state = 'claimed', claimed_by = $4,
    claimed_until = extract(epoch FROM statement_timestamp())::double precision + $3
FROM picked WHERE f.id = picked.id
RETURNING f.id, f.job_id, f.url, f.host, f.depth, f.attempts

-- name: release
-- Many: (id, delay, attempts, worker). A retry's not_before arrives as a delay and is
-- fixed on the database clock; a worker's release returns only its own claims.
UPDATE frontier f SET state = 'pending', claimed_until = NULL, claimed_by = NULL,
    not_before = CASE
        WHEN r.delay > 0
        THEN extract(epoch FROM statement_timestamp())::double precision + r.delay
        ELSE 0 END,
    attempts = coalesce(r.attempts, f.attempts)
FROM unnest($1::bigint[], $2::double precision[], $3::integer[], $4::text[])
    AS r (id, delay, attempts, worker)
WHERE f.id = r.id AND f.state = 'claimed' AND (r.worker IS NULL OR f.claimed_by = r.worker)

-- name: extend_leases
UPDATE frontier
SET claimed_until = extract(epoch FROM statement_timestamp())::double precision + $3
WHERE id = ANY($1::bigint[]) AND state = 'claimed' AND claimed_by = $2

-- name: lock_jobs
-- Lock order: job rows before frontier rows everywhere, jobs in id order (two writers
-- cannot deadlock). This serialises a job's counters, max_pages room and completion.
SELECT id, status, max_pages - pages_discovered AS room FROM jobs
WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE

-- name: insert_frontier
-- Many: (job_id, url, host, depth); ids follow the given order (breadth-first claims).
INSERT INTO frontier (job_id, url, host, depth)
SELECT l.job_id, l.url, l.host, l.depth
FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[]) WITH ORDINALITY
    AS l (job_id, url, host, depth, n)
ORDER BY l.n
ON CONFLICT (job_id, url) DO NOTHING

-- name: settle
-- Many: (id, attempts).
UPDATE frontier f SET state = 'done', attempts = r.attempts, claimed_until = NULL
FROM unnest($1::bigint[], $2::integer[]) AS r (id, attempts)
WHERE f.id = r.id

-- name: count_pages
UPDATE jobs SET pages_discovered = pages_discovered + $2, pages_fetched = pages_fetched + $3,
    pages_failed = pages_failed + $4, pages_skipped = pages_skipped + $5
WHERE id = $1

-- name: existing_results
SELECT url FROM results WHERE job_id = $1 AND url = ANY($2::text[])

-- name: insert_results
-- Many: (job_id, url, outcome, page). Inserted under the job's row lock, so a job's
-- result ids grow in commit order and cursors never skip a row.
INSERT INTO results (job_id, url, outcome, page)
SELECT r.job_id, r.url, r.outcome, r.page
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY
    AS r (job_id, url, outcome, page, n)
ORDER BY r.n
ON CONFLICT (job_id, url) DO NOTHING

-- name: results
SELECT id, page FROM results WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3

-- name: results_of
SELECT id, page FROM results WHERE job_id = $1 AND id > $2 AND outcome = $4
ORDER BY id LIMIT $3

-- name: insert_event
INSERT INTO outbox (event_id, job_id, event_type, url, payload, created_at, next_attempt)
VALUES ($1, $2, $3, $4, $5, $6, $6)

-- name: due_events
SELECT id, event_id, job_id, event_type, url, payload, attempts FROM outbox
WHERE delivered_at IS NULL AND next_attempt <= $1 ORDER BY next_attempt, id LIMIT $2

-- name: event_delivered
UPDATE outbox SET delivered_at = $2, attempts = attempts + 1 WHERE id = $1

-- name: event_failed
UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt = $3 WHERE id = $1
