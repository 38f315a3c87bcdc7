-- Versioned dataset exports (docs/export.md).

-- One row per dataset version: a snapshot of the curated view with its fingerprint.
CREATE TABLE dataset_versions (
    repo_id           VARCHAR NOT NULL,   -- owner/name
    version           VARCHAR NOT NULL,   -- semver, e.g. 1.4.0 (the tag is v1.4.0)
    fingerprint       VARCHAR NOT NULL,   -- over the schema version and every row's (id, config, split, hash)
    schema_version    INTEGER NOT NULL,   -- export schema: a change is a major version
    parent_version    VARCHAR,            -- the version this one was compared with
    bump              VARCHAR NOT NULL,   -- initial | major | minor | patch
    config_hash       VARCHAR NOT NULL,   -- pipeline config that produced it
    source_revisions  JSON NOT NULL,      -- {source: fingerprint or Hub commit}
    counts            JSON NOT NULL,      -- entries per config, language, split; files; bytes
    changes           JSON NOT NULL,      -- added / removed / changed against the parent
    status            VARCHAR NOT NULL,   -- draft | published | failed
    folder            VARCHAR NOT NULL,   -- where the version's files were written
    run_id            VARCHAR,
    created_at        TIMESTAMPTZ NOT NULL,
    published_at      TIMESTAMPTZ,
    error             VARCHAR,            -- the last failed publication's error
    PRIMARY KEY (repo_id, version)
);

-- What each version holds, entry by entry (diffs, and splits that never move).
CREATE TABLE dataset_version_entries (
    repo_id     VARCHAR NOT NULL,
    version     VARCHAR NOT NULL,
    entry_id    VARCHAR NOT NULL,
    row_hash    VARCHAR NOT NULL,   -- hash of the exported row (what `globmed pull` recomputes)
    config      VARCHAR NOT NULL,
    language    VARCHAR NOT NULL,
    split       VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,
    task        VARCHAR NOT NULL,
    PRIMARY KEY (repo_id, version, entry_id)
);

-- Publication attempts per target: a version is published once a target's tag exists.
CREATE TABLE dataset_publications (
    repo_id      VARCHAR NOT NULL,
    version      VARCHAR NOT NULL,
    target       VARCHAR NOT NULL,   -- local | hub
    location     VARCHAR NOT NULL,   -- git repository path, or endpoint/repo_id
    status       VARCHAR NOT NULL,   -- published | failed
    revision     VARCHAR,            -- commit sha the tag points to
    error        VARCHAR,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (repo_id, version, target)
);

-- Splits given at export to entries whose source has none (`split: auto`): never moved again.
CREATE TABLE export_splits (
    entry_id       VARCHAR PRIMARY KEY,
    split          VARCHAR NOT NULL,
    first_version  VARCHAR NOT NULL
);

CREATE VIEW v_dataset_versions AS
SELECT repo_id, version, status, bump, parent_version, fingerprint, schema_version,
       CAST(counts->>'entries' AS BIGINT) AS entries,
       CAST(changes->>'added' AS BIGINT) AS added,
       CAST(changes->>'removed' AS BIGINT) AS removed,
       CAST(changes->>'changed' AS BIGINT) AS changed,
       created_at, published_at, error
FROM dataset_versions;
