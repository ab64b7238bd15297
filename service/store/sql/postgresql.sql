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
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error,
       recrawl_of, changes_new, changes_changed, changes_unchanged, changes_removed
FROM jobs WHERE id = $1

-- name: job_of_owner
SELECT seq, id, owner, status, created_at, started_at, finished_at, request, webhook,
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error,
       recrawl_of, changes_new, changes_changed, changes_unchanged, changes_removed
FROM jobs WHERE id = $1 AND coalesce(owner, '') = $2

-- name: lock_job_of_owner
SELECT status FROM jobs WHERE id = $1 AND coalesce(owner, '') = $2 FOR UPDATE

-- name: job_by_key
SELECT seq, id, owner, status, created_at, started_at, finished_at, request, webhook,
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error,
       recrawl_of, changes_new, changes_changed, changes_unchanged, changes_removed, request_hash
FROM jobs WHERE coalesce(owner, '') = $1 AND idempotency_key = $2

-- name: insert_job
-- Two processes may insert the same idempotency key at once: the loser inserts nothing
-- (no row returned) and replays the winner's job.
INSERT INTO jobs (id, owner, status, created_at, request, max_pages, per_host_limit, webhook,
                  idempotency_key, request_hash, per_host_delay, weight, retention,
                  spec, spec_version, recrawl_of)
VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT ((coalesce(owner, '')), idempotency_key) WHERE idempotency_key IS NOT NULL
DO NOTHING
RETURNING seq

-- name: high_jobs
-- A key's active jobs running at "high" weight (their number is capped per key).
SELECT count(*) FROM jobs
WHERE coalesce(owner, '') = $1 AND weight > 1 AND status IN ('queued', 'running')
-- name: set_discovered
UPDATE jobs SET pages_discovered = $2 WHERE id = $1

-- name: list_jobs
SELECT seq, id, owner, status, created_at, started_at, finished_at, request, webhook,
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error,
       recrawl_of, changes_new, changes_changed, changes_unchanged, changes_removed
FROM jobs
WHERE coalesce(owner, '') = $1 AND ($2::text IS NULL OR status = $2)
  AND ($3::bigint IS NULL OR seq < $3)
ORDER BY seq DESC LIMIT $4

-- name: start_job
UPDATE jobs SET status = 'running', started_at = $2
WHERE id = $1 AND status = 'queued' RETURNING webhook

-- name: complete_job
-- Not while a page found again at a smaller depth is being fetched again (refetching).
UPDATE jobs SET status = 'completed', finished_at = $2
WHERE id = $1 AND status = 'running' AND refetching = 0
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
       pages_discovered, pages_fetched, pages_failed, pages_skipped, error,
       recrawl_of, changes_new, changes_changed, changes_unchanged, changes_removed
FROM jobs WHERE id = ANY($1::text[])

-- name: job_specs
SELECT id, status, request, spec, spec_version, widened_hosts, sitemap_origins
FROM jobs WHERE id = ANY($1::text[])

-- name: jobs_by_status
SELECT status, count(*) FROM jobs GROUP BY status

-- name: pending_count
SELECT count(*) FROM frontier WHERE state = 'pending'

-- name: recover
-- Claims whose lease ran out (their worker died or stalled) go back to pending; live
-- claims belong to running workers. Rows a slow worker is recording right now are
-- skipped, not waited for. The caller queues their hosts again (and unparks them).
UPDATE frontier SET state = 'pending', claimed_until = NULL, claimed_by = NULL
WHERE id IN (SELECT id FROM frontier
             WHERE state = 'claimed'
               AND claimed_until < extract(epoch FROM statement_timestamp())::double precision
             FOR UPDATE SKIP LOCKED)
