CREATE OR REPLACE VIEW v_runs AS
SELECT run_id, flow_run_id, config_path, config_hash, status, started_at, finished_at,
       date_diff('millisecond', started_at, finished_at) / 1000.0 AS seconds, counts, error
FROM runs;
