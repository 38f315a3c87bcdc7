-- Core tables: runs, sources, raw records, canonical entries, quarantine.
-- Never edit an applied migration; add a new numbered file instead.

CREATE TABLE runs (
    run_id        VARCHAR PRIMARY KEY,
    flow_run_id   VARCHAR,            -- Prefect flow-run id (NULL when run without Prefect)
    config_path   VARCHAR,
    config_hash   VARCHAR NOT NULL,
    status        VARCHAR NOT NULL,   -- running | succeeded | partial | failed | crashed
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    counts        JSON,               -- summary counts per stage
    error         VARCHAR
);

CREATE TABLE run_stages (
    run_id       VARCHAR NOT NULL,
    stage        VARCHAR NOT NULL,    -- collect | langid | translate | dedup | quality | export
    source       VARCHAR NOT NULL,    -- '*' for stages over all sources
    status       VARCHAR NOT NULL,    -- succeeded | skipped | failed
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    seconds      DOUBLE,
    counts       JSON,
    error        VARCHAR,
    PRIMARY KEY (run_id, stage, source)
);

CREATE TABLE source_state (
    source        VARCHAR PRIMARY KEY,
    kind          VARCHAR NOT NULL,
    spec_hash     VARCHAR NOT NULL,
    fingerprint   VARCHAR NOT NULL,   -- over spec, normaliser version and file checksums
    revision      VARCHAR,            -- Hub commit sha, or NULL for local files
    status        VARCHAR NOT NULL,   -- complete | failed
    last_run_id   VARCHAR,
    updated_at    TIMESTAMPTZ NOT NULL,
    error         VARCHAR
);

CREATE TABLE source_files (
    source        VARCHAR NOT NULL,
    file          VARCHAR NOT NULL,   -- path relative to the source root
    size          BIGINT NOT NULL,
    sha256        VARCHAR NOT NULL,
    spec_hash     VARCHAR NOT NULL,   -- the spec the file was collected with
    run_id        VARCHAR NOT NULL,   -- run that finished collecting this version of the file
    records       BIGINT NOT NULL,
    PRIMARY KEY (source, file)
);

CREATE TABLE raw_records (
    source          VARCHAR NOT NULL,
    record_key      VARCHAR NOT NULL,
    file            VARCHAR NOT NULL,
    locator         VARCHAR NOT NULL,
    raw_hash        VARCHAR NOT NULL,
    payload         VARCHAR NOT NULL,   -- the record as read (JSON text), before normalisation
    first_run_id    VARCHAR NOT NULL,
    updated_run_id  VARCHAR NOT NULL,
    last_seen_run_id VARCHAR NOT NULL,
    vanished_run_id VARCHAR,            -- set when a later full read no longer finds it
    PRIMARY KEY (source, record_key)
);

CREATE TABLE entries (
    entry_id         VARCHAR PRIMARY KEY,
    source           VARCHAR NOT NULL,
    record_key       VARCHAR NOT NULL,
    content_hash     VARCHAR NOT NULL,
    task             VARCHAR NOT NULL,
    language         VARCHAR NOT NULL,   -- declared language
    split            VARCHAR NOT NULL,
    question         VARCHAR,
    context          VARCHAR,
    options          VARCHAR[],
    answer_indices   INTEGER[],
    label            VARCHAR,
    premise          VARCHAR,
    hypothesis       VARCHAR,
    answer           VARCHAR,
    rationale        VARCHAR,
    origin           VARCHAR NOT NULL,   -- native | translated
    parent_entry_id  VARCHAR,
    license          VARCHAR,
    metadata         JSON,
    status           VARCHAR NOT NULL,   -- active | quarantined | vanished
    created_run_id   VARCHAR NOT NULL,
    updated_run_id   VARCHAR NOT NULL
);

CREATE TABLE quarantine (
    source         VARCHAR NOT NULL,
    file           VARCHAR NOT NULL,
    locator        VARCHAR NOT NULL,
    record_key     VARCHAR,            -- NULL when the record could not be read far enough
    reason         VARCHAR NOT NULL,
    detail         VARCHAR,
    payload        VARCHAR,            -- raw text, cut at 64 KiB (payload_bytes is the full size)
    payload_bytes  BIGINT,
    run_id         VARCHAR NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, file, locator)
);

CREATE INDEX entries_source_idx ON entries (source);