RETURNING host
-- name: ready_hosts
-- The host-aware claim, step 1 (store/frontier.py), under the claim lock so claimers see
-- each other's claims and turns: hosts whose turn came, oldest turn first, by
-- hosts_ready. $2 is PARKED (1e12) when parked hosts count too (no per-host limit); $3
-- seconds early (a turn due that soon: its URLs wait in the claimer's scheduler). With
-- each host, the seconds until its turn (0 if it came, or the host is parked and a claim
-- without a limit takes it anyway); lock_ready reads it again under the rows' locks.
SELECT host, delay, queued,
       CASE WHEN next_at >= 1e12 THEN 0
            ELSE greatest(0, next_at - extract(epoch FROM statement_timestamp())::double precision)
       END
FROM hosts
WHERE queued > 0 AND (next_at <= extract(epoch FROM statement_timestamp())::double precision + $3 OR next_at >= $2)
ORDER BY next_at LIMIT $1

-- name: lock_ready
-- Step 1b: lock the ready hosts' rows (in name order, as every transaction changing hosts
-- does) and keep those still ready now. Every writer that frees room on a host (a record
-- settling a claim, a fetch end marking one `fetched`) holds the host's row while it
-- also moves next_at to the request's start plus its spacing, so what host_heads counts
-- next and the turn read here are one consistent state: no claim can see a host's slot
-- free without seeing its spacing too. With each host, the seconds until its turn (as
-- ready_hosts').
SELECT host, CASE WHEN next_at >= 1e12 THEN 0
                  ELSE greatest(0, next_at - extract(epoch FROM statement_timestamp())::double precision)
             END
FROM hosts
WHERE host = ANY($1::text[])
  AND (next_at <= extract(epoch FROM statement_timestamp())::double precision + $3 OR next_at >= $2)
ORDER BY host FOR UPDATE

-- name: max_host_limit
SELECT max(per_host_limit) FROM jobs WHERE status IN ('queued', 'running')

-- name: host_heads
-- Step 2: the first $2 pending URLs of each ready host by fair-queuing tag (a bounded
-- probe of frontier_host_queue per host: a host's backlog size does not matter), with
-- the host's live claims of active jobs from every worker (in flight: a claim whose body
-- is read is `fetched`, and holds no slot while it waits for its parser and record).
SELECT f.id, f.job_id, f.url, f.host, f.depth, f.attempts, j.owner, j.weight, f.tag,
       j.per_host_limit, j.per_host_delay, r.busy, j.status
FROM (
    SELECT h.host, (SELECT count(*) FROM frontier c JOIN jobs cj ON cj.id = c.job_id
                    WHERE c.host = h.host AND c.state = 'claimed' AND NOT c.fetched
                      AND c.claimed_until > extract(epoch FROM statement_timestamp())::double precision
                      AND cj.status IN ('queued', 'running')) AS busy
    FROM unnest($1::text[]) AS h (host)
) r
CROSS JOIN LATERAL (
    SELECT g.id, g.job_id, g.url, g.host, g.depth, g.attempts, g.tag FROM frontier g
    WHERE g.host = r.host AND g.state = 'pending' AND g.not_before <= extract(epoch FROM statement_timestamp())::double precision
      AND EXISTS (SELECT 1 FROM jobs gj WHERE gj.id = g.job_id
                  AND gj.status IN ('queued', 'running'))
    ORDER BY g.tag, g.id LIMIT $2
) f
JOIN jobs j ON j.id = f.job_id
ORDER BY f.tag, f.id

-- name: key_busy
SELECT j.owner, count(*) FROM frontier f JOIN jobs j ON j.id = f.job_id
WHERE f.state = 'claimed' AND f.claimed_until > extract(epoch FROM statement_timestamp())::double precision
  AND j.status IN ('queued', 'running')
GROUP BY j.owner

-- name: key_share
-- The fair share of fetch tasks per API key across processes (issue 16): how many other
-- processes hold live claims ($1 is this one), and how many keys have active jobs.
SELECT (SELECT count(DISTINCT claimed_by) FROM frontier
        WHERE state = 'claimed' AND claimed_by <> $1
          AND claimed_until > extract(epoch FROM statement_timestamp())::double precision),
       (SELECT count(DISTINCT coalesce(owner, '')) FROM jobs
        WHERE status IN ('queued', 'running'))

-- name: take_claims
-- Under the claim lock; a row closed by a cancel meanwhile is no longer pending.
UPDATE frontier SET state = 'claimed', fetched = false, claimed_by = $3, claimed_until = extract(epoch FROM statement_timestamp())::double precision + $2
WHERE id = ANY($1::bigint[]) AND state = 'pending'
RETURNING id

-- name: turns
-- Many: (host, spacing, vtime, parked). Step 4: a visited host goes to the back of the
-- line after the spacing it reserved (the per-host delay held across processes: no
-- other claimer takes the host before it passed); a host now at its limit is parked
-- until it settles.
UPDATE hosts h SET
    next_at = CASE WHEN u.parked THEN 1e12 ELSE greatest(h.next_at, extract(epoch FROM statement_timestamp())::double precision) + u.spacing END,
    vtime = greatest(h.vtime, u.vtime)
FROM unnest($1::text[], $2::double precision[], $3::double precision[], $4::boolean[])
    AS u (host, spacing, vtime, parked)
WHERE h.host = u.host

-- name: next_due
-- Per host of $1 with nothing claimable: when its first retry is due (NULL: nothing
-- pending) and whether that is later. One statement for all of a claim's empty hosts.
SELECT h.host, min(f.not_before),
       min(f.not_before) > extract(epoch FROM statement_timestamp())::double precision
FROM unnest($1::text[]) AS h (host)
LEFT JOIN frontier f ON f.host = h.host AND f.state = 'pending'
    AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = f.job_id AND j.status IN ('queued', 'running'))
