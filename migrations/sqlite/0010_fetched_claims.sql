-- Polite wide crawls on a shared frontier (issue 11); see the PostgreSQL migration of the
-- same number. A claimed URL whose body is read no longer holds its host's in-flight
-- slot: `fetched` (0/1) marks it until the row is claimed again.
ALTER TABLE frontier ADD COLUMN fetched INTEGER NOT NULL DEFAULT 0;
