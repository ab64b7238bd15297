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
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error,
       recrawl_of, changes_new, changes_changed, changes_unchanged, changes_removed
FROM jobs WHERE id = ?1

-- name: job_of_owner
SELECT seq, id, owner, status, created_at, started_at, finished_at, request, webhook,
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error,
       recrawl_of, changes_new, changes_changed, changes_unchanged, changes_removed
FROM jobs WHERE id = ?1 AND coalesce(owner, '') = ?2

-- name: lock_job_of_owner
SELECT status FROM jobs WHERE id = ?1 AND coalesce(owner, '') = ?2

-- name: job_by_key
SELECT seq, id, owner, status, created_at, started_at, finished_at, request, webhook,
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error,
       recrawl_of, changes_new, changes_changed, changes_unchanged, changes_removed, request_hash
FROM jobs WHERE coalesce(owner, '') = ?1 AND idempotency_key = ?2

-- name: insert_job
INSERT INTO jobs (id, owner, status, created_at, request, max_pages, per_host_limit, webhook,
                  idempotency_key, request_hash, per_host_delay, weight, retention,
                  spec, spec_version, recrawl_of)
VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
ON CONFLICT (coalesce(owner, ''), idempotency_key) WHERE idempotency_key IS NOT NULL
DO NOTHING
RETURNING seq

-- name: high_jobs
-- A key's active jobs running at "high" weight (their number is capped per key).
SELECT count(*) FROM jobs
WHERE coalesce(owner, '') = ?1 AND weight > 1 AND status IN ('queued', 'running')
-- name: set_discovered
UPDATE jobs SET pages_discovered = ?2 WHERE id = ?1

-- name: list_jobs
SELECT seq, id, owner, status, created_at, started_at, finished_at, request, webhook,
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error,
       recrawl_of, changes_new, changes_changed, changes_unchanged, changes_removed
FROM jobs
WHERE coalesce(owner, '') = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR seq < ?3)
ORDER BY seq DESC LIMIT ?4

-- name: start_job
UPDATE jobs SET status = 'running', started_at = ?2
WHERE id = ?1 AND status = 'queued' RETURNING webhook

-- name: complete_job
-- Not while a page found again at a smaller depth is being fetched again (refetching).
UPDATE jobs SET status = 'completed', finished_at = ?2
WHERE id = ?1 AND status = 'running' AND refetching = 0
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
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error,
       recrawl_of, changes_new, changes_changed, changes_unchanged, changes_removed
FROM jobs WHERE id IN (SELECT value FROM json_each(?1))

-- name: job_specs
SELECT id, status, request, spec, spec_version, widened_hosts, sitemap_origins
FROM jobs WHERE id IN (SELECT value FROM json_each(?1))

-- name: jobs_by_status
SELECT status, count(*) FROM jobs GROUP BY status

-- name: pending_count
SELECT count(*) FROM frontier WHERE state = 'pending'