GROUP BY h.host

-- name: set_next_at
-- Many: (host, next_at).
UPDATE hosts h SET next_at = u.next_at
FROM unnest($1::text[], $2::double precision[]) AS u (host, next_at)
WHERE h.host = u.host

-- name: unqueue_host
-- Many: (host, queued). Only if no admit or release bumped `queued` since the claim read
-- it (an UPDATE re-reads the row it waited for, so a concurrent bump is never lost).
UPDATE hosts h SET queued = 0
FROM unnest($1::text[], $2::integer[]) AS u (host, queued)
WHERE h.host = u.host AND h.queued = u.queued

-- name: queue_hosts
-- Many: (host). New or returned URLs: the host is queued again, back in line if parked.
-- Hosts in name order, so two writers lock the rows in the same order.
INSERT INTO hosts (host) SELECT DISTINCT h FROM unnest($1::text[]) AS h ORDER BY h
ON CONFLICT (host) DO UPDATE SET queued = hosts.queued + 1,
    next_at = CASE WHEN hosts.next_at >= 1e12 THEN 0 ELSE hosts.next_at END

-- name: unpark_job
-- A finished job's claims never settle: its hosts must not stay parked.
UPDATE hosts SET next_at = 0 WHERE next_at >= 1e12
  AND host IN (SELECT DISTINCT host FROM frontier WHERE job_id = $1 AND state = 'claimed')

-- name: mark_fetched
-- ($1 ids, $2 their claims' attempts, $3 worker). Claims of worker $3 whose body is read: no longer in flight, so
-- no claimer counts them against their host's limit, though their records are still to
-- come. The attempts the claim was made with: a row recorded and claimed again meanwhile
-- is not this claim. Returns the rows marked (their hosts are settled with them).
UPDATE frontier f SET fetched = true
FROM unnest($1::bigint[], $2::integer[]) AS u (id, attempts)
WHERE f.id = u.id AND f.state = 'claimed' AND f.claimed_by = $3 AND f.attempts = u.attempts
RETURNING f.id

-- name: hosts_settled
-- Many: (host, free_at). Settled hosts have room again: a parked one is back in line,
-- but no process starts a request on it before free_at (the last start plus spacing).
UPDATE hosts h SET next_at = CASE WHEN h.next_at >= 1e12 THEN u.free_at
                                  ELSE greatest(h.next_at, u.free_at) END
FROM unnest($1::text[], $2::double precision[]) AS u (host, free_at)
WHERE h.host = u.host

-- name: lock_hosts
-- Every transaction that changes hosts rows locks them first, in name order (claims and
-- records run at once on several connections; in any other order they deadlock, and
-- each deadlock costs deadlock_timeout, a second, before the retry).
SELECT host FROM hosts WHERE host = ANY($1::text[]) ORDER BY host FOR UPDATE

-- name: host_vtimes
SELECT host, vtime FROM hosts WHERE host = ANY($1::text[])

-- name: job_finishes
SELECT host, finish FROM job_hosts WHERE job_id = $1 AND host = ANY($2::text[])

-- name: set_finishes
-- Many: (job_id, host, finish).
INSERT INTO job_hosts (job_id, host, finish)
SELECT u.job_id, u.host, u.finish
FROM unnest($1::text[], $2::text[], $3::double precision[]) AS u (job_id, host, finish)
ORDER BY u.host
ON CONFLICT (job_id, host) DO UPDATE SET finish = excluded.finish

-- name: host_delay
INSERT INTO hosts (host, delay, queued) VALUES ($1, $2, 0)
ON CONFLICT (host) DO UPDATE SET delay = greatest(hosts.delay, excluded.delay)

-- name: host_defer
INSERT INTO hosts (host, next_at, queued) VALUES ($1, extract(epoch FROM statement_timestamp())::double precision + $2, 0)
ON CONFLICT (host) DO UPDATE SET next_at = greatest(hosts.next_at, excluded.next_at)

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
SELECT id, status, max_pages - pages_discovered AS room, weight, widened_hosts,
       sitemap_origins, recrawl_of
FROM jobs
WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE

-- name: insert_frontier
-- Many: (job_id, url, host, depth, tag).
INSERT INTO frontier (job_id, url, host, depth, tag, url_key)
SELECT l.job_id, l.url, l.host, l.depth, l.tag, trawl_url_key(l.url)
FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::double precision[])
    WITH ORDINALITY AS l (job_id, url, host, depth, tag, n)
