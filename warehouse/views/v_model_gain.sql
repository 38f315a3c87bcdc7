-- A trained model against its base, per (task, language, split) of the benchmark: both accuracies,
-- the difference with a 95% normal interval (the two runs' binomial variances added; the items are
-- the same, so this interval is conservative; clipped to [-1, 1]), and the relative gain
-- (trained / base - 1).
CREATE OR REPLACE VIEW v_model_gain AS
SELECT m.model_id, m.base_model, m.repo_id, m.version, t.task, t.language, t.split, t.resource, t.n,
       b.accuracy AS base_accuracy, t.accuracy AS trained_accuracy,
       t.accuracy - b.accuracy AS delta,
       greatest(-1, t.accuracy - b.accuracy
           - 1.96 * sqrt(b.accuracy * (1 - b.accuracy) / b.n + t.accuracy * (1 - t.accuracy) / t.n)) AS ci_low,
       least(1, t.accuracy - b.accuracy
           + 1.96 * sqrt(b.accuracy * (1 - b.accuracy) / b.n + t.accuracy * (1 - t.accuracy) / t.n)) AS ci_high,
       CASE WHEN b.accuracy > 0 THEN t.accuracy / b.accuracy - 1 END AS relative_gain
FROM models m
JOIN v_bench_scores t ON t.bench_run_id = m.trained_bench_run_id
JOIN v_bench_scores b ON b.bench_run_id = m.base_bench_run_id
     AND b.task = t.task AND b.language = t.language AND b.split = t.split;
