-- The SQLite schema's 0002 catches up with this dialect's 0001 (per_host_limit and the
-- per-host and results_job indexes); PostgreSQL already has them. Kept so that both
-- dialects share migration numbers.
SELECT 1;