-- name: recover
-- One process owns the file, so at start-up every claim is an earlier process's. The
-- hosts of what comes back are queued again (and unparked) by the caller.
UPDATE frontier SET state = 'pending', claimed_until = NULL, claimed_by = NULL
WHERE state = 'claimed'
RETURNING host
-- name: ready_hosts
-- The host-aware claim, step 1 (store/frontier.py): hosts whose turn came, oldest turn
-- first, by hosts_ready. ?2 is PARKED (1e12) when parked hosts count too (a claim without
-- a per-host limit), else above it; ?3 seconds early (see PostgreSQL's). With each host,
-- the seconds until its turn.
SELECT host, delay, queued,
       CASE WHEN next_at >= 1e12 THEN 0
            ELSE max(0, next_at - (julianday('now') - 2440587.5) * 86400.0) END
FROM hosts
WHERE queued > 0 AND (next_at <= (julianday('now') - 2440587.5) * 86400.0 + ?3 OR next_at >= ?2)
ORDER BY next_at LIMIT ?1

-- name: lock_ready
-- Step 1b on a shared frontier only (PostgreSQL locks the ready hosts' rows here, as
-- other processes commit between a claim's statements). SQLite's one writer holds the
-- file's write lock for the whole claim, so the store does not run this; it is kept so
-- both dialects name the same queries.
SELECT host, CASE WHEN next_at >= 1e12 THEN 0
                  ELSE max(0, next_at - (julianday('now') - 2440587.5) * 86400.0) END
FROM hosts
WHERE host IN (SELECT value FROM json_each(?1))
  AND (next_at <= (julianday('now') - 2440587.5) * 86400.0 + ?3 OR next_at >= ?2)

-- name: max_host_limit
SELECT max(per_host_limit) FROM jobs WHERE status IN ('queued', 'running')

-- name: host_heads
-- Step 2: the first ?2 pending URLs of each ready host by fair-queuing tag, with the
-- host's live claims (of active jobs: a cancelled job's leftovers do not count; nor do
-- claims whose body is read, `fetched`). The
-- correlated IN subquery with LIMIT is a bounded probe of frontier_host_queue per host
-- (SQLite has no LATERAL), so a host's backlog size does not matter: 1.5 ms for 256
-- hosts at 100,000 pending URLs, warm.
WITH ready (host) AS (SELECT value FROM json_each(?1)),
room AS MATERIALIZED (
    SELECT r.host, (SELECT count(*) FROM frontier c JOIN jobs cj ON cj.id = c.job_id
                    WHERE c.host = r.host AND c.state = 'claimed' AND NOT c.fetched
                      AND cj.status IN ('queued', 'running')) AS busy
    FROM ready r
)
SELECT f.id, f.job_id, f.url, f.host, f.depth, f.attempts, j.owner, j.weight, f.tag,
       j.per_host_limit, j.per_host_delay, room.busy, j.status
FROM room JOIN frontier f ON f.id IN (
    SELECT g.id FROM frontier g
    WHERE g.host = room.host AND g.state = 'pending' AND g.not_before <= (julianday('now') - 2440587.5) * 86400.0
      AND EXISTS (SELECT 1 FROM jobs gj WHERE gj.id = g.job_id
                  AND gj.status IN ('queued', 'running'))
    ORDER BY g.tag, g.id LIMIT ?2
)
JOIN jobs j ON j.id = f.job_id
ORDER BY f.tag, f.id

-- name: key_busy
SELECT j.owner, count(*) FROM frontier f JOIN jobs j ON j.id = f.job_id
WHERE f.state = 'claimed' AND j.status IN ('queued', 'running') GROUP BY j.owner

-- name: key_share
-- Other claimers with live claims (?1 is this one) and keys with active jobs (issue 16).
SELECT (SELECT count(DISTINCT claimed_by) FROM frontier
        WHERE state = 'claimed' AND claimed_by <> ?1),
       (SELECT count(DISTINCT coalesce(owner, '')) FROM jobs
        WHERE status IN ('queued', 'running'))

-- name: take_claims
UPDATE frontier SET state = 'claimed', fetched = 0, claimed_by = ?3,
    claimed_until = (julianday('now') - 2440587.5) * 86400.0 + ?2
WHERE id IN (SELECT value FROM json_each(?1)) AND state = 'pending'
RETURNING id

-- name: turns
-- Many: (host, spacing, vtime, parked). Step 4: a visited host goes to the back of the
-- line, after the spacing it reserved (0 on a private frontier: its scheduler spaces
-- requests itself); a host now at its limit is parked until it settles.
UPDATE hosts SET next_at = CASE WHEN ?4 THEN 1e12 ELSE max(next_at, (julianday('now') - 2440587.5) * 86400.0) + ?2 END,
    vtime = max(vtime, ?3)
WHERE host = ?1

-- name: next_due
-- Per host of ?1 with nothing claimable: when its first retry is due (NULL: nothing
-- pending) and whether that is later.
SELECT h.value, min(f.not_before), min(f.not_before) > (julianday('now') - 2440587.5) * 86400.0
FROM json_each(?1) h
LEFT JOIN frontier f ON f.host = h.value AND f.state = 'pending'
    AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = f.job_id AND j.status IN ('queued', 'running'))
GROUP BY h.value

-- name: set_next_at
-- Many: (host, next_at).
UPDATE hosts SET next_at = ?2 WHERE host = ?1

-- name: unqueue_host
-- Many: (host, queued). Only if no admit or release bumped `queued` since the claim read it.
UPDATE hosts SET queued = 0 WHERE host = ?1 AND queued = ?2

-- name: queue_hosts
-- Many: (host). New or returned URLs: the host is queued again, back in line if parked.
INSERT INTO hosts (host) VALUES (?1)
ON CONFLICT (host) DO UPDATE SET queued = queued + 1,
    next_at = CASE WHEN next_at >= 1e12 THEN 0 ELSE next_at END

