-- The model registry (docs/training.md): one row per trained model, and the benchmark runs of the
-- model and of its base on the version's test splits, from which v_model_gain computes the gain.
CREATE TABLE models (
    model_id             VARCHAR PRIMARY KEY, -- <base>-<dataset>-v<version>-<recipe hash[:8]>
    base_model           VARCHAR NOT NULL,    -- the base's model spec (hf:...)
    method               VARCHAR NOT NULL,    -- lora | full
    repo_id              VARCHAR NOT NULL,
    version              VARCHAR NOT NULL,
    fingerprint          VARCHAR NOT NULL,
    recipe_hash          VARCHAR NOT NULL,    -- sha256 of the recipe's canonical JSON
    recipe               JSON NOT NULL,
    status               VARCHAR NOT NULL,    -- running | trained | failed
    examples             INTEGER,
    examples_per_language JSON,
    steps                INTEGER,
    train_tokens         BIGINT,
    seconds              DOUBLE,              -- inside the trainer
    tokens_per_second    DOUBLE,
    first_loss           DOUBLE,
    final_loss           DOUBLE,
    device               VARCHAR,
    folder               VARCHAR,             -- the run's output folder
    model_spec           VARCHAR,             -- how to benchmark it: hf:<adapter or model folder>
    artifacts            JSON,                -- relative path -> sha256 of every saved file
    base_bench_run_id    VARCHAR,             -- the base's benchmark run (bench_runs)
    trained_bench_run_id VARCHAR,             -- the trained model's benchmark run
    error                VARCHAR,
    started_at           TIMESTAMPTZ NOT NULL,
    finished_at          TIMESTAMPTZ
);
