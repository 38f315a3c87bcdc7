CREATE OR REPLACE VIEW v_run_stages AS
SELECT run_id, stage, source, status, started_at, finished_at, seconds, counts, error
FROM run_stages;
