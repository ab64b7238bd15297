-- URLs are unique per job by a fixed-size key, not by the URL itself (issue 17): a
-- 16-byte SHA-256 prefix of the canonical URL. An 8 KB URL broke the btree of the
-- (job_id, url) constraints (2704-byte rows), failing every tenant's result batch.
-- trawl_url_key() is the same function the SQLite store registers on its connections.
-- Also: a job's `retention` (seconds kept after it ends; NULL: the server default),
-- and an outbox index by job (purging a job deletes its delivered events).

CREATE FUNCTION trawl_url_key(url text) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT substring(sha256(convert_to(url, 'UTF8')) FROM 1 FOR 16) $$;

ALTER TABLE frontier ADD COLUMN url_key bytea;
UPDATE frontier SET url_key = trawl_url_key(url);
ALTER TABLE frontier ALTER COLUMN url_key SET NOT NULL;
ALTER TABLE frontier DROP CONSTRAINT frontier_job_id_url_key;
CREATE UNIQUE INDEX frontier_job_url ON frontier (job_id, url_key);

ALTER TABLE results ADD COLUMN url_key bytea;
UPDATE results SET url_key = trawl_url_key(url);
ALTER TABLE results ALTER COLUMN url_key SET NOT NULL;
ALTER TABLE results DROP CONSTRAINT results_job_id_url_key;
CREATE UNIQUE INDEX results_job_url ON results (job_id, url_key);

ALTER TABLE jobs ADD COLUMN retention double precision;
CREATE INDEX outbox_job ON outbox (job_id);
