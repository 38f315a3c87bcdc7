-- Benchmark runs, newest first.
CREATE OR REPLACE VIEW v_bench_runs AS
SELECT bench_run_id, model, engine, repo_id, version, fingerprint, mode, prompt_version, instruction,
       item_limit, status, items, seconds, harness_seconds,
       CASE WHEN seconds > 0 THEN items / seconds END AS items_per_second,
       error, started_at, finished_at
FROM bench_runs
ORDER BY started_at DESC;