ORDER BY l.n
ON CONFLICT (job_id, url_key) DO NOTHING

-- name: repend
-- Many: (job_id, url, depth). Shortest-path depth: a fetched page whose links were cut at
-- max_depth, found again at a smaller depth, is fetched again (links_cut = 2).
UPDATE frontier f SET state = 'pending', links_cut = 2, depth = l.depth
FROM unnest($1::text[], $2::text[], $3::integer[]) AS l (job_id, url, depth)
WHERE f.job_id = l.job_id AND f.url_key = trawl_url_key(l.url) AND f.url = l.url
  AND f.depth > l.depth AND f.state = 'done'
  AND f.links_cut = 1

-- name: shorten
-- Many: (job_id, url, depth). Any other known URL found at a smaller depth takes it.
UPDATE frontier f SET depth = l.depth
FROM unnest($1::text[], $2::text[], $3::integer[]) AS l (job_id, url, depth)
WHERE f.job_id = l.job_id AND f.url_key = trawl_url_key(l.url) AND f.url = l.url
  AND f.depth > l.depth

-- name: settle_marks
-- Of the rows a record settles: those to be fetched again (links_cut 2) and those whose
-- fetch end already settled their host (fetched).
SELECT id, links_cut = 2, fetched FROM frontier
WHERE id = ANY($1::bigint[]) AND (links_cut = 2 OR fetched)

-- name: refetches
SELECT id FROM frontier WHERE id = ANY($1::bigint[]) AND links_cut = 2
-- name: settle
-- Many: (id, attempts, links_cut, depth). A page whose links were cut and whose depth
-- dropped while it was in flight goes straight back to pending, to be fetched again.
UPDATE frontier f SET attempts = r.attempts, claimed_until = NULL,
    state = CASE WHEN r.cut AND f.depth < r.depth THEN 'pending' ELSE 'done' END,
    links_cut = CASE WHEN r.cut AND f.depth < r.depth THEN 2 WHEN r.cut THEN 1 ELSE 0 END
FROM unnest($1::bigint[], $2::integer[], $3::boolean[], $4::integer[])
    AS r (id, attempts, cut, depth)
WHERE f.id = r.id

-- name: set_facts
-- Under the job's row lock (lock_jobs), in the transaction recording the page that
-- taught them: every process reads the same facts from then on, restarts included.
UPDATE jobs SET widened_hosts = $2, sitemap_origins = $3 WHERE id = $1

-- name: count_pages
UPDATE jobs SET pages_discovered = pages_discovered + $2, pages_fetched = pages_fetched + $3,
    pages_failed = pages_failed + $4, pages_skipped = pages_skipped + $5,
    refetching = refetching + $6
WHERE id = $1
-- name: existing_results
SELECT url FROM results
WHERE job_id = $1 AND url_key = ANY(ARRAY(SELECT trawl_url_key(u) FROM unnest($2::text[]) u))

-- name: insert_results
-- Many: (job_id, url, outcome, page, change, etag, last_modified, content_hash, content,
-- link_keys).
-- Inserted under the job's row lock, so a job's result ids grow in commit order and
-- cursors never skip a row.
INSERT INTO results (job_id, url, outcome, page, url_key, change, etag, last_modified,
                     content_hash, content, link_keys)
SELECT r.job_id, r.url, r.outcome, r.page, trawl_url_key(r.url), r.change, r.etag,
       r.last_modified, r.content_hash, r.content, r.link_keys
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::bytea[], $10::text[]) WITH ORDINALITY
    AS r (job_id, url, outcome, page, change, etag, last_modified, content_hash, content,
          link_keys, n)
