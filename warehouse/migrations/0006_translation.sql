-- Translation (docs/translation.md).

-- Every segment translation ever made, keyed so that a re-run, or the same segment in another
-- entry, is never translated twice.
CREATE TABLE translation_cache (
    segment_hash    VARCHAR NOT NULL,   -- hash of the normalised, masked source segment
    source_language VARCHAR NOT NULL,
    target_language VARCHAR NOT NULL,
    backend         VARCHAR NOT NULL,   -- backend name in the config
    model           VARCHAR NOT NULL,
    prompt_version  VARCHAR NOT NULL,
    source_text     VARCHAR NOT NULL,   -- the masked segment
    output          VARCHAR,            -- NULL: the backend failed on it (see error)
    error           VARCHAR,
    seconds         DOUBLE,             -- backend time per segment in its batch
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (segment_hash, source_language, target_language, backend, model, prompt_version)
);

-- One row per (parent entry, target language): the latest outcome.
CREATE TABLE translations (
    parent_entry_id     VARCHAR NOT NULL,
    target_language     VARCHAR NOT NULL,
    parent_content_hash VARCHAR NOT NULL,   -- the parent content this outcome is about
    job                 VARCHAR NOT NULL,
    attempted           VARCHAR NOT NULL,   -- backends tried, with model and prompt version
    backend             VARCHAR,            -- the backend whose output was kept (NULL: none passed)
    model               VARCHAR,
    prompt_version      VARCHAR NOT NULL,
    status              VARCHAR NOT NULL,   -- ok | rejected
    reasons             VARCHAR[] NOT NULL, -- why it was rejected (per backend tried)
    entry_id            VARCHAR,            -- the translated entry (NULL when rejected)
    review              VARCHAR,            -- NULL | accepted | fixed | rejected (human review)
    reviewer_note       VARCHAR,
    run_id              VARCHAR NOT NULL,
    translated_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (parent_entry_id, target_language)
);

-- Scores of a backend against reference translations (globmed translate eval).
CREATE TABLE translation_evals (
    eval_id         VARCHAR NOT NULL,
    backend         VARCHAR NOT NULL,
    model           VARCHAR NOT NULL,
    prompt_version  VARCHAR NOT NULL,
    dataset         VARCHAR NOT NULL,   -- e.g. tico19
    source_language VARCHAR NOT NULL,
    target_language VARCHAR NOT NULL,
    segments        INTEGER NOT NULL,
    chrf_pp         DOUBLE NOT NULL,    -- chrF++ (sacrebleu, word order 2)
    bleu            DOUBLE NOT NULL,
    seconds         DOUBLE NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (eval_id, target_language)
);

CREATE VIEW v_translations AS
SELECT t.parent_entry_id, p.source AS parent_source, p.language AS source_language, t.target_language,
       p.task, t.job, t.status, t.reasons, t.backend, t.model, t.prompt_version, t.entry_id, t.review,
       t.translated_at
FROM translations t JOIN entries p ON p.entry_id = t.parent_entry_id;
