-- Placeholder of issue 17, filled in by the work that owns it.
SELECT 1;
