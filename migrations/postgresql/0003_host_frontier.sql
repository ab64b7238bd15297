-- Host-aware frontier (Mercator's back queues); see the SQLite migration of the same
-- number for the meaning of each column. Forward-only: never edit once landed.
CREATE TABLE hosts (
    host    text PRIMARY KEY,
    next_at double precision NOT NULL DEFAULT 0,
    queued  integer NOT NULL DEFAULT 1,
    vtime   double precision NOT NULL DEFAULT 0,
    delay   double precision NOT NULL DEFAULT 0
);
CREATE INDEX hosts_ready ON hosts (next_at) WHERE queued > 0;

CREATE TABLE job_hosts (
    job_id text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    host   text NOT NULL,
    finish double precision NOT NULL,
    PRIMARY KEY (job_id, host)
);

ALTER TABLE frontier ADD COLUMN tag double precision NOT NULL DEFAULT 0;
ALTER TABLE frontier ADD COLUMN links_cut integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN per_host_delay double precision;
ALTER TABLE jobs ADD COLUMN weight double precision NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN refetching integer NOT NULL DEFAULT 0;

UPDATE jobs SET per_host_delay = (request::json ->> 'per_host_delay')::double precision
    WHERE json_typeof(request::json -> 'per_host_delay') = 'number';
UPDATE frontier SET tag = id WHERE state = 'pending';
INSERT INTO hosts (host) SELECT DISTINCT host FROM frontier WHERE state = 'pending';

DROP INDEX frontier_pending;
DROP INDEX frontier_pending_host;
CREATE INDEX frontier_host_queue ON frontier (host, tag, id) WHERE state = 'pending';
