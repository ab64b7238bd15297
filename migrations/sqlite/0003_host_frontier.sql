-- Host-aware frontier (Mercator's back queues). Forward-only: never edit once landed.
-- hosts: one row per host with URLs to fetch. Claims walk hosts by next_at (oldest turn
-- first), not the whole pending index, so a few hosts' backlogs never block the others
-- (store/frontier.py has the algorithm).
--   next_at  claim nothing new for the host before this (epoch seconds, database clock):
--            the turn order; on a shared frontier also the per-host delay held across
--            processes; 1e12 (PARKED) while the host is at its limit
--   queued   > 0 while the host may have pending URLs: bumped on admit and release, set
--            to 0 by a claim that finds none, only if nobody bumped it meanwhile
--   vtime    fair queuing clock: the tag of the last URL claimed from the host
--   delay    learnt floor for the spacing of requests (robots.txt Crawl-delay)
CREATE TABLE hosts (
    host    TEXT PRIMARY KEY,
    next_at REAL NOT NULL DEFAULT 0,
    queued  INTEGER NOT NULL DEFAULT 1,
    vtime   REAL NOT NULL DEFAULT 0,
    delay   REAL NOT NULL DEFAULT 0
);
CREATE INDEX hosts_ready ON hosts (next_at) WHERE queued > 0;

-- Start-time fair queuing across jobs within a host: a URL's tag is
-- max(host vtime, the job's last finish on the host) + 1 / weight, so jobs take turns.
CREATE TABLE job_hosts (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    host   TEXT NOT NULL,
    finish REAL NOT NULL,
    PRIMARY KEY (job_id, host)
);

ALTER TABLE frontier ADD COLUMN tag REAL NOT NULL DEFAULT 0;
-- 1 when the page was fetched at max_depth and its links were not followed; 2 while it is
-- fetched again because it was found at a smaller depth (its links are now in reach).
ALTER TABLE frontier ADD COLUMN links_cut INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN per_host_delay REAL;
-- Fair-queuing weight from the job's priority (low 0.25, normal 1, high 4).
ALTER TABLE jobs ADD COLUMN weight REAL NOT NULL DEFAULT 1;
-- Pages being fetched again at a smaller depth: the job is not complete while any is.
ALTER TABLE jobs ADD COLUMN refetching INTEGER NOT NULL DEFAULT 0;

UPDATE jobs SET per_host_delay = json_extract(request, '$.per_host_delay')
    WHERE json_type(request, '$.per_host_delay') IN ('integer', 'real');
UPDATE frontier SET tag = id WHERE state = 'pending';
INSERT INTO hosts (host) SELECT DISTINCT host FROM frontier WHERE state = 'pending';

DROP INDEX frontier_pending;
DROP INDEX frontier_pending_host;
CREATE INDEX frontier_host_queue ON frontier (host, tag, id) WHERE state = 'pending';
