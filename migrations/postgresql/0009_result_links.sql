-- Recrawls (issue 15): "no longer linked" removes a page. Each result keeps the keys
-- (hex of url_key) of the links the crawl follows from it, a JSON array; a 304 carries
-- the previous result's forward. NULL: not known (a result stored before this
-- migration, or a page with more links than are kept); a recrawl holding such a page
-- does not report pages as unlinked.

ALTER TABLE results ADD COLUMN link_keys TEXT;
