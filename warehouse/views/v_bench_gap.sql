-- The high- vs low-resource gap per (run, task, split): the mean of the per-language accuracies
-- of each class and their difference, with a 95% normal interval from the per-language binomial
-- variances (var(mean) = Σ p(1-p)/n / k²; the two classes independent).
CREATE OR REPLACE VIEW v_bench_gap AS
WITH per_class AS (
    SELECT bench_run_id, model, repo_id, version, task, split, resource,
           count(*) AS languages, avg(accuracy) AS mean_accuracy,
           sum(accuracy * (1 - accuracy) / n) / (count(*) * count(*)) AS var_mean
    FROM v_bench_scores
    GROUP BY ALL
)
SELECT h.bench_run_id, h.model, h.repo_id, h.version, h.task, h.split,
       h.languages AS high_languages, l.languages AS low_languages,
       h.mean_accuracy AS high_accuracy, l.mean_accuracy AS low_accuracy,
       h.mean_accuracy - l.mean_accuracy AS gap,
       h.mean_accuracy - l.mean_accuracy - 1.96 * sqrt(h.var_mean + l.var_mean) AS ci_low,
       h.mean_accuracy - l.mean_accuracy + 1.96 * sqrt(h.var_mean + l.var_mean) AS ci_high
FROM per_class h JOIN per_class l
  ON l.bench_run_id = h.bench_run_id AND l.task = h.task AND l.split = h.split
WHERE h.resource = 'high' AND l.resource = 'low';