-- name: unpark_job
-- A finished job's claims never settle: its hosts must not stay parked.
UPDATE hosts SET next_at = 0 WHERE next_at >= 1e12
  AND host IN (SELECT DISTINCT host FROM frontier WHERE job_id = ?1 AND state = 'claimed')

-- name: mark_fetched
-- (?1 ids, ?2 their claims' attempts, ?3 worker). Claims whose body is read (see
-- PostgreSQL's); returns the rows marked.
UPDATE frontier SET fetched = 1
WHERE state = 'claimed' AND claimed_by = ?3
  AND id IN (SELECT g.id FROM json_each(?1) i JOIN json_each(?2) a ON a.key = i.key
             JOIN frontier g ON g.id = i.value AND g.attempts = a.value)
RETURNING id

-- name: hosts_settled
-- Many: (host, free_at). Settled hosts have room again: a parked one is back in line,
-- but not before free_at (shared frontier: the last request's start plus its spacing).
UPDATE hosts SET next_at = CASE WHEN next_at >= 1e12 THEN ?2 ELSE max(next_at, ?2) END
WHERE host = ?1

-- name: lock_hosts
-- Nothing to lock: the transaction holds the file's only write lock (see PostgreSQL's).
SELECT host FROM hosts WHERE host IN (SELECT value FROM json_each(?1))

-- name: host_vtimes
SELECT host, vtime FROM hosts WHERE host IN (SELECT value FROM json_each(?1))

-- name: job_finishes
SELECT host, finish FROM job_hosts
WHERE job_id = ?1 AND host IN (SELECT value FROM json_each(?2))

-- name: set_finishes
-- Many: (job_id, host, finish).
INSERT INTO job_hosts (job_id, host, finish) VALUES (?1, ?2, ?3)
ON CONFLICT (job_id, host) DO UPDATE SET finish = excluded.finish

-- name: host_delay
INSERT INTO hosts (host, delay, queued) VALUES (?1, ?2, 0)
ON CONFLICT (host) DO UPDATE SET delay = max(delay, excluded.delay)

-- name: host_defer
INSERT INTO hosts (host, next_at, queued) VALUES (?1, (julianday('now') - 2440587.5) * 86400.0 + ?2, 0)
ON CONFLICT (host) DO UPDATE SET next_at = max(next_at, excluded.next_at)

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
SELECT id, status, max_pages - pages_discovered AS room, weight, widened_hosts,
       sitemap_origins, recrawl_of
FROM jobs
WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id

-- name: insert_frontier
-- Many: (job_id, url, host, depth, tag).
INSERT OR IGNORE INTO frontier (job_id, url, host, depth, tag, url_key)
VALUES (?1, ?2, ?3, ?4, ?5, trawl_url_key(?2))

-- name: repend
-- Many: (job_id, url, depth). Shortest-path depth: a fetched page whose links were cut at
-- max_depth, found again at a smaller depth, is fetched again (links_cut = 2).
UPDATE frontier SET state = 'pending', links_cut = 2, depth = ?3
WHERE job_id = ?1 AND url_key = trawl_url_key(?2) AND url = ?2 AND depth > ?3
  AND state = 'done' AND links_cut = 1

-- name: shorten
-- Many: (job_id, url, depth). Any other known URL found at a smaller depth takes it.
UPDATE frontier SET depth = ?3
WHERE job_id = ?1 AND url_key = trawl_url_key(?2) AND url = ?2 AND depth > ?3

-- name: settle_marks
-- Of the rows a record settles: those to be fetched again and those already fetched.
SELECT id, links_cut = 2, fetched FROM frontier
WHERE id IN (SELECT value FROM json_each(?1)) AND (links_cut = 2 OR fetched)

-- name: refetches
SELECT id FROM frontier WHERE id IN (SELECT value FROM json_each(?1)) AND links_cut = 2
-- name: settle
-- Many: (id, attempts, links_cut, depth). A page whose links were cut and whose depth
-- dropped while it was in flight goes straight back to pending, to be fetched again.
UPDATE frontier SET attempts = ?2, claimed_until = NULL,
    state = CASE WHEN ?3 AND depth < ?4 THEN 'pending' ELSE 'done' END,
    links_cut = CASE WHEN ?3 AND depth < ?4 THEN 2 WHEN ?3 THEN 1 ELSE 0 END
WHERE id = ?1

-- name: set_facts
-- Under the job's row lock (lock_jobs), in the transaction recording the page that
-- taught them: every process reads the same facts from then on, restarts included.
UPDATE jobs SET widened_hosts = ?2, sitemap_origins = ?3 WHERE id = ?1

-- name: count_pages
UPDATE jobs SET pages_discovered = pages_discovered + ?2, pages_fetched = pages_fetched + ?3,
    pages_failed = pages_failed + ?4, pages_skipped = pages_skipped + ?5,
    refetching = refetching + ?6
WHERE id = ?1
-- name: existing_results
SELECT url FROM results
WHERE job_id = ?1 AND url_key IN (SELECT trawl_url_key(value) FROM json_each(?2))

-- name: insert_results
-- Many: (job_id, url, outcome, page, change, etag, last_modified, content_hash, content,
-- link_keys).
INSERT OR IGNORE INTO results (job_id, url, outcome, page, url_key, change, etag,
                               last_modified, content_hash, content, link_keys)
VALUES (?1, ?2, ?3, ?4, trawl_url_key(?2), ?5, ?6, ?7, ?8, ?9, ?10)

-- name: replace_results
-- Many: (job_id, url, page, link_keys). A page fetched again at a smaller depth replaces
-- its result (and the links followed from it: more, at that depth).
UPDATE results SET page = ?3, link_keys = ?4
WHERE job_id = ?1 AND url_key = trawl_url_key(?2) AND url = ?2 AND outcome = 'ok'
-- name: results
SELECT id, page FROM results WHERE job_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3

-- name: results_of
SELECT id, page FROM results WHERE job_id = ?1 AND id > ?2 AND outcome = ?4
ORDER BY id LIMIT ?3

-- name: results_of_change
-- A recrawl's results of one kind of change (?4), of one outcome too unless ?5 is NULL.
SELECT id, page FROM results
WHERE job_id = ?1 AND change = ?4 AND id > ?2 AND (?5 IS NULL OR outcome = ?5)
ORDER BY id LIMIT ?3

-- name: previous_pages
-- What a recrawl compares a URL with: its result in the previous job.
SELECT url, outcome, page, change, etag, last_modified, content_hash, content, link_keys
FROM results
WHERE job_id = ?1 AND url_key IN (SELECT trawl_url_key(value) FROM json_each(?2))

-- name: revisit_urls
-- A recrawl fetches its previous job's pages again at the depths they had. The frontier
-- rows give the depth (a result's is inside its document); results "removed" by an
-- earlier recrawl have none, so they are not fetched again; nor are pages it found no
-- longer linked (removed, yet 'ok'): a link to them again makes them new.
SELECT f.url, f.depth FROM results r
JOIN frontier f ON f.job_id = r.job_id AND f.url_key = r.url_key AND f.url = r.url
WHERE r.job_id = ?1 AND NOT (r.change IS 'removed' AND r.outcome = 'ok')
ORDER BY f.depth, r.id LIMIT ?2

-- name: count_changes
UPDATE jobs SET changes_new = changes_new + ?2, changes_changed = changes_changed + ?3,
    changes_unchanged = changes_unchanged + ?4, changes_removed = changes_removed + ?5
WHERE id = ?1

-- name: completable
-- Whether complete_job would complete the job now (under its row lock).
SELECT 1 FROM jobs WHERE id = ?1 AND status = 'running' AND refetching = 0
  AND pages_discovered = pages_fetched + pages_failed + pages_skipped

-- name: insert_removed
-- A recrawl completing: every page of the previous job (?2) it has no result for was not
-- reached (out of its scope, filters or max_pages now) and is reported removed, as of
-- the completion time (its fetched_at).
INSERT INTO results (job_id, url, outcome, page, url_key, change)
SELECT ?1, p.url, 'skipped',
       json_object('url', p.url, 'final_url', NULL, 'depth', p.page ->> '$.depth',
                   'status_code', NULL, 'content_type', NULL, 'fetched_at', ?3,
                   'elapsed_ms', NULL, 'size', NULL, 'attempts', 0,
                   'title', p.page ->> '$.title',
                   'error', json_object('code', 'not_reached', 'message',
                       'fetched by the previous job; not reached by this one (no longer in '
                       || 'its scope, filters, depth or max_pages)'),
                   'change', 'removed', 'previous_fetched_at', p.page ->> '$.fetched_at'),
       p.url_key, 'removed'
FROM results p
WHERE p.job_id = ?2 AND p.change IS NOT 'removed'
  AND NOT EXISTS (SELECT 1 FROM results r WHERE r.job_id = ?1 AND r.url_key = p.url_key)
ORDER BY p.id

-- name: unlinked_results
-- A recrawl completing: its pages fetched before and now with 200 (or a 304) that no
-- result of it links to (link_keys: hex url_keys), but not a seed (depth 0). Nothing
-- when some page's links are not known (NULL on an 'ok' result).
SELECT r.id, r.change, r.page FROM results r
JOIN frontier f ON f.job_id = r.job_id AND f.url_key = r.url_key AND f.url = r.url
WHERE r.job_id = ?1 AND r.outcome = 'ok' AND r.change IN ('changed', 'unchanged')
  AND f.depth > 0 AND r.page ->> '$.status_code' = 200
  AND NOT EXISTS (SELECT 1 FROM results u
                  WHERE u.job_id = ?1 AND u.outcome = 'ok' AND u.link_keys IS NULL)
  AND lower(hex(r.url_key)) NOT IN (SELECT k.value FROM results l, json_each(l.link_keys) k
                                    WHERE l.job_id = ?1 AND l.link_keys IS NOT NULL)
ORDER BY r.id

-- name: mark_unlinked
-- Many: (id, page).
UPDATE results SET change = 'removed', page = ?2 WHERE id = ?1

-- name: changed_urls
-- The first ?2 URLs a recrawl found new, changed or removed (the job.changed event).
SELECT url, change FROM results
WHERE job_id = ?1 AND change IN ('new', 'changed', 'removed') ORDER BY id LIMIT ?2

-- name: insert_event
INSERT INTO outbox (event_id, job_id, event_type, url, payload, created_at, next_attempt)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)

-- name: due_events
-- At most ?3 rows per owner (API key): one key's backlog of undeliverable events must
-- not fill the read and hide another key's events from the dispatcher.
SELECT id, event_id, job_id, event_type, url, payload, attempts, owner FROM (
    SELECT o.id, o.event_id, o.job_id, o.event_type, o.url, o.payload, o.attempts,
           o.next_attempt, coalesce(j.owner, '') AS owner,
           row_number() OVER (PARTITION BY coalesce(j.owner, '')
                              ORDER BY o.next_attempt, o.id) AS nth
    FROM outbox o LEFT JOIN jobs j ON j.id = o.job_id
    WHERE o.delivered_at IS NULL AND o.next_attempt <= ?1
) due
WHERE nth <= ?3 ORDER BY next_attempt, id LIMIT ?2

-- name: event_delivered
UPDATE outbox SET delivered_at = ?2, attempts = attempts + 1 WHERE id = ?1

-- name: event_failed
UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt = ?3 WHERE id = ?1

-- name: result_heads
-- What a job.page webhook sends per page, extracted in SQLite: the pages themselves (up
-- to a few MB each) never reach Python.
SELECT id, json_object('url', page -> '$.url', 'final_url', page -> '$.final_url',
                       'status_code', page -> '$.status_code', 'error', page -> '$.error')
FROM results WHERE job_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3

-- name: expired_jobs
-- Finished jobs past their retention (theirs, else the server's ?1; 0 keeps them).
SELECT id FROM jobs
WHERE status IN ('completed', 'failed', 'cancelled') AND coalesce(retention, ?1) > 0
  AND (julianday('now') - julianday(finished_at)) * 86400.0 > coalesce(retention, ?1)
ORDER BY seq LIMIT ?2

-- name: delete_results
-- A batch of a purged job's results (small transactions: the crawl writes in between).
DELETE FROM results WHERE id IN (SELECT id FROM results WHERE job_id = ?1 ORDER BY id LIMIT ?2)

-- name: delete_frontier
DELETE FROM frontier WHERE id IN (SELECT id FROM frontier WHERE job_id = ?1 LIMIT ?2)

-- name: delete_job_events
-- Delivered events go with the job; undelivered ones (its job.cancelled) still go out.
DELETE FROM outbox WHERE job_id = ?1 AND delivered_at IS NOT NULL

-- name: delete_job
DELETE FROM jobs WHERE id = ?1

-- name: schedule_count
-- Schedules (store/schedules.py). A key's schedules, counted against its cap.
SELECT count(*) FROM schedules WHERE owner = ?1

-- name: lock_schedule_owner
-- Serialises creations of one key's schedules (the count and the insert). SQLite: the
-- transaction already holds the file's write lock.
SELECT ?1

-- name: insert_schedule
INSERT INTO schedules (id, owner, name, request, cron, every_seconds, timezone, paused,
                       anchor_at, next_run_at, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)

-- name: schedule
SELECT seq, id, owner, name, request, cron, every_seconds, timezone, paused, anchor_at,
       next_run_at, last_run_at, last_job_id, base_job_id, created_at, updated_at
FROM schedules WHERE id = ?1

-- name: schedule_of_owner
SELECT seq, id, owner, name, request, cron, every_seconds, timezone, paused, anchor_at,
       next_run_at, last_run_at, last_job_id, base_job_id, created_at, updated_at
FROM schedules WHERE id = ?1 AND owner = ?2

-- name: lock_schedule_of_owner
SELECT seq, id, owner, name, request, cron, every_seconds, timezone, paused, anchor_at,
       next_run_at, last_run_at, last_job_id, base_job_id, created_at, updated_at
FROM schedules WHERE id = ?1 AND owner = ?2

-- name: list_schedules
SELECT seq, id, owner, name, request, cron, every_seconds, timezone, paused, anchor_at,
       next_run_at, last_run_at, last_job_id, base_job_id, created_at, updated_at
FROM schedules WHERE owner = ?1 AND (?2 IS NULL OR seq < ?2)
ORDER BY seq DESC LIMIT ?3

-- name: update_schedule
UPDATE schedules SET name = ?2, request = ?3, cron = ?4, every_seconds = ?5, timezone = ?6,
    paused = ?7, anchor_at = ?8, next_run_at = ?9, updated_at = ?10,
    base_job_id = ?11
WHERE id = ?1

-- name: delete_schedule
DELETE FROM schedules WHERE id = ?1 AND owner = ?2

-- name: next_schedule_due
SELECT min(next_run_at) FROM schedules WHERE next_run_at IS NOT NULL

-- name: due_schedules
SELECT seq, id, owner, name, request, cron, every_seconds, timezone, paused, anchor_at,
       next_run_at, last_run_at, last_job_id, base_job_id, created_at, updated_at
FROM schedules WHERE next_run_at IS NOT NULL AND next_run_at <= ?1
ORDER BY next_run_at LIMIT ?2

-- name: claim_tick
-- Firing is idempotent in the database: only the caller that read next_run_at = ?2 moves
-- it on, so two processes (even two that both believe they lead) cannot fire one tick.
UPDATE schedules SET next_run_at = ?3, last_run_at = ?4
WHERE id = ?1 AND next_run_at = ?2
RETURNING seq

-- name: insert_run
INSERT INTO schedule_runs (schedule_id, tick_at, fired_at, state, missed, job_id, reason)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (schedule_id, tick_at) DO NOTHING
RETURNING id

-- name: set_run
UPDATE schedule_runs SET state = ?2, job_id = ?3, reason = ?4 WHERE id = ?1

-- name: set_last_job
UPDATE schedules SET last_job_id = ?2, base_job_id = ?2 WHERE id = ?1

-- name: pending_runs
-- Runs claimed but whose job was not recorded (the process stopped in between); older
-- than ?1 so that a run being started right now is left to its process.
SELECT r.id, r.schedule_id, r.tick_at, r.missed FROM schedule_runs r
WHERE r.state = 'pending' AND r.fired_at <= ?1 ORDER BY r.id LIMIT ?2

-- name: recent_runs
-- The last ?2 runs of each schedule, newest first.
SELECT schedule_id, id, tick_at, fired_at, state, job_id, reason, missed FROM (
    SELECT r.*, row_number() OVER (PARTITION BY r.schedule_id ORDER BY r.id DESC) AS nth
    FROM schedule_runs r WHERE r.schedule_id IN (SELECT value FROM json_each(?1))
) WHERE nth <= ?2 ORDER BY schedule_id, id DESC

-- name: runs_page
-- One schedule's runs, newest first, before run id ?2 (a cursor; NULL: from the newest).
SELECT schedule_id, id, tick_at, fired_at, state, job_id, reason, missed FROM schedule_runs
WHERE schedule_id = ?1 AND (?2 IS NULL OR id < ?2)
ORDER BY id DESC LIMIT ?3

-- name: prune_runs
-- Keep a schedule's newest ?2 runs.
DELETE FROM schedule_runs WHERE schedule_id = ?1 AND id < (
    SELECT min(id) FROM (SELECT id FROM schedule_runs WHERE schedule_id = ?1
                         ORDER BY id DESC LIMIT ?2))

-- name: notify_schedules
-- Wakes other processes' tickers (PostgreSQL NOTIFY); one SQLite process wakes its own.
SELECT ?1