ORDER BY r.n
ON CONFLICT (job_id, url_key) DO NOTHING

-- name: replace_results
-- Many: (job_id, url, page, link_keys). A page fetched again at a smaller depth replaces
-- its result (and the links followed from it: more, at that depth).
UPDATE results r SET page = u.page, link_keys = u.link_keys
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u (job_id, url, page, link_keys)
WHERE r.job_id = u.job_id AND r.url_key = trawl_url_key(u.url) AND r.url = u.url
  AND r.outcome = 'ok'

-- name: results
SELECT id, page FROM results WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3

-- name: results_of
SELECT id, page FROM results WHERE job_id = $1 AND id > $2 AND outcome = $4
ORDER BY id LIMIT $3

-- name: results_of_change
-- A recrawl's results of one kind of change ($4), of one outcome too unless $5 is NULL.
SELECT id, page FROM results
WHERE job_id = $1 AND change = $4 AND id > $2 AND ($5::text IS NULL OR outcome = $5)
ORDER BY id LIMIT $3

-- name: previous_pages
-- What a recrawl compares a URL with: its result in the previous job.
SELECT url, outcome, page, change, etag, last_modified, content_hash, content, link_keys
FROM results
WHERE job_id = $1 AND url_key = ANY(ARRAY(SELECT trawl_url_key(u) FROM unnest($2::text[]) u))

