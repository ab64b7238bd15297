-- Trawl schema, PostgreSQL dialect: the SQLite schema's tables and meaning, PG types.
-- Forward-only: never edit once landed. Applied under an advisory lock (postgres.py).
-- Job times are timestamptz; frontier and outbox times are epoch seconds (double
-- precision) like SQLite's REAL columns, compared against the database clock.

CREATE TABLE jobs (
    seq              bigserial PRIMARY KEY,
    id               text NOT NULL UNIQUE,
    owner            text,
    status           text NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    created_at       timestamptz NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz,
    request          text NOT NULL,  -- JSON text, not jsonb: keeps the client's key order
    max_pages        integer NOT NULL,
    per_host_limit   integer,        -- the request's per_host_concurrency (claim reads it)
    webhook          text,
    pages_discovered integer NOT NULL DEFAULT 0,
    pages_fetched    integer NOT NULL DEFAULT 0,
    pages_failed     integer NOT NULL DEFAULT 0,
    pages_skipped    integer NOT NULL DEFAULT 0,
    error            text,
    idempotency_key  text,
    request_hash     text
);
CREATE INDEX jobs_status_seq ON jobs (status, seq);
CREATE INDEX jobs_owner_seq ON jobs (owner, seq);
CREATE UNIQUE INDEX jobs_idempotency ON jobs ((coalesce(owner, '')), idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The crawl frontier: one row per distinct canonical URL admitted to a job.
-- state: pending -> claimed -> done (or back to pending on release, retry, lease expiry).
CREATE TABLE frontier (
    id            bigserial PRIMARY KEY,
    job_id        text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    url           text NOT NULL,
    host          text NOT NULL,
    depth         integer NOT NULL,
    state         text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'claimed', 'done')),
    attempts      integer NOT NULL DEFAULT 0,
    not_before    double precision NOT NULL DEFAULT 0,
    claimed_until double precision,
    claimed_by    text,
    UNIQUE (job_id, url)
);
CREATE INDEX frontier_pending ON frontier (depth, id) WHERE state = 'pending';
CREATE INDEX frontier_claimed ON frontier (claimed_until) WHERE state = 'claimed';
-- Per-host politeness across workers: claim counts each host's live claims, and walks
-- the pending frontier host by host (so a full host's backlog is never scanned).
CREATE INDEX frontier_claimed_host ON frontier (host, claimed_until) WHERE state = 'claimed';
CREATE INDEX frontier_pending_host ON frontier (host, depth, id) WHERE state = 'pending';

-- One result per frontier URL; the unique key makes storing idempotent.
CREATE TABLE results (
    id      bigserial PRIMARY KEY,
    job_id  text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    url     text NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('ok', 'failed', 'skipped')),
    page    text NOT NULL,  -- the page's JSON document, spliced into responses as is
    UNIQUE (job_id, url)
);
CREATE INDEX results_job_outcome ON results (job_id, outcome, id);
CREATE INDEX results_job ON results (job_id, id);

-- Webhook events, written in the same transaction as the state change they announce.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_id     text NOT NULL UNIQUE,
    job_id       text NOT NULL,
    event_type   text NOT NULL,
    url          text NOT NULL,
    payload      text NOT NULL,
    created_at   double precision NOT NULL,
    next_attempt double precision NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    delivered_at double precision,
    last_error   text
);
CREATE INDEX outbox_due ON outbox (next_attempt) WHERE delivered_at IS NULL;
