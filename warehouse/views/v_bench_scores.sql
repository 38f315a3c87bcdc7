-- Accuracy per (run, task, language, split) with a 95% Wilson interval (z = 1.96). Open QA's
-- "accuracy" is the mean chrF++ and its interval the normal one (mean ± z·sd/√n); with a judge,
-- judge_accuracy is the share of replies it said agree with the reference.
CREATE OR REPLACE VIEW v_bench_scores AS
WITH agg AS (
    SELECT i.bench_run_id, r.model, r.repo_id, r.version, r.fingerprint, r.mode, r.prompt_version,
           i.task, i.language, i.split, any_value(i.resource) AS resource,
           count(*) AS n, avg(i.score) AS accuracy, coalesce(stddev_samp(i.score), 0) AS sd,
           avg(CASE WHEN i.invalid THEN 1.0 ELSE 0.0 END) AS invalid_rate,
           -- what one uniformly random option scores: 1/options for one-answer items, 0 for multi
           avg(CASE WHEN i.n_options IS NULL THEN NULL WHEN contains(i.gold, ',') THEN 0.0
                    ELSE 1.0 / i.n_options END) AS chance,
           any_value(json_extract_string(r.settings, '$.judge')) AS judge,
           avg(CASE WHEN i.judge_correct THEN 1.0 ELSE 0.0 END) AS judged_agree
    FROM bench_items i JOIN bench_runs r USING (bench_run_id)
    WHERE r.status = 'succeeded'
    GROUP BY ALL
)
SELECT bench_run_id, model, repo_id, version, fingerprint, mode, prompt_version, task, language, split,
       resource, n, accuracy,
       CASE WHEN task = 'open_qa' THEN greatest(0, accuracy - 1.96 * sd / sqrt(n))
            ELSE (accuracy + 1.9208 / n - 1.96 * sqrt(accuracy * (1 - accuracy) / n + 0.9604 / (n * n)))
                 / (1 + 3.8416 / n) END AS ci_low,
       CASE WHEN task = 'open_qa' THEN least(1, accuracy + 1.96 * sd / sqrt(n))
            ELSE (accuracy + 1.9208 / n + 1.96 * sqrt(accuracy * (1 - accuracy) / n + 0.9604 / (n * n)))
                 / (1 + 3.8416 / n) END AS ci_high,
       invalid_rate, chance,
       CASE WHEN task = 'open_qa' AND judge IS NOT NULL THEN judged_agree END AS judge_accuracy
FROM agg;
