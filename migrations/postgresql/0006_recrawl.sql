-- Recrawls (issue 15). A job may re-fetch an earlier job's pages (`recrawl_of`) and
-- classify each of its results against that job's (`change`), counted per kind on the
-- job. Every result keeps what a later recrawl compares with: the response's validators
-- (ETag, Last-Modified, sent back as If-None-Match / If-Modified-Since), a hash of the
-- page's main-content text, and that text zlib-compressed (the `changes` diff).

ALTER TABLE jobs ADD COLUMN recrawl_of text;        -- the previous job's id (no FK: it may be purged)
ALTER TABLE jobs ADD COLUMN changes_new integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN changes_changed integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN changes_unchanged integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN changes_removed integer NOT NULL DEFAULT 0;

ALTER TABLE results ADD COLUMN change text
    CHECK (change IN ('new', 'changed', 'unchanged', 'removed'));
ALTER TABLE results ADD COLUMN etag text;
ALTER TABLE results ADD COLUMN last_modified text;
ALTER TABLE results ADD COLUMN content_hash text;
-- Already compressed: TOAST stores it out of line without compressing it again.
ALTER TABLE results ADD COLUMN content bytea;
ALTER TABLE results ALTER COLUMN content SET STORAGE EXTERNAL;
CREATE INDEX results_job_change ON results (job_id, change, id) WHERE change IS NOT NULL;
