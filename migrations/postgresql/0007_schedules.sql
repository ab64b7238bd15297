-- Schedules (service/schedules.py): a job request run again on a cron expression or a
-- fixed interval, each run a recrawl of the one before. Times are epoch seconds.

CREATE TABLE schedules (
    seq          bigserial PRIMARY KEY,
    id           text NOT NULL UNIQUE,
    owner        text NOT NULL DEFAULT '',  -- the API key's owner id ('' without auth)
    name         text,
    request      text NOT NULL,             -- the job request, validated and normalised (JSON)
    cron         text,                      -- exactly one of cron and every_seconds is set
    every_seconds double precision,
    timezone     text NOT NULL,
    paused       boolean NOT NULL DEFAULT false,
    anchor_at    double precision NOT NULL, -- an interval's ticks are anchor_at + k * every
    next_run_at  double precision,          -- NULL while paused
    last_run_at  double precision,
    last_job_id  text,                      -- the job the last run started
    base_job_id  text,                      -- the job the next run recrawls (NULL: a plain job)
    created_at   double precision NOT NULL,
    updated_at   double precision NOT NULL
);
CREATE INDEX schedules_owner_seq ON schedules (owner, seq);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE next_run_at IS NOT NULL;

-- One row per tick a schedule fired for: the job it started, or why it was skipped.
-- UNIQUE (schedule_id, tick_at): a tick is fired once, whatever the number of processes.
CREATE TABLE schedule_runs (
    id          bigserial PRIMARY KEY,
    schedule_id text NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    tick_at     double precision NOT NULL,  -- the time it was due
    fired_at    double precision NOT NULL,
    state       text NOT NULL CHECK (state IN ('pending', 'started', 'skipped', 'failed')),
    job_id      text,
    reason      text,                       -- why it was skipped or failed
    missed      integer NOT NULL DEFAULT 0, -- ticks passed over (a catch-up run after downtime)
    UNIQUE (schedule_id, tick_at)
);
CREATE INDEX schedule_runs_pending ON schedule_runs (state) WHERE state = 'pending';
