-- Polite wide crawls on a shared frontier (issue 11). A claimed URL whose body is read
-- no longer holds its host's in-flight slot, though its result is not recorded yet (it
-- waits for a parser and the writer: seconds under load). `fetched` marks such a claim,
-- set at fetch end in a small transaction that also frees the host from the request's
-- start plus its spacing, so no claimer in any process counts it against the host's
-- per-host limit; a new claim of the row clears it.
ALTER TABLE frontier ADD COLUMN fetched boolean NOT NULL DEFAULT false;
