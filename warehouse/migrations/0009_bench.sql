-- Benchmark results (docs/benchmark.md): one row per benchmark run of one model on one dataset
-- version, and one row per scored item. Scores and the gap are views over these rows.
CREATE TABLE bench_runs (
    bench_run_id    VARCHAR PRIMARY KEY,
    model           VARCHAR NOT NULL,   -- the model spec as given (hf:..., constant:A, ...)
    engine          VARCHAR NOT NULL,   -- hf | vllm | openai | constant | random
    repo_id         VARCHAR NOT NULL,
    version         VARCHAR NOT NULL,
    fingerprint     VARCHAR NOT NULL,
    mode            VARCHAR NOT NULL,   -- loglik | generate
    prompt_version  VARCHAR NOT NULL,
    instruction     VARCHAR NOT NULL,   -- en | item
    item_limit      INTEGER,
    settings        JSON NOT NULL,
    status          VARCHAR NOT NULL,   -- running | succeeded | failed
    items           INTEGER,
    seconds         DOUBLE,
    harness_seconds DOUBLE,             -- inside lm-eval's simple_evaluate
    error           VARCHAR,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ
);

CREATE TABLE bench_items (
    bench_run_id    VARCHAR NOT NULL,
    entry_id        VARCHAR NOT NULL,
    config          VARCHAR NOT NULL,
    task            VARCHAR NOT NULL,
    language        VARCHAR NOT NULL,
    split           VARCHAR NOT NULL,
    resource        VARCHAR NOT NULL,   -- high | low (languages.low_resource)
    prompt_language VARCHAR NOT NULL,
    prediction      VARCHAR,            -- letters (A,C), or the reply for open QA
    reply           VARCHAR,            -- generate mode: the model's raw reply
    gold            VARCHAR NOT NULL,   -- letters, or the reference answer
    n_options       INTEGER,            -- options shown (null for open QA)
    correct         BOOLEAN,            -- null for open QA (scored by chrF++)
    score           DOUBLE NOT NULL,    -- 1/0 for choice tasks, chrF++ in [0, 1] for open QA
    invalid         BOOLEAN NOT NULL,   -- the reply named no valid option
    option_logliks  DOUBLE[],           -- loglik mode: per option, in option order
    judge_correct   BOOLEAN,            -- open QA with a judge: its verdict (null: none, or no judge)
    PRIMARY KEY (bench_run_id, config, entry_id)
);
