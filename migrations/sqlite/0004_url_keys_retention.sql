-- URLs are unique per job by a fixed-size key, not by the URL itself (issue 17): a
-- 16-byte SHA-256 prefix of the canonical URL, computed by trawl_url_key() (registered
-- by the store on every connection; PostgreSQL defines the same function in SQL). An
-- 8 KB URL broke PostgreSQL's btree (2704-byte rows); both dialects keep one schema.
-- SQLite cannot drop a table's UNIQUE constraint, so frontier and results are rebuilt.
-- Also: a job's `retention` (seconds kept after it ends; NULL: the server default),
-- and an outbox index by job (purging a job deletes its delivered events).

CREATE TABLE frontier_keyed (
    id            INTEGER PRIMARY KEY,
    job_id        TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    url           TEXT NOT NULL,
    host          TEXT NOT NULL,
    depth         INTEGER NOT NULL,
    state         TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'claimed', 'done')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    not_before    REAL NOT NULL DEFAULT 0,
    claimed_until REAL,
    claimed_by    TEXT,
    tag           REAL NOT NULL DEFAULT 0,
    links_cut     INTEGER NOT NULL DEFAULT 0,
    url_key       BLOB NOT NULL
);
INSERT INTO frontier_keyed (id, job_id, url, host, depth, state, attempts, not_before,
                            claimed_until, claimed_by, tag, links_cut, url_key)
    SELECT id, job_id, url, host, depth, state, attempts, not_before, claimed_until,
           claimed_by, tag, links_cut, trawl_url_key(url)
    FROM frontier;
DROP TABLE frontier;
ALTER TABLE frontier_keyed RENAME TO frontier;
CREATE UNIQUE INDEX frontier_job_url ON frontier (job_id, url_key);
CREATE INDEX frontier_claimed ON frontier (claimed_until) WHERE state = 'claimed';
CREATE INDEX frontier_claimed_host ON frontier (host, claimed_until) WHERE state = 'claimed';
CREATE INDEX frontier_host_queue ON frontier (host, tag, id) WHERE state = 'pending';

CREATE TABLE results_keyed (
    id      INTEGER PRIMARY KEY,
    job_id  TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    url     TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'failed', 'skipped')),
    page    TEXT NOT NULL,
    url_key BLOB NOT NULL
);
INSERT INTO results_keyed (id, job_id, url, outcome, page, url_key)
    SELECT id, job_id, url, outcome, page, trawl_url_key(url) FROM results;
DROP TABLE results;
ALTER TABLE results_keyed RENAME TO results;
CREATE UNIQUE INDEX results_job_url ON results (job_id, url_key);
CREATE INDEX results_job_outcome ON results (job_id, outcome, id);
CREATE INDEX results_job ON results (job_id, id);

ALTER TABLE jobs ADD COLUMN retention REAL;
CREATE INDEX outbox_job ON outbox (job_id);
