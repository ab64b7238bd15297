-- A job's typed crawl spec (service/spec.py) and what it learns while it runs.
-- Jobs stored before this have NULL spec and spec_version: read from their request.

ALTER TABLE jobs ADD COLUMN spec text;              -- CrawlSpec.to_json()
ALTER TABLE jobs ADD COLUMN spec_version integer;   -- its layout (SPEC_VERSION)
ALTER TABLE jobs ADD COLUMN widened_hosts text;     -- JSON list: hosts seeds redirected to
ALTER TABLE jobs ADD COLUMN sitemap_origins text;   -- JSON list: origins whose sitemaps were read
