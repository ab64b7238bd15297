-- Trawl schema, SQLite dialect. Forward-only: never edit once landed.

CREATE TABLE jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    owner            TEXT,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    request          TEXT NOT NULL,
    max_pages        INTEGER NOT NULL,
    webhook          TEXT,
    pages_discovered INTEGER NOT NULL DEFAULT 0,
    pages_fetched    INTEGER NOT NULL DEFAULT 0,
    pages_failed     INTEGER NOT NULL DEFAULT 0,
    pages_skipped    INTEGER NOT NULL DEFAULT 0,
    error            TEXT,
    idempotency_key  TEXT,
    request_hash     TEXT
);
CREATE INDEX jobs_status_seq ON jobs (status, seq);
CREATE INDEX jobs_owner_seq ON jobs (owner, seq);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (coalesce(owner, ''), idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The crawl frontier: one row per distinct canonical URL admitted to a job.
-- state: pending -> claimed -> done (or back to pending on release/retry).
CREATE TABLE frontier (
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
    UNIQUE (job_id, url)
);
CREATE INDEX frontier_pending ON frontier (depth, id) WHERE state = 'pending';
CREATE INDEX frontier_claimed ON frontier (claimed_until) WHERE state = 'claimed';

-- One result per frontier URL; the unique key makes storing idempotent.
CREATE TABLE results (
    id      INTEGER PRIMARY KEY,
    job_id  TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    url     TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'failed', 'skipped')),
    page    TEXT NOT NULL,
    UNIQUE (job_id, url)
);
CREATE INDEX results_job_outcome ON results (job_id, outcome, id);

-- Webhook events, written in the same transaction as the state change they announce.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY,
    event_id     TEXT NOT NULL UNIQUE,
    job_id       TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    url          TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   REAL NOT NULL,
    next_attempt REAL NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    delivered_at REAL,
    last_error   TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt) WHERE delivered_at IS NULL;
