-- Number 0008 was set aside for the frontier work (issues 11, 16), which needed no
-- migration; kept so the numbers stay without gaps. A no-op (an empty script is not a
-- statement asyncpg can run).
SELECT 1;
