-- written by the business session
SELECT 1;
