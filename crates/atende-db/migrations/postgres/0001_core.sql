-- written by the core session
SELECT 1;
