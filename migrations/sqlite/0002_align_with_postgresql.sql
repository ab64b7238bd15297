-- Bring the SQLite schema level with PostgreSQL's 0001 (the dialects had drifted):
-- the per-host limit is a column both claims read, and the same indexes exist on both.

ALTER TABLE jobs ADD COLUMN per_host_limit INTEGER;  -- the request's per_host_concurrency
UPDATE jobs SET per_host_limit = json_extract(request, '$.per_host_concurrency')
    WHERE json_type(request, '$.per_host_concurrency') = 'integer';

CREATE INDEX frontier_claimed_host ON frontier (host, claimed_until) WHERE state = 'claimed';
CREATE INDEX frontier_pending_host ON frontier (host, depth, id) WHERE state = 'pending';
CREATE INDEX results_job ON results (job_id, id);
