-- Schedules (service/schedules.py): a job request run again on a cron expression or a
-- fixed interval, each run a recrawl of the one before. Times are epoch seconds.

CREATE TABLE schedules (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    owner        TEXT NOT NULL DEFAULT '',  -- the API key's owner id ('' without auth)
    name         TEXT,
    request      TEXT NOT NULL,             -- the job request, validated and normalised (JSON)
    cron         TEXT,                      -- exactly one of cron and every_seconds is set
    every_seconds REAL,
    timezone     TEXT NOT NULL,
    paused       INTEGER NOT NULL DEFAULT 0,
    anchor_at    REAL NOT NULL,             -- an interval's ticks are anchor_at + k * every
    next_run_at  REAL,                      -- NULL while paused
    last_run_at  REAL,
    last_job_id  TEXT,                      -- the job the last run started
    base_job_id  TEXT,                      -- the job the next run recrawls (NULL: a plain job)
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
);
CREATE INDEX schedules_owner_seq ON schedules (owner, seq);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE next_run_at IS NOT NULL;

-- One row per tick a schedule fired for: the job it started, or why it was skipped.
-- UNIQUE (schedule_id, tick_at): a tick is fired once, whatever the number of processes.
CREATE TABLE schedule_runs (
    id          INTEGER PRIMARY KEY,
    schedule_id TEXT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    tick_at     REAL NOT NULL,              -- the time it was due
    fired_at    REAL NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'started', 'skipped', 'failed')),
    job_id      TEXT,
    reason      TEXT,                       -- why it was skipped or failed
    missed      INTEGER NOT NULL DEFAULT 0, -- ticks passed over (a catch-up run after downtime)
    UNIQUE (schedule_id, tick_at)
);
CREATE INDEX schedule_runs_pending ON schedule_runs (state) WHERE state = 'pending';
