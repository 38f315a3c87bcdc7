-- The model registry, newest first: each trained model with its dataset version, recipe, training
-- figures and the benchmark runs that measured it.
CREATE OR REPLACE VIEW v_models AS
SELECT model_id, base_model, method, repo_id, version, fingerprint, recipe_hash, status, examples,
       steps, train_tokens, seconds, tokens_per_second, first_loss, final_loss, device, model_spec,
       folder, base_bench_run_id, trained_bench_run_id, error, started_at, finished_at
FROM models
ORDER BY started_at DESC;