-- name: revisit_urls
-- A recrawl fetches its previous job's pages again at the depths they had. The frontier
-- rows give the depth (a result's is inside its document); results "removed" by an
-- earlier recrawl have none, so they are not fetched again; nor are pages it found no
-- longer linked (removed, yet 'ok'): a link to them again makes them new.
SELECT f.url, f.depth FROM results r
JOIN frontier f ON f.job_id = r.job_id AND f.url_key = r.url_key AND f.url = r.url
WHERE r.job_id = $1 AND NOT (r.change IS NOT DISTINCT FROM 'removed' AND r.outcome = 'ok')
ORDER BY f.depth, r.id LIMIT $2

-- name: count_changes
UPDATE jobs SET changes_new = changes_new + $2, changes_changed = changes_changed + $3,
    changes_unchanged = changes_unchanged + $4, changes_removed = changes_removed + $5
WHERE id = $1

-- name: completable
-- Whether complete_job would complete the job now (under its row lock).
SELECT 1 FROM jobs WHERE id = $1 AND status = 'running' AND refetching = 0
  AND pages_discovered = pages_fetched + pages_failed + pages_skipped

-- name: insert_removed
-- A recrawl completing: every page of the previous job ($2) it has no result for was not
-- reached (out of its scope, filters or max_pages now) and is reported removed, as of
-- the completion time (its fetched_at).
INSERT INTO results (job_id, url, outcome, page, url_key, change)
SELECT $1, p.url, 'skipped',
       json_build_object('url', p.url, 'final_url', NULL, 'depth', p.page::json -> 'depth',
                         'status_code', NULL, 'content_type', NULL, 'fetched_at', $3::text,
                         'elapsed_ms', NULL, 'size', NULL, 'attempts', 0,
                         'title', p.page::json -> 'title',
                         'error', json_build_object('code', 'not_reached', 'message',
                             'fetched by the previous job; not reached by this one (no longer in '
                             || 'its scope, filters, depth or max_pages)'),
                         'change', 'removed',
                         'previous_fetched_at', p.page::json -> 'fetched_at')::text,
       p.url_key, 'removed'
FROM results p
WHERE p.job_id = $2 AND p.change IS DISTINCT FROM 'removed'
  AND NOT EXISTS (SELECT 1 FROM results r WHERE r.job_id = $1 AND r.url_key = p.url_key)
ORDER BY p.id

-- name: unlinked_results
-- A recrawl completing: its pages fetched before and now with 200 (or a 304) that no
-- result of it links to (link_keys: hex url_keys), but not a seed (depth 0). Nothing
-- when some page's links are not known (NULL on an 'ok' result).
-- The linked keys are gathered once (an anti join, not one scan per candidate).
WITH linked AS (
    SELECT DISTINCT k.key FROM results l, json_array_elements_text(l.link_keys::json) k (key)
    WHERE l.job_id = $1 AND l.link_keys IS NOT NULL
)
SELECT r.id, r.change, r.page FROM results r
JOIN frontier f ON f.job_id = r.job_id AND f.url_key = r.url_key AND f.url = r.url
WHERE r.job_id = $1 AND r.outcome = 'ok' AND r.change IN ('changed', 'unchanged')
  AND f.depth > 0 AND r.page::json ->> 'status_code' = '200'
  AND NOT EXISTS (SELECT 1 FROM results u
                  WHERE u.job_id = $1 AND u.outcome = 'ok' AND u.link_keys IS NULL)
  AND NOT EXISTS (SELECT 1 FROM linked WHERE linked.key = encode(r.url_key, 'hex'))
ORDER BY r.id

-- name: mark_unlinked
-- Many: (id, page).
UPDATE results r SET change = 'removed', page = u.page
FROM unnest($1::bigint[], $2::text[]) AS u (id, page) WHERE r.id = u.id

-- name: changed_urls
-- The first $2 URLs a recrawl found new, changed or removed (the job.changed event).
SELECT url, change FROM results
WHERE job_id = $1 AND change IN ('new', 'changed', 'removed') ORDER BY id LIMIT $2

-- name: insert_event
INSERT INTO outbox (event_id, job_id, event_type, url, payload, created_at, next_attempt)
VALUES ($1, $2, $3, $4, $5, $6, $6)

-- name: due_events
-- At most $3 rows per owner (API key): one key's backlog of undeliverable events must
-- not fill the read and hide another key's events from the dispatcher.
SELECT id, event_id, job_id, event_type, url, payload, attempts, owner FROM (
    SELECT o.id, o.event_id, o.job_id, o.event_type, o.url, o.payload, o.attempts,
           o.next_attempt, coalesce(j.owner, '') AS owner,
           row_number() OVER (PARTITION BY coalesce(j.owner, '')
                              ORDER BY o.next_attempt, o.id) AS nth
    FROM outbox o LEFT JOIN jobs j ON j.id = o.job_id
    WHERE o.delivered_at IS NULL AND o.next_attempt <= $1
) due
WHERE nth <= $3 ORDER BY next_attempt, id LIMIT $2

-- name: event_delivered
UPDATE outbox SET delivered_at = $2, attempts = attempts + 1 WHERE id = $1

-- name: event_failed
UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt = $3 WHERE id = $1

-- name: result_heads
-- What a job.page webhook sends per page, extracted here: the pages themselves (up to
-- a few MB each) never reach Python.
SELECT id, json_build_object('url', p -> 'url', 'final_url', p -> 'final_url',
                             'status_code', p -> 'status_code', 'error', p -> 'error')::text
FROM (SELECT id, page::json AS p FROM results WHERE job_id = $1 AND id > $2
      ORDER BY id LIMIT $3) r
ORDER BY id

-- name: expired_jobs
-- Finished jobs past their retention (theirs, else the server's $1; 0 keeps them).
SELECT id FROM jobs
WHERE status IN ('completed', 'failed', 'cancelled') AND coalesce(retention, $1) > 0
  AND finished_at < statement_timestamp() - make_interval(secs => coalesce(retention, $1))
ORDER BY seq LIMIT $2

-- name: delete_results
-- A batch of a purged job's results (small transactions: the crawl writes in between).
DELETE FROM results WHERE id IN (SELECT id FROM results WHERE job_id = $1 ORDER BY id LIMIT $2)

-- name: delete_frontier
DELETE FROM frontier WHERE id IN (SELECT id FROM frontier WHERE job_id = $1 LIMIT $2)

-- name: delete_job_events
-- Delivered events go with the job; undelivered ones (its job.cancelled) still go out.
DELETE FROM outbox WHERE job_id = $1 AND delivered_at IS NOT NULL

-- name: delete_job
DELETE FROM jobs WHERE id = $1

-- name: schedule_count
-- Schedules (store/schedules.py). A key's schedules, counted against its cap.
SELECT count(*) FROM schedules WHERE owner = $1

-- name: lock_schedule_owner
-- Serialises creations of one key's schedules, so the count and the insert cannot
-- interleave with another process's.
SELECT pg_advisory_xact_lock(hashtext('trawl:schedules:' || $1))

-- name: insert_schedule
INSERT INTO schedules (id, owner, name, request, cron, every_seconds, timezone, paused,
                       anchor_at, next_run_at, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)

-- name: schedule
SELECT seq, id, owner, name, request, cron, every_seconds, timezone, paused, anchor_at,
       next_run_at, last_run_at, last_job_id, base_job_id, created_at, updated_at
FROM schedules WHERE id = $1

-- name: schedule_of_owner
SELECT seq, id, owner, name, request, cron, every_seconds, timezone, paused, anchor_at,
       next_run_at, last_run_at, last_job_id, base_job_id, created_at, updated_at
FROM schedules WHERE id = $1 AND owner = $2

-- name: lock_schedule_of_owner
SELECT seq, id, owner, name, request, cron, every_seconds, timezone, paused, anchor_at,
       next_run_at, last_run_at, last_job_id, base_job_id, created_at, updated_at
FROM schedules WHERE id = $1 AND owner = $2 FOR UPDATE

-- name: list_schedules
SELECT seq, id, owner, name, request, cron, every_seconds, timezone, paused, anchor_at,
       next_run_at, last_run_at, last_job_id, base_job_id, created_at, updated_at
FROM schedules WHERE owner = $1 AND ($2::bigint IS NULL OR seq < $2)
ORDER BY seq DESC LIMIT $3

-- name: update_schedule
UPDATE schedules SET name = $2, request = $3, cron = $4, every_seconds = $5, timezone = $6,
    paused = $7, anchor_at = $8, next_run_at = $9, updated_at = $10,
    base_job_id = $11
WHERE id = $1

-- name: delete_schedule
DELETE FROM schedules WHERE id = $1 AND owner = $2

-- name: next_schedule_due
SELECT min(next_run_at) FROM schedules WHERE next_run_at IS NOT NULL

-- name: due_schedules
SELECT seq, id, owner, name, request, cron, every_seconds, timezone, paused, anchor_at,
       next_run_at, last_run_at, last_job_id, base_job_id, created_at, updated_at
FROM schedules WHERE next_run_at IS NOT NULL AND next_run_at <= $1
ORDER BY next_run_at LIMIT $2

-- name: claim_tick
-- Firing is idempotent in the database: only the caller that read next_run_at = $2 moves
-- it on, so two processes (even two that both believe they lead) cannot fire one tick.
UPDATE schedules SET next_run_at = $3, last_run_at = $4
WHERE id = $1 AND next_run_at = $2
RETURNING seq

-- name: insert_run
INSERT INTO schedule_runs (schedule_id, tick_at, fired_at, state, missed, job_id, reason)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (schedule_id, tick_at) DO NOTHING
RETURNING id

-- name: set_run
UPDATE schedule_runs SET state = $2, job_id = $3, reason = $4 WHERE id = $1

-- name: set_last_job
UPDATE schedules SET last_job_id = $2, base_job_id = $2 WHERE id = $1

-- name: pending_runs
-- Runs claimed but whose job was not recorded (the process stopped in between); older
-- than $1 so that a run being started right now is left to its process.
SELECT r.id, r.schedule_id, r.tick_at, r.missed FROM schedule_runs r
WHERE r.state = 'pending' AND r.fired_at <= $1 ORDER BY r.id LIMIT $2

-- name: recent_runs
-- The last $2 runs of each schedule, newest first.
SELECT schedule_id, id, tick_at, fired_at, state, job_id, reason, missed FROM (
    SELECT r.*, row_number() OVER (PARTITION BY r.schedule_id ORDER BY r.id DESC) AS nth
    FROM schedule_runs r WHERE r.schedule_id = ANY($1::text[])
) recent WHERE nth <= $2 ORDER BY schedule_id, id DESC

-- name: runs_page
-- One schedule's runs, newest first, before run id $2 (a cursor; NULL: from the newest).
SELECT schedule_id, id, tick_at, fired_at, state, job_id, reason, missed FROM schedule_runs
WHERE schedule_id = $1 AND ($2::bigint IS NULL OR id < $2)
ORDER BY id DESC LIMIT $3

-- name: prune_runs
-- Keep a schedule's newest $2 runs.
DELETE FROM schedule_runs WHERE schedule_id = $1 AND id < (
    SELECT min(id) FROM (SELECT id FROM schedule_runs WHERE schedule_id = $1
                         ORDER BY id DESC LIMIT $2) newest)

-- name: notify_schedules
-- Wakes the other processes' tickers (delivered when the transaction commits).
SELECT pg_notify('trawl_schedules', $1)
